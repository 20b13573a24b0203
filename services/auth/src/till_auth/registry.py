"""Everything the auth service holds open, built once by ``create_app`` (cf. Hydra's registry)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from till_auth.settings import AuthSettings
from till_db.engine import make_engine, ping, sessionmaker


@dataclass
class Registry:
    settings: AuthSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[Any]
    redis: Redis | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: AuthSettings) -> Registry:
        engine = make_engine(settings.auth_database_url, "TILL_AUTH_DATABASE_URL")
        redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        return cls(settings=settings, engine=engine, sessions=sessionmaker(engine), redis=redis)

    async def check_database(self) -> None:
        await ping(self.engine)

    async def check_redis(self) -> None:
        if self.redis is not None:
            await self.redis.ping()

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()
