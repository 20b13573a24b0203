"""Sections 2 and 3: legacy-SSE sessions held by a replica, and round trips across two replicas.

The client side is raw asyncio protocols on uvloop (no HTTP library): a held stream costs a
socket and a small buffer, and a POST is a prebuilt byte string, so one Python process can hold
10,000 streams and drive thousands of round trips per second while using little CPU (its cores
are reported next to each figure).

* Section 2 opens N streams on replica A (each waits for its ``endpoint`` event) and reports the
  gateway's RSS delta per session.  Baseline, same run: the RSS per idle TCP connection that has
  sent half a request line (the floor uvicorn pays for any open connection).
* Section 3 holds K streams on replica A and, per stream, POSTs ``ping`` to replica B in a closed
  loop; a round trip ends when both the 202 and the event on A's stream are in.  Baseline, same
  run, same client: ``ping`` over Streamable HTTP on replica B (no relay).
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
import urllib.parse
from collections import Counter
from typing import Any, cast

import uvloop

from bench.report import Report, Row

ENDPOINT = b"event: endpoint\ndata: "
MESSAGE = b"event: message\ndata: "


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _split(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


class Stream(asyncio.Protocol):
    """One ``GET /mcp/sse``: resolves ``endpoint`` with the session id, then hands each message
    event's data to the current ``waiter``."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.buf = bytearray()
        loop = asyncio.get_running_loop()
        self.endpoint: asyncio.Future[str] = loop.create_future()
        self.waiter: asyncio.Future[bytes] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)       # uvloop's is not a subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.endpoint.done():
            i = buf.find(ENDPOINT)
            j = buf.find(b"\n\n", i) if i >= 0 else -1
            if j < 0:
                if b"HTTP/1.1 " in buf[:9] and not buf.startswith(b"HTTP/1.1 200"):
                    self.endpoint.set_exception(RuntimeError(bytes(buf[:200]).decode(errors="replace")))
                return
            path = bytes(buf[i + len(ENDPOINT):j]).decode()
            self.endpoint.set_result(urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)["sessionId"][0])
            del buf[:j + 2]
        while True:
            i = buf.find(MESSAGE)
            j = buf.find(b"\n\n", i) if i >= 0 else -1
            if j < 0:
                if i < 0 and len(buf) > 4096:
                    del buf[:-64]          # heartbeats only
                return
            msg = bytes(buf[i + len(MESSAGE):j])
            del buf[:j + 2]
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.endpoint.done():
            self.endpoint.set_exception(ConnectionError("stream closed before the endpoint event"))
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("stream closed"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Poster(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection sending prebuilt requests, one at a time."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        k = head.find(b"content-length:")
        length = int(head[k + 15:head.find(b"\r\n", k) if head.find(b"\r\n", k) > 0 else None]) if k >= 0 else 0
        if len(buf) < end + 4 + length:
            return
        status = int(buf[9:12])
        body = bytes(buf[end + 4:end + 4 + length])
        del buf[:end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def stream_request(url: str, token: str) -> bytes:
    host, port = _split(url)
    return (f"GET /mcp/sse HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {token}\r\n\r\n").encode()


def post_request(url: str, path: str, token: str, body: bytes, extra: str = "") -> bytes:
    host, port = _split(url)
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\n{extra}Content-Length: {len(body)}\r\n\r\n").encode() + body


ID_BASE = 1_000_000_000     # ids of one width, so each prebuilt request keeps its Content-Length


def ping(n: int) -> bytes:
    return b'{"jsonrpc":"2.0","id":%d,"method":"ping"}' % (ID_BASE + n)


def has_id(body: bytes, n: int) -> bool:
    return b'"id":%d' % (ID_BASE + n) in body


async def open_streams(url: str, token: str, n: int, concurrency: int = 200,
                       timeout: float = 30, failures: Counter[str] | None = None) -> list[Stream]:
    loop = asyncio.get_running_loop()
    host, port = _split(url)
    request = stream_request(url, token)
    gate = asyncio.Semaphore(concurrency)
    opened: list[Stream] = []

    async def one() -> None:
        async with gate:
            try:
                _, proto = await asyncio.wait_for(loop.create_connection(lambda: Stream(request), host, port), timeout)
                await asyncio.wait_for(proto.endpoint, timeout)
                opened.append(proto)
            except (OSError, TimeoutError, RuntimeError, ConnectionError) as exc:
                if failures is not None:
                    failures[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1

    await asyncio.gather(*(one() for _ in range(n)))
    return opened


async def _half_open(url: str, n: int) -> list[asyncio.Transport]:
    """Connections that sent half a request line: uvicorn holds them, no task runs for them."""
    loop = asyncio.get_running_loop()
    host, port = _split(url)
    out: list[asyncio.Transport] = []
    for _ in range(n):
        try:
            tr, _ = await loop.create_connection(asyncio.Protocol, host, port)
        except OSError:
            break
        tr.write(b"GET /heal")
        out.append(tr)
    return out


async def _settle(pid: int, seconds: float = 1.5) -> int:
    await asyncio.sleep(seconds)
    return rss_kib(pid)


def idle_sessions(url: str, token: str, n: int, pid: int, report: Report) -> None:
    async def main() -> dict[str, Any]:
        warm = await open_streams(url, token, 200)       # imports, allocator arenas, caches
        for s in warm:
            s.close()
        floor_n = min(n, 3000)
        r0 = await _settle(pid)
        half = await _half_open(url, floor_n)
        r1 = await _settle(pid)
        for tr in half:
            tr.close()
        await asyncio.sleep(1.0)
        r2 = await _settle(pid)
        t0 = time.perf_counter()
        failures: Counter[str] = Counter()
        streams = await open_streams(url, token, n, failures=failures)
        if len(streams) < n:     # a refused open (503 + Retry-After) is retried once, as a client would
            streams += await open_streams(url, token, n - len(streams), failures=failures)
        opened_s = time.perf_counter() - t0
        r3 = await _settle(pid, 2.0)
        alive = sum(1 for s in streams if s.transport is not None and not s.transport.is_closing())
        for s in streams:
            s.close()
        await asyncio.sleep(0.5)
        return {"floor_n": len(half), "floor_kib": (r1 - r0) / max(1, len(half)), "opened": len(streams),
                "alive": alive, "open_seconds": opened_s, "rss_before_kib": r2, "rss_after_kib": r3,
                "per_session_kib": (r3 - r2) / max(1, len(streams)), "failures": dict(failures)}

    print(f"section 2: opening {n:,} legacy-SSE sessions on one replica (200 opens in flight)", flush=True)
    res = uvloop.run(main())
    per, floor = res["per_session_kib"], res["floor_kib"]
    report.add(Row("2", f"idle SSE sessions held by one replica (asked {n:,})", res["alive"], "sessions",
                   note=f"opened in {res['open_seconds']:.1f} s ({res['opened'] / res['open_seconds']:,.0f}/s); "
                        f"gateway RSS {res['rss_before_kib'] / 1024:.0f} → {res['rss_after_kib'] / 1024:.0f} MiB"
                        + (f"; refused, retried once: {_short(res['failures'])}" if res["failures"] else ""),
                   target=f"{n:,}", met=res["alive"] >= n, detail=res))
    report.add(Row("2", "RSS per idle SSE session", per, "KiB",
                   baseline=f"idle TCP conn ({floor:.1f} KiB, n={res['floor_n']:,})",
                   ratio=per / floor if floor > 0 else None, target="≤ 32 KiB", met=per <= 32))


def _short(failures: dict[str, int]) -> str:
    return ", ".join(f"{n} x {reason.splitlines()[0][:60]}" for reason, n in failures.items())


async def _posters(url: str, k: int) -> list[Poster]:
    loop = asyncio.get_running_loop()
    host, port = _split(url)
    out = []
    for _ in range(k):
        _, p = await loop.create_connection(Poster, host, port)
        out.append(p)
    return out


def _cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _sse_round_trips(a_url: str, b_url: str, token: str, streams: list[Stream], posters: list[Poster],
                           seconds: float) -> dict[str, Any]:
    lat: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    counter = iter(range(1, 10**9))

    async def worker(stream: Stream, poster: Poster, sid: str) -> None:
        nonlocal errors
        path = f"/mcp/sse/message?sessionId={sid}"
        while time.perf_counter() < deadline:
            n = next(counter)
            req = post_request(b_url, path, token, ping(n))
            stream.waiter = asyncio.get_running_loop().create_future()
            t0 = time.perf_counter()
            try:
                status, _ = await asyncio.wait_for(poster.send(req), 10)
                msg = await asyncio.wait_for(stream.waiter, 10)
            except (TimeoutError, ConnectionError):
                errors += 1
                return
            lat.append(time.perf_counter() - t0)
            if status != 202 or not has_id(msg, n):
                errors += 1

    sids = [s.endpoint.result() for s in streams]
    return await _timed(lambda: asyncio.gather(*(worker(s, p, sid) for s, p, sid in zip(streams, posters, sids,
                                                                                          strict=True))), lat,
                        lambda: errors)


async def _streamable_pings(b_url: str, token: str, posters: list[Poster], seconds: float) -> dict[str, Any]:
    lat: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    counter = iter(range(1, 10**9))
    extra = "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\n"

    async def worker(poster: Poster) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            n = next(counter)
            req = post_request(b_url, "/mcp", token, ping(n), extra)
            t0 = time.perf_counter()
            try:
                status, body = await asyncio.wait_for(poster.send(req), 10)
            except (TimeoutError, ConnectionError):
                errors += 1
                return
            lat.append(time.perf_counter() - t0)
            if status != 200 or not has_id(body, n):
                errors += 1

    return await _timed(lambda: asyncio.gather(*(worker(p) for p in posters)), lat, lambda: errors)


async def _timed(run: Any, lat: list[float], errors: Any) -> dict[str, Any]:
    c0, t0 = _cpu_self(), time.perf_counter()
    await run()
    wall = time.perf_counter() - t0
    c1 = _cpu_self()
    lat.sort()
    n = len(lat)

    def pct(p: float) -> float:
        return lat[min(n - 1, int(p / 100 * n))] * 1e3 if n else float("nan")

    return {"rate": n / wall, "p50_ms": pct(50), "p99_ms": pct(99), "count": n, "errors": errors(),
            "loadgen_cpu": (c1 - c0) / wall}


def round_trips(a_url: str, b_url: str, token: str, k: int, rounds: int, seconds: float,
                pids: dict[str, int], report: Report) -> None:
    from bench.loadgen import cpu_seconds

    async def main() -> dict[str, list[dict[str, Any]]]:
        streams = await open_streams(a_url, token, k)
        if len(streams) < k:
            raise RuntimeError(f"only {len(streams)} of {k} streams opened on {a_url}")
        posters = await _posters(b_url, k)
        await _sse_round_trips(a_url, b_url, token, streams, posters, 0.5)       # warm-up
        await _streamable_pings(b_url, token, posters, 0.5)
        out: dict[str, list[dict[str, Any]]] = {"sse": [], "streamable": []}
        for rnd in range(rounds):
            order = ["sse", "streamable"] if rnd % 2 == 0 else ["streamable", "sse"]
            for name in order:
                cpu0 = {n: cpu_seconds(p) for n, p in pids.items()}
                t0 = time.perf_counter()
                if name == "sse":
                    res = await _sse_round_trips(a_url, b_url, token, streams, posters, seconds)
                else:
                    res = await _streamable_pings(b_url, token, posters, seconds)
                wall = time.perf_counter() - t0
                res["server_cpu"] = {n: (cpu_seconds(p) - cpu0[n]) / wall for n, p in pids.items()}
                out[name].append(res)
                print(f"  round {rnd + 1} {name:<11} {res['rate']:>7,.0f}/s  p50 {res['p50_ms']:.2f} ms  "
                      f"p99 {res['p99_ms']:.2f} ms  err {res['errors']}  cpu: loadgen {res['loadgen_cpu']:.2f} "
                      + " ".join(f"{n} {c:.2f}" for n, c in res["server_cpu"].items()), flush=True)
        for s in streams:
            s.close()
        for p in posters:
            p.close()
        return out

    print(f"section 3: {k} sessions, stream on replica A, POSTs to replica B; {rounds} rounds x {seconds:g} s",
          flush=True)
    out = uvloop.run(main())
    sse_runs, base_runs = out["sse"], out["streamable"]
    med = statistics.median
    rate = med(r["rate"] for r in sse_runs)
    p50, p99 = med(r["p50_ms"] for r in sse_runs), med(r["p99_ms"] for r in sse_runs)
    ratio = med(a["rate"] / b["rate"] for a, b in zip(sse_runs, base_runs, strict=True))
    base_rate = med(r["rate"] for r in base_runs)
    base_p99 = med(r["p99_ms"] for r in base_runs)
    cores = {n: med(r["server_cpu"][n] for r in sse_runs) for n in pids}
    note = (f"p50 {p50:.2f} ms; errors {sum(r['errors'] for r in sse_runs)}; cores: loadgen "
            f"{med(r['loadgen_cpu'] for r in sse_runs):.2f}, " + ", ".join(f"{n} {c:.2f}" for n, c in cores.items()))
    report.add(Row("3", f"SSE round trip A⇄Redis⇄B, rate ({k} sessions)", rate, "/s",
                   baseline=f"streamable ping on B ({base_rate:,.0f}/s)", ratio=ratio, target="≥ 2,000/s",
                   met=rate >= 2000, note=note, detail={"sse": sse_runs, "streamable": base_runs}))
    report.add(Row("3", "SSE round trip p99", p99, "ms", baseline=f"streamable ping p99 ({base_p99:.2f} ms)",
                   ratio=p99 / base_p99 if base_p99 else None, target="< 5 ms", met=p99 < 5,
                   note=f"at {rate:,.0f}/s with {k} concurrent sessions"))
    report.add(Row("3", "SSE round trip p50", p50, "ms",
                   baseline=f"streamable ping p50 ({med(r['p50_ms'] for r in base_runs):.2f} ms)",
                   ratio=p50 / med(r["p50_ms"] for r in base_runs)))


__all__ = ["Poster", "Stream", "idle_sessions", "round_trips"]
