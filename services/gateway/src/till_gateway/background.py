"""Background work of a replica: the revocation feed poll, the JWKS refresh, the Redis subscription.

One pub/sub connection carries both channels: ``revocation_channel(ns)`` (auth's pushes) and
``<ns>:replica:<id>`` (SSE responses for streams this replica holds).  The feed is read whole
at start and polled every 10 s, so a missed push is applied within 15 s at worst (SPEC §4).
JWKS is refreshed every ``TILL_JWKS_REFRESH_INTERVAL``: without it a key auth retired (after a
rotation) stayed trusted for the life of the process, since only an unknown ``kid`` refetched.
A failed refresh keeps the cached keys, so JWT calls go on while auth is down (FT-08).
Both retry every second while failing (a replica started before auth, under ``till dev``): an
:class:`Outage` logs the first failure and the recovery, the retries in between only at debug.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from till_common.errors import TillError
from till_common.jwt import JwksCache
from till_common.logging import get_logger
from till_common.protocol.internal import RevocationEvent, revocation_channel
from till_gateway.fastredis import PipelinedRedis
from till_gateway.revocations import RevocationState
from till_gateway.sessions import SessionHub
from till_gateway.upstream import Auth

log = get_logger("till.gateway.background")
_event_decoder = msgspec.json.Decoder(RevocationEvent)
SUBSCRIPTION_PING = 30.0


class Outage:
    """Log a retried dependency's outage once, not once per retry (D860).

    The first failure of each kind is a warning (an unexpected exception is logged with its
    traceback); the failures after it are debug lines, and the first success after them is one
    info line.  Readiness is not this class' business: /readyz asks the state.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.failures = 0
        self._kinds: set[str] = set()      # the errors of this outage already logged loudly

    def failed(self, event: str, exc: BaseException, *, unexpected: bool = False) -> None:
        self.failures += 1
        kind = type(exc).__name__
        if kind in self._kinds:
            log.debug(event, error=kind, failures=self.failures)
            return
        self._kinds.add(kind)              # a new kind of failure is worth one more line
        if unexpected:
            log.exception(event)
        else:
            log.warning(event, error=kind)

    def recovered(self) -> None:
        if self.failures:
            log.info(f"{self.name} recovered", failures=self.failures)
        self.failures = 0
        self._kinds.clear()


class Background:
    def __init__(self, auth: Auth, state: RevocationState, hub: SessionHub, redis: Redis | None,
                 namespace: str, poll_interval: float = 10.0, jwks: JwksCache | None = None,
                 jwks_interval: float = 300.0, fast: PipelinedRedis | None = None) -> None:
        self.auth = auth
        self.state = state
        self.hub = hub
        self.redis = redis
        self.revocation_channel = revocation_channel(namespace)
        self.poll_interval = poll_interval
        self.jwks = jwks
        self.jwks_interval = jwks_interval
        self.fast = fast
        self.subscribed = asyncio.Event()
        self._hub_channel = hub.channel.encode()
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self.feed_outage = Outage("revocation feed")
        self.jwks_outage = Outage("JWKS refresh")

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._poll(), name="revocation-feed"))
        if self.jwks is not None:
            self._tasks.append(asyncio.create_task(self._refresh_jwks(self.jwks), name="jwks-refresh"))
        self._tasks.append(asyncio.create_task(self.hub.maintain(), name="sse-sessions"))
        if self.redis is not None:
            self._tasks.append(asyncio.create_task(self._listen(), name="redis-subscription"))
        else:
            self.subscribed.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def _poll(self) -> None:
        while True:
            try:
                await self.state.sync(self.auth.revocations)
            except (TillError, msgspec.DecodeError, OSError) as exc:
                self.feed_outage.failed("revocation feed unavailable", exc)
            except Exception as exc:
                self.feed_outage.failed("revocation feed failed", exc, unexpected=True)
            else:
                self.feed_outage.recovered()
            self._wake.clear()
            # Until the first full read succeeds, retry quickly: tokens revoked before start matter.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval if self.state.synced else 1.0)

    async def _refresh_jwks(self, jwks: JwksCache) -> None:
        while True:
            # after a failure, retry within a second: the replica reports not ready until it works
            await asyncio.sleep(min(1.0, self.jwks_interval) if jwks.failed else self.jwks_interval)
            try:
                await jwks.refresh()
            except (TillError, ValueError, OSError) as exc:
                self.jwks_outage.failed("JWKS refresh failed; keeping the cached keys", exc)
            except Exception as exc:
                self.jwks_outage.failed("JWKS refresh failed; keeping the cached keys", exc, unexpected=True)
            else:
                self.jwks_outage.recovered()

    def _on_message(self, message: dict[str, Any]) -> None:
        """redis-py's message dict (the path without the pipelined connection)."""
        channel = message["channel"]
        self._on_push(channel if isinstance(channel, bytes) else channel.encode(), message["data"])

    def _on_push(self, channel: bytes, data: bytes) -> None:
        if channel == self._hub_channel:
            self.hub.receive(data)
            return
        try:
            event = _event_decoder.decode(data)
        except msgspec.DecodeError:
            log.warning("unreadable revocation push")
            return
        self.state.apply(event)

    async def _listen(self) -> None:
        assert self.redis is not None
        if self.fast is not None:
            await self._listen_pipelined(self.fast)
            return
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.revocation_channel, self.hub.channel)
                self.subscribed.set()
                self.hub.routable = True
                await self.hub.beat()
                self._wake.set()          # pushes may have been missed while disconnected: read the feed
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30.0)
                    if message is not None and message.get("type") == "message":
                        self._on_message(message)
            except (RedisError, OSError) as exc:
                self.hub.routable = False
                log.warning("redis subscription lost", error=type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _listen_pipelined(self, fast: PipelinedRedis) -> None:
        """The subscription on a dedicated connection whose messages are handled in the read callback
        (fastredis.py): no ``get_message`` round of redis-py per SSE delivery (D842).  A PING every
        :data:`SUBSCRIPTION_PING` seconds finds a connection that died silently."""
        while True:
            sub = None
            try:
                sub = await fast.subscribe([self.revocation_channel, self.hub.channel], self._on_push)
                self.subscribed.set()
                self.hub.routable = True
                await self.hub.beat()
                self._wake.set()          # pushes may have been missed while disconnected: read the feed
                while not await sub.wait_lost(SUBSCRIPTION_PING):
                    await sub.ping()
                raise RedisConnectionError("subscription connection lost")
            except (RedisError, OSError) as exc:
                self.hub.routable = False
                log.warning("redis subscription lost", error=type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                if sub is not None:
                    sub.close()
