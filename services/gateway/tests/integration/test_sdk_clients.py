"""The official MCP Python SDK against a real gateway process, on both transports (seeds 001, 003)."""

from __future__ import annotations

import warnings

import httpx2
import pytest
from gw_upstream import Gateways
from mcp.client.client import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPDeprecationWarning
from tests.support import Service


async def exercise(client: Client, *, legacy: bool) -> None:
    tools = await client.list_tools()
    assert {t.name for t in tools.tools} >= {"get_product", "create_product"}
    result = await client.call_tool("get_product", {"id": 7})
    assert result.is_error is False
    assert result.structured_content == {"id": 7, "name": "Classic T-Shirt"}
    assert [r.uri for r in (await client.list_resources()).resources] == ["store://settings"]
    assert (await client.list_resource_templates()).resource_templates[0].uri_template == "store://products/{id}"
    contents = (await client.read_resource("store://settings")).contents
    assert '"store_id": 1' in contents[0].text  # type: ignore[union-attr]
    assert (await client.list_prompts()).prompts[0].name == "weekly_report"
    assert (await client.get_prompt("weekly_report")).messages[0].role == "user"
    if legacy:
        with warnings.catch_warnings():      # the SDK flags ping as removed in 2026-07-28, even in legacy mode
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await client.send_ping()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize("kind", ["jwt", "pat"])
async def test_sdk_streamable_http_client_works_with_jwt_and_pat(gateway: Service, gateways: Gateways,
                                                                 mode: str, kind: str) -> None:
    token = gateways.token() if kind == "jwt" else gateways.upstream.pat()[0]
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http, Client(streamable_http_client(gateway.url + "/mcp", http_client=http), mode=mode) as client:
        expected = "2025-11-25" if mode == "legacy" else "2026-07-28"
        assert client.session.protocol_version == expected
        await exercise(client, legacy=mode == "legacy")


@pytest.mark.parametrize("kind", ["jwt", "pat"])
async def test_sdk_sse_client_works_with_jwt_and_pat(gateway: Service, gateways: Gateways, kind: str) -> None:
    token = gateways.token() if kind == "jwt" else gateways.upstream.pat()[0]
    transport = sse_client(gateway.url + "/mcp/sse", headers={"Authorization": f"Bearer {token}"})
    async with Client(transport, mode="legacy") as client:
        await exercise(client, legacy=True)


async def test_sdk_client_without_token_gets_the_oauth_challenge(gateway: Service) -> None:
    async with httpx2.AsyncClient() as http:
        resp = await http.post(gateway.url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert resp.status_code == 401
    assert 'resource_metadata="' + gateway.url + '/.well-known/oauth-protected-resource/mcp"' in \
        resp.headers["www-authenticate"]
