"""Streamable HTTP at ``/mcp`` (MCP 2025-03-26 … 2025-11-25 basic/transports; 2026-07-28 stateless).

Stateless: no ``Mcp-Session-Id``, no server-initiated stream.  A POST with requests answers 200
``application/json`` (one ``text/event-stream`` event when the client accepts only that); a POST
of notifications/responses answers 202 with an empty body (Codex needs exactly that).
"""

from __future__ import annotations

from typing import Final

from litestar.types import Receive, Scope, Send

from till_gateway import jsonrpc, versions
from till_gateway.dispatch import Call, InsufficientScope, modern_status
from till_gateway.jsonrpc import InvalidRequest
from till_gateway.transports.common import Gate, Headers, HttpError, json_error, read_body, respond

_ALLOW: Final = (b"allow", b"POST, DELETE")
_JSON: Final = (b"content-type", b"application/json")
_SSE: Final = (b"content-type", b"text/event-stream")
_NO_CACHE: Final = (b"cache-control", b"no-cache, no-store")


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
    call = Call(forward=gate.forwarder(cred), version=version, modern=modern, headers=headers.mapping())
    try:
        responses = [r for r in [await gate.dispatcher.handle(m, call) for m in messages] if r is not None]
    except InsufficientScope as exc:
        raise gate.forbidden_scope(scope["path"], exc.scope) from None
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


async def _send(send: Send, status: int, body: bytes, sse_only: bool) -> None:
    if sse_only:
        await respond(send, status, b"event: message\ndata: " + body + b"\n\n", [_SSE, _NO_CACHE])
    else:
        await respond(send, status, body, [_JSON])
