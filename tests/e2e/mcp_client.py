"""The official MCP Python SDK client against Till, over either transport, plus small result helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import asyncpg

TRANSPORTS = ("http", "sse")
SESSION_TIMEOUT = 60.0


@asynccontextmanager
async def mcp_client(url: str, token: str, transport: str) -> AsyncIterator[Any]:
    """An initialized ``mcp.client.Client`` (initialize handshake) on ``url`` (…/mcp or …/mcp/sse)."""
    import httpx2
    from mcp.client import Client
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"}
    with anyio.fail_after(SESSION_TIMEOUT):
        if transport == "sse":
            async with Client(sse_client(url, headers=headers, timeout=15, sse_read_timeout=60),
                              mode="legacy", read_timeout_seconds=30) as client:
                yield client
        else:
            async with (httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(15, read=60)) as http,
                        Client(streamable_http_client(url, http_client=http), mode="legacy",
                               read_timeout_seconds=30) as client):
                yield client


def text_of(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def call(client: Any, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """``tools/call`` that must succeed; returns its structuredContent."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool} returned isError: {text_of(result)[:500]}"
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


@asynccontextmanager
async def database(dsn: str) -> AsyncIterator[Any]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        yield conn
    finally:
        await conn.close()
