"""Everything the gateway holds open, built once by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from till_common.errors import Unavailable
from till_common.http import InternalClient
from till_gateway.settings import GatewaySettings


@dataclass
class Registry:
    settings: GatewaySettings
    auth: InternalClient
    tools: InternalClient
    redis: Redis | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: GatewaySettings) -> Registry:
        timeout = settings.upstream_timeout
        return cls(
            settings=settings,
            auth=InternalClient(settings.auth_url, settings.internal_token, timeout=timeout),
            tools=InternalClient(settings.tools_url, settings.internal_token, timeout=timeout),
            redis=Redis.from_url(settings.redis_url) if settings.redis_url else None,
        )

    async def _upstream_ok(self, client: InternalClient) -> None:
        status, _, _ = await client.request("GET", "/healthz")
        if status != 200:
            raise Unavailable(f"{client.base_url} answered {status}")

    async def check_auth(self) -> None:
        await self._upstream_ok(self.auth)

    async def check_tools(self) -> None:
        await self._upstream_ok(self.tools)

    async def check_redis(self) -> None:
        if self.redis is not None:
            await self.redis.ping()

    async def close(self) -> None:
        await self.auth.close()
        await self.tools.close()
        if self.redis is not None:
            await self.redis.aclose()
