"""Settings of the auth service (SPEC §1); read once by the entry point."""

from __future__ import annotations

import msgspec

from till_common.settings import check_url, require_secret


class AuthSettings(msgspec.Struct, frozen=True, kw_only=True):
    internal_token: str
    admin_token: str
    key_encryption_key: str
    public_url: str = "http://127.0.0.1:8000"
    auth_database_url: str = "sqlite+aiosqlite:///./var/auth.db"
    redis_url: str | None = None
    redis_namespace: str = "till"       # keys and channels are "<namespace>:…"
    demo_password: str | None = None
    log_level: str = "info"
    access_token_ttl: int = 3600
    key_activation_delay: int = 600
    client_reap_days: int = 30
    registrations_per_minute: int = 20
    token_failures_per_minute: int = 60             # per client IP (DS-05)
    client_token_failures_per_minute: int = 300     # per known client_id, from any IP (DS-05, D112)
    cimd_allow_private: bool = False

    def validate(self) -> None:
        check_url("public_url", self.public_url)
        for name in ("internal_token", "admin_token", "key_encryption_key"):
            require_secret(name, getattr(self, name))
        if self.redis_url is not None:
            check_url("redis_url", self.redis_url, schemes=("redis", "rediss", "unix"))
