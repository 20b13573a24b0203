"""Dispatch of the MCP methods the gateway forwards (no HTTP here; ``app.py`` is the edge)."""

from __future__ import annotations

from typing import Any

from till_common.logging import get_logger
from till_common.principal import Principal
from till_common.protocol.internal import (
    FORWARDED_METHODS,
    INTERNAL_ERROR,
    METHOD_NOT_FOUND,
    RpcError,
    ToolsRpcRequest,
    ToolsRpcResponse,
)
from till_tools import completions, prompts, resources
from till_tools.call import RpcFault, call_tool
from till_tools.registry import Registry

log = get_logger("till.tools.rpc")


def catalogue_document(reg: Registry) -> dict[str, Any]:
    """``GET /internal/v1/catalogue``: every definition, no store data."""
    return {"tools": list(reg.catalogue.definitions.values()), "resources": resources.STATIC,
            "resourceTemplates": resources.TEMPLATES, "prompts": prompts.LIST}


async def _dispatch(reg: Registry, who: Principal, method: str, params: dict[str, Any]) -> dict[str, Any]:
    if method == "tools/call":
        return await call_tool(reg, who, params)
    if method == "tools/list":
        return {"tools": reg.catalogue.by_role[who.role]}
    if method == "resources/list":
        return {"resources": resources.listed_for(who)}
    if method == "resources/templates/list":
        return {"resourceTemplates": resources.templates_for(who)}
    if method == "resources/read":
        return await resources.read(reg, who, params)
    if method == "prompts/list":
        return {"prompts": prompts.LIST}
    if method == "prompts/get":
        return prompts.get(params)
    if method == "completion/complete":
        return await completions.complete(reg, who, params)
    raise RpcFault(METHOD_NOT_FOUND, f"method {method[:100]!r} is not served by the tools service")


async def handle(reg: Registry, req: ToolsRpcRequest) -> ToolsRpcResponse:
    if req.method not in FORWARDED_METHODS:
        return ToolsRpcResponse(error=RpcError(METHOD_NOT_FOUND, f"method {req.method[:100]!r} not found"))
    try:
        return ToolsRpcResponse(result=await _dispatch(reg, req.principal, req.method, req.params))
    except RpcFault as fault:
        return ToolsRpcResponse(error=RpcError(fault.code, fault.message, fault.data))
    except Exception:
        log.exception("rpc failed", method=req.method)
        return ToolsRpcResponse(error=RpcError(INTERNAL_ERROR, "internal error",
                                               {"correlation_id": req.principal.request_id}))
