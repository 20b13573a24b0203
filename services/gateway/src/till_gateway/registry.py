"""Everything the gateway holds open, built once by ``create_app`` (Hydra's registry pattern)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

from till_common.errors import Unavailable
from till_common.http import InternalClient
from till_common.jwt import AccessTokenVerifier, JwksCache
from till_gateway import fastredis
from till_gateway.auth import Authenticator, ProtectedResource
from till_gateway.background import Background
from till_gateway.conformance_pack import ConformancePack
from till_gateway.dispatch import Dispatcher
from till_gateway.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from till_gateway.revocations import RevocationState
from till_gateway.sessions import SessionHub
from till_gateway.settings import GatewaySettings
from till_gateway.transports.common import Gate
from till_gateway.transports.proxy import AuthProxy
from till_gateway.upstream import Auth, Tools

REDIS_POOL_SIZE = 100
REDIS_POOL_WAIT = 5.0


def redis_client(url: str) -> Redis:
    """A pool that queues callers when all connections are busy: redis-py's default pool (also 100)
    raises "Too many connections" instead, which turned a burst of 200 SSE opens into 503s
    (``make bench`` section 2; docs/decisions.md D604)."""
    pool = BlockingConnectionPool.from_url(url, max_connections=REDIS_POOL_SIZE, timeout=REDIS_POOL_WAIT,
                                           socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)
    return Redis.from_pool(pool)


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
        reg = cls(
            settings=settings,
            auth=InternalClient(settings.auth_url, settings.internal_token, timeout=timeout),
            tools=InternalClient(settings.tools_url, settings.internal_token, timeout=timeout),
            redis=redis_client(settings.redis_url) if settings.redis_url else None,
        )
        reg.wire()
        return reg

    def wire(self) -> None:
        s = self.settings
        self.resource = ProtectedResource(s.public_url)
        self.auth_api = Auth(self.auth)
        self.tools_api = Tools(self.tools, batch_inflight=s.tools_batch_inflight)
        self.revocations = RevocationState()
        self.jwks = JwksCache(self.auth_api.jwks)
        verifier = AccessTokenVerifier(self.jwks, issuer=s.public_url, audiences=self.resource.audiences)
        self.authenticator = Authenticator(verifier, self.auth_api.introspect, self.revocations)
        self.fast = fastredis.pipelined(self.redis) if self.redis is not None else None
        self.hub = SessionHub(self.redis, s.redis_namespace, s.session_ttl, heartbeat=s.heartbeat_interval,
                              per_principal=s.sse_sessions_per_principal, fast=self.fast)
        self.revocations.listeners.append(lambda: self.hub.close_revoked(self.revocations))
        limiter: RateLimiter = (RedisRateLimiter(self.redis, s.redis_namespace, s.rate_limit_per_minute, fast=self.fast)
                                if self.redis is not None else MemoryRateLimiter(s.rate_limit_per_minute))
        self.dispatcher = Dispatcher(pack=ConformancePack() if s.conformance_fixtures else None)
        self.gate = Gate(s, self.resource, self.authenticator, limiter, self.dispatcher, self.tools_api, self.hub)
        self.background = Background(self.auth_api, self.revocations, self.hub, self.redis, s.redis_namespace,
                                     jwks=self.jwks, jwks_interval=s.jwks_refresh_interval, fast=self.fast)
        self.proxy = AuthProxy(s.auth_url, s.internal_token, s.upstream_timeout)

    async def _upstream_ok(self, client: InternalClient) -> None:
        status, _ = await client.request("GET", "/healthz")
        if status != 200:
            raise Unavailable(f"{client.base_url} answered {status}")

    async def check_auth(self) -> None:
        await self._upstream_ok(self.auth)

    async def check_tools(self) -> None:
        await self._upstream_ok(self.tools)

    async def check_redis(self) -> None:
        if self.redis is not None:
            await self.redis.ping()
            if not self.hub.routable:
                raise Unavailable("not subscribed to the replica channel")

    async def check_jwks(self) -> None:
        if self.jwks.failed:
            raise Unavailable("the last JWKS fetch failed")

    async def check_revocations(self) -> None:
        if not self.revocations.synced:
            raise Unavailable("revocation feed not read yet")

    async def close(self) -> None:
        await self.auth.close()
        await self.tools.close()
        await self.proxy.close()
        if self.redis is not None:
            if self.fast is not None:
                self.fast.close()
            await self.redis.aclose()
