"""The one HTTP client between services: a pooled keep-alive aiohttp session.

aiohttp was chosen over httpx after measuring a tiny forward (docs/decisions.md).  Every call
carries the internal bearer and the current request id; nothing else from the caller's request
is forwarded, so a client's headers can never reach another service.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec

from till_common.errors import Unavailable, UpstreamError
from till_common.logging import REQUEST_ID_HEADER, request_id_var


class InternalClient:
    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0, limit: int = 100) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(5.0, timeout))
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._bearer = f"Bearer {token}"

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=30),
                timeout=self._timeout,
                json_serialize=lambda o: msgspec.json.encode(o).decode(),
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self._token}"}
        rid = request_id_var.get()
        if rid:
            h[REQUEST_ID_HEADER] = rid
        if extra:
            h.update(extra)
        return h

    async def request(self, method: str, path: str, *, body: bytes | None = None,
                      data: dict[str, str] | None = None, params: dict[str, str] | None = None,
                      content_type: str = "application/json",
                      headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
        """Send one request; returns (status, body, headers).  Transport failures raise."""
        h = self.headers(headers)
        if body is not None:
            h["Content-Type"] = content_type
        try:
            async with self.session.request(method, self.base_url + path, data=body if body is not None
                                            else data, params=params, headers=h,
                                            allow_redirects=False) as resp:
                return resp.status, await resp.read(), dict(resp.headers)
        except TimeoutError:
            raise UpstreamError("upstream timed out", debug=f"{method} {self.base_url}{path}") from None
        except aiohttp.ClientError as exc:
            raise Unavailable("upstream unavailable", debug=f"{method} {self.base_url}{path}: {exc}") from None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """``request("POST", path, body=…)`` for the per-call hop (gateway → tools): the same bearer,
        request id, pool and timeouts, without building a response-header dict nobody reads."""
        h = {"Authorization": self._bearer, "Content-Type": "application/json"}
        rid = request_id_var.get()
        if rid:
            h[REQUEST_ID_HEADER] = rid
        url = self.base_url + path
        try:
            async with self.session.post(url, data=body, headers=h, allow_redirects=False) as resp:
                return resp.status, await resp.read()
        except TimeoutError:
            raise UpstreamError("upstream timed out", debug=f"POST {url}") from None
        except aiohttp.ClientError as exc:
            raise Unavailable("upstream unavailable", debug=f"POST {url}: {exc}") from None

    async def json(self, method: str, path: str, *, payload: Any = None, type: type[Any] = Any,
                   params: dict[str, str] | None = None) -> Any:
        body = None if payload is None else msgspec.json.encode(payload)
        status, raw, _ = await self.request(method, path, body=body, params=params)
        if status >= 400:
            raise UpstreamError(f"upstream answered {status}", debug=raw[:500].decode(errors="replace"))
        return msgspec.json.decode(raw, type=type)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
