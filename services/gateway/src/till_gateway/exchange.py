"""Server→client traffic during one client request (MCP basic/transports, utilities/progress, logging).

Framework-free.  A transport that can carry messages back to the client while a request runs gives
the dispatcher an :class:`Exchange` whose ``outbound`` writes one encoded JSON-RPC message there:

- Streamable HTTP: the POST's response turns into ``text/event-stream`` at the first message
  (transports/streamable.py); a request that sends none still answers plain JSON.
- legacy SSE: the session's stream, wherever it is held (sessions.py).

Notifications (``notifications/progress``, ``notifications/message``) need only ``outbound``.
A server *request* (``sampling/createMessage``, ``elicitation/create``) also needs the client's
answer, which arrives in a later POST — possibly at another replica.  :class:`ServerRequests`
names each request ``s.<replica id>.<random>``: the replica that receives the answer routes it to
the one waiting by that id (Redis channel of the replica, sessions.py), and the waiter accepts it
only from the same principal (fingerprint).  No ``Mcp-Session-Id`` is needed.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from msgspec import Raw

from till_common.logging import get_logger

log = get_logger("till.gateway.exchange")

#: Seconds a server request waits for the client's answer (a human may be answering an elicitation).
SERVER_REQUEST_TIMEOUT: Final = 120.0
#: MCP utilities/logging: RFC 5424 severities, lowest first.
LOG_LEVELS: Final = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
_ID_PREFIX: Final = "s."
_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder()

Outbound = Callable[[bytes], Awaitable[None]]


class ServerRequestError(Exception):
    """The server request could not be made or the client answered it with an error."""


def notification(method: str, params: dict[str, Any]) -> bytes:
    return _encoder.encode({"jsonrpc": "2.0", "method": method, "params": params})


def server_request(rid: str, method: str, params: dict[str, Any]) -> bytes:
    return _encoder.encode({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})


def progress_token(params: dict[str, Any]) -> str | int | None:
    """``params._meta.progressToken`` when the client asked for progress (utilities/progress)."""
    meta = params.get("_meta")
    token = meta.get("progressToken") if isinstance(meta, dict) else None
    if isinstance(token, bool) or not isinstance(token, str | int):
        return None
    return token


@dataclass
class _Pending:
    owner: str
    future: asyncio.Future[tuple[Raw | None, Raw | None]]


class ServerRequests:
    """Server→client requests waiting for their answers on this replica."""

    def __init__(self, replica_id: str) -> None:
        self.replica_id = replica_id
        self._pending: dict[str, _Pending] = {}

    def new(self, owner: str) -> tuple[str, asyncio.Future[tuple[Raw | None, Raw | None]]]:
        rid = f"{_ID_PREFIX}{self.replica_id}.{secrets.token_urlsafe(16)}"
        future: asyncio.Future[tuple[Raw | None, Raw | None]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = _Pending(owner, future)
        return rid, future

    def forget(self, rid: str) -> None:
        self._pending.pop(rid, None)

    @staticmethod
    def replica_of(rid: object) -> str | None:
        """The replica waiting for an answer with this id, or None if the id is not ours."""
        if not isinstance(rid, str) or not rid.startswith(_ID_PREFIX):
            return None
        parts = rid.split(".")
        return parts[1] if len(parts) == 3 and parts[1] else None

    def resolve(self, rid: str, owner: str, result: Raw | None, error: Raw | None) -> bool:
        """Hand a client's answer to its waiter; answers from another principal are ignored."""
        pending = self._pending.get(rid)
        if pending is None or not hmac.compare_digest(pending.owner, owner):
            log.info("answer to no pending server request", known=pending is not None)
            return False
        if not pending.future.done():
            pending.future.set_result((result, error))
        self._pending.pop(rid, None)
        return True

    def __len__(self) -> int:
        return len(self._pending)


@dataclass
class Exchange:
    """What a request may send back while it runs; the default sends nothing."""

    outbound: Outbound | None = None
    requests: ServerRequests | None = None      # None: this transport cannot carry server requests
    owner: str = ""                             # principal fingerprint that must answer them
    request_timeout: float = SERVER_REQUEST_TIMEOUT
    sent: int = field(default=0, init=False)

    @property
    def can_notify(self) -> bool:
        return self.outbound is not None

    @property
    def can_request(self) -> bool:
        return self.outbound is not None and self.requests is not None

    async def notify(self, method: str, params: dict[str, Any]) -> bool:
        if self.outbound is None:
            return False
        await self.outbound(notification(method, params))
        self.sent += 1
        return True

    async def progress(self, token: str | int | None, progress: float, total: float | None = None,
                       message: str | None = None) -> bool:
        """``notifications/progress`` for ``token``; nothing when the client gave no token."""
        if token is None:
            return False
        params: dict[str, Any] = {"progressToken": token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        return await self.notify("notifications/progress", params)

    async def log(self, level: str, data: Any, logger: str | None = None) -> bool:
        """``notifications/message`` (utilities/logging)."""
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {level!r}")
        params: dict[str, Any] = {"level": level, "data": data}
        if logger is not None:
            params["logger"] = logger
        return await self.notify("notifications/message", params)

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        """Send a server request and wait for the client's result (decoded)."""
        if self.outbound is None or self.requests is None:
            raise ServerRequestError(f"this transport cannot send {method} to the client")
        rid, future = self.requests.new(self.owner)
        try:
            await self.outbound(server_request(rid, method, params))
            self.sent += 1
            async with asyncio.timeout(self.request_timeout):
                result, error = await future
        except TimeoutError:
            raise ServerRequestError(
                f"the client did not answer {method} within {self.request_timeout:g} s") from None
        finally:
            self.requests.forget(rid)
        if error is not None:
            detail = _decoder.decode(error)
            message = detail.get("message") if isinstance(detail, dict) else None
            raise ServerRequestError(f"the client answered {method} with an error: {message or detail}")
        return _decoder.decode(result) if result is not None else None
