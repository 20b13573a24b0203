"""A pipelined Redis connection for the two scripts every MCP request runs (rate limit, SSE delivery).

redis-py spends ~150-180 µs of CPU per call on a loaded replica whatever the reply (pool checkout
under a lock, health check, retry wrapper, timeout context, response callbacks): that was two
thirds of the Redis cost of a legacy-SSE POST and hiredis alone moved it by ~5 % (D840).  This
client keeps ONE connection per replica and pipelines every caller on it: a command is packed by
hiredis and written at once, its future is queued, and replies (parsed by ``hiredis.Reader``) are
handed out in order.  No pool, no lock on the hot path.

Semantics the callers rely on are redis-py's: failures raise :class:`redis.exceptions.RedisError`
subclasses (ConnectionError, TimeoutError, ResponseError), so ``except (RedisError, OSError)`` fails
open or answers 503 exactly as before.  A lost connection fails every call in flight and the next
call reconnects (connect timeout and per-call timeout from the pool's settings); a call with no reply
within the socket timeout aborts the connection (every caller on it gets TimeoutError).  Scripts go
as EVALSHA and are re-sent as EVAL after NOSCRIPT (a restarted or flushed Redis).

Only plain TCP is handled (host, port, db, username/password); any other connection class (TLS,
unix socket) makes :func:`pipelined` return None and callers keep using redis-py.  The registry
makes one and hands it to the hub, the rate limiter and the subscription; built without it (as the
unit tests do) they use redis-py for everything, as before.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Callable
from typing import Any, Final, TypeVar

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

DEFAULT_TIMEOUT: Final = 5.0
_P = TypeVar("_P", bound="_Protocol")


class Script:
    """A Lua script sent by its SHA1 (EVALSHA), and in full once after NOSCRIPT."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout: float) -> None:
        self.reader = hiredis.Reader(replyError=ResponseError)
        self.waiters: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.timeout = timeout
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]     # uvloop's is not a subclass

    def call(self, packed: bytes) -> asyncio.Future[Any]:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self.waiters.append((fut, loop.time()))
        self.transport.write(packed)
        if self._timer is None:
            self._timer = loop.call_later(self.timeout, self._check)
        return fut

    def _check(self) -> None:
        self._timer = None
        if not self.waiters:
            return
        loop = asyncio.get_running_loop()
        oldest = self.waiters[0][1]
        if loop.time() - oldest >= self.timeout:
            self._fail(RedisTimeoutError("no reply from Redis within the socket timeout"))
            if self.transport is not None:
                self.transport.abort()
            return
        self._timer = loop.call_later(self.timeout - (loop.time() - oldest), self._check)

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        try:
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                self.on_reply(reply)
        except hiredis.ProtocolError as exc:
            self._fail(RedisConnectionError(f"Redis protocol error: {exc}"))
            if self.transport is not None:
                self.transport.abort()

    def on_reply(self, reply: Any) -> None:
        """The next reply answers the oldest queued call."""
        if not self.waiters:                # a reply nobody asked for: the stream is out of step
            raise hiredis.ProtocolError("unexpected reply")
        fut, _ = self.waiters.popleft()
        if not fut.done():                  # its caller may have been cancelled
            fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError("connection to Redis lost"))

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self.waiters:
            fut, _ = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(exc)


class _Subscriber(_Protocol):
    """A connection in subscribed mode: messages go straight to ``on_message`` from the event loop's
    read callback (no task wake-up, no ``get_message`` call per message); other replies (subscribe
    confirmations, pongs) answer the queued calls in order."""

    def __init__(self, timeout: float, on_message: Callable[[bytes, bytes], None]) -> None:
        super().__init__(timeout)
        self.on_message = on_message
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_reply(self, reply: Any) -> None:
        if type(reply) is list and len(reply) == 3 and reply[0] == b"message":
            self.on_message(reply[1], reply[2])
        else:
            super().on_reply(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.lost.done():
            self.lost.set_result(None)


class Subscription:
    def __init__(self, proto: _Subscriber) -> None:
        self._proto = proto

    async def wait_lost(self, seconds: float) -> bool:
        """True once the connection is lost; False if it is still up after ``seconds``."""
        done, _ = await asyncio.wait([self._proto.lost], timeout=seconds)
        return bool(done)

    async def ping(self) -> None:
        """A round trip on the subscribed connection (RESP2 answers ``["pong", ""]``); raises when the
        connection is gone or silent for the socket timeout (it is then aborted)."""
        reply = await self._proto.call(hiredis.pack_command(("PING",)))
        if isinstance(reply, ResponseError):
            raise reply

    def close(self) -> None:
        if self._proto.transport is not None:
            self._proto.transport.close()


class PipelinedRedis:
    def __init__(self, host: str, port: int, db: int = 0, username: str | None = None,
                 password: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 connect_timeout: float = DEFAULT_TIMEOUT) -> None:
        self.host, self.port, self.db = host, port, db
        self.username, self.password = username, password
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def _open(self, factory: Callable[[], _P], setup: list[tuple[Any, ...]]) -> _P:
        loop = asyncio.get_running_loop()
        try:
            _, proto = await asyncio.wait_for(loop.create_connection(factory, self.host, self.port),
                                              self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {type(exc).__name__}") from None
        cmds: list[tuple[Any, ...]] = []
        if self.password is not None:
            cmds.append(("AUTH", self.password) if self.username is None else ("AUTH", self.username, self.password))
        if self.db:
            cmds.append(("SELECT", self.db))
        try:
            for cmd in [*cmds, *setup]:
                reply = await asyncio.wait_for(proto.call(hiredis.pack_command(cmd)), self.timeout)
                if isinstance(reply, ResponseError):
                    raise reply
        except BaseException:
            if proto.transport is not None:
                proto.transport.abort()
            raise
        return proto

    async def subscribe(self, channels: list[str], on_message: Callable[[bytes, bytes], None]) -> Subscription:
        """A dedicated connection subscribed to ``channels`` (confirmed before this returns)."""
        # one SUBSCRIBE per channel: each has one confirmation reply, awaited like any set-up command
        proto = await self._open(lambda: _Subscriber(self.timeout, on_message),
                                 [("SUBSCRIBE", channel) for channel in channels])
        return Subscription(proto)

    async def _connect(self) -> _Protocol:
        if self._connecting is not None:          # one connect at a time; the others wait for it
            return await asyncio.shield(self._connecting)
        loop = asyncio.get_running_loop()
        self._connecting = done = loop.create_future()
        try:
            proto = await self._open(lambda: _Protocol(self.timeout), [])
            self._proto = proto
            done.set_result(proto)
            return proto
        except BaseException as exc:
            done.set_exception(exc if isinstance(exc, Exception) else RedisConnectionError("connect cancelled"))
            done.exception()                      # retrieved: no "never retrieved" warning
            raise
        finally:
            self._connecting = None

    async def execute(self, *args: Any) -> Any:
        proto = self._proto
        if proto is None or proto.closed:
            proto = await self._connect()
        reply = await proto.call(hiredis.pack_command(args))
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def evalsha(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return await self.execute("EVAL", script.source, len(keys), *keys, *args)

    def close(self) -> None:
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None:
            proto.transport.close()


def pipelined(redis: Redis) -> PipelinedRedis | None:
    """A pipelined connection with ``redis``'s settings (connected on first use; the caller closes
    it), or None when they are not plain TCP."""
    pool = redis.connection_pool
    kw = pool.connection_kwargs
    if pool.connection_class is not Connection or kw.get("ssl"):
        return None
    return PipelinedRedis(kw.get("host", "localhost"), int(kw.get("port", 6379)), int(kw.get("db", 0) or 0),
                          kw.get("username"), kw.get("password"), float(kw.get("socket_timeout") or DEFAULT_TIMEOUT),
                          float(kw.get("socket_connect_timeout") or DEFAULT_TIMEOUT))


__all__ = ["PipelinedRedis", "Script", "Subscription", "pipelined"]
