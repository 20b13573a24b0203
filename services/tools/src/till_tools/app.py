"""The tools service's app factory: internal routes for the gateway only (till_common.protocol.internal).

    POST /internal/v1/rpc        ToolsRpcRequest → ToolsRpcResponse
    GET  /internal/v1/catalogue  every tool, resource, template and prompt definition
    GET  /internal/v1/audit      ?store_id=&after=&limit= → {"items": [...], "next": seq | null}

Every internal route needs ``Authorization: Bearer TILL_INTERNAL_TOKEN`` (constant-time compare);
anything else is 401 problem details (TL-03).
"""

from __future__ import annotations

import hmac
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, Final

import msgspec
from litestar import Litestar, Request, Response, Router, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from litestar.response.base import ASGIResponse

from till_common.errors import BadRequest
from till_common.integrations.litestar import (
    EXCEPTION_HANDLERS,
    Metrics,
    health_handlers,
    internal_error_handler,
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
RPC_PATH: Final = "/internal/v1/rpc"
MAX_BODY: Final = 10_000_000         # litestar's default request_max_body_size, which the fallback enforces
_REQUEST: Final = "till.rpc.request"
_JSON_HEADER: Final = (b"content-type", JSON.encode())

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGI = Callable[[Scope, Receive, Send], Awaitable[None]]


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


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = deque(messages)

    async def replayed() -> Message:
        return pending.popleft() if pending else await receive()

    return replayed


class FastRpc:
    """``POST /internal/v1/rpc`` without litestar's per-request layers (D821).

    Only a request litestar would serve as a ToolsRpcRequest takes this path: the exact bearer token
    (constant-time compare), a body within the size limit that decodes.  Anything else — a missing or
    wrong token, a body that is too large or not a ToolsRpcRequest, a client gone mid-body — goes to
    litestar with the body replayed, so its answer (401 + ``WWW-Authenticate``, 400, 413 problem
    details) is the one it always gave.  The request id and metrics are the same middleware's, under
    the same route label.
    """

    def __init__(self, reg: Registry, fallback: Callable[..., Awaitable[None]], route_handler: Any,
                 middleware: Callable[[Any], Any]) -> None:
        self.reg = reg
        self.fallback = fallback
        self.route_handler = route_handler
        self.expected = f"Bearer {reg.settings.internal_token}".encode()
        self.served: ASGI = middleware(self._serve)

    def authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                # the guard reads the first Authorization header too
                return hmac.compare_digest(value, self.expected)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.authorized(scope):
            await self.fallback(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                await self.fallback(scope, _replay(messages, receive), send)
                return
            size += len(message.get("body", b""))
            if size > MAX_BODY:
                await self.fallback(scope, _replay(messages, receive), send)
                return
            if not message.get("more_body", False):
                break
        body = messages[0].get("body", b"") if len(messages) == 1 else b"".join(m.get("body", b"") for m in messages)
        try:
            req = _decoder.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            await self.fallback(scope, _replay(messages, receive), send)
            return
        scope[_REQUEST] = req
        scope["route_handler"] = self.route_handler      # the metric's route label, as litestar sets it
        await self.served(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        req: ToolsRpcRequest = scope.pop(_REQUEST)
        try:
            if not req.principal.request_id:
                req.principal = msgspec.structs.replace(req.principal, request_id=request_id_var.get())
            body = _encoder.encode(await rpc.handle(self.reg, req))
        except Exception as exc:
            r = internal_error_handler(None, exc)  # type: ignore[arg-type]  # it does not read the request
            await ASGIResponse(body=r.content, status_code=r.status_code, media_type=r.media_type,
                               headers=r.headers)(scope, receive, send)  # type: ignore[arg-type]
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [_JSON_HEADER, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class ToolsApp(Litestar):
    """The tools app: litestar, with the internal RPC's served requests on :class:`FastRpc`."""

    fast_rpc: FastRpc | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        fast = self.fast_rpc
        if fast is not None and scope["type"] == "http" and scope["path"] == RPC_PATH and scope["method"] == "POST":
            await fast(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def litestar(self, scope: Any, receive: Any, send: Any) -> None:
        """Litestar's own handling, for what :class:`FastRpc` does not serve."""
        await super().__call__(scope, receive, send)


def create_app(settings: ToolsSettings, registry: Registry | None = None) -> Litestar:
    reg = registry or Registry.build(settings)
    metrics = Metrics("tools")

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await reg.close()

    observability = observability_middleware(metrics)
    app = ToolsApp(
        route_handlers=[*health_handlers(metrics, {"database": reg.check_database}), internal_router(reg)],
        middleware=[observability],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        openapi_config=None,
        state=State({"registry": reg}),
        debug=False,
        logging_config=None,   # till_common.logging owns the format (JSON)
    )
    if reg.settings.internal_token.isascii():   # the guard compares the latin-1 header re-encoded as UTF-8
        app.fast_rpc = FastRpc(reg, app.litestar, app.route_handler_method_map[RPC_PATH]["POST"],
                               observability)
    return app
