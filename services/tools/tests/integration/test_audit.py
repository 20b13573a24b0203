"""The audit chain: one row per call, chained per store, tamper-evident (TL-12), fork-free under concurrency."""

from __future__ import annotations

import asyncio
import sys

import pytest
from sqlalchemy import delete, select, update

from till_tools import audit
from till_tools.store.content import AuditEntry


async def verdicts(h) -> dict[int, audit.Verdict]:
    async with h.reg.sessions() as db:
        return {s: await audit.verify_store(db, s) for s in await audit.audited_stores(db)}


async def make_rows(h, n: int = 6) -> None:
    for i in range(n):
        h.ok(await h.call("get_variant", {"sku": "TS-001-M"}))
        h.ok(await h.call("get_variant", {"sku": "TS-001-M"}, h.OTHER)) if i % 2 else None


async def cli(url: str, *extra: str) -> tuple[int, str]:
    """The real command, in its own process, as an operator runs it."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "till_cli.main", "audit", "verify",
                                                "--database-url", url, *extra, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_every_call_adds_one_chained_row_per_store(h) -> None:
    await make_rows(h)
    v = await verdicts(h)
    assert v[1].ok
    assert v[1].rows == 6
    assert v[2].ok
    assert v[2].rows == 3
    rows = (await h.sql(select(AuditEntry.seq, AuditEntry.prev_hash, AuditEntry.hash)
                        .where(AuditEntry.store_id == 1).order_by(AuditEntry.seq)))
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0][1] == audit.GENESIS
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, 6))


async def test_concurrent_calls_never_fork_the_chain(h) -> None:
    outs = await asyncio.gather(*(h.call("update_inventory", {"sku": "TS-001-M", "adjust_by": 1}) for _ in range(20)),
                                *(h.call("get_product", {"sku": "TS-001-M"}) for _ in range(20)))
    assert all(o["result"]["isError"] is False for o in outs)
    v = await verdicts(h)
    assert v[1].ok
    assert v[1].rows == 40


@pytest.mark.parametrize("tamper", ["edit", "delete_middle", "swap", "delete_last"])
async def test_tl12_tampering_is_found_and_named(h, store_url: str, tamper: str) -> None:
    await make_rows(h)
    assert (await verdicts(h))[1].ok
    ids = [r[0] for r in await h.sql(select(AuditEntry.id).where(AuditEntry.store_id == 1).order_by(AuditEntry.id))]
    async with h.reg.sessions() as db, db.begin():
        if tamper == "edit":
            await db.execute(update(AuditEntry).where(AuditEntry.id == ids[2]).values(outcome="denied"))
            expected = f"row id {ids[2]} (seq 3)"
        elif tamper == "delete_middle":
            await db.execute(delete(AuditEntry).where(AuditEntry.id == ids[2]))
            expected = f"row id {ids[3]} (seq 4)"
        elif tamper == "swap":
            a, b = (await db.scalars(select(AuditEntry).where(AuditEntry.id.in_(ids[1:3]))
                                     .order_by(AuditEntry.id))).all()
            cols = [c.key for c in AuditEntry.__table__.columns if c.key != "id"]
            va, vb = ({c: getattr(a, c) for c in cols}, {c: getattr(b, c) for c in cols})
            await db.execute(update(AuditEntry).where(AuditEntry.id == a.id).values(seq=-1))
            await db.execute(update(AuditEntry).where(AuditEntry.id == b.id).values(**va))
            await db.execute(update(AuditEntry).where(AuditEntry.id == a.id).values(**vb))
            expected = f"row id {ids[1]} (seq 3)"
        else:
            await db.execute(delete(AuditEntry).where(AuditEntry.id == ids[-1]))
            expected = "seq 6"
    code, out = await cli(store_url)
    assert code == 1, out
    assert f"store 1: BROKEN at {expected}" in out, out
    assert "store 2: ok (3 rows)" in out
    assert (await verdicts(h))[2].ok


async def test_till_audit_verify_of_an_intact_store(h, store_url: str) -> None:
    await make_rows(h)
    assert await cli(store_url, "--store-id", "1") == (0, "store 1: ok (6 rows)\n")


async def test_audit_page_pages_through_the_trail(h) -> None:
    await make_rows(h)
    async with h.reg.sessions() as db:
        first = await audit.page(db, 1, 0, 4)
        second = await audit.page(db, 1, first.next or 0, 4)
    assert [r.seq for r in first.items] == [1, 2, 3, 4]
    assert first.next == 4
    assert [r.seq for r in second.items] == [5, 6]
    assert second.next is None
    assert first.items[0].arguments == {"sku": "TS-001-M"}


async def test_each_resource_read_leaves_one_chained_row_and_till_audit_verify_passes(h, store_url: str) -> None:
    """D862: resources/read returns store data, so it is audited like a call: who, which URI, outcome."""
    pid = h.ok(await h.call("get_product", {"sku": "TS-001-M"}))["id"]
    reads = [(h.OWNER, "store://settings", "success", ""),
             (h.OWNER, f"store://products/{pid}", "success", ""),
             (h.OWNER, "store://products/999999999", "failed", "no product with id 999999999"),
             (h.principal("support"), "store://settings", "denied", "role support lacks settings:read"),
             (h.principal("owner", scopes=("products:read",)), "store://theme", "denied",
              "token scope lacks themes:read"),
             (h.OWNER, "file:///etc/passwd", "refused", "no such resource")]
    for who, uri, outcome, _ in reads:
        out = await h.rpc("resources/read", {"uri": uri}, who)
        assert ("result" in out) == (outcome == "success"), out
    assert "error" in await h.rpc("resources/read", {}, h.OWNER)        # no URI: nothing to record
    rows = (await h.sql(select(AuditEntry).where(AuditEntry.store_id == 1).order_by(AuditEntry.seq)))
    rows = [r[0] for r in rows]
    assert len(rows) == 1 + len(reads)                                  # the get_product call, then one per read
    for row, (who, uri, outcome, detail) in zip(rows[1:], reads, strict=True):
        assert (row.tool, row.arguments, row.outcome) == ("resources/read", f'{{"uri":"{uri}"}}', outcome)
        assert detail in row.detail
        assert (row.user_id, row.token_id, row.client_id, row.request_id) == (
            who.user_id, who.token_id, who.client_id, who.request_id)
    assert await cli(store_url, "--store-id", "1") == (0, f"store 1: ok ({len(rows)} rows)\n")
