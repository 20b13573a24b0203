"""Calls from the gateway to tools and auth over the internal contracts (protocol/internal.py).

Requests are built fresh by :class:`till_common.http.InternalClient`: the internal bearer and the
request id, nothing of the client's request (GW-10).  The params and the result of a forwarded
call stay raw JSON bytes end to end.
"""

from __future__ import annotations

import time
from typing import Any, Final

import msgspec
from msgspec import Raw

from till_common.errors import InvalidToken, TillError, Unavailable
from till_common.http import InternalClient
from till_common.logging import get_logger, request_id_var
from till_common.principal import Principal
from till_common.protocol.internal import INSUFFICIENT_SCOPE, Introspection, RevocationPage, RpcError
from till_gateway.coalesce import DEFAULT_LIMIT, Coalescer
from till_gateway.dispatch import InsufficientScope
from till_gateway.jsonrpc import CodedError, InternalError

log = get_logger("till.gateway.upstream")


class _RpcCall(msgspec.Struct):
    """The wire shape of ToolsRpcRequest with params kept raw (same JSON)."""

    principal: Principal
    method: str
    params: Raw


class _RpcReply(msgspec.Struct):
    result: Raw = Raw()
    error: RpcError | None = None


_encoder: Final = msgspec.json.Encoder()
_reply_decoder: Final = msgspec.json.Decoder(_RpcReply)
_introspection_decoder: Final = msgspec.json.Decoder(Introspection)
_page_decoder: Final = msgspec.json.Decoder(RevocationPage)
_any_decoder: Final = msgspec.json.Decoder()


class Tools:
    def __init__(self, client: InternalClient, catalogue_ttl: float = 60.0, batch_inflight: int = DEFAULT_LIMIT,
                 ) -> None:
        self.client = client
        # every call goes through it: alone below `batch_inflight` requests in flight, batched above (D880)
        self.coalescer = Coalescer(client, limit=batch_inflight, timeout=client.timeout)
        self._catalogue: tuple[float, dict[str, Any]] | None = None
        self._catalogue_ttl = catalogue_ttl

    async def call(self, principal: Principal, method: str, params: Raw) -> Raw:
        """One MCP method at tools: the raw result, or a JSON-RPC error / InsufficientScope."""
        body = _encoder.encode(_RpcCall(principal, method, params))
        try:
            status, raw = await self.coalescer.call(body)
        except TillError as exc:
            log.error("tools call failed", method=method, error=exc.code, debug=exc.debug)
            raise InternalError(request_id_var.get(), "the store service is unavailable; try again") from None
        if status != 200:
            log.error("tools call failed", method=method, status=status)
            raise InternalError(request_id_var.get())
        try:
            reply = _reply_decoder.decode(raw)
        except msgspec.DecodeError:
            log.error("tools answered an unreadable body", method=method)
            raise InternalError(request_id_var.get()) from None
        if reply.error is not None:
            err = reply.error
            if err.code == INSUFFICIENT_SCOPE:
                scope = err.data.get("scope") if isinstance(err.data, dict) else None
                raise InsufficientScope(str(scope or ""))
            raise CodedError(err.code, err.message, err.data)
        if not len(reply.result):
            raise InternalError(request_id_var.get(), "the store service answered no result")
        return reply.result

    async def catalogue(self) -> dict[str, Any]:
        """Public definitions (no store data), cached; a stale copy beats an error when tools is down."""
        now = time.monotonic()
        if self._catalogue is not None and now - self._catalogue[0] < self._catalogue_ttl:
            return self._catalogue[1]
        try:
            data = await self.client.json("GET", "/internal/v1/catalogue")
        except TillError:
            if self._catalogue is not None:
                return self._catalogue[1]
            raise
        if not isinstance(data, dict):
            raise Unavailable("catalogue is not an object")
        self._catalogue = (now, data)
        return data


class Auth:
    def __init__(self, client: InternalClient) -> None:
        self.client = client

    async def jwks(self) -> bytes:
        status, raw = await self.client.request("GET", "/.well-known/jwks.json")
        if status != 200:
            raise Unavailable(f"JWKS answered {status}")
        return raw

    async def introspect(self, token: str) -> Introspection:
        """RFC 7662 at auth; unreachable → Unavailable (503, FT-08), never "inactive"."""
        status, raw = await self.client.request("POST", "/internal/v1/introspect", data={"token": token})
        if status != 200:
            raise Unavailable(f"introspection answered {status}")
        try:
            result = _introspection_decoder.decode(raw)
        except msgspec.DecodeError:
            raise InvalidToken("introspection answer unreadable") from None
        return result

    async def revocations(self, after: int) -> RevocationPage:
        status, raw = await self.client.request("GET", "/internal/v1/revocations",
                                                   params={"after": str(after)})
        if status != 200:
            raise Unavailable(f"revocation feed answered {status}")
        return _page_decoder.decode(raw)
