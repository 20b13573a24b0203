"""Raw-ASGI plumbing shared by the MCP transports: headers, bodies, Origin, auth, rate limit.

The MCP endpoints are raw ASGI handlers (no DTOs, no validation layer): the body is read once,
bounded, and handed to the protocol modules as bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import msgspec
from litestar.types import Receive, Scope, Send

from till_common.errors import InvalidToken, TillError, Unavailable
from till_common.logging import get_logger, request_id_var
from till_gateway import auth
from till_gateway.auth import Authenticator, BadBearer, ProtectedResource
from till_gateway.dispatch import Dispatcher, Forward, InsufficientScope
from till_gateway.ratelimit import RateLimiter
from till_gateway.revocations import Credential
from till_gateway.sessions import SessionHub
from till_gateway.settings import GatewaySettings
from till_gateway.upstream import Tools

log = get_logger("till.gateway.http")
MAX_BODY: Final = 1024 * 1024
_JSON: Final = (b"content-type", b"application/json")
_NO_STORE: Final = (b"cache-control", b"no-store")
_encoder: Final = msgspec.json.Encoder()


class HttpError(Exception):
    """An HTTP answer decided before (or instead of) any JSON-RPC processing."""

    def __init__(self, status: int, body: bytes = b"", headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = list(headers)


def json_error(status: int, error: str, description: str, *extra: tuple[bytes, bytes]) -> HttpError:
    body = _encoder.encode({"error": error, "error_description": description,
                            "request_id": request_id_var.get()})
    return HttpError(status, body, [_JSON, _NO_STORE, *extra])


class Headers:
    """Lower-cased request headers; repeated names kept (Authorization must be single)."""

    __slots__ = ("_all", "_map")

    def __init__(self, scope: Scope) -> None:
        self._map: dict[str, str] = {}
        self._all: list[tuple[str, str]] = []
        for k, v in scope["headers"]:
            name, value = k.decode("latin-1").lower(), v.decode("latin-1")
            self._all.append((name, value))
            self._map.setdefault(name, value)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._map.get(name, default)

    def getall(self, name: str) -> list[str]:
        return [v for k, v in self._all if k == name]

    def items(self) -> list[tuple[str, str]]:
        return list(self._all)

    def mapping(self) -> dict[str, str]:
        return dict(self._map)


async def respond(send: Send, status: int, body: bytes = b"",
                  headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    hdrs = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def read_body(receive: Receive, headers: Headers, limit: int = MAX_BODY) -> bytes:
    """The whole body, or 413 as soon as it is known to exceed ``limit`` (DS-01, chunked too)."""
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise json_error(400, "invalid_request", "bad Content-Length")
        if int(length) > limit:
            raise json_error(413, "payload_too_large", f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(400)
        chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
        size += len(chunk)
        if size > limit:
            raise json_error(413, "payload_too_large", f"body over {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


@dataclass
class Gate:
    """What every MCP request passes: Origin, bearer, revocation, rate limit; then forwarding."""

    settings: GatewaySettings
    resource: ProtectedResource
    authenticator: Authenticator
    ratelimiter: RateLimiter
    dispatcher: Dispatcher
    tools: Tools
    hub: SessionHub

    def check_origin(self, headers: Headers) -> None:
        """MCP transports "Security Warning": a present Origin must be allowed (GW-03); none is fine."""
        origin = headers.get("origin")
        if origin is not None and origin not in self.settings.origins:
            raise json_error(403, "forbidden", "Origin not allowed")

    def unauthorized(self, path: str, *, error: str | None = None, description: str = "") -> HttpError:
        value = auth.challenge(self.resource.prm_url(path), error=error,
                               description=description or None)
        return json_error(401, error or "unauthorized", description or "authorization required",
                          (b"www-authenticate", value.encode()))

    def forbidden_scope(self, path: str, scope: str) -> HttpError:
        value = auth.challenge(self.resource.prm_url(path), error="insufficient_scope", scope=scope)
        return json_error(403, "insufficient_scope", f"this call needs the scope {scope}",
                          (b"www-authenticate", value.encode()))

    async def authenticate(self, scope: Scope, headers: Headers) -> Credential:
        cred, limit_key = await self.verify(scope, headers)
        retry = await self.ratelimiter.hit(limit_key)
        if retry is not None:
            raise self.rate_limited(retry)
        return cred

    def rate_limited(self, retry: int) -> HttpError:
        return json_error(429, "rate_limited", "too many requests for this token",
                          (b"retry-after", str(retry).encode()))

    async def verify(self, scope: Scope, headers: Headers) -> tuple[Credential, str]:
        """:meth:`authenticate` without counting the request: the credential and its rate-limit key,
        for a caller that counts it itself later (legacy SSE folds it into the delivery script)."""
        path: str = scope["path"]
        try:
            token = auth.bearer_token(headers.getall("authorization"), scope.get("query_string", b""))
        except BadBearer as exc:
            value = auth.challenge(self.resource.prm_url(path), error="invalid_request")
            raise json_error(400, "invalid_request", str(exc), (b"www-authenticate", value.encode())) from None
        if token is None:
            raise self.unauthorized(path)
        try:
            cred, key = await self.authenticator.authenticate_keyed(token)
        except InvalidToken as exc:
            log.info("token refused", reason=exc.description, debug=exc.debug)
            raise self.unauthorized(path, error="invalid_token", description=exc.description) from None
        except (Unavailable, TillError) as exc:
            log.warning("cannot verify token now", error=exc.code, debug=exc.debug)
            raise json_error(503, "temporarily_unavailable", "cannot verify the token right now; retry",
                             (b"retry-after", b"5")) from None
        return cred, key

    def forwarder(self, cred: Credential) -> Forward:
        principal = auth.principal(cred, request_id_var.get())

        async def forward(method: str, params: msgspec.Raw) -> msgspec.Raw:
            return await self.tools.call(principal, method, params)

        return forward


__all__ = ["Gate", "Headers", "HttpError", "InsufficientScope", "json_error", "read_body", "respond"]
