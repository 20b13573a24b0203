"""The tools service's app factory: internal routes for the gateway only (till_common.protocol.internal).

    POST /internal/v1/rpc        ToolsRpcRequest → ToolsRpcResponse
    GET  /internal/v1/catalogue  every tool, resource, template and prompt definition
    GET  /internal/v1/audit      ?store_id=&after=&limit= → {"items": [...], "next": seq | null}

Every internal route needs ``Authorization: Bearer TILL_INTERNAL_TOKEN`` (constant-time compare);
anything else is 401 problem details (TL-03).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, Router, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler

from till_common.errors import BadRequest
from till_common.integrations.litestar import (
    EXCEPTION_HANDLERS,
    Metrics,
    health_handlers,
    observability_middleware,
)
from till_common.logging import request_id_var
from till_common.protocol.internal import ToolsRpcRequest
from till_tools import audit, rpc
from till_tools.registry import Registry
from till_tools.settings import ToolsSettings

_decoder = msgspec.json.Decoder(ToolsRpcRequest)
_encoder = msgspec.json.Encoder()
JSON = "application/json"


def internal_guard(token: str) -> Any:
    expected = f"Bearer {token}".encode()

    # async: litestar runs a sync guard in a worker thread, one thread hop per request (D606)
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        got = connection.headers.get("authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(got, expected):
            raise NotAuthorizedException("a valid internal bearer token is required",
                                         headers={"WWW-Authenticate": "Bearer"})

    return guard


def internal_router(reg: Registry) -> Router:
    catalogue = _encoder.encode(rpc.catalogue_document(reg))

    @post("/rpc", status_code=200)
    async def rpc_route(request: Request[Any, Any, Any]) -> Response[bytes]:
        try:
            req = _decoder.decode(await request.body())
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise BadRequest(f"body is not a ToolsRpcRequest: {exc}") from None
        if not req.principal.request_id:
            req.principal = msgspec.structs.replace(req.principal, request_id=request_id_var.get())
        return Response(_encoder.encode(await rpc.handle(reg, req)), media_type=JSON)

    @get("/catalogue", sync_to_thread=False)
    def catalogue_route() -> Response[bytes]:
        return Response(catalogue, media_type=JSON)

    @get("/audit")
    async def audit_route(store_id: int, after: int = 0, limit: int = 100) -> Response[bytes]:
        if not 1 <= limit <= 1000 or after < 0 or store_id < 1:
            raise BadRequest("store_id ≥ 1, after ≥ 0 and 1 ≤ limit ≤ 1000")
        async with reg.sessions() as db:
            page = await audit.page(db, store_id, after, limit)
        return Response(_encoder.encode(page), media_type=JSON)

    return Router("/internal/v1", route_handlers=[rpc_route, catalogue_route, audit_route],
                  guards=[internal_guard(reg.settings.internal_token)])


def create_app(settings: ToolsSettings, registry: Registry | None = None) -> Litestar:
    reg = registry or Registry.build(settings)
    metrics = Metrics("tools")

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await reg.close()

    return Litestar(
        route_handlers=[*health_handlers(metrics, {"database": reg.check_database}), internal_router(reg)],
        middleware=[observability_middleware(metrics)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        openapi_config=None,
        state=State({"registry": reg}),
        debug=False,
        logging_config=None,   # till_common.logging owns the format (JSON)
    )
