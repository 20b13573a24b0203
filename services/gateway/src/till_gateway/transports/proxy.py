"""Reverse proxy of the auth service's public paths, so one origin serves everything (SPEC §2).

Method, path, query, body, cookies and Authorization pass unchanged (auth needs them).  Client
``X-Forwarded-*``, ``Forwarded`` and ``X-Till-*`` are dropped; the gateway adds its own
``X-Forwarded-For/Proto/Host`` and ``X-Till-Gateway: <internal token>`` so auth can trust them.
``X-Request-Id`` is the gateway's (the one it logs and answers with), both ways: auth logs under
the same id and the client sees one id, not two (SC-06).
``/admin/*`` and ``/internal/*`` are never routed here (GW-11).
"""

from __future__ import annotations

from typing import Final

import aiohttp
from litestar.types import Receive, Scope, Send

from till_common.logging import get_logger, request_id_var
from till_gateway.transports.common import Headers, HttpError, json_error, read_body, respond

log = get_logger("till.gateway.proxy")

EXACT_PATHS: Final = ("/.well-known/oauth-authorization-server", "/.well-known/jwks.json", "/mcp/token",
                      "/mcp/config", "/login", "/logout")
PREFIX_PATHS: Final = ("/mcp/oauth", "/settings")
_HOP_BY_HOP: Final = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                                "trailer", "transfer-encoding", "upgrade", "host", "content-length",
                                "forwarded"})
_OWN: Final = frozenset({"x-real-ip", "x-request-id"})      # set by the gateway, never passed on
_RESPONSE_DROP: Final = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade",
                                   "trailer", "proxy-authenticate", "x-request-id"})


class AuthProxy:
    def __init__(self, auth_url: str, internal_token: str, timeout: float) -> None:
        self.auth_url = auth_url.rstrip("/")
        self._token = internal_token
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(5.0, timeout))
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30), timeout=self._timeout,
                auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
                cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def upstream_headers(self, scope: Scope, headers: Headers) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for name, value in headers.items():      # repeated headers (cookies) survive
            if name in _HOP_BY_HOP or name.startswith(("x-forwarded-", "x-till-")) or name in _OWN:
                continue
            out.append((name, value))
        client = scope.get("client")
        out.append(("x-forwarded-for", client[0] if client else ""))
        out.append(("x-forwarded-proto", scope.get("scheme", "http")))
        out.append(("x-forwarded-host", headers.get("host") or ""))
        out.append(("x-till-gateway", self._token))
        out.append(("x-request-id", request_id_var.get()))
        return out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope)
        try:
            body = await read_body(receive, headers)
        except HttpError as exc:
            await respond(send, exc.status, exc.body, exc.headers)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        # Mounted handlers see a rewritten scope["path"]; raw_path is what the client sent, unchanged.
        raw_path = scope.get("raw_path") or scope["path"].encode()
        path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else str(raw_path)
        url = self.auth_url + path + (f"?{query}" if query else "")
        try:
            async with self.session.request(str(scope.get("method", "GET")), url, data=body or None,
                                            allow_redirects=False,
                                            headers=self.upstream_headers(scope, headers)) as resp:
                payload = await resp.read()
                out = [(k.lower(), v) for k, v in resp.raw_headers if k.decode("latin-1").lower()
                       not in _RESPONSE_DROP]
                status = resp.status
        except TimeoutError:
            err = json_error(502, "temporarily_unavailable", "the authorization service did not answer in time")
            await respond(send, err.status, err.body, err.headers)
            return
        except aiohttp.ClientError as exc:
            log.warning("auth unreachable", error=type(exc).__name__)
            err = json_error(503, "temporarily_unavailable", "the authorization service is unavailable",
                             (b"retry-after", b"5"))
            await respond(send, err.status, err.body, err.headers)
            return
        await respond(send, status, payload, out)
