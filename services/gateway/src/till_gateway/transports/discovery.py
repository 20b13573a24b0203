"""Public discovery: ``/mcp/info`` (seed 001's shape), the catalogue, and RFC 9728 metadata."""

from __future__ import annotations

from typing import Any

from litestar import Response, get

from till_common.errors import TillError
from till_common.integrations.litestar import problem
from till_gateway.auth import ProtectedResource
from till_gateway.catalogue import render_markdown
from till_gateway.dispatch import CAPABILITIES, ServerInfo
from till_gateway.upstream import Tools
from till_gateway.versions import LATEST_HANDSHAKE

_PUBLIC = {"Cache-Control": "public, max-age=60", "Access-Control-Allow-Origin": "*"}


def info_document(public_url: str, server: ServerInfo) -> dict[str, Any]:
    return {
        "name": server.name,
        "version": server.version,
        "protocolVersion": LATEST_HANDSHAKE,
        "serverUrl": public_url,
        "capabilities": CAPABILITIES,
        "endpoints": {"jsonrpc": "/mcp", "sse": "/mcp/sse", "token": "/mcp/token", "config": "/mcp/config"},
        "documentation": f"{public_url}/mcp/docs",
    }


def discovery_handlers(resource: ProtectedResource, tools: Tools, server: ServerInfo) -> list[Any]:
    info = info_document(resource.public_url, server)

    @get("/mcp/info", sync_to_thread=False, include_in_schema=False)
    def mcp_info() -> Response[dict[str, Any]]:
        return Response(info, headers=_PUBLIC)

    async def _catalogue() -> dict[str, Any] | Response[bytes]:
        try:
            return await tools.catalogue()
        except TillError:
            return problem(503, "temporarily_unavailable", "the tool catalogue is unavailable; retry")

    @get("/mcp/tools", include_in_schema=False)
    async def mcp_tools() -> Response[Any]:
        cat = await _catalogue()
        if isinstance(cat, Response):
            return cat
        return Response({"tools": cat.get("tools", [])}, headers=_PUBLIC)

    @get("/mcp/resources", include_in_schema=False)
    async def mcp_resources() -> Response[Any]:
        cat = await _catalogue()
        if isinstance(cat, Response):
            return cat
        return Response({"resources": cat.get("resources", []),
                         "resourceTemplates": cat.get("resourceTemplates", [])}, headers=_PUBLIC)

    @get("/mcp/docs", include_in_schema=False)
    async def mcp_docs() -> Response[Any]:
        cat = await _catalogue()
        if isinstance(cat, Response):
            return cat
        return Response(render_markdown(cat, resource.public_url), media_type="text/markdown; charset=utf-8",
                        headers=_PUBLIC)

    def prm(path: str, suffix: str) -> Any:
        doc = resource.metadata(suffix)

        @get(path, sync_to_thread=False, include_in_schema=False, name=f"prm{suffix or '-root'}")
        def handler() -> Response[dict[str, object]]:
            return Response(doc, headers=_PUBLIC)

        return handler

    base = "/.well-known/oauth-protected-resource"
    return [mcp_info, mcp_tools, mcp_resources, mcp_docs,
            prm(base, ""), prm(base + "/mcp", "/mcp"), prm(base + "/mcp/sse", "/mcp/sse")]
