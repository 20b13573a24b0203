"""Legacy HTTP+SSE (MCP 2024-11-05 basic/transports) at ``/mcp/sse`` and ``/mcp/sse/message``.

The stream's first event is ``endpoint`` (a same-origin relative URL carrying the session id),
then one ``message`` event per response and ``: heartbeat <unix-ts>`` comments.  A POST is
processed by whichever replica receives it (it validates the token itself), then the response
is put on the stream wherever it is held (sessions.py) and the POST answers 202 — or 404 when
the session is unknown, belongs to someone else, or its replica is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Final
from urllib.parse import parse_qs

from litestar.types import Receive, Scope, Send
from msgspec import Raw

from till_common.errors import Unavailable
from till_common.logging import get_logger
from till_common.protocol.internal import INSUFFICIENT_SCOPE
from till_gateway import jsonrpc, versions
from till_gateway.dispatch import Call, Forward, InsufficientScope
from till_gateway.exchange import Exchange
from till_gateway.jsonrpc import CodedError, InvalidRequest
from till_gateway.ratelimit import WINDOW, RedisRateLimiter
from till_gateway.revocations import Credential
from till_gateway.sessions import Count, LocalSession, RateLimited, SessionRecord, TooManySessions
from till_gateway.transports.common import Gate, Headers, HttpError, json_error, read_body, respond

log = get_logger("till.gateway.sse")
_STREAM_HEADERS: Final = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache, no-store"),
                          (b"x-accel-buffering", b"no")]
MESSAGE_PATH: Final = "/mcp/sse/message"


def _frame(data: bytes) -> bytes:
    return b"event: message\ndata: " + data + b"\n\n"


def make_stream_endpoint(gate: Gate):  # type: ignore[no-untyped-def]
    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope)
        try:
            gate.check_origin(headers)
            if scope.get("method", "") != "GET":
                raise HttpError(405, b"", [(b"allow", b"GET")])
            cred = await gate.authenticate(scope, headers)
            try:
                session = await gate.hub.open(cred)
            except Unavailable as exc:
                raise json_error(503, "temporarily_unavailable", exc.description, (b"retry-after", b"5")) from None
            except TooManySessions as exc:
                retry = str(max(1, gate.settings.session_ttl // 2)).encode()
                raise json_error(429, exc.code, exc.description, (b"retry-after", retry)) from None
        except HttpError as exc:
            await respond(send, exc.status, exc.body, exc.headers)
            return
        await _run_stream(gate, session, receive, send)

    return stream


async def _watch_disconnect(receive: Receive, session: LocalSession) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            session.push(None)
            return


async def _run_stream(gate: Gate, session: LocalSession, receive: Receive, send: Send) -> None:
    # Heartbeats arrive through the queue from the hub's timer (SessionHub.maintain), which also keeps
    # the session key alive whatever the stream carries: no timeout per message, no task per message.
    queue = session.queue
    watcher = asyncio.create_task(_watch_disconnect(receive, session))
    try:
        await send({"type": "http.response.start", "status": 200, "headers": _STREAM_HEADERS})
        endpoint = f"event: endpoint\ndata: {MESSAGE_PATH}?sessionId={session.id}\n\n".encode()
        await send({"type": "http.response.body", "body": endpoint, "more_body": True})
        ended = False
        while not ended:
            if session.queue is not queue:         # replaced by push() when the client was too slow
                queue = session.queue
            items = [await queue.get()]
            while not queue.empty() and len(items) < 64:
                items.append(queue.get_nowait())
            chunks: list[bytes] = []
            for data in items:
                if data is None:
                    ended = True
                    break
                chunks.append(_frame(data) if data else f": heartbeat {int(time.time())}\n\n".encode())
            if chunks:
                await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:
        pass           # the client went away mid-write
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
        await gate.hub.close(session)


def make_message_endpoint(gate: Gate):  # type: ignore[no-untyped-def]
    async def message(scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope)
        try:
            await _post(gate, scope, receive, send, headers)
        except HttpError as exc:
            await respond(send, exc.status, exc.body, exc.headers)

    return message


def _not_found() -> HttpError:
    return json_error(404, "not_found", "no such session; open a new /mcp/sse stream")


class _Limit:
    """The POST's rate-limit hit, made once and as late as it can be without changing anything a
    client sees: folded into the delivery script when the stream is on another replica (one Redis
    round trip instead of two, D841), or on its own before anything with an effect (a forward to
    tools, a delivery on this replica) and before any error answer, so that every authenticated
    POST is counted once and 429 still wins over every later outcome (DS-02)."""

    __slots__ = ("gate", "key", "pending")

    def __init__(self, gate: Gate, key: str) -> None:
        self.gate = gate
        self.key = key
        self.pending = True

    async def check(self) -> None:
        if self.pending:
            self.pending = False
            retry = await self.gate.ratelimiter.hit(self.key)
            if retry is not None:
                raise self.gate.rate_limited(retry)

    def fold(self, record: SessionRecord) -> Count | None:
        """The count to fold into this delivery, or None (already counted, or it cannot be folded)."""
        limiter = self.gate.ratelimiter
        if self.pending and isinstance(limiter, RedisRateLimiter) and self.gate.hub.relays(record):
            self.pending = False
            return Count(limiter.key(self.key), WINDOW, limiter.limit)
        return None

    async def deliver(self, sid: str, record: SessionRecord, data: bytes) -> bool:
        count = self.fold(record)
        if count is None:
            await self.check()
        try:
            return await self.gate.hub.deliver(sid, record, data, count)
        except RateLimited as exc:
            raise self.gate.rate_limited(exc.retry_after) from None

    def forwarding(self, forward: Forward) -> Forward:
        async def counted(method: str, params: Raw) -> Raw:
            await self.check()
            return await forward(method, params)

        return counted


async def _post(gate: Gate, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
    gate.check_origin(headers)
    if scope.get("method", "") != "POST":
        raise HttpError(405, b"", [(b"allow", b"POST")])
    cred, key = await gate.verify(scope, headers)
    limit = _Limit(gate, key)
    try:
        await _counted_post(gate, scope, receive, send, headers, cred, limit)
    except Exception:
        await limit.check()          # counted even when refused or failed; over the limit, 429 comes first
        raise


async def _counted_post(gate: Gate, scope: Scope, receive: Receive, send: Send, headers: Headers,
                        cred: Credential, limit: _Limit) -> None:
    sid = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("sessionId") or [""])[0]
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise json_error(415, "unsupported_media_type", "send application/json")
    body = await read_body(receive, headers)
    if not sid or len(sid) > 128:
        raise _not_found()
    try:
        record = await gate.hub.find(sid, cred)
    except Unavailable as exc:
        raise json_error(503, "temporarily_unavailable", exc.description) from None
    if record is None:
        raise _not_found()          # unknown and someone else's look the same (SS-02)

    parsed = jsonrpc.parse(body)

    async def to_stream(data: bytes) -> None:     # notifications during the call go out on the stream
        await limit.deliver(sid, record, data)

    # No server requests here: SDK clients POST one message at a time and wait for its 202, so the
    # answer to a server request would queue behind the very call that waits for it.
    call = Call(forward=limit.forwarding(gate.forwarder(cred)), version=versions.LEGACY_SSE_VERSION,
                exchange=Exchange(outbound=to_stream))
    responses: list[bytes] = []
    denied: InsufficientScope | None = None
    if parsed.batch:
        responses.append(jsonrpc.encode_error(None, InvalidRequest("batches are not part of 2024-11-05")))
    else:
        message = parsed.messages[0]
        try:
            out = await gate.dispatcher.handle(message, call)
        except InsufficientScope as exc:
            # 403 on the POST (RFC 6750), and an error on the stream so the client's call ends now.
            denied = exc
            rid = message.id if isinstance(message, jsonrpc.Request) else None
            out = jsonrpc.encode_error(rid, CodedError(INSUFFICIENT_SCOPE, f"insufficient_scope: needs {exc.scope}",
                                                       {"scope": exc.scope}))
        if out is not None:
            responses.append(out)
    for out in responses:
        try:
            delivered = await limit.deliver(sid, record, out)
        except Unavailable as exc:
            raise json_error(503, "temporarily_unavailable", exc.description) from None
        if not delivered:
            raise _not_found()
    await limit.check()
    if denied is not None:
        raise gate.forbidden_scope(scope["path"], denied.scope)
    await respond(send, 202)
