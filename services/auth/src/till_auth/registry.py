"""Everything the auth service holds open, built once by ``create_app`` (cf. Hydra's registry)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec
from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from till_auth.keys import KeyRing
from till_auth.ratelimit import Limiter
from till_auth.settings import AuthSettings
from till_common.logging import get_logger
from till_common.protocol.internal import RevocationEvent, revocation_channel
from till_common.sealing import Sealer, Signer
from till_db.engine import make_engine, ping, sessionmaker

log = get_logger("till.auth")


def _immediate_transactions(engine: AsyncEngine) -> None:
    """SQLite: every transaction takes the write lock up front (BEGIN IMMEDIATE).

    A deferred transaction that read first and writes later fails with SQLITE_BUSY_SNAPSHOT
    when another writer committed in between (two racing refreshes, TK-09); taking the lock at
    BEGIN makes them wait for each other instead (busy_timeout).  The SQLAlchemy recipe for
    pysqlite/aiosqlite: disable the driver's own BEGIN and emit ours.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _no_driver_begin(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@dataclass
class Tx:
    """One database transaction plus the revocation events to publish once it has committed."""

    db: AsyncSession
    events: list[RevocationEvent] = field(default_factory=list)


@dataclass
class Registry:
    settings: AuthSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[Any]
    keys: KeyRing
    successors: Sealer          # refresh successors, sealed for the grace window only
    flash: Sealer               # a new personal token on its way to the one page view that shows it
    csrf: Signer
    limiter: Limiter
    redis: Redis | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: AuthSettings) -> Registry:
        engine = make_engine(settings.auth_database_url, "TILL_AUTH_DATABASE_URL")
        if engine.dialect.name == "sqlite":
            _immediate_transactions(engine)
        redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        sessions = sessionmaker(engine)
        kek = settings.key_encryption_key
        return cls(settings=settings, engine=engine, sessions=sessions, redis=redis,
                   keys=KeyRing(sessions, kek, token_ttl=settings.access_token_ttl,
                                activation_delay=settings.key_activation_delay),
                   successors=Sealer(kek, "till refresh successors v1"),
                   flash=Sealer(kek, "till token flash v1"),
                   csrf=Signer(kek, "till csrf v1"),
                   limiter=Limiter(redis, settings.redis_namespace))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """Commit, then publish: a gateway never hears of a revocation that was rolled back."""
        async with self.sessions.begin() as db:
            tx = Tx(db)
            yield tx
        await self.publish(tx.events)

    async def publish(self, events: list[RevocationEvent]) -> None:
        if self.redis is None or not events:
            return
        channel = revocation_channel(self.settings.redis_namespace)
        for ev in events:
            try:
                await self.redis.publish(channel, msgspec.json.encode(ev))
            except Exception as exc:     # the feed still carries it; gateways poll every 10 s
                log.warning("revocation publish failed", error=type(exc).__name__, seq=ev.seq)

    async def check_database(self) -> None:
        await ping(self.engine)

    async def check_redis(self) -> None:
        if self.redis is not None:
            await self.redis.ping()

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()
