"""WAL checkpoints off the event loop (docs/decisions.md D890) and the registry's call context managers."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from till_tools import audit
from till_tools.registry import Registry
from till_tools.store import checkpoint
from till_tools.store.content import AuditEntry
from till_tools.store.inline_sqlite import make_store_engine
from till_tools.store.models import Variant

WRITE = {"sku": "TS-001-M", "adjust_by": 1}


def wal_of(reg: Registry) -> Path:
    assert reg.engine.url.database is not None
    return Path(reg.engine.url.database + "-wal")


def checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("till-wal-checkpoint")]


def running(cp: checkpoint.Checkpointer) -> bool:
    return cp.running


@pytest.fixture
def Harness(h: Any) -> Any:
    if h.reg.dialect != "sqlite":
        pytest.skip("WAL checkpoints are SQLite's")
    return type(h)


@pytest.fixture
async def sreg(h: Any, Harness: Any) -> Any:
    reg = Registry.build(h.reg.settings, h.reg.catalogue)
    assert reg._checkpointer is not None
    reg._checkpointer.every = 50
    yield reg
    await reg.close()


async def test_registry_connections_never_checkpoint_inside_a_commit(sreg: Registry) -> None:
    async with sreg.engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
    other = make_store_engine(sreg.settings.tools_database_url)   # migrations, seeding: SQLite's default stays
    try:
        async with other.connect() as conn:
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 1000
    finally:
        await other.dispose()


async def test_the_wal_stays_bounded_over_many_commits(sreg: Registry, Harness: Any) -> None:
    h = Harness(sreg)
    for _ in range(1200):
        await asyncio.sleep(0)     # the server's loop turns between requests
        h.ok(await h.call("update_inventory", WRITE))
    cp = sreg._checkpointer
    assert cp is not None
    assert cp.checkpoints >= 3
    assert cp.failures == 0
    # ~6 pages of 4 KiB per commit: 1200 commits without a checkpoint leave a ~30 MB WAL, one every 50
    # commits ~1.2 MB (more while a checkpoint is slow: this machine is shared)
    size = wal_of(sreg).stat().st_size
    assert size < 8 * 2**20, size
    assert cp.last is not None
    assert cp.last[0] == 0
    assert cp.last[1] == cp.last[2]
    v = await _verdict(sreg)
    assert v.ok
    assert v.rows >= 1200


async def test_the_second_pass_leaves_the_wal_fully_copied_so_the_next_commit_restarts_it(
        sreg: Registry, Harness: Any) -> None:
    h = Harness(sreg)
    h.ok(await h.call("update_inventory", WRITE))
    cp = sreg._checkpointer
    assert cp is not None
    for _ in range(20):
        h.ok(await h.call("update_inventory", WRITE))
    await cp.checkpoint_now()
    h.ok(await h.call("update_inventory", WRITE))
    # the commit after a complete checkpoint wrote its frames at the start of the WAL again
    probe = sqlite3.connect(str(sreg.engine.url.database), isolation_level=None)
    try:
        busy, frames, _copied = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
    finally:
        probe.close()
    assert busy == 0
    assert 0 < frames < 20, frames


async def test_a_failed_checkpoint_is_logged_and_not_fatal(sreg: Registry, Harness: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[tuple[str, dict[str, Any]]] = []

    class Log:
        def warning(self, event: str, **kw: Any) -> None:
            warnings.append((event, kw))

    monkeypatch.setattr(checkpoint, "log", Log())
    h = Harness(sreg)
    h.ok(await h.call("update_inventory", WRITE))
    cp = sreg._checkpointer
    assert cp is not None
    real = cp._passive
    calls = {"n": 0}

    def flaky() -> tuple[int, int, int]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise sqlite3.OperationalError("disk I/O error")
        return real()

    monkeypatch.setattr(cp, "_passive", flaky)
    for _ in range(120):
        await asyncio.sleep(0)
        h.ok(await h.call("update_inventory", WRITE))
    assert cp.failures == 1
    for _ in range(500):                  # the next one, when due again, works
        if cp.checkpoints:
            break
        await asyncio.sleep(0.01)
    assert cp.checkpoints >= 1
    assert warnings
    assert warnings[0][0].startswith("WAL checkpoint failed")
    assert warnings[0][1]["exc_info"] is True


async def test_close_stops_the_task_and_joins_the_thread(h: Any, Harness: Any) -> None:
    before = set(checkpoint_threads())
    reg = Registry.build(h.reg.settings, h.reg.catalogue)
    h = Harness(reg)
    h.ok(await h.call("get_product", {"sku": "TS-001-M"}))
    cp = reg._checkpointer
    assert cp is not None
    assert running(cp)
    await cp.checkpoint_now()
    assert set(checkpoint_threads()) - before      # the worker thread exists while the registry is open
    await reg.close()
    assert not running(cp)
    assert set(checkpoint_threads()) - before == set()
    await reg.close()                              # twice is harmless


async def _verdict(reg: Registry) -> audit.Verdict:
    async with reg.sessions() as db:
        return await audit.verify_store(db, 1)


# --- Registry.write_slot / transaction as small classes (same semantics as the generators) ---------

async def test_transaction_rolls_back_what_the_body_left_uncommitted(h: Any) -> None:
    reg: Registry = h.reg
    before = (await h.sql(select(Variant.stock).where(Variant.sku == "TS-001-M")))[0][0]
    async with reg.write_slot(), reg.transaction() as tx:
        await tx.db.execute(update(Variant).where(Variant.sku == "TS-001-M").values(stock=before + 7))
    assert (await h.sql(select(Variant.stock).where(Variant.sku == "TS-001-M")))[0][0] == before

    async def fails() -> None:
        async with reg.write_slot(), reg.transaction() as tx:
            await tx.db.execute(update(Variant).where(Variant.sku == "TS-001-M")
                                .values(stock=before + 9))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fails()
    assert (await h.sql(select(Variant.stock).where(Variant.sku == "TS-001-M")))[0][0] == before
    async with reg.write_slot(), reg.transaction() as tx:
        await tx.db.execute(update(Variant).where(Variant.sku == "TS-001-M").values(stock=before + 1))
        await tx.commit()
    assert (await h.sql(select(Variant.stock).where(Variant.sku == "TS-001-M")))[0][0] == before + 1
    if reg.dialect == "sqlite":
        assert reg._sqlite_lock is not None
        assert not reg._sqlite_lock.locked()


async def test_write_slot_serializes_sqlite_calls(h: Any) -> None:
    reg: Registry = h.reg
    inside, peak = 0, 0

    async def one() -> None:
        nonlocal inside, peak
        async with reg.write_slot():
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.001)
            inside -= 1

    await asyncio.gather(*(one() for _ in range(5)))
    assert peak == (1 if reg.dialect == "sqlite" else 5)


async def test_a_failed_rollback_drops_the_shared_connection(h: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    reg: Registry = h.reg
    if reg.dialect != "sqlite":
        pytest.skip("the shared inline connection is SQLite's")
    h.ok(await h.call("get_product", {"sku": "TS-001-M"}))
    assert reg._inline is not None
    from till_tools.store.tx import InlineTx

    async def broken(self: InlineTx) -> None:
        raise sqlite3.OperationalError("cannot rollback")

    monkeypatch.setattr(InlineTx, "close", broken)

    async def empty_call() -> None:
        async with reg.write_slot(), reg.transaction():
            pass

    with pytest.raises(sqlite3.OperationalError, match="cannot rollback"):
        await empty_call()
    assert getattr(reg, "_inline") is None      # noqa: B009 - past the narrowing above
    monkeypatch.undo()
    h.ok(await h.call("get_product", {"sku": "TS-001-M"}))     # a fresh connection serves the next call
    rows = await h.sql(select(AuditEntry.id).where(AuditEntry.store_id == 1))
    assert rows


# --- call path indexes (D893) ----------------------------------------------------------------------

async def test_sku_lookups_use_the_lower_sku_index(sreg: Registry) -> None:
    from till_tools import lookup
    from till_tools.tools import products

    async with sreg.engine.connect() as conn:
        stmts: list[Any] = [products._PRODUCT_ROW_BY_SKU.stmt, products._PRODUCT_BY_SKU,
                            lookup._columns(Variant).where(Variant.store_id == 1, func.lower(Variant.sku) == "x")]
        for stmt in stmts:
            c = stmt.compile(dialect=conn.dialect)
            params = c.construct_params({"store": 1, "sku": "x"})
            args = tuple(params[k] for k in c.positiontup or ())
            plan = " ".join(str(r) for r in (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + c.string, args)).all())
            assert "ix_variants_store_lower_sku" in plan, plan
        indexes = (await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index' "
                                           "AND tbl_name = 'audit_entries'"))).scalars().all()
    assert indexes == ["sqlite_autoindex_audit_entries_1"]      # UNIQUE(store_id, seq) and nothing else
