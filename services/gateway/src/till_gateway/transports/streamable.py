"""Streamable HTTP at ``/mcp`` (MCP 2025-03-26 … 2025-11-25 basic/transports; 2026-07-28 stateless).

Stateless: no ``Mcp-Session-Id``, no server-initiated stream.  A POST with requests answers 200
``application/json`` (one ``text/event-stream`` event when the client accepts only that); a POST
of notifications/responses answers 202 with an empty body (Codex needs exactly that).

A single request from a client whose Accept allows ``text/event-stream`` may get its answer as a
stream instead: the first server→client message during the call (progress, log, a sampling or
elicitation request; exchange.py) starts ``text/event-stream``, and the response is its last
event.  A call that sends none still answers plain JSON, so JSON-only behaviour is unchanged.
A client's answer to a server request arrives as its own POST (202) and is routed by its id to
the replica that waits for it (sessions.py).
"""

from __future__ import annotations

from typing import Final

from litestar.types import Receive, Scope, Send

from till_common.errors import Unavailable
from till_common.logging import get_logger
from till_common.protocol.internal import INSUFFICIENT_SCOPE
from till_gateway import jsonrpc, versions
from till_gateway.auth import fingerprint
from till_gateway.dispatch import Answer, Call, InsufficientScope, modern_status
from till_gateway.exchange import Exchange
from till_gateway.jsonrpc import ClientResponse, CodedError, InvalidRequest
from till_gateway.transports.common import Gate, Headers, HttpError, json_error, read_body, respond

_ALLOW: Final = (b"allow", b"POST, DELETE")
_JSON: Final = (b"content-type", b"application/json")
_SSE: Final = (b"content-type", b"text/event-stream")
_NO_CACHE: Final = (b"cache-control", b"no-cache, no-store")
_NO_BUFFERING: Final = (b"x-accel-buffering", b"no")
log = get_logger("till.gateway.streamable")


def _frame(data: bytes) -> bytes:
    return b"event: message\ndata: " + data + b"\n\n"


def _accepts_sse(accept: str | None) -> bool:
    if accept is None:
        return False
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return bool(types & {"text/event-stream", "text/*", "*/*"})


class LazyStream:
    """A POST's answer that becomes ``text/event-stream`` at the first message sent mid-call."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def write(self, data: bytes) -> None:
        if not self.started:
            self.started = True
            await self._send({"type": "http.response.start", "status": 200,
                              "headers": [_SSE, _NO_CACHE, _NO_BUFFERING]})
        await self._send({"type": "http.response.body", "body": _frame(data), "more_body": True})

    async def finish(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": _frame(data), "more_body": False})


def _wants_sse_only(accept: str | None) -> bool:
    """True when the client accepts SSE but not JSON; raises 406 when it accepts neither."""
    if accept is None:
        return False
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if types & {"application/json", "application/*", "*/*", ""}:
        return False
    if "text/event-stream" in types:
        return True
    raise json_error(406, "not_acceptable", "accept application/json or text/event-stream")


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _has_meta_version(body: bytes) -> bool:
    return versions.PROTOCOL_VERSION_META.encode() in body


def make_endpoint(gate: Gate):  # type: ignore[no-untyped-def]
    async def mcp(scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope)
        try:
            await _handle(gate, scope, receive, send, headers)
        except HttpError as exc:
            await respond(send, exc.status, exc.body, exc.headers)

    return mcp


async def _handle(gate: Gate, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
    gate.check_origin(headers)
    method = scope.get("method", "")
    if method == "DELETE":       # no Mcp-Session-Id is ever issued: nothing to end
        await respond(send, 200)
        return
    if method != "POST":
        raise HttpError(405, b"", [_ALLOW])
    sse_only = _wants_sse_only(headers.get("accept"))
    header_version = headers.get("mcp-protocol-version")
    if header_version is not None and header_version not in versions.SUPPORTED_VERSIONS:
        raise json_error(400, "unsupported_protocol_version",
                         f"MCP-Protocol-Version {header_version[:40]!r} is not supported; "
                         f"supported: {', '.join(versions.SUPPORTED_VERSIONS)}")
    cred = await gate.authenticate(scope, headers)
    if not _is_json(headers.get("content-type")):
        raise json_error(415, "unsupported_media_type", "send application/json")
    body = await read_body(receive, headers)

    parsed = jsonrpc.parse(body)
    version = header_version or versions.DEFAULT_HTTP_VERSION
    modern = versions.is_modern(header_version, _has_meta_version(body))
    messages = parsed.messages
    if parsed.batch and (modern or version not in versions.BATCH_VERSIONS or len(messages) > versions.MAX_BATCH):
        reason = "batches are accepted only under 2025-03-26" if len(messages) <= versions.MAX_BATCH \
            else f"more than {versions.MAX_BATCH} messages in a batch"
        await _send(send, 400 if modern else 200, jsonrpc.encode_error(None, InvalidRequest(reason)), sse_only)
        return
    owner = fingerprint(cred.user_id, cred.store_id)
    call = Call(forward=gate.forwarder(cred), version=version, modern=modern, headers=headers.mapping(),
                answer=_answer_router(gate, owner))
    stream: LazyStream | None = None
    if not parsed.batch and isinstance(messages[0], jsonrpc.Request) and _accepts_sse(headers.get("accept")):
        stream = LazyStream(send)
        call.exchange = Exchange(outbound=stream.write, requests=gate.hub.server_requests, owner=owner)
    try:
        responses = [r for r in [await gate.dispatcher.handle(m, call) for m in messages] if r is not None]
    except InsufficientScope as exc:
        if stream is None or not stream.started:
            raise gate.forbidden_scope(scope["path"], exc.scope) from None
        # the stream has begun (200 sent): the call ends with an error event instead of a 403
        responses = [jsonrpc.encode_error(messages[0].id, CodedError(  # type: ignore[union-attr]
            INSUFFICIENT_SCOPE, f"insufficient_scope: needs {exc.scope}", {"scope": exc.scope}))]
    if stream is not None and stream.started:
        await stream.finish(responses[0])
        return
    if not responses:
        await respond(send, 202)
        return
    if parsed.batch:
        await _send(send, 200, jsonrpc.encode_batch(responses), sse_only)
        return
    out = responses[0]
    status = 200
    if modern:
        status = modern_status(out)
    elif isinstance(messages[0], jsonrpc.Invalid) and messages[0].id is None:
        status = 400       # the body as a whole was not a request: nothing to correlate
    await _send(send, status, out, sse_only)


def _answer_router(gate: Gate, owner: str) -> Answer:
    async def answer(response: ClientResponse) -> None:
        if not isinstance(response.id, str):
            return                          # not an id of ours (we send string ids only)
        try:
            await gate.hub.answer(response.id, owner, response.result, response.error)
        except Unavailable as exc:
            log.warning("cannot route a client's answer", error=exc.code)

    return answer


async def _send(send: Send, status: int, body: bytes, sse_only: bool) -> None:
    if sse_only:
        await respond(send, status, b"event: message\ndata: " + body + b"\n\n", [_SSE, _NO_CACHE])
    else:
        await respond(send, status, body, [_JSON])
