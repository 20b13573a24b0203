"""Sections 2 and 3: legacy-SSE sessions held by a replica, and round trips across two replicas.

The client side is raw asyncio protocols on uvloop (no HTTP library): a held stream costs a
socket and a small buffer, and a POST is a prebuilt byte string, so one Python process can hold
10,000 streams and drive thousands of round trips per second while using little CPU (its cores
are reported next to each figure).

* Section 2 opens N streams on replica A (each waits for its ``endpoint`` event) and reports the
  gateway's RSS delta per session.  Baseline, same run: the RSS per idle TCP connection that has
  sent half a request line (the floor uvicorn pays for any open connection).
* Section 3 holds streams on replica A and, per stream, POSTs ``ping`` to replica B; a round trip
  ends when both the 202 and the event on A's stream are in.  Two loads: closed loop over K
  sessions (the maximum rate; its latency is K / rate by Little's law, so it says nothing about
  latency at a given rate), and open loop at a fixed offered rate over more sessions, latency
  measured from each request's scheduled send time (see :func:`_drive`).  Baseline, same run, same
  client, same pacing: ``ping`` over Streamable HTTP on replica B (no relay).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import resource
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final, cast

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


#: An open-loop send is counted late when it leaves more than this after its scheduled time.
LATE_SLACK: Final = 0.001
#: Seconds an open loop may run past its duration to catch up with its schedule.
GRACE: Final = 1.0

Op = Callable[[int], Awaitable[bool]]


async def _drive(ops: list[Op], seconds: float, rate: float | None) -> dict[str, Any]:
    """Run one op per session, each with at most one request outstanding.

    ``rate`` None: closed loop (each session sends again as soon as its previous round trip ends;
    the figure is the maximum rate K sessions reach).  Otherwise open loop: request i is scheduled
    at ``start + i / rate`` and handed round robin to the sessions, and its latency is measured from
    that scheduled time, not from when it left: a session still busy with its previous round trip
    sends late and the wait is counted in the latency (no coordinated omission).  Late sends are
    counted as well, and an open loop that falls more than ``GRACE`` behind stops sending (the
    requests it never sent are counted as dropped), so an overloaded run stays bounded."""
    # The load generator is not what is measured: a collection here would be charged to every round
    # trip in flight (this process holds the whole bench, ~70 ms per full collection), so none runs;
    # collected and frozen before the schedule starts (the collection itself takes that long).
    gc.collect()
    gc.freeze()
    gc.disable()
    lat: list[float] = []
    errors = late = dropped = 0
    counter = iter(range(1, 10**9))
    k = len(ops)
    start = time.perf_counter() + 0.005
    deadline = start + seconds

    async def worker(j: int, op: Op) -> None:
        nonlocal errors, late, dropped
        i = j
        while True:
            now = time.perf_counter()
            if rate is None:
                sched = now
                if now >= deadline:
                    return
            else:
                sched = start + i / rate
                i += k
                if sched >= deadline:
                    return
                if now > deadline + GRACE:
                    dropped += 1 + int((deadline - sched) * rate / k)
                    return
                if sched > now:
                    await asyncio.sleep(sched - now)
                elif now - sched > LATE_SLACK:
                    late += 1
            try:
                ok = await op(next(counter))
            except (TimeoutError, ConnectionError):
                errors += 1
                return
            lat.append(time.perf_counter() - sched)
            if not ok:
                errors += 1

    c0 = _cpu_self()
    try:
        await asyncio.gather(*(worker(j, op) for j, op in enumerate(ops)))
    finally:
        gc.enable()
        gc.unfreeze()
    wall = time.perf_counter() - start
    c1 = _cpu_self()
    lat.sort()
    n = len(lat)

    def pct(p: float) -> float:
        return lat[min(n - 1, int(p / 100 * n))] * 1e3 if n else float("nan")

    return {"rate": n / wall, "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": pct(100), "count": n,
            "errors": errors, "late": late, "dropped": dropped, "offered": rate, "loadgen_cpu": (c1 - c0) / wall}


def _sse_ops(b_url: str, token: str, streams: list[Stream], posters: list[Poster]) -> list[Op]:
    def op_for(stream: Stream, poster: Poster) -> Op:
        path = f"/mcp/sse/message?sessionId={stream.endpoint.result()}"

        async def op(n: int) -> bool:
            req = post_request(b_url, path, token, ping(n))
            stream.waiter = asyncio.get_running_loop().create_future()
            status, _ = await asyncio.wait_for(poster.send(req), 10)
            msg = await asyncio.wait_for(stream.waiter, 10)
            return status == 202 and has_id(msg, n)

        return op

    return [op_for(s, p) for s, p in zip(streams, posters, strict=True)]


def _streamable_ops(b_url: str, token: str, posters: list[Poster]) -> list[Op]:
    extra = "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\n"

    def op_for(poster: Poster) -> Op:
        async def op(n: int) -> bool:
            status, body = await asyncio.wait_for(poster.send(post_request(b_url, "/mcp", token, ping(n), extra)), 10)
            return status == 200 and has_id(body, n)

        return op

    return [op_for(p) for p in posters]


@dataclasses.dataclass
class Mode:
    """One way of loading section 3: closed loop over ``sessions`` or open loop at ``rate``."""

    name: str
    sessions: int
    rate: float | None


def round_trips(a_url: str, b_url: str, token: str, k: int, rounds: int, seconds: float,
                pids: dict[str, int], report: Report, *, open_sessions: int = 64,
                open_rate: float = 2000.0, profile_dir: Path | None = None) -> None:
    from bench.loadgen import cpu_seconds

    modes = [Mode("closed", k, None)] + ([Mode("open", open_sessions, open_rate)] if open_rate > 0 else [])
    n_max = max(m.sessions for m in modes)

    machine: dict[str, Any] = {}

    async def main() -> dict[str, dict[str, list[dict[str, Any]]]]:
        streams = await open_streams(a_url, token, n_max)
        if len(streams) < n_max:
            raise RuntimeError(f"only {len(streams)} of {n_max} streams opened on {a_url}")
        posters = await _posters(b_url, n_max)
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for mode in modes:
            ops = {"sse": _sse_ops(b_url, token, streams[:mode.sessions], posters[:mode.sessions]),
                   "streamable": _streamable_ops(b_url, token, posters[:mode.sessions])}
            for name in ops:                                                     # warm-up
                await _drive(ops[name], 0.5, mode.rate)
            runs: dict[str, list[dict[str, Any]]] = {"sse": [], "streamable": []}
            probe = None
            if mode.rate is not None:       # the machine's own stalls while the open loop runs
                probe = subprocess.Popen([sys.executable, "-m", "bench.stall_probe", "--seconds",
                                          f"{rounds * 2 * (seconds + 0.2):g}"], stdout=subprocess.PIPE, text=True)
            for rnd in range(rounds):
                order = ["sse", "streamable"] if rnd % 2 == 0 else ["streamable", "sse"]
                for name in order:
                    cpu0 = {n: cpu_seconds(p) for n, p in pids.items()}
                    t0 = time.perf_counter()
                    res = await _drive(ops[name], seconds, mode.rate)
                    wall = time.perf_counter() - t0
                    res["server_cpu"] = {n: (cpu_seconds(p) - cpu0[n]) / wall for n, p in pids.items()}
                    # CPU per round trip: what the load costs each process, whatever else the machine runs
                    res["cpu_ms_per_call"] = {n: c * 1e3 / res["rate"] if res["rate"] else float("nan")
                                              for n, c in res["server_cpu"].items()}
                    runs[name].append(res)
                    offered = (f" (offered {mode.rate:,.0f}/s, late {res['late']}, dropped {res['dropped']})"
                               if mode.rate else "")
                    print(f"  {mode.name} round {rnd + 1} {name:<11} {res['rate']:>7,.0f}/s{offered}  "
                          f"p50 {res['p50_ms']:.2f} ms  p99 {res['p99_ms']:.2f} ms  err {res['errors']}  "
                          f"cpu: loadgen {res['loadgen_cpu']:.2f} "
                          + " ".join(f"{n} {c:.2f} ({res['cpu_ms_per_call'][n]:.3f} ms/call)"
                                     for n, c in res["server_cpu"].items()), flush=True)
            out[mode.name] = runs
            if probe is not None:
                stdout, _ = await asyncio.to_thread(probe.communicate, timeout=60)
                machine.update(json.loads(stdout))
            if profile_dir is not None and mode is modes[-1]:
                await _profile(ops["sse"], seconds, mode.rate, pids, profile_dir, report)
        for s in streams:
            s.close()
        for p in posters:
            p.close()
        return out

    print(f"section 3: stream on replica A, POSTs to replica B; closed loop over {k} sessions"
          + (f", open loop at {open_rate:,.0f}/s over {open_sessions} sessions" if open_rate > 0 else "")
          + f"; {rounds} rounds x {seconds:g} s", flush=True)
    out = uvloop.run(main())
    _report_closed(out["closed"], k, pids, report)
    if "open" in out:
        _report_open(out["open"], open_sessions, open_rate, pids, report)
    if machine:
        gap = machine["median_gap_s"]
        report.add(Row("3", "machine: an idle process's 1 ms sleep, p99 overshoot", machine["p99_ms"], "ms",
                       note=(f"during the open loop; {machine['stalls']} pauses over {machine['stall_ms']:g} ms "
                             f"(median {machine['median_stall_ms']:.1f} ms, max {machine['max_ms']:.1f} ms"
                             + (f", one every {gap:.3f} s" if gap else "") + "): every request in flight "
                             "during one waits it out, whatever serves it (bench/stall_probe.py)"),
                       detail=machine))


async def _profile(ops: list[Op], seconds: float, rate: float | None, pids: dict[str, int], results: Path,
                   report: Report) -> None:
    """py-spy --gil (collapsed stacks) on each gateway while the SSE round trips run; top frames printed."""
    from bench.profile import py_spy, top_frames

    spy = py_spy()
    if spy is None:
        report.note("py-spy not installed: no section 3 profile")
        return
    raws = {name: results / f"profile-sse-{name}.txt" for name in pids}
    procs = [subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", f"{seconds + 1:g}", "--rate", "250",
                               "--gil", "--format", "raw", "-o", str(raws[name])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for name, pid in pids.items()]
    await asyncio.sleep(0.5)
    await _drive(ops, seconds, rate)
    for proc in procs:
        try:
            await asyncio.to_thread(proc.communicate, timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    summary: dict[str, object] = {}
    for name, raw in raws.items():
        if not raw.exists():
            continue
        total, own, incl = top_frames(raw)
        print(f"== section 3 profile, {name}: {total} samples; top self", flush=True)
        print("\n".join(f"  {p:5.1f}%  {f}" for f, p in own))
        print(f"== {name}: top inclusive")
        print("\n".join(f"  {p:5.1f}%  {f}" for f, p in incl), flush=True)
        summary[name] = {"samples": total, "self": own[:10], "inclusive": incl[:15], "raw": str(raw)}
    report.meta["profile_section3"] = summary


def _cores(runs: list[dict[str, Any]], pids: dict[str, int]) -> str:
    med = statistics.median
    return (f"cores: loadgen {med(r['loadgen_cpu'] for r in runs):.2f}, "
            + ", ".join(f"{n} {med(r['server_cpu'][n] for r in runs):.2f} "
                        f"({med(r['cpu_ms_per_call'][n] for r in runs):.3f} ms CPU/call)" for n in pids))


def _report_closed(out: dict[str, list[dict[str, Any]]], k: int, pids: dict[str, int], report: Report) -> None:
    sse_runs, base_runs = out["sse"], out["streamable"]
    med = statistics.median
    rate = med(r["rate"] for r in sse_runs)
    p50, p99 = med(r["p50_ms"] for r in sse_runs), med(r["p99_ms"] for r in sse_runs)
    ratio = med(a["rate"] / b["rate"] for a, b in zip(sse_runs, base_runs, strict=True))
    base_rate = med(r["rate"] for r in base_runs)
    note = (f"closed loop, max rate; p50 {p50:.2f} ms, p99 {p99:.2f} ms (mean latency = {k} / rate by "
            f"Little's law); errors {sum(r['errors'] for r in sse_runs)}; " + _cores(sse_runs, pids)
            + "; baseline " + _cores(base_runs, pids))
    report.add(Row("3", f"SSE round trip A⇄Redis⇄B, max rate ({k} sessions)", rate, "/s",
                   baseline=f"streamable ping on B ({base_rate:,.0f}/s)", ratio=ratio, target="≥ 2,000/s",
                   met=rate >= 2000, note=note, detail={"sse": sse_runs, "streamable": base_runs}))


def _report_open(out: dict[str, list[dict[str, Any]]], sessions: int, offered: float, pids: dict[str, int],
                 report: Report) -> None:
    sse_runs, base_runs = out["sse"], out["streamable"]
    med = statistics.median
    rate = med(r["rate"] for r in sse_runs)
    p50, p99 = med(r["p50_ms"] for r in sse_runs), med(r["p99_ms"] for r in sse_runs)
    b50, b99 = med(r["p50_ms"] for r in base_runs), med(r["p99_ms"] for r in base_runs)
    late = sum(r["late"] for r in sse_runs)
    sent = sum(r["count"] for r in sse_runs)
    dropped = sum(r["dropped"] for r in sse_runs)
    keeps_up = rate >= 0.98 * offered
    note = (f"open loop over {sessions} sessions, latency from the scheduled send time; {late:,} of "
            f"{sent:,} sends late (session still busy), {dropped:,} never sent (over {GRACE:g} s behind); "
            f"errors {sum(r['errors'] for r in sse_runs)}; "
            + _cores(sse_runs, pids) + "; baseline " + _cores(base_runs, pids))
    report.add(Row("3", f"SSE round trip, offered {offered:,.0f}/s: achieved", rate, "/s",
                   baseline=f"streamable ping, same pacing ({med(r['rate'] for r in base_runs):,.0f}/s)",
                   ratio=med(a["rate"] / b["rate"] for a, b in zip(sse_runs, base_runs, strict=True)),
                   target=f"≥ {offered:,.0f}/s", met=keeps_up, note=note,
                   detail={"sse": sse_runs, "streamable": base_runs}))
    report.add(Row("3", "SSE round trip p99 (open loop)", p99, "ms", baseline=f"streamable ping p99 ({b99:.2f} ms)",
                   ratio=p99 / b99 if b99 else None, target="< 5 ms", met=p99 < 5 and keeps_up,
                   note=f"at {rate:,.0f}/s achieved of {offered:,.0f}/s offered"))
    report.add(Row("3", "SSE round trip p50 (open loop)", p50, "ms", baseline=f"streamable ping p50 ({b50:.2f} ms)",
                   ratio=p50 / b50 if b50 else None))


__all__ = ["Poster", "Stream", "idle_sessions", "round_trips"]
