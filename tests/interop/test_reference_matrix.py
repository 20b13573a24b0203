"""The client matrix against the reference server (official MCP Python SDK, real process).

This proves the harness: every cell must pass here before its outcome against Till means
anything.  Token cells run against the SDK server behind a static bearer check; OAuth cells
against the SDK server with its own authorization server (reference_oauth's login and consent
pages, filled in by oauth_forms.ScriptedBrowser).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.clients import Cell, ServerUnderTest, matrix, run_cell, why_not
from tests.interop.compat_report import CellRecorder
from tests.interop.node_env import NodeEnv

CELLS = matrix()


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
async def test_client_completes_the_session_against_the_reference_server(
    cell: Cell, record_cell: CellRecorder, request: pytest.FixtureRequest, tmp_path: Path,
) -> None:
    server: ServerUnderTest = request.getfixturevalue(
        "reference_oauth_server" if cell.auth == "oauth" and cell.client != "inspector_cli" else "reference_server")
    record_cell(server, cell)
    reason = why_not(cell, server)
    if reason:
        pytest.skip(reason)
    node: NodeEnv | None = None if cell.client == "python_sdk" else request.getfixturevalue("node_env")
    result = await run_cell(cell, server, node, tmp_path)
    record_cell(server, cell, result.note())
    assert result.ok, result.summary()
    if cell.auth == "oauth":
        assert any(s["name"] == "oauth" and s["ok"] for s in result.steps), result.summary()
    called = next(s for s in result.steps if s["name"] == "tools/call")
    assert called["detail"]["text"] == "hello from the matrix"
    listed = next(s for s in result.steps if s["name"] == "tools/list")
    assert listed["detail"]["names"] == ["echo"]


@pytest.mark.parametrize("client", ["python_sdk", "ts_sdk", "mcp_remote", "inspector_cli"])
async def test_wrong_token_is_reported_as_a_failed_cell(
    client: str, reference_server: ServerUnderTest, request: pytest.FixtureRequest, tmp_path: Path,
) -> None:
    """A harness that cannot fail proves nothing: a refused token must come back as ok=False."""
    wrong = ServerUnderTest(name="reference", mcp_url=reference_server.mcp_url, sse_url=reference_server.sse_url,
                            token="not-the-token")
    node: NodeEnv | None = None if client == "python_sdk" else request.getfixturevalue("node_env")
    revision = "legacy" if client == "python_sdk" else "2025-06-18" if client == "mcp_remote" else "latest"
    result = await run_cell(Cell(client, "http", "token", revision), wrong, node, tmp_path)
    assert not result.ok
    assert result.error
    assert not any(s["ok"] for s in result.steps), result.summary()     # refused at the first request
