"""Settings of the gateway (SPEC §1); read once by the entry point."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

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
    tools_batch_inflight: int = 8        # calls to tools batched beyond this many in flight; 0: never (D880)
    # below TILL_KEY_ACTIVATION_DELAY (600), so a rotated-in key is known before it signs; a
    # retired key is forgotten within this time (FT-11)
    jwks_refresh_interval: float = 300.0
    log_level: str = "info"
    conformance_fixtures: bool = False  # the conformance suite's fixture pack (conformance_pack.py)

    def validate(self) -> None:
        for name in ("public_url", "auth_url", "tools_url"):
            check_url(name, getattr(self, name))
        require_secret("internal_token", self.internal_token)
        if self.redis_url is not None:
            check_url("redis_url", self.redis_url, schemes=("redis", "rediss", "unix"))
        if not 1 <= self.jwks_refresh_interval <= 3600:
            raise ConfigError("TILL_JWKS_REFRESH_INTERVAL must be between 1 and 3600 seconds")
        if self.rate_limit_per_minute < 1:
            raise ConfigError("TILL_RATE_LIMIT_PER_MINUTE must be at least 1")
        if self.conformance_fixtures and not _is_loopback(self.public_url):
            raise ConfigError("TILL_CONFORMANCE_FIXTURES is for test runs only: it needs a loopback "
                              "TILL_PUBLIC_URL (127.0.0.1, ::1 or localhost)")
        if not 0 <= self.tools_batch_inflight <= 100:
            raise ConfigError("TILL_TOOLS_BATCH_INFLIGHT must be between 0 (no batching) and 100")
        if self.sse_sessions_per_principal < 1:
            raise ConfigError("TILL_SSE_SESSIONS_PER_PRINCIPAL must be at least 1")
        if self.session_ttl < 2 or self.heartbeat_interval <= 0:
            raise ConfigError("TILL_SESSION_TTL must be at least 2 and TILL_HEARTBEAT_INTERVAL positive")

    @property
    def origins(self) -> frozenset[str]:
        """The public origin is always allowed; TILL_ALLOWED_ORIGINS adds others."""
        return frozenset({self.public_url, *self.allowed_origins})


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
