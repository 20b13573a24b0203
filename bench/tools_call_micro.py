"""In-process CPU per ``tools/call``: ``rpc.handle(reg, req)`` on a seeded SQLite store, no HTTP.

Builds the tools service's ``Registry`` on a freshly migrated and seeded SQLite file (the demo data,
as ``bench/tools_rpc.py`` does), then times N calls of ``get_product`` by SKU (``read``: the product,
its variants and categories plus the audit row) and ``update_inventory`` +1 (``write``: the row
update plus the audit row), in alternating blocks, with ``time.process_time()`` (CPU of this
process, all threads) and ``time.perf_counter()`` (wall).  Every call is checked to succeed.

    uv run python bench/tools_call_micro.py [--n 5000] [--block 500] [--db /path/seeded.db]

Prints µs per call (CPU and wall: the best block, and the median block) per workload; the machine
is shared, so the best block is the steadier figure.  To compare with another tree
in the same run, run it twice with ``PYTHONPATH`` pointing at the other tree's ``src`` directories
first (e.g. a ``git archive main`` export): ``PYTHONPATH=/tmp/base/services/tools/src:...``.
Exits non-zero only when set-up or a call fails.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from till_common.protocol.internal import ToolsRpcRequest

PRINCIPAL = {"user_id": 1, "store_id": 1, "role": "owner", "client_id": "bench", "token_id": "bench-tok",
             "request_id": "bench", "scopes": ["products:read", "products:write"]}
BODIES: dict[str, dict[str, Any]] = {
    "read": {"principal": PRINCIPAL, "method": "tools/call",
             "params": {"name": "get_product", "arguments": {"sku": "TS-001-M"}}},
    "write": {"principal": PRINCIPAL, "method": "tools/call",
              "params": {"name": "update_inventory", "arguments": {"sku": "TS-001-M", "adjust_by": 1}}},
}


async def seed(path: Path) -> None:
    from till_tools import bootstrap
    from till_tools.settings import ToolsSettings

    settings = ToolsSettings(internal_token="bench-" + "t" * 40, tools_database_url=f"sqlite+aiosqlite:///{path}")
    await bootstrap.migrate(settings)
    await bootstrap.seed_demo(settings)


async def run(db: Path, n: int, block: int) -> dict[str, tuple[float, float, float, float]]:
    from till_tools import rpc
    from till_tools.registry import Registry
    from till_tools.settings import ToolsSettings

    settings = ToolsSettings(internal_token="bench-" + "t" * 40, tools_database_url=f"sqlite+aiosqlite:///{db}")
    reg = Registry.build(settings)
    start = getattr(reg, "start", None)
    if start is not None:
        await start()
    reqs = {k: msgspec.convert(v, ToolsRpcRequest) for k, v in BODIES.items()}
    cpu: dict[str, list[float]] = {k: [] for k in reqs}
    wall: dict[str, list[float]] = {k: [] for k in reqs}
    try:
        for req in reqs.values():               # warm up: compile statements, fill caches
            for _ in range(200):
                res = await rpc.handle(reg, req)
                if res.error is not None or res.result is None or res.result["isError"]:
                    raise SystemExit(f"warm-up failed: {res}")
        done = dict.fromkeys(reqs, 0)
        while min(done.values()) < n:
            for name, req in reqs.items():
                gc.collect()
                c0, w0 = time.process_time(), time.perf_counter()
                for _ in range(block):
                    await asyncio.sleep(0)      # one loop turn per call, as between requests in the server
                    res = await rpc.handle(reg, req)
                    if res.error is not None or res.result is None or res.result["isError"]:
                        raise SystemExit(f"{name} failed: {res}")
                cpu[name].append((time.process_time() - c0) / block * 1e6)
                wall[name].append((time.perf_counter() - w0) / block * 1e6)
                done[name] += block
        wal = db.with_name(db.name + "-wal")
        cp = getattr(reg, "_checkpointer", None)
        if cp is not None:
            print(f"checkpoints {cp.checkpoints} failures {cp.failures} last {cp.last}")
        print(f"wal before close: {wal.stat().st_size // 1024 if wal.exists() else 0} KiB")
    finally:
        await reg.close()
    return {k: (min(cpu[k]), statistics.median(cpu[k]), min(wall[k]), statistics.median(wall[k])) for k in reqs}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--block", type=int, default=500)
    parser.add_argument("--db", type=Path, default=None, help="a seeded SQLite file to copy (default: seed one)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="till-micro-"))
    try:
        db = tmp / "tools.db"
        if args.db is not None:
            shutil.copy(args.db, db)
        else:
            asyncio.run(seed(db))
        try:
            import uvloop
            runner: Any = uvloop.run
        except ImportError:
            runner = asyncio.run
        got = runner(run(db, args.n, args.block))
        for name, (c, cm, w, wm) in got.items():
            print(f"{name:6s} cpu {c:6.1f} (median {cm:6.1f}) µs/call   wall {w:6.1f} (median {wm:6.1f}) µs/call"
                  f"   (n={args.n}, best/median block of {args.block})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
