"""The fastmcp baseline (bench/servers.py role ``fastmcp``): the same tool and data as the MCP SDK
baseline (bench/sdk_server.py) on ``fastmcp`` (PyPI, the dev group), stateless Streamable HTTP with
JSON responses.  No ``from __future__ import annotations``: fastmcp reads the tool's annotations at
registration, as the SDK does.

``get_product`` does in-process what Till's read path does across three processes: a static bearer
compare, one SELECT of a product row and one INSERT of an audit row, committed (the SDK baseline's
SQLite file schema, bench/servers.py ``prepare_sdk_db``).

``unavailable()`` says why fastmcp cannot run here (not installed, or an API it lacks), so the bench
can print the reason instead of the row.
"""

from typing import Any

import aiosqlite

from bench.sdk_server import Product, guarded, read_product


def unavailable() -> str | None:
    """None when fastmcp can serve the baseline; else the reason, in one line."""
    try:
        import fastmcp
    except ImportError as exc:
        return f"fastmcp is not installed ({exc}); `uv sync` installs it with the dev group"
    if not hasattr(fastmcp.FastMCP, "http_app"):
        return f"fastmcp {getattr(fastmcp, '__version__', '?')} has no FastMCP.http_app"
    return None


def build_fastmcp(db_path: str, token: str) -> Any:
    from fastmcp import FastMCP

    server = FastMCP(name="fastmcp-baseline")
    state: dict[str, aiosqlite.Connection] = {}

    @server.tool(description="Get one product by id.")
    async def get_product(id: int) -> Product:
        return await read_product(state["db"], id)

    return guarded(server.http_app(path="/mcp", json_response=True, stateless_http=True), db_path, token, state)
