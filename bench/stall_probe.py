"""How still the machine holds: an otherwise idle process sleeps 1 ms at a time and records by how much
each sleep overshoots.  On a quiet machine the overshoot stays well under a millisecond; a pause of
the whole VM (hypervisor, kernel reclaim) shows up here as it does in every latency the bench takes.

    python -m bench.stall_probe --seconds 10     # prints one JSON line
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from typing import Any

STALL_MS = 3.0


def probe(seconds: float) -> dict[str, Any]:
    over: list[float] = []
    stalls: list[tuple[float, float]] = []
    end = time.perf_counter() + seconds
    prev = time.perf_counter()
    while prev < end:
        time.sleep(0.001)
        now = time.perf_counter()
        extra = (now - prev - 0.001) * 1e3
        over.append(extra)
        if extra > STALL_MS:
            stalls.append((now, extra))
        prev = now
    over.sort()
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(stalls)]
    return {"seconds": seconds, "sleeps": len(over), "p99_ms": over[int(0.99 * (len(over) - 1))],
            "max_ms": over[-1], "stalls": len(stalls), "stall_ms": STALL_MS,
            "median_stall_ms": statistics.median(s for _, s in stalls) if stalls else 0.0,
            "median_gap_s": statistics.median(gaps) if gaps else None}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=10.0)
    print(json.dumps(probe(p.parse_args().seconds)), flush=True)


if __name__ == "__main__":
    main()
