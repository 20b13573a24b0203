"""The bench's table and bench/results/latest.json: every figure next to its same-run baseline."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.loadgen import Sample

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    section: str
    name: str
    value: float
    unit: str
    baseline: str = ""            # what the ratio divides by, measured in the same run
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


def median_ratio(samples: list[Sample], base: list[Sample]) -> float:
    """Median of per-round ratios (each round's target over the same round's baseline)."""
    return statistics.median(s.rps / b.rps for s, b in zip(samples, base, strict=True) if b.rps > 0)


def med(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


class Report:
    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.meta: dict[str, Any] = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "python": sys.version.split()[0],
            "cpus": os.cpu_count(), "machine": platform.machine(), "load_average": os.getloadavg()}

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"note: {text}", flush=True)

    @staticmethod
    def _fmt(value: float, unit: str) -> str:
        if math.isnan(value):
            return "n/a"
        if unit in ("/s", "sessions"):
            return f"{value:,.0f} {unit}"
        if unit == "KiB":
            return f"{value:,.1f} KiB"
        return f"{value:,.2f} {unit}"

    def table(self) -> str:
        head = f"{'#':<3}{'measure':<44}{'value':>16}  {'ratio':>8}  {'vs (same run)':<30}{'target':<20}{'met':<5}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            ratio = "" if r.ratio is None or math.isnan(r.ratio) else f"{r.ratio:.3f}"
            met = "" if r.met is None else ("yes" if r.met else "NO")
            lines.append(f"{r.section:<3}{r.name:<44}{self._fmt(r.value, r.unit):>16}  {ratio:>8}  "
                         f"{r.baseline:<30}{r.target:<20}{met:<5}")
            if r.note:
                lines.append(f"{'':<5}{r.note}")
        return "\n".join(lines)

    def write(self, path: Path | None = None) -> Path:
        path = path or RESULTS / "latest.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        doc = {"meta": self.meta, "rows": [asdict(r) for r in self.rows], "notes": self.notes}
        path.write_text(json.dumps(_clean(doc), indent=2, default=_jsonable, allow_nan=False) + "\n")
        return path


def _clean(value: Any) -> Any:
    """NaN/inf are not JSON: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "as_dict"):
        return _clean(value.as_dict())
    return value


def _jsonable(value: Any) -> Any:
    return str(value)
