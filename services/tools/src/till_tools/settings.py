"""Settings of the tools service (SPEC §1); read once by the entry point."""

from __future__ import annotations

import msgspec

from till_common.settings import check_url, require_secret


class ToolsSettings(msgspec.Struct, frozen=True, kw_only=True):
    internal_token: str
    public_url: str = "http://127.0.0.1:8000"
    tools_database_url: str = "sqlite+aiosqlite:///./var/tools.db"
    log_level: str = "info"
    #: encrypts stores' payment API keys at rest (D863); unset: such a key cannot be stored
    key_encryption_key: str | None = None

    def validate(self) -> None:
        check_url("public_url", self.public_url)
        require_secret("internal_token", self.internal_token)
        if self.key_encryption_key is not None:
            require_secret("key_encryption_key", self.key_encryption_key)
