"""Tools service internal API: read and write ``tools/call`` rates against a bare litestar+msgspec echo.

Three OS processes on 127.0.0.1, started here and ended by PID:

* ``till-tools`` on a freshly migrated and seeded SQLite store (the demo data), one uvicorn worker;
* an echo app (litestar + msgspec, the same uvicorn flags) whose ``POST /internal/v1/rpc`` decodes
  the same request body and returns a fixed result of similar size;
* ``wrk`` (one thread, N connections) posting a ToolsRpcRequest with a lua script.

Workloads, interleaved per round: ``echo`` (the ceiling), ``read`` (``get_product`` by SKU: a product,
its variants and categories, plus the audit row written in the same transaction) and ``write``
(``update_inventory`` +1 on one variant: the row update and its audit row in one transaction).
Every call of the tools service leaves one hash-chained audit row, reads included (SPEC §6).

    uv run python bench/tools_rpc.py [--rounds 2] [--duration 8] [--connections 16]

Prints requests/s per workload (median of rounds) and the ratio to the echo of the same round.
Exits 0 whatever the numbers; non-zero only when the set-up fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, post

from till_common.protocol.internal import ToolsRpcRequest, ToolsRpcResponse

HOST = "127.0.0.1"
TOKEN = "bench-internal-" + "t" * 32
PRINCIPAL = {"user_id": 1, "store_id": 1, "role": "owner", "client_id": "bench", "token_id": "bench-tok",
             "request_id": "bench", "scopes": ["products:read", "products:write"]}
BODIES = {
    "read": {"principal": PRINCIPAL, "method": "tools/call",
             "params": {"name": "get_product", "arguments": {"sku": "TS-001-M"}}},
    "write": {"principal": PRINCIPAL, "method": "tools/call",
              "params": {"name": "update_inventory", "arguments": {"sku": "TS-001-M", "adjust_by": 1}}},
}
BODIES["echo"] = BODIES["read"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def serve_echo(port: int) -> None:
    import uvicorn

    decoder = msgspec.json.Decoder(ToolsRpcRequest)
    encoder = msgspec.json.Encoder()
    text = json.dumps({"id": 1, "title": "Classic T-Shirt", "variants": [{"sku": "TS-001-M"}] * 4})
    result = {"content": [{"type": "text", "text": text}], "structuredContent": json.loads(text), "isError": False}

    @post("/internal/v1/rpc", status_code=200)
    async def rpc(request: Request[Any, Any, Any]) -> Response[bytes]:
        decoder.decode(await request.body())
        return Response(encoder.encode(ToolsRpcResponse(result=result)), media_type="application/json")

    uvicorn.run(Litestar([rpc], openapi_config=None, logging_config=None), host=HOST, port=port, loop="uvloop",
                http="httptools", access_log=False, log_config=None, lifespan="on")


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server for {url} exited with {proc.returncode}")
        try:
            req = urllib.request.Request(url, data=json.dumps(BODIES["read"]).encode(), method="POST",  # noqa: S310
                                         headers={"Authorization": f"Bearer {TOKEN}",
                                                  "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=2) as r:  # noqa: S310 - loopback
                body = json.loads(r.read())
                if "result" not in body or body["result"].get("isError"):
                    raise SystemExit(f"unexpected answer from {url}: {body}")
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} not ready after {timeout}s")


def wrk(url: str, body: dict[str, Any], duration: float, connections: int, tmp: str) -> tuple[float, int]:
    lua = os.path.join(tmp, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.headers["Authorization"] = "Bearer {TOKEN}"\nwrk.body = [[{json.dumps(body)}]]\n')
    exe = shutil.which("wrk")
    assert exe is not None
    out = subprocess.run([exe, "-t1", f"-c{connections}", f"-d{duration:g}s", "--timeout", "5s", "-s", lua, url],
                         capture_output=True, text=True, timeout=duration + 30, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, int(bad.group(1)) if bad else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--serve-echo", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_echo is not None:
        serve_echo(args.serve_echo)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found (apt-get install -y wrk)")
    from till_tools import bootstrap
    from till_tools.settings import ToolsSettings

    tmp = tempfile.mkdtemp(prefix="till-bench-")
    url = f"sqlite+aiosqlite:///{tmp}/tools.db"
    settings = ToolsSettings(internal_token=TOKEN, tools_database_url=url)
    asyncio.run(bootstrap.migrate(settings))
    asyncio.run(bootstrap.seed_demo(settings))

    env = {k: v for k, v in os.environ.items() if not k.startswith("TILL_")}
    env.update(TILL_INTERNAL_TOKEN=TOKEN, TILL_TOOLS_DATABASE_URL=url, TILL_LOG_LEVEL="warning")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        tools_port, echo_port = free_port(), free_port()
        procs.append(subprocess.Popen([sys.executable, "-m", "till_tools", "--port", str(tools_port)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp))
        procs.append(subprocess.Popen([sys.executable, __file__, "--serve-echo", str(echo_port)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        urls = {"echo": f"http://{HOST}:{echo_port}/internal/v1/rpc",
                "read": f"http://{HOST}:{tools_port}/internal/v1/rpc",
                "write": f"http://{HOST}:{tools_port}/internal/v1/rpc"}
        wait_ready(urls["echo"], procs[1])
        wait_ready(urls["read"], procs[0])
        for name in ("read", "write"):      # warm up
            wrk(urls[name], BODIES[name], 2, args.connections, tmp)
        rates: dict[str, list[float]] = {k: [] for k in urls}
        ratios: dict[str, list[float]] = {"read": [], "write": []}
        for _ in range(args.rounds):
            got = {}
            for name in ("echo", "read", "write"):
                rate, bad = wrk(urls[name], BODIES[name], args.duration, args.connections, tmp)
                if bad:
                    raise SystemExit(f"{name}: {bad} non-2xx responses")
                got[name] = rate
                rates[name].append(rate)
            for name in ("read", "write"):
                ratios[name].append(got[name] / got["echo"])
        print(f"tools internal API, SQLite, wrk -t1 -c{args.connections}, {args.rounds} x {args.duration:g}s "
              "(median of rounds)")
        print(f"{'workload':<8} {'req/s':>9} {'vs echo':>8}")
        for name in ("echo", "read", "write"):
            ratio = "1.00" if name == "echo" else f"{statistics.median(ratios[name]):.2f}"
            print(f"{name:<8} {statistics.median(rates[name]):>9.0f} {ratio:>8}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
