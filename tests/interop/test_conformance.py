"""The conformance suite runner: result parsing and the baseline (no I/O), then real runs.

Against the reference server (MCP Python SDK, bearer-protected, through ``bearer_proxy``) the
scenarios that need only plain MCP pass; the others fail for want of the suite's fixture tools,
resources and prompts, each of which ``conformance.REQUIREMENTS`` names.  Against Till (a stack of its
own with the fixture pack on, ``till_conformance_server``, or TILL_INTEROP_MCP_URL) every failure must
be in conformance-baseline.json with a reason, and every entry there must still fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.interop.clients import ServerUnderTest
from tests.interop.compat_report import CompatReport
from tests.interop.conformance import (
    REQUIREMENTS,
    ScenarioResult,
    compare,
    load_baseline,
    parse_results,
    run_server_suite,
)
from tests.interop.node_env import NodeEnv

PLAIN_MCP = {"server-initialize", "ping", "tools-list", "resources-list", "prompts-list", "dns-rebinding-protection"}


def _write(out: Path, dirname: str, checks: list[dict[str, object]]) -> None:
    (out / dirname).mkdir(parents=True)
    (out / dirname / "checks.json").write_text(json.dumps(checks))


def test_results_are_parsed_per_scenario_from_checks_json(tmp_path: Path) -> None:
    _write(tmp_path, "server-ping-2026-11-23T12-09-52-476Z", [{"id": "ping", "status": "SUCCESS"}])
    _write(tmp_path, "server-tools-call-image-2026-11-23T12-09-52-600Z", [
        {"id": "incoming", "status": "INFO"},
        {"id": "tools-call-image", "status": "FAILURE", "errorMessage": "No image content found"}])
    _write(tmp_path, "server-server-sse-multiple-streams-2026-11-23T12-09-53-000Z", [
        {"id": "server-sse-multiple-streams-session", "status": "WARNING", "description": "no session"}])
    (tmp_path / "stray").mkdir()
    results = parse_results(tmp_path)
    assert set(results) == {"ping", "tools-call-image", "server-sse-multiple-streams"}
    assert results["ping"].passed
    assert not results["tools-call-image"].passed
    assert results["tools-call-image"].failures == ["tools-call-image: No image content found"]
    assert results["server-sse-multiple-streams"].passed                 # a warning is not a failure
    assert results["server-sse-multiple-streams"].warnings == ["server-sse-multiple-streams-session: no session"]


def test_baseline_separates_regressions_stale_entries_and_expected_failures() -> None:
    results = {"a": ScenarioResult("a", True), "b": ScenarioResult("b", False, ["b: broke"]),
               "c": ScenarioResult("c", False, ["c: known"])}
    verdict = compare(results, {"a": "was broken", "c": "no fixture tools"})
    assert verdict.unexpected == {"b": ["b: broke"]}
    assert verdict.stale == ["a"]
    assert verdict.expected == ["c"]
    assert not verdict.ok
    assert compare(results, {"b": "x", "c": "y"}).ok


def test_baseline_entries_need_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"server": {"tools-call-image": " "}}))
    with pytest.raises(ValueError, match="no reason"):
        load_baseline(path)


def test_checked_in_baseline_names_only_known_scenarios() -> None:
    assert set(load_baseline()) <= set(REQUIREMENTS)


@pytest.fixture(scope="module")
def node22(node_env: NodeEnv) -> NodeEnv:
    if not node_env.at_least(22):
        pytest.fail(f"node_modules should carry Node 22 (node-linux-*), found {node_env.version}")
    return node_env


async def test_reference_server_passes_the_plain_mcp_scenarios_through_the_bearer_proxy(
    node22: NodeEnv, reference_server: ServerUnderTest, tmp_path: Path,
) -> None:
    run = await run_server_suite(node22, reference_server.mcp_url, token=reference_server.token, out_dir=tmp_path)
    assert set(run.results) == set(REQUIREMENTS), run.output[-2000:]
    assert set(run.passed()) >= PLAIN_MCP, {s: run.results[s].failures for s in PLAIN_MCP}
    # every other failure is one the requirement list explains: fixture names the SDK server lacks
    for scenario in run.failed():
        assert scenario not in PLAIN_MCP
        assert run.results[scenario].failures, scenario


async def test_without_the_token_the_suite_reports_the_server_as_failing(
    node22: NodeEnv, reference_server: ServerUnderTest, tmp_path: Path,
) -> None:
    run = await run_server_suite(node22, reference_server.mcp_url, scenario="server-initialize", out_dir=tmp_path)
    assert run.failed() == ["server-initialize"]
    assert "invalid_token" in run.results["server-initialize"].failures[0]


async def test_till_conformance_matches_the_baseline(node22: NodeEnv, till_conformance_server: ServerUnderTest,
                                                     tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Through the balancer (two gateway replicas, fixture pack on) unless TILL_INTEROP_MCP_URL names
    another Till.  A server request's answer lands on either replica: routing it is part of the test."""
    till_server = till_conformance_server
    run = await run_server_suite(node22, till_server.mcp_url, token=till_server.token, out_dir=tmp_path)
    assert set(run.results) == set(REQUIREMENTS), run.output[-2000:]     # every scenario ran
    assert set(run.passed()) >= PLAIN_MCP | {"logging-set-level"}, {s: run.results[s].failures for s in PLAIN_MCP}
    baseline = load_baseline()
    report: CompatReport = request.config.pluginmanager.get_plugin("till-compat-report")
    report.conformance["till"] = {
        s: (r.passed, baseline.get(s) or "; ".join(r.failures)[:300]) for s, r in run.results.items()}
    verdict = compare(run.results, baseline)
    assert not verdict.unexpected, "failures not in conformance-baseline.json: " + json.dumps(verdict.unexpected)
    assert not verdict.stale, f"baseline entries that now pass (remove them): {verdict.stale}"
