"""Pytest plugin: the security-case status table of docs/security.md, written by the test run.

Tests are named after the rows of ../shared/security-cases.md: ``test_tk08_…`` covers TK-08,
``test_az05_az06_…`` covers both.
With TILL_SECURITY_REPORT=1 (``make test`` sets it) the table between the markers in
docs/security.md is rewritten from this run's outcomes: a row passes when all its tests passed.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT.parent / "shared" / "security-cases.md"
DOC = ROOT / "docs" / "security.md"
BEGIN, END = "<!-- status:begin -->", "<!-- status:end -->"
_ROW = re.compile(r"^\| ([A-Z]{2}-\d{2}) \| (.+?) \| (.+?) \|", re.M)
_TEST = re.compile(r"(?:^test_|_)(az|tk|rg|jw|gw|ss|tl|wp|sc|ds|ft)(\d{2})(?=_|$|\[)")


def rows() -> list[tuple[str, str]]:
    if not CASES.exists():
        return []
    return [(m.group(1), m.group(2)) for m in _ROW.finditer(CASES.read_text())]


class SecurityReport:
    def __init__(self) -> None:
        self.outcomes: dict[str, list[tuple[str, str]]] = defaultdict(list)

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = report.nodeid.rsplit("::", 1)[-1]
        if not (report.when == "call" or (report.when == "setup" and report.outcome != "passed")):
            return
        # one test may cover several rows: test_az05_az06_…, test_seed_endpoint_table_and_gw08
        for m in _TEST.finditer(name.split("[")[0]):
            self.outcomes[f"{m.group(1).upper()}-{m.group(2)}"].append((report.nodeid, report.outcome))

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if os.environ.get("TILL_SECURITY_REPORT") != "1" or not DOC.exists():
            return
        lines = ["| row | case | status | tests |", "|---|---|---|---|"]
        for row, case in rows():
            results = self.outcomes.get(row, [])
            if not results:
                status = "not yet tested"
            elif all(o == "passed" for _, o in results):
                status = "pass"
            elif any(o == "failed" for _, o in results):
                status = "FAIL"
            else:
                status = "skipped"
            tests = "<br>".join(sorted({f"`{n.split('::')[-1].split('[')[0]}`" for n, _ in results}))
            case = case.replace("|", "\\|")
            lines.append(f"| {row} | {case[:90]}{'…' if len(case) > 90 else ''} | {status} | {tests} |")
        text = DOC.read_text()
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        DOC.write_text(text[:start] + "\n" + "\n".join(lines) + "\n" + text[end:])


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SecurityReport(), "till-security-report")
