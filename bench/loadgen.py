"""The HTTP load generator of every bench: wrk with a lua script, or an aiohttp/uvloop fallback.

One closed-loop run against one :class:`Target` gives a :class:`Sample`: requests per second,
p50/p99, errors (non-2xx/3xx, socket errors, timeouts) and the CPU each watched process and the
load generator itself used during the run (cores, from /proc and RUSAGE_CHILDREN), so a table
can show when the load generator rather than the server was the bottleneck.

``python -m bench.loadgen --url U --duration S --connections C [--body-file F] [--header K:V]``
is the fallback generator (one JSON line on stdout), used when wrk is missing and cannot be
installed with apt-get.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WRK_LUA = """
wrk.method = "%(method)s"
%(headers)s
wrk.body = [==[%(body)s]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "\\nBENCHJSON {\\"requests\\":%%d,\\"seconds\\":%%f,\\"p50_ms\\":%%f,\\"p99_ms\\":%%f,\\"errors\\":%%d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


@dataclass(frozen=True)
class Target:
    """One HTTP request, repeated: what a bench row loads."""

    name: str
    url: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    loadgen_cpu: float  # cores used by the load generator
    server_cpu: dict[str, float] = field(default_factory=dict)  # cores used by each watched process

    def as_dict(self) -> dict[str, Any]:
        return {"rps": self.rps, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "errors": self.errors,
                "requests": self.requests, "loadgen_cpu": self.loadgen_cpu, "server_cpu": self.server_cpu}


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc (Linux); NaN elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def ensure_wrk(install: bool = True) -> str | None:
    """wrk's path; installs Debian's package when missing and allowed (root + apt-get), else None."""
    found = shutil.which("wrk") or ("/usr/bin/wrk" if os.access("/usr/bin/wrk", os.X_OK) else None)
    if found or not install:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: apt-get install -y wrk", flush=True)
        try:
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, timeout=180,
                           capture_output=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        except (OSError, subprocess.TimeoutExpired):
            return None
    return shutil.which("wrk")


class LoadGen:
    """Runs a Target for a while with wrk (``-t1``) or the Python fallback; both closed-loop."""

    def __init__(self, workdir: Path, connections: int = 32, kind: str = "auto") -> None:
        self.workdir = workdir
        self.connections = connections
        self.wrk = ensure_wrk() if kind in ("auto", "wrk") else None
        if kind == "wrk" and self.wrk is None:
            raise SystemExit("wrk not found and could not be installed (apt-get install -y wrk)")
        self.caveat = "" if self.wrk else (
            "load generator: Python aiohttp/uvloop fallback (wrk unavailable); it needs more CPU per request "
            "than wrk, so every server row is understated and the ceiling row shows by how much")

    @property
    def description(self) -> str:
        return f"wrk -t1 -c{self.connections}" if self.wrk else f"python aiohttp/uvloop, {self.connections} conns"

    def _lua(self, target: Target) -> Path:
        path = self.workdir / f"wrk-{abs(hash((target.name, target.url, target.body))):x}.lua"
        if not path.exists():
            headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in target.headers.items())
            path.write_text(WRK_LUA % {"method": target.method, "headers": headers, "body": target.body.decode()})
        return path

    def command(self, target: Target, duration: float, connections: int | None = None) -> list[str]:
        conns = connections or self.connections
        if self.wrk:
            # wrk takes whole seconds only
            return [self.wrk, "-t1", f"-c{conns}", f"-d{max(1, round(duration))}s", "--timeout", "5s",
                    "-s", str(self._lua(target)), target.url]
        body = self.workdir / f"body-{abs(hash(target.body)):x}"
        body.write_bytes(target.body)
        return [sys.executable, "-m", "bench.loadgen", "--url", target.url, "--duration", str(duration),
                "--connections", str(conns), "--method", target.method, "--body-file", str(body),
                *[a for k, v in target.headers.items() for a in ("--header", f"{k}:{v}")]]

    def run(self, target: Target, duration: float, watch: dict[str, int] | None = None,
            connections: int | None = None) -> Sample:
        watch = watch or {}
        cmd = self.command(target, duration, connections)
        cpu0 = {name: cpu_seconds(pid) for name, pid in watch.items()}
        ru0 = children_cpu()
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
        wall = time.perf_counter() - t0
        ru1 = children_cpu()
        cpu1 = {name: cpu_seconds(pid) for name, pid in watch.items()}
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith(("BENCHJSON ", "{"))), None)
        if out.returncode != 0 or line is None:
            raise RuntimeError(f"load generator failed ({out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}")
        res = json.loads(line.removeprefix("BENCHJSON "))
        return Sample(rps=res["requests"] / res["seconds"], p50_ms=res["p50_ms"], p99_ms=res["p99_ms"],
                      errors=res["errors"], requests=res["requests"], loadgen_cpu=(ru1 - ru0) / wall,
                      server_cpu={name: (cpu1[name] - cpu0[name]) / wall for name in watch})


def interleave(gen: LoadGen, targets: list[Target], rounds: int, duration: float, watch: dict[str, int],
               warmup: float = 1.0, log: Any = print) -> dict[str, list[Sample]]:
    """``rounds`` rounds over every target, the order rotated each round (2 noisy cores: a slow
    second must not always hit the same target); ratios are then taken per round."""
    for t in targets:
        gen.run(t, warmup, watch)       # connection pools, caches, JIT-less warm paths
    samples: dict[str, list[Sample]] = {t.name: [] for t in targets}
    for rnd in range(rounds):
        k = rnd % len(targets)
        for t in targets[k:] + targets[:k]:
            s = gen.run(t, duration, watch)
            samples[t.name].append(s)
            cpu = " ".join(f"{n} {c:.2f}" for n, c in s.server_cpu.items() if c >= 0.05)
            log(f"  round {rnd + 1} {t.name:<22} {s.rps:>8,.0f}/s  p50 {s.p50_ms:6.2f} ms  p99 {s.p99_ms:7.2f} ms"
                f"  err {s.errors}  cpu: loadgen {s.loadgen_cpu:.2f} {cpu}")
    return samples


def python_loadgen(url: str, duration: float, connections: int, method: str, body: bytes,
                   headers: dict[str, str]) -> dict[str, Any]:
    """Fallback: closed loop, ``connections`` workers, one aiohttp session, on uvloop."""
    import asyncio

    import aiohttp
    import uvloop

    async def main() -> dict[str, Any]:
        latencies: list[float] = []
        errors = 0
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",)) as session:
            start = time.perf_counter()
            deadline = start + duration

            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < deadline:
                    t0 = time.perf_counter()
                    try:
                        async with session.request(method, url, data=body or None, headers=headers) as resp:
                            await resp.read()
                            ok = resp.status < 400
                    except (aiohttp.ClientError, TimeoutError):
                        ok = False
                    latencies.append(time.perf_counter() - t0)
                    if not ok:
                        errors += 1

            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = time.perf_counter() - start
        latencies.sort()
        n = len(latencies)

        def pct(p: float) -> float:
            return latencies[min(n - 1, int(p / 100 * n))] * 1e3 if n else float("nan")

        return {"requests": n, "seconds": elapsed, "p50_ms": pct(50), "p99_ms": pct(99), "errors": errors}

    result: dict[str, Any] = uvloop.run(main())
    return result


def main() -> int:
    p = argparse.ArgumentParser(description="fallback HTTP load generator (one JSON line)")
    p.add_argument("--url", required=True)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--method", default="POST")
    p.add_argument("--body-file", type=Path)
    p.add_argument("--header", action="append", default=[])
    a = p.parse_args()
    headers = dict(h.split(":", 1) for h in a.header)
    body = a.body_file.read_bytes() if a.body_file else b""
    print(json.dumps(python_loadgen(a.url, a.duration, a.connections, a.method, body, headers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
