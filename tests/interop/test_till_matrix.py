"""The client matrix against Till's running stack, when TILL_INTEROP_MCP_URL points at its gateway.

    TILL_INTEROP_MCP_URL=http://127.0.0.1:8000/mcp TILL_INTEROP_TOKEN=till_pat_... \\
    TILL_INTEROP_EMAIL=owner@demo.store TILL_INTEROP_PASSWORD=$TILL_DEMO_PASSWORD \\
    TILL_COMPAT_REPORT=1 uv run pytest tests/interop/test_till_matrix.py

writes docs/compatibility.md.  Without TILL_INTEROP_MCP_URL every cell is skipped with that reason.
The same cells pass against the reference server (test_reference_matrix.py), so a failure here
is Till's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.clients import Cell, ServerUnderTest, matrix, run_cell, why_not
from tests.interop.compat_report import CellRecorder
from tests.interop.node_env import NodeEnv

CELLS = matrix()


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
async def test_client_completes_the_session_against_till(
    cell: Cell, till_server: ServerUnderTest, record_cell: CellRecorder, request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    record_cell(till_server, cell)
    reason = why_not(cell, till_server)
    if reason:
        pytest.skip(reason)
    node: NodeEnv | None = None if cell.client == "python_sdk" else request.getfixturevalue("node_env")
    result = await run_cell(cell, till_server, node, tmp_path)
    record_cell(till_server, cell, result.note())
    assert result.ok, result.summary()
    if cell.auth == "oauth":
        assert any(s["name"] == "oauth" and s["ok"] for s in result.steps), result.summary()
