"""The one HTTP client between services: keep-alive HTTP/1.1 on an ``asyncio.Protocol``.

Responses are parsed by ``httptools.HttpResponseParser`` (llhttp, the parser under uvicorn); no
HTTP is parsed by hand here.  It replaced an aiohttp session on the internal hops after the
gateway's profile showed aiohttp's request machinery at a quarter of the gateway's samples per
tools/call (docs/decisions.md D800).  aiohttp stays where a general client is genuinely needed:
the streaming reverse proxy of auth's public paths (till_gateway/transports/proxy.py: any method,
client headers and cookies both ways), auth's CIMD HTTPS fetch (pinned resolver, redirects off)
and the CLI's doctor.

Every call carries the internal bearer and the current request id; nothing else from the caller's
request is forwarded, so a client's headers can never reach another service (GW-10).

The pool, per client (one base URL):

* idle connections are reused last-in first-out; one older than :data:`IDLE_MAX` seconds is
  closed instead (uvicorn closes an idle keep-alive connection after 5 s, and a request written
  into a connection the server is closing is lost);
* at most ``limit`` connections; callers beyond it wait, within the connect timeout;
* a reused connection found closed *before* anything was written is replaced by another one;
  nothing is ever resent once written (a tools/call is not idempotent);
* bodies: Content-Length or chunked; a response that ends only when the server closes is refused;
* :meth:`InternalClient.post_lines` hands a 200 answer's body to a callback line by line as it
  arrives (the gateway's batched tools calls, D880, D882), on the same connections and rules.

Failures: a refused, reset or unparseable connection → :class:`Unavailable`; no answer within
``timeout`` (connect: ``min(5, timeout)``, waiting for a free slot included) →
:class:`UpstreamError` "upstream timed out".
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Callable
from typing import Any, Final, cast
from urllib.parse import urlencode, urlsplit

import httptools
import msgspec

from till_common.errors import Unavailable, UpstreamError
from till_common.logging import REQUEST_ID_HEADER, request_id_var

IDLE_MAX: Final = 3.0          # seconds an idle connection may be reused
_JSON: Final = "application/json"
_FORM: Final = "application/x-www-form-urlencoded"

LineSink = Callable[[bytes], None]


class _Connection(asyncio.Protocol):
    """One TCP connection carrying one request at a time; the parser lives as long as it does."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.generation = pool.generation
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[None] | None = None
        self.status = 0
        self.chunks: list[bytes] = []
        self.sink: LineSink | None = None     # a 200 body goes here line by line instead of to chunks
        self.partial = b""
        self.keep_alive = False
        self.closed = False          # the transport is gone (connection_lost ran)
        self.dropped = False         # no longer counted by the pool
        self.busy = False            # a request is on it
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        transport = self.transport
        return (not self.closed and not self.dropped and transport is not None and not transport.is_closing()
                and now - self.idle_since <= IDLE_MAX)

    def begin(self, waiter: asyncio.Future[None], sink: LineSink | None = None) -> None:
        self.waiter = waiter
        self.status = 0
        self.chunks = []
        self.sink = sink
        self.partial = b""
        self.keep_alive = False

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: BaseException) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)    # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():     # nothing was asked: a server never speaks first
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"unreadable response: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False                            # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionResetError("connection closed before the response ended"))
        self.pool.lost(self)

    # httptools callbacks

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        sink = self.sink
        if sink is None or self.status != 200:
            self.chunks.append(body)
            return
        waiter = self.waiter
        if waiter is None or waiter.done():     # timed out: nobody reads these lines any more
            return
        if b"\n" not in body:
            self.partial += body
            return
        lines = (self.partial + body).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            if line:
                sink(line)

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:            # an interim answer: the real one follows
            self.chunks = []
            return
        if self.sink is not None and self.partial:   # a last line without its newline
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                self.sink(self.partial)
            self.partial = b""
        self.keep_alive = self.parser.should_keep_alive()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Pool:
    """Connections to one origin: LIFO idle list, a connection limit with a FIFO of waiters."""

    def __init__(self, host: str, port: int, tls: bool, *, limit: int, timeout: float) -> None:
        self.host, self.port = host, port
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() if tls else None
        self.limit = limit
        self.timeout = timeout
        self.connect_timeout = min(5.0, timeout)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.generation = 0          # bumped when the event loop changes: older connections are not counted
        self.count = 0               # connections open or being opened, idle or busy
        self.idle: list[_Connection] = []
        self.open: set[_Connection] = set()
        self.waiters: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()

    def _reset(self, loop: asyncio.AbstractEventLoop) -> None:
        """First use, or use from another event loop (tests): the old loop's connections are unusable."""
        self.loop = loop
        self.generation += 1
        self.count = 0
        self.idle = []
        self.open = set()
        self.waiters = collections.deque()

    async def send(self, data: bytes, sink: LineSink | None = None) -> tuple[int, bytes]:
        """Write one request, return (status, body).  Raises TimeoutError or OSError.

        With ``sink``, a 200 answer's body lines are passed to it as they arrive (the body returned is
        then empty); the call still returns only when the answer has ended."""
        loop = asyncio.get_running_loop()
        if loop is not self.loop:
            self._reset(loop)
        deadline = loop.time() + self.timeout
        conn = await self._acquire(loop, deadline)
        waiter: asyncio.Future[None] = loop.create_future()
        conn.begin(waiter, sink)
        conn.busy = True
        assert conn.transport is not None
        conn.transport.write(data)
        timer = loop.call_at(deadline, _expire, waiter)
        done = False
        try:
            await waiter
            done = True
        finally:
            timer.cancel()
            conn.busy = False
            conn.waiter = None
            conn.sink = None
            if done and conn.keep_alive and not conn.closed:
                self.release(conn, loop.time())
            else:
                self.drop(conn)
        return conn.status, b"".join(conn.chunks)

    async def _acquire(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        connect_by = min(deadline, loop.time() + self.connect_timeout)
        while True:
            now = loop.time()
            while self.idle:
                conn = self.idle.pop()
                if conn.usable(now):
                    return conn
                self.drop(conn)              # closed (or about to be) before we wrote: never used
            if self.count < self.limit:
                self.count += 1
                break
            handed = await self._wait(loop, connect_by)
            if handed is None:               # a slot was passed to us (count already includes it)
                break
            if handed.usable(loop.time()):
                return handed
            self.drop(handed)
        try:
            async with asyncio.timeout_at(connect_by):
                _, conn = await loop.create_connection(lambda: _Connection(self), self.host, self.port,
                                                       ssl=self.ssl)
        except BaseException:
            self._free_slot()
            raise
        self.open.add(conn)
        return conn

    async def _wait(self, loop: asyncio.AbstractEventLoop, when: float) -> _Connection | None:
        waiter: asyncio.Future[_Connection | None] = loop.create_future()
        self.waiters.append(waiter)
        try:
            async with asyncio.timeout_at(when):
                return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():    # handed something just as we gave up
                handed = waiter.result()
                if handed is None:
                    self._free_slot()
                else:
                    self.release(handed, loop.time())
            else:
                waiter.cancel()
                self.waiters.remove(waiter)
            raise

    def release(self, conn: _Connection, now: float) -> None:
        conn.idle_since = now
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append(conn)

    def _free_slot(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)      # the slot passes to the waiter: count unchanged
                return
        self.count -= 1

    def drop(self, conn: _Connection) -> None:
        if conn.dropped:
            return
        conn.dropped = True
        conn.close()
        self.open.discard(conn)
        if conn.generation == self.generation:
            self._free_slot()

    def lost(self, conn: _Connection) -> None:
        """The transport closed.  A busy connection is dropped by its request; an idle one here."""
        if conn.busy or conn.generation != self.generation:
            return
        if conn in self.idle:
            self.idle.remove(conn)
        self.drop(conn)

    def close(self) -> None:
        for conn in list(self.open):
            conn.close()


class InternalClient:
    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0, limit: int = 100) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        tls = parts.scheme == "https"
        self._prefix = parts.path
        self._pool = _Pool(parts.hostname, parts.port or (443 if tls else 80), tls, limit=limit, timeout=timeout)
        host = parts.netloc.rpartition("@")[2]
        _check(host, token)
        self._fixed = f"Host: {host}\r\nAuthorization: Bearer {token}\r\n".encode("latin-1")

    def _head(self, method: str, target: str, extra: dict[str, str] | None) -> list[bytes]:
        _check(target)
        if " " in target:
            raise ValueError("a request target has no spaces")
        parts = [f"{method} {self._prefix}{target} HTTP/1.1\r\n".encode("latin-1"), self._fixed]
        rid = request_id_var.get()
        if rid:
            _check(rid)
            parts.append(f"{REQUEST_ID_HEADER}: {rid}\r\n".encode("latin-1"))
        if extra:
            for name, value in extra.items():
                _check(name, value)
                parts.append(f"{name}: {value}\r\n".encode("latin-1"))
        return parts

    async def _send(self, method: str, path: str, data: bytes, sink: LineSink | None = None) -> tuple[int, bytes]:
        try:
            return await self._pool.send(data, sink)
        except TimeoutError:
            raise UpstreamError("upstream timed out", debug=f"{method} {self.base_url}{path}") from None
        except OSError as exc:
            raise Unavailable("upstream unavailable",
                              debug=f"{method} {self.base_url}{path}: {type(exc).__name__}: {exc}") from None

    async def request(self, method: str, path: str, *, body: bytes | None = None,
                      data: dict[str, str] | None = None, params: dict[str, str] | None = None,
                      content_type: str = _JSON, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """Send one request; returns (status, body).  ``data`` is sent as a form; transport failures raise."""
        if method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            raise ValueError(f"unsupported method {method!r}")    # HEAD would need a body-less parse
        if data is not None and body is None:
            body, content_type = urlencode(data).encode(), _FORM
        target = f"{path}?{urlencode(params)}" if params else path
        parts = self._head(method, target, headers)
        if body is not None:
            parts.append(f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode("latin-1"))
            parts.append(body)
        elif method != "GET":
            parts.append(b"Content-Length: 0\r\n\r\n")
        else:
            parts.append(b"\r\n")
        return await self._send(method, path, b"".join(parts))

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """``request("POST", path, body=…)`` with a JSON body: the per-call hop (gateway → tools)."""
        parts = self._head("POST", path, None)
        parts.append(b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        parts.append(body)
        return await self._send("POST", path, b"".join(parts))

    async def post_lines(self, path: str, body: bytes, on_line: LineSink) -> tuple[int, bytes]:
        """:meth:`post`, for an answer streamed as lines (``application/x-ndjson``).

        If the status is 200, every non-empty line of the body (without its newline) is passed to
        ``on_line`` as soon as it has arrived, and the returned body is empty; any other status
        returns its body as :meth:`post` does.  It returns when the answer has ended; a failure or
        the timeout after some lines were passed raises as :meth:`post` would (nothing is resent).
        ``on_line`` runs inside the connection's read callback: it must not raise or block.
        """
        parts = self._head("POST", path, None)
        parts.append(b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        parts.append(body)
        return await self._send("POST", path, b"".join(parts), on_line)

    async def json(self, method: str, path: str, *, payload: Any = None, type: type[Any] = Any,
                   params: dict[str, str] | None = None) -> Any:
        body = None if payload is None else msgspec.json.encode(payload)
        status, raw = await self.request(method, path, body=body, params=params)
        if status >= 400:
            raise UpstreamError(f"upstream answered {status}", debug=raw[:500].decode(errors="replace"))
        return msgspec.json.decode(raw, type=type)

    async def close(self) -> None:
        """Close every connection; requests still waiting on one fail as Unavailable."""
        self._pool.close()
        await asyncio.sleep(0)          # let the transports run connection_lost before the loop may end


def _check(*values: str) -> None:
    """No control character (CR, LF, …) may reach a request line or header."""
    for value in values:
        if not value.isprintable():
            raise ValueError("control character in an HTTP request line or header")
