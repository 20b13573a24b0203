"""Who is calling: built by the gateway from a verified token, trusted by tools (SPEC §4)."""

from __future__ import annotations

import msgspec

from till_common.permissions import ROLE_PERMISSIONS, Role


class Principal(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    user_id: int
    store_id: int
    role: Role
    scopes: tuple[str, ...]
    client_id: str | None = None     # OAuth client; None for a personal token
    token_id: str                    # JWT jti or the PAT's id
    request_id: str = ""

    def role_allows(self, permission: str) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    def scope_allows(self, permission: str) -> bool:
        return permission in self.scopes
