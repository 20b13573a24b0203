"""The cheap call path (docs/decisions.md D606): the audit head hint, ``Hot`` statements, SQLite lock waits."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from sqlalchemy import select

from till_tools import audit
from till_tools.registry import Registry
from till_tools.store.content import AuditEntry
from till_tools.store.hot import Hot
from till_tools.store.models import Product, Variant


async def verdict(reg: Registry, store_id: int = 1) -> audit.Verdict:
    async with reg.sessions() as db:
        return await audit.verify_store(db, store_id)


async def test_two_writers_with_stale_head_hints_keep_one_chain(h: Any) -> None:
    """A second process appends between this one's calls: the hint is stale, the chain stays whole."""
    second = Registry.build(h.reg.settings, h.reg.catalogue)
    try:
        other = type(h)(second)
        for i in range(6):
            h.ok(await (h if i % 2 else other).call("get_variant", {"sku": "TS-001-M"}))
            h.ok(await (other if i % 3 else h).call("update_inventory", {"sku": "TS-001-M", "adjust_by": 1}))
        v = await verdict(h.reg)
        assert v.ok, v.reason
        assert v.rows == 12
        seqs = [r[0] for r in await h.sql(select(AuditEntry.seq).where(AuditEntry.store_id == 1)
                                          .order_by(AuditEntry.id))]
        assert seqs == list(range(1, 13))
    finally:
        await second.close()


async def test_a_head_hint_from_a_rolled_back_append_is_not_trusted(h: Any) -> None:
    h.ok(await h.call("get_variant", {"sku": "TS-001-M"}))
    hint = h.reg.audit_heads.get(1)
    assert hint is not None
    # a hint that the table never saw (as after a failed commit)
    h.reg.audit_heads.put(1, hint[0] + 5, "f" * 64)
    h.ok(await h.call("get_variant", {"sku": "TS-001-M"}))
    v = await verdict(h.reg)
    assert v.ok, v.reason
    assert v.rows == 2
    assert h.reg.audit_heads.get(1) == (2, (await h.sql(select(AuditEntry.hash).where(AuditEntry.seq == 2,
                                                                                     AuditEntry.store_id == 1)))[0][0])


async def test_hot_rows_match_the_orm_object(h: Any) -> None:
    stmt = Hot(select(*Product.__table__.c).where(Product.id == 1))
    async with h.reg.sessions() as db, db.begin():
        rows = await stmt.rows(db, {})
        orm = await db.get(Product, 1)
    assert orm is not None
    assert len(rows) == 1
    for col in Product.__table__.c:
        assert getattr(rows[0], col.key) == getattr(orm, col.key), col.key
    assert rows[0].created_at.tzinfo is not None
    assert isinstance(rows[0].tags, list)


async def test_hot_run_changes_rows_inside_the_sessions_transaction(h: Any) -> None:
    from sqlalchemy import bindparam, update

    stmt = Hot(update(Variant).where(Variant.store_id == 1, Variant.sku == bindparam("s"))
               .values(stock=bindparam("n")))
    async with h.reg.sessions() as db:
        tx = await db.begin()
        assert await stmt.run(db, {"s": "TS-001-M", "n": 777}) == 1
        inside = (await db.execute(select(Variant.stock).where(Variant.store_id == 1, Variant.sku == "TS-001-M")))
        assert inside.scalar() == 777
        await tx.rollback()
        async with db.begin():
            assert await stmt.run(db, {"s": "no-such-sku", "n": 1}) == 0
    stock = (await h.sql(select(Variant.stock).where(Variant.store_id == 1, Variant.sku == "TS-001-M")))[0][0]
    assert stock != 777


async def test_a_locked_sqlite_file_is_waited_for_on_the_loop(h: Any) -> None:
    """Another process holds the write lock: the call waits without blocking the event loop, then writes."""
    if h.reg.dialect != "sqlite":
        pytest.skip("SQLite's file lock; PostgreSQL waits on row locks in asyncpg")
    reg = h.reg
    path = h.reg.settings.tools_database_url.split("///", 1)[1]
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        h.ok(await h.call("get_variant", {"sku": "TS-001-M"}))     # pool connection open, hint set
        blocker.execute("BEGIN IMMEDIATE")
        call = asyncio.create_task(h.call("update_inventory", {"sku": "TS-001-M", "adjust_by": 2}))
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.01)
            ticks += 1
        assert not call.done()
        assert ticks == 20
        blocker.execute("COMMIT")
        out = h.ok(await asyncio.wait_for(call, 30))
        assert out["stock"] >= 2
        v = await verdict(reg)
        assert v.ok, v.reason
        assert v.rows == 2
    finally:
        blocker.close()


@pytest.mark.parametrize("args", [{"sku": "ts-001-m"}, {"id": 1}, {"name": "Classic T-Shirt"}])
async def test_get_product_reads_the_same_by_every_reference(h: Any, args: dict[str, object]) -> None:
    by_sku = h.ok(await h.call("get_product", {"sku": "TS-001-M"}))
    got = h.ok(await h.call("get_product", args if "sku" in args else {**args, "id": by_sku["id"]}
                            if "id" in args else {"name": by_sku["title"]}))
    assert got == by_sku
