"""``till audit verify [--store-id N]``: recompute each store's audit hash chain (SPEC §6, TL-12).

Exit 0 when every chain holds; 1 naming the first bad row of each broken chain.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

import msgspec

from till_db.engine import make_engine, sessionmaker
from till_tools import audit
from till_tools.settings import ToolsSettings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("audit", help="inspect the tamper-evident audit log")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    v = actions.add_parser("verify", help="verify the hash chain of every store (or one)")
    v.add_argument("--store-id", type=int, default=None, help="only this store")
    v.add_argument("--database-url", default=None, help="default: TILL_TOOLS_DATABASE_URL")
    p.set_defaults(run=run)


async def verify(url: str, store_id: int | None) -> list[audit.Verdict]:
    engine = make_engine(url, "TILL_TOOLS_DATABASE_URL")
    try:
        async with sessionmaker(engine)() as db:
            stores = [store_id] if store_id is not None else await audit.audited_stores(db)
            return [await audit.verify_store(db, s) for s in stores]
    finally:
        await engine.dispose()


def run(args: argparse.Namespace) -> int:
    url = args.database_url
    if url is None:
        # only the database is needed here, not the service's secrets
        default = next(f.default for f in msgspec.structs.fields(ToolsSettings) if f.name == "tools_database_url")
        url = os.environ.get("TILL_TOOLS_DATABASE_URL") or default
    verdicts = asyncio.run(verify(url, args.store_id))
    bad = 0
    for v in verdicts:
        if v.ok:
            print(f"store {v.store_id}: ok ({v.rows} rows)")
        else:
            bad += 1
            where = f"row id {v.bad_row_id} (seq {v.bad_seq})" if v.bad_row_id is not None else f"seq {v.bad_seq}"
            print(f"store {v.store_id}: BROKEN at {where}: {v.reason}")
    if not verdicts:
        print("no audit rows")
    return 1 if bad else 0
