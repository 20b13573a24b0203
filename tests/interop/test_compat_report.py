"""The compatibility report plugin: outcomes of tagged tests become one markdown table per server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop import compat_report
from tests.interop.compat_report import CompatReport, Outcome, render


def _report(cell: str, server: str, outcome: str, when: str = "call", longrepr: object = None,
            note: str = "") -> pytest.TestReport:
    props: list[tuple[str, object]] = [("compat_server", server), ("compat_cell", cell)]
    if note:
        props.append(("compat_note", note))
    return pytest.TestReport(nodeid=f"t.py::test[{cell}]", location=("t.py", 1, "test"), keywords={},
                             outcome=outcome, longrepr=longrepr, when=when, user_properties=props)  # type: ignore[arg-type]


def test_outcomes_are_written_per_server_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    targets = {"till": tmp_path / "docs" / "compatibility.md", "reference": tmp_path / "var" / "ref.md"}
    monkeypatch.setattr(compat_report, "TARGETS", targets)
    plugin = CompatReport()
    plugin.pytest_runtest_logreport(_report("ts_sdk-http-token-latest", "till", "passed", note="negotiated 2025-11-25"))
    plugin.pytest_runtest_logreport(_report("ts_sdk-sse-token-latest", "till", "skipped",
                                            longrepr=("t.py", 3, "Skipped: no SSE | here")))
    plugin.pytest_runtest_logreport(_report("mcp_remote-http-oauth-2025-06-18", "till", "failed",
                                            longrepr="E   AssertionError: ok=False error=401\nmore"))
    plugin.pytest_runtest_logreport(_report("python_sdk-http-token-legacy", "reference", "passed", when="setup"))
    plugin.pytest_runtest_logreport(_report("python_sdk-http-token-legacy", "reference", "passed"))

    monkeypatch.delenv("TILL_COMPAT_REPORT", raising=False)
    plugin.pytest_sessionfinish(None)  # type: ignore[arg-type]
    assert not targets["till"].exists()

    monkeypatch.setenv("TILL_COMPAT_REPORT", "1")
    plugin.pytest_sessionfinish(None)  # type: ignore[arg-type]
    till = targets["till"].read_text()
    assert "1 passed, 1 failed, 1 skipped" in till
    assert "| Streamable HTTP | token | latest | pass | negotiated 2025-11-25 |" in till
    assert "| legacy SSE | token | latest | skip | no SSE \\| here |" in till
    assert "| oauth | 2025-06-18 | **FAIL** | AssertionError: ok=False error=401 |" in till
    assert "do not edit by hand" in till
    assert "| MCP Python SDK (`mcp`) | Streamable HTTP | token | legacy | pass |" in targets["reference"].read_text()


def test_rows_follow_the_matrix_order_whatever_the_run_order() -> None:
    text = render("reference", {"inspector_cli-http-token-latest": Outcome("pass", ""),
                                "python_sdk-http-token-legacy": Outcome("pass", "")})
    assert text.index("MCP Python SDK") < text.index("MCP Inspector CLI")


def test_the_report_names_the_server_under_test_when_known() -> None:
    text = render("till", {"python_sdk-http-token-legacy": Outcome("pass", "")}, "nginx over two replicas.")
    assert "Server under test: nginx over two replicas." in text
    assert "Server under test" not in render("till", {"python_sdk-http-token-legacy": Outcome("pass", "")})


def test_the_conformance_run_is_summarised_with_each_failure_reason() -> None:
    text = render("till", {"python_sdk-http-token-legacy": Outcome("pass", "")}, "",
                  {"ping": (True, ""), "tools-list": (True, ""), "tools-call-image": (False, "no fixture | tool")})
    assert "2 of 3 scenarios pass" in text
    assert "Passing: `ping`, `tools-list`." in text
    assert "| `tools-call-image` | no fixture \\| tool |" in text
