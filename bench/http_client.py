"""Which internal HTTP client forwards faster: one shared aiohttp.ClientSession or httpx.AsyncClient?

Three processes on 127.0.0.1, each a separate OS process started here:

* upstream:  litestar + msgspec under uvicorn (uvloop, httptools, 1 worker, no access log), ``POST /echo``
  returns the JSON body it received.
* forwarder: litestar under uvicorn with ``POST /fwd/aiohttp`` (one shared ``aiohttp.ClientSession``,
  ``TCPConnector(limit=100)``) and ``POST /fwd/httpx`` (one shared ``httpx.AsyncClient``,
  ``max_connections=100``), both created in the app lifespan, both adding ``Authorization`` and
  ``X-Request-Id`` and returning the upstream JSON.
* load generator: bench.loadgen (``wrk`` with a lua script for the POST body, installed with
  ``apt-get install -y wrk`` when missing, or an aiohttp client on uvloop in its own process).

The loadgen's ceiling is measured against upstream ``/echo`` first (with its CPU use, to show it is not
the bottleneck), then ``direct /echo``, ``/fwd/aiohttp`` and ``/fwd/httpx`` run interleaved for N rounds;
the table gives medians and ratios against the direct baseline of the same round, because the machine
(2 cores) is noisy.

    uv run python -m bench.http_client [--rounds 3] [--duration 10] [--connections 32] [--loadgen auto]

Listening sockets are bound to port 0 here and handed to the servers as inherited fds, so no port is
assumed free. Every process started is ended by its PID before exit. Exits 0 whatever the numbers are;
non-zero only when the set-up itself fails (a server does not start, a forward returns a wrong body).
"""

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.loadgen import LoadGen, Sample, Target
from bench.servers import build_echo, serve

HOST = "127.0.0.1"
AUTH_HEADER = "Bearer bench-internal-credential"

# About 300 bytes of JSON shaped like a JSON-RPC tools/call response.
PAYLOAD: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 4711,
    "result": {
        "content": [
            {
                "type": "text",
                "text": "Order 18342 shipped: 3 items, carrier DHL, tracking JJD000390007736584921, eta 2 days.",
            }
        ],
        "structuredContent": {"order_id": 18342, "status": "shipped", "items": 3, "eta_days": 2},
        "isError": False,
    },
}
BODY = json.dumps(PAYLOAD, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------- servers


def build_forwarder(upstream_url: str) -> Any:
    import aiohttp
    import httpx
    from litestar import Litestar, Request, Response, post

    echo_url = f"{upstream_url}/echo"

    @contextlib.asynccontextmanager
    async def clients(app: Litestar) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=60)
        aio = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10))
        hx = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=60),
            timeout=httpx.Timeout(10.0),
        )
        app.state.aio = aio
        app.state.hx = hx
        try:
            yield
        finally:
            await aio.close()
            await hx.aclose()

    def headers() -> dict[str, str]:
        return {
            "Authorization": AUTH_HEADER,
            "X-Request-Id": uuid.uuid4().hex,
            "Content-Type": "application/json",
        }

    @post("/fwd/aiohttp", status_code=200)
    async def fwd_aiohttp(request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await request.body()
        session: aiohttp.ClientSession = request.app.state.aio
        async with session.post(echo_url, data=body, headers=headers()) as resp:
            content = await resp.read()
            status = resp.status
        return Response(content, status_code=200 if status == 200 else 502, media_type="application/json")

    @post("/fwd/httpx", status_code=200)
    async def fwd_httpx(request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await request.body()
        client: httpx.AsyncClient = request.app.state.hx
        resp = await client.post(echo_url, content=body, headers=headers())
        status = resp.status_code
        return Response(resp.content, status_code=200 if status == 200 else 502, media_type="application/json")

    return Litestar(
        route_handlers=[fwd_aiohttp, fwd_httpx],
        lifespan=[clients],
        debug=False,
        openapi_config=None,
        logging_config=None,
    )


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.procs: list[subprocess.Popen[bytes]] = []
        self.tmp = tempfile.TemporaryDirectory(prefix="till-bench-")
        self.servers: dict[str, int] = {}  # name -> pid
        self.gen = LoadGen(Path(self.tmp.name), args.connections, args.loadgen)

    # -- processes
    def start_server(self, name: str, *extra: str) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, 0))
        sock.listen(2048)
        port = sock.getsockname()[1]
        fd = sock.fileno()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.http_client", "--role", name, "--fd", str(fd), *extra],
            pass_fds=[fd],
        )
        sock.close()
        self.procs.append(proc)
        self.servers[name] = proc.pid
        return f"http://{HOST}:{port}"

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.procs.clear()
        self.tmp.cleanup()

    def check(self, url: str) -> None:
        """Wait until `url` answers; insist that it echoes the body unchanged."""
        parts = urllib.parse.urlsplit(url)
        host, port, path = parts.hostname or HOST, parts.port or 80, parts.path
        deadline = time.monotonic() + 30
        last: Exception | None = None
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise SystemExit(f"server pid {proc.pid} exited with {proc.returncode} during start-up")
            conn = http.client.HTTPConnection(host, port, timeout=10)
            try:
                conn.request("POST", path, body=BODY, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                got = resp.read()
                if resp.status == 200 and json.loads(got) == PAYLOAD:
                    return
                raise SystemExit(f"{url}: status {resp.status}, body {got[:200]!r}")
            except (OSError, http.client.HTTPException) as exc:
                last = exc
                time.sleep(0.2)
            finally:
                conn.close()
        raise SystemExit(f"{url} did not answer within 30 s: {last!r}")

    # -- load
    def load(self, url: str, duration: float) -> Sample:
        try:
            return self.gen.run(Target(url, url, BODY, {"Content-Type": "application/json"}), duration, self.servers)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None

    # -- the run
    def run(self) -> None:
        a = self.args
        upstream = self.start_server("upstream")
        forwarder = self.start_server("forwarder", "--upstream", upstream)
        targets = {
            "direct /echo": f"{upstream}/echo",
            "/fwd/aiohttp": f"{forwarder}/fwd/aiohttp",
            "/fwd/httpx": f"{forwarder}/fwd/httpx",
        }
        for url in targets.values():
            self.check(url)
        gen = self.gen.description
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, loadgen: {gen}")
        print(f"{a.rounds} rounds x {a.duration:g} s per target, interleaved; medians reported\n")

        ceiling = self.load(targets["direct /echo"], a.ceiling)
        print(
            f"loadgen ceiling check vs upstream /echo ({a.ceiling:g} s): {ceiling.rps:,.0f} rps, "
            f"loadgen {ceiling.loadgen_cpu:.2f} cores, upstream {ceiling.server_cpu['upstream']:.2f} cores"
        )
        for name, url in targets.items():
            if name != "direct /echo":
                self.load(url, a.warmup)  # warm connection pools
        samples: dict[str, list[Sample]] = {name: [] for name in targets}
        order = list(targets)
        for rnd in range(a.rounds):
            rot = order[rnd % len(order) :] + order[: rnd % len(order)]
            for name in rot:
                s = self.load(targets[name], a.duration)
                samples[name].append(s)
                print(
                    f"  round {rnd + 1} {name:<13} {s.rps:>8,.0f} rps  p50 {s.p50_ms:6.2f} ms  "
                    f"p99 {s.p99_ms:6.2f} ms  err {s.errors}  cpu loadgen {s.loadgen_cpu:.2f} "
                    f"up {s.server_cpu['upstream']:.2f} fwd {s.server_cpu['forwarder']:.2f}",
                    flush=True,
                )
        self.report(samples, ceiling)

    def report(self, samples: dict[str, list[Sample]], ceiling: Sample) -> None:
        base = samples["direct /echo"]
        med = statistics.median
        print(
            f"\n{'target':<14}{'rps':>9}{'p50 ms':>9}{'p99 ms':>9}{'vs base':>9}{'errors':>8}"
            f"{'cpu lg':>8}{'cpu up':>8}{'cpu fwd':>9}"
        )
        for name, ss in samples.items():
            ratio = med(s.rps / b.rps for s, b in zip(ss, base, strict=True))
            print(
                f"{name:<14}{med(s.rps for s in ss):>9,.0f}{med(s.p50_ms for s in ss):>9.2f}"
                f"{med(s.p99_ms for s in ss):>9.2f}{ratio:>9.3f}{sum(s.errors for s in ss):>8}"
                f"{med(s.loadgen_cpu for s in ss):>8.2f}{med(s.server_cpu['upstream'] for s in ss):>8.2f}"
                f"{med(s.server_cpu['forwarder'] for s in ss):>9.2f}"
            )
        aio, hx = samples["/fwd/aiohttp"], samples["/fwd/httpx"]
        head = med(x.rps / y.rps for x, y in zip(aio, hx, strict=True))
        per_round = ", ".join(f"{x.rps / y.rps:.2f}" for x, y in zip(aio, hx, strict=True))
        winner = "aiohttp" if head >= 1 else "httpx"
        factor = head if head >= 1 else 1 / head
        print(f"\naiohttp/httpx rps ratio per round: {per_round}; median {head:.3f}")
        print(f"winner: {winner}, {factor:.2f}x the other's throughput (median of paired rounds)")
        # On 2 cores the loadgen is out of the way only if upstream saturates a core while it uses little.
        if ceiling.loadgen_cpu > 0.4 or ceiling.server_cpu["upstream"] < 0.8:
            print(
                f"caveat: loadgen used {ceiling.loadgen_cpu:.2f} cores against upstream's "
                f"{ceiling.server_cpu['upstream']:.2f} in the ceiling check: the baseline is loadgen-bound, "
                "so ratios vs baseline are understated gaps; the aiohttp/httpx ratio still holds"
            )
        print(
            "caveat: 2 cores shared by loadgen, forwarder and upstream: absolute numbers are machine-bound; "
            "compare the ratios"
        )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--role", choices=["bench", "upstream", "forwarder"], default="bench")
    p.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    p.add_argument("--upstream", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per target per round")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per forward route")
    p.add_argument("--ceiling", type=float, default=5.0, help="seconds of the loadgen ceiling check")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    args = p.parse_args()

    if args.role == "upstream":
        serve(build_echo(), args.fd)
        return 0
    if args.role == "forwarder":
        serve(build_forwarder(args.upstream), args.fd)
        return 0

    bench = Bench(args)
    # SIGTERM to the harness still ends the servers it started.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        bench.run()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        bench.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
