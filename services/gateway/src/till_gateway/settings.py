"""Settings of the gateway (SPEC §1); read once by the entry point."""

from __future__ import annotations

import msgspec

from till_common.errors import ConfigError
from till_common.settings import check_url, require_secret


class GatewaySettings(msgspec.Struct, frozen=True, kw_only=True):
    internal_token: str
    public_url: str = "http://127.0.0.1:8000"
    auth_url: str = "http://127.0.0.1:8001"
    tools_url: str = "http://127.0.0.1:8002"
    redis_url: str | None = None          # None: in-process session store, one replica only
    redis_namespace: str = "till"       # keys and channels are "<namespace>:…"
    allowed_origins: tuple[str, ...] = ("https://claude.ai", "https://claude.com")
    rate_limit_per_minute: int = 600
    session_ttl: int = 60
    heartbeat_interval: float = 15.0
    sse_sessions_per_principal: int = 100
    upstream_timeout: float = 30.0
    log_level: str = "info"

    def validate(self) -> None:
        for name in ("public_url", "auth_url", "tools_url"):
            check_url(name, getattr(self, name))
        require_secret("internal_token", self.internal_token)
        if self.redis_url is not None:
            check_url("redis_url", self.redis_url, schemes=("redis", "rediss", "unix"))
        if self.rate_limit_per_minute < 1:
            raise ConfigError("TILL_RATE_LIMIT_PER_MINUTE must be at least 1")
        if self.sse_sessions_per_principal < 1:
            raise ConfigError("TILL_SSE_SESSIONS_PER_PRINCIPAL must be at least 1")
        if self.session_ttl < 2 or self.heartbeat_interval <= 0:
            raise ConfigError("TILL_SESSION_TTL must be at least 2 and TILL_HEARTBEAT_INTERVAL positive")

    @property
    def origins(self) -> frozenset[str]:
        """The public origin is always allowed; TILL_ALLOWED_ORIGINS adds others."""
        return frozenset({self.public_url, *self.allowed_origins})
