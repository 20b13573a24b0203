"""The tools service's app factory: internal routes for the gateway only (till_common.protocol.internal).

    POST /internal/v1/rpc        ToolsRpcRequest → ToolsRpcResponse
    POST /internal/v1/rpc/batch  [ToolsRpcRequest, …] → application/x-ndjson, one ToolsRpcBatchLine per
                                 request as it completes (D881)
    GET  /internal/v1/catalogue  every tool, resource, template and prompt definition
    GET  /internal/v1/audit      ?store_id=&after=&limit= → {"items": [...], "next": seq | null}

Every internal route needs ``Authorization: Bearer TILL_INTERNAL_TOKEN`` (constant-time compare);
anything else is 401 problem details (TL-03).
"""

from __future__ import annotations

import asyncio
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
from litestar.response import Stream
from litestar.response.base import ASGIResponse

from till_common.errors import BadRequest
from till_common.integrations.direct import DirectApp
from till_common.integrations.litestar import (
    EXCEPTION_HANDLERS,
    Metrics,
    health_handlers,
    internal_error_handler,
    observability_middleware,
)
from till_common.logging import get_logger, request_id_var
from till_common.protocol.internal import (
    INTERNAL_ERROR,
    RpcError,
    ToolsRpcBatch,
    ToolsRpcBatchLine,
    ToolsRpcRequest,
)
from till_tools import audit, rpc
from till_tools.registry import Registry
from till_tools.settings import ToolsSettings

log = get_logger("till.tools.app")
_decoder = msgspec.json.Decoder(ToolsRpcRequest)
_batch_decoder = msgspec.json.Decoder(ToolsRpcBatch)
_encoder = msgspec.json.Encoder()
JSON = "application/json"
NDJSON: Final = "application/x-ndjson"
RPC_PATH: Final = "/internal/v1/rpc"
BATCH_PATH: Final = "/internal/v1/rpc/batch"
_NDJSON_HEADER: Final = (b"content-type", NDJSON.encode())
_running: set[asyncio.Task[None]] = set()    # batch items still running (a task needs a reference)
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


async def _run_item(reg: Registry, index: int, req: ToolsRpcRequest, rid: str, out: asyncio.Queue[bytes]) -> None:
    """One request of a batch, as the single route runs it; its line goes to ``out`` whatever happens."""
    if not req.principal.request_id:
        req.principal = msgspec.structs.replace(req.principal, request_id=rid)
    request_id_var.set(req.principal.request_id)      # this task's context: its logs carry its own id
    try:
        response = await rpc.handle(reg, req)
        line = _encoder.encode(ToolsRpcBatchLine(i=index, result=response.result, error=response.error))
    except Exception:
        log.exception("rpc failed", method=req.method)
        line = _encoder.encode(ToolsRpcBatchLine(i=index, error=RpcError(
            INTERNAL_ERROR, "internal error", {"correlation_id": req.principal.request_id})))
    out.put_nowait(line + b"\n")


async def batch_lines(reg: Registry, requests: list[ToolsRpcRequest]) -> AsyncIterator[bytes]:
    """Run every request as its own task; yield their lines as they complete (those ready together at once).

    The tasks do not depend on the reader: a client gone mid-answer does not cut a call short, as it
    does not for the single route.
    """
    rid = request_id_var.get()
    out: asyncio.Queue[bytes] = asyncio.Queue()
    for index, req in enumerate(requests):
        task = asyncio.create_task(_run_item(reg, index, req, rid, out))
        _running.add(task)
        task.add_done_callback(_running.discard)
    left = len(requests)
    while left:
        lines = [await out.get()]
        while not out.empty():
            lines.append(out.get_nowait())
        left -= len(lines)
        yield lines[0] if len(lines) == 1 else b"".join(lines)


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

    @post("/rpc/batch", status_code=200)
    async def rpc_batch_route(request: Request[Any, Any, Any]) -> Stream:
        try:
            requests = _batch_decoder.decode(await request.body())
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise BadRequest(f"body is not an array of 1 to 64 ToolsRpcRequest: {exc}") from None
        return Stream(batch_lines(reg, requests), media_type=NDJSON)

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

    return Router("/internal/v1", route_handlers=[rpc_route, rpc_batch_route, catalogue_route, audit_route],
                  guards=[internal_guard(reg.settings.internal_token)])


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = deque(messages)

    async def replayed() -> Message:
        return pending.popleft() if pending else await receive()

    return replayed


class FastRpc:
    """``POST /internal/v1/rpc`` and ``/internal/v1/rpc/batch`` without litestar's per-request layers (D821, D881).

    Only a request litestar would serve as a ToolsRpcRequest takes this path: the exact bearer token
    (constant-time compare), a body within the size limit that decodes.  Anything else — a missing or
    wrong token, a body that is too large or not a ToolsRpcRequest, a client gone mid-body — goes to
    litestar with the body replayed, so its answer (401 + ``WWW-Authenticate``, 400, 413 problem
    details) is the one it always gave.  The request id and metrics are the same middleware's, under
    the same route label.
    """

    def __init__(self, reg: Registry, fallback: Callable[..., Awaitable[None]], route_handler: Any,
                 middleware: Callable[[Any], Any], batch_handler: Any = None) -> None:
        self.reg = reg
        self.fallback = fallback
        self.route_handler = route_handler
        self.batch_handler = batch_handler
        self.expected = f"Bearer {reg.settings.internal_token}".encode()
        self.served: ASGI = middleware(self._serve)

    def authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                # the guard reads the first Authorization header too
                return hmac.compare_digest(value, self.expected)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST" or not self.authorized(scope):
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
        batch = scope["path"] == BATCH_PATH
        try:
            req: ToolsRpcRequest | list[ToolsRpcRequest] = (_batch_decoder if batch else _decoder).decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            await self.fallback(scope, _replay(messages, receive), send)
            return
        scope[_REQUEST] = req
        # the metric's route label, as litestar sets it
        scope["route_handler"] = self.batch_handler if batch else self.route_handler
        await self.served(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        req: ToolsRpcRequest | list[ToolsRpcRequest] = scope.pop(_REQUEST)
        if isinstance(req, list):
            await self._serve_batch(req, send)
            return
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

    async def _serve_batch(self, requests: list[ToolsRpcRequest], send: Send) -> None:
        """200 ndjson, chunked (no Content-Length): each line is sent as soon as its request completes."""
        await send({"type": "http.response.start", "status": 200, "headers": [_NDJSON_HEADER]})
        async for lines in batch_lines(self.reg, requests):
            await send({"type": "http.response.body", "body": lines, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


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
    app = DirectApp(
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
        fast = FastRpc(reg, app.routed, app.route_handler_method_map[RPC_PATH]["POST"],
                       observability, app.route_handler_method_map[BATCH_PATH]["POST"])
        app.direct = {RPC_PATH: fast, BATCH_PATH: fast}      # D865
    return app
