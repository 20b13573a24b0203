"""py-spy under the section 1 load: flamegraphs of the gateway and tools, and their top frames.

``py-spy record --gil`` (Python frames only, ``--native`` off; only the thread holding the GIL,
because uvloop's epoll wait and idle pool threads otherwise pass for busy frames) samples each
process while wrk drives
``tools/call`` with a JWT: one run writes the SVG flamegraphs, a second the raw collapsed stacks
from which the top frames (self and inclusive share of samples) are computed and printed.
Files: bench/results/profile-<process>.svg and profile.txt (gitignored).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.loadgen import LoadGen, Target
from bench.report import Report

PROCESSES = ("gateway", "tools")


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def _record(gen: LoadGen, target: Target, pids: dict[str, int], fmt: str, out: dict[str, Path],
            seconds: float, watch: dict[str, int]) -> None:
    spy = py_spy()
    assert spy is not None
    procs = [subprocess.Popen([spy, "record", "--pid", str(pids[name]), "--duration", f"{seconds + 1:g}",
                               "--rate", "250", "--gil", "--format", fmt, "-o", str(out[name])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for name in out]
    time.sleep(0.5)
    gen.run(target, seconds, watch)
    for p in procs:
        try:
            _, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            continue
        if p.returncode != 0:
            print(f"py-spy failed: {err.decode(errors='replace')[-300:]}", file=sys.stderr)


def top_frames(raw: Path, n: int = 15) -> tuple[int, list[tuple[str, float]], list[tuple[str, float]]]:
    """(samples, top self frames, top inclusive frames) of py-spy's collapsed-stack output."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    pct = 100.0 / max(1, total)
    return (total, [(f, c * pct) for f, c in own.most_common(n)],
            [(f, c * pct) for f, c in incl.most_common(n + 10)])


def run(gen: LoadGen, target: Target, watch: dict[str, int], report: Report, results: Path,
        seconds: float = 4.0) -> None:
    if py_spy() is None:
        report.note("py-spy not installed: no profile (uv sync installs it with the dev group)")
        return
    pids = {name: watch[name] for name in PROCESSES}
    print(f"profile: py-spy on {', '.join(PROCESSES)} under '{target.name}' load, 2 x {seconds:g} s", flush=True)
    svgs = {name: results / f"profile-{name}.svg" for name in PROCESSES}
    raws = {name: results / f"profile-{name}.txt" for name in PROCESSES}
    _record(gen, target, pids, "flamegraph", svgs, seconds, watch)
    _record(gen, target, pids, "raw", raws, seconds, watch)
    lines: list[str] = []
    summary: dict[str, object] = {}
    for name in PROCESSES:
        if not raws[name].exists():
            continue
        total, own, incl = top_frames(raws[name])
        lines.append(f"== {name}: {total} samples; top self")
        lines += [f"  {p:5.1f}%  {f}" for f, p in own]
        lines.append(f"== {name}: top inclusive")
        lines += [f"  {p:5.1f}%  {f}" for f, p in incl]
        summary[name] = {"samples": total, "self": own[:10], "inclusive": incl[:15], "svg": str(svgs[name])}
    text = "\n".join(lines)
    (results / "profile.txt").write_text(text + "\n")
    print(text, flush=True)
    report.meta["profile"] = summary
