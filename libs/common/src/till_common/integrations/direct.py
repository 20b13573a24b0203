"""Litestar with a few exact paths answered before its router (docs/decisions.md D801, D821, D865).

A raw ASGI endpoint that is mounted in litestar anyway pays, per request, for litestar's router, its
two exception middlewares and its scope state without using any of them.  :class:`DirectApp` hands a
request straight to its endpoint when the path is exactly one of ``direct``, the app has no root
path and the Host header is one litestar's router accepts; everything else — other paths, ``/mcp/``,
a bad Host — goes through litestar, where the same endpoints are mounted too, so both ways answer
alike.  An endpoint that wants litestar's own answer for some requests (a fast path that falls back)
calls :meth:`DirectApp.routed`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from litestar import Litestar

#: The Host header litestar's router accepts (RFC 3986 reg-name / IP-literal characters, port included);
#: anything else it answers 400 "Invalid host header".  A test compares the two on a table of hosts.
#: A raw ASGI endpoint (scope, receive, send); typed loosely so any ASGI callable fits.
Endpoint = Callable[[Any, Any, Any], Awaitable[None]]

_HOST: Final = re.compile(rb"\A[0-9A-Za-z!$&'()*+,;=\-._~:\[\]@%]*\Z")


def valid_host(scope: Mapping[str, Any]) -> bool:
    for name, value in scope["headers"]:
        if name == b"host":
            return _HOST.match(value) is not None
    return True


class DirectApp(Litestar):
    """Litestar, with ``direct`` (exact path → ASGI endpoint) answered before its router."""

    def __init__(self, *, direct: Mapping[str, Endpoint] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.direct: dict[str, Endpoint] = dict(direct or {})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            endpoint = self.direct.get(scope["path"])
            if endpoint is not None and valid_host(scope):
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def routed(self, scope: Any, receive: Any, send: Any) -> None:
        """Litestar's own handling of a request (what a direct endpoint falls back to)."""
        await super().__call__(scope, receive, send)
