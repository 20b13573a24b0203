"""Client CPU per internal call: ``till_common.http.InternalClient`` against the aiohttp session it
replaced (docs/decisions.md D800).

One echo server (bench.servers role ``echo``: litestar + msgspec under uvicorn, its own process)
answers ``POST /echo``; this process, on uvloop like the services, posts a ~300-byte body shaped
like a tools/call result, ``--calls`` times per round, once one at a time and once
``--concurrency`` at a time, and measures its own CPU time (``time.process_time``) per call.  The
two clients alternate within each round, so a loaded machine slows both alike; the table gives
medians over ``--rounds`` and the ratio new/old of the same round.

    uv run --no-sync python -m bench.internal_client [--rounds 5] [--calls 2000] [--concurrency 16]

Every answer is checked against the body sent.  Exits non-zero only when the set-up fails.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import statistics
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import uvloop

from bench.http_client import BODY
from bench.servers import Servers
from till_common.http import InternalClient
from till_common.logging import REQUEST_ID_HEADER, request_id_var

INTERNAL_BEARER = "bench-internal-credential-xxxxxxxx"
Post = Callable[[str, bytes], Awaitable[tuple[int, bytes]]]


class AiohttpClient:
    """The former ``InternalClient.post``: one pooled aiohttp session, the same headers."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=30, connect=5), skip_auto_headers=("User-Agent",))

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        h = {"Authorization": f"Bearer {INTERNAL_BEARER}", "Content-Type": "application/json"}
        rid = request_id_var.get()
        if rid:
            h[REQUEST_ID_HEADER] = rid
        async with self.session.post(self.base_url + path, data=body, headers=h, allow_redirects=False) as resp:
            return resp.status, await resp.read()


async def run_calls(post: Post, calls: int, concurrency: int) -> float:
    """CPU seconds per call of ``calls`` posts, ``concurrency`` in flight."""
    per_worker = calls // concurrency

    async def worker() -> None:
        request_id_var.set("bench-req-0001")
        for _ in range(per_worker):
            status, body = await post("/echo", BODY)
            if status != 200 or body != BODY:
                raise SystemExit(f"wrong answer: {status} {body[:100]!r}")

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) / (per_worker * concurrency)


async def measure(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    new = InternalClient(url, INTERNAL_BEARER)
    old = AiohttpClient(url)
    clients: dict[str, Post] = {"aiohttp": old.post, "till": new.post}
    results: dict[str, list[float]] = {f"{name} c={c}": [] for name in clients for c in (1, args.concurrency)}
    try:
        for post in clients.values():               # warm-up: connections, imports, caches
            await run_calls(post, args.concurrency * 20, args.concurrency)
        for r in range(args.rounds):
            order = list(clients.items()) if r % 2 == 0 else list(reversed(clients.items()))
            for c in (1, args.concurrency):
                for name, post in order:
                    results[f"{name} c={c}"].append(await run_calls(post, args.calls, c))
    finally:
        await new.close()
        await old.session.close()
    return results


def wait_ready(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=2)
        try:
            conn.request("POST", "/echo", body=BODY, headers={"Content-Type": "application/json"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
        finally:
            conn.close()
    raise SystemExit(f"{url} did not start")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.internal_client", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args(argv)
    servers = Servers()
    try:
        url = servers.start("echo", "echo")
        wait_ready(url)
        results: dict[str, Any] = uvloop.run(measure(url, args))
    finally:
        servers.stop()
    print(f"client CPU per call, median of {args.rounds} rounds x {args.calls} calls (alternated):")
    for c in (1, args.concurrency):
        old, new = results[f"aiohttp c={c}"], results[f"till c={c}"]
        ratios = [n / o for n, o in zip(new, old, strict=True)]
        print(f"  concurrency {c:>3}: aiohttp {statistics.median(old) * 1e6:7.1f} us  "
              f"till {statistics.median(new) * 1e6:7.1f} us  till/aiohttp {statistics.median(ratios):.3f} "
              f"(per round: {', '.join(f'{x:.2f}' for x in ratios)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
