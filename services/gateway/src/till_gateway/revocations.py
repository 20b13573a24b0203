"""Revocation state of one gateway replica (SPEC §4), fed by auth's feed and its Redis pushes.

Semantics are :class:`till_common.protocol.internal.RevocationEvent`'s: ``token`` kills a jti or
PAT id; ``grant`` every token whose ``gid`` matches; ``client``/``user``/``store`` every token of
that client id / ``sub`` / store id with ``iat`` ≤ ``before``.  The state is checked on every
request (a few dict look-ups), so caches of verified tokens never outlive a revocation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from till_common.protocol.internal import RevocationEvent, RevocationPage


@dataclass(frozen=True, slots=True)
class Credential:
    """What a verified token (JWT or PAT) says about its holder; shared by auth and sessions."""

    user_id: int
    store_id: int
    role: str
    scopes: tuple[str, ...]
    client_id: str | None
    token_id: str
    iat: int
    gid: str | None
    expires_at: float          # unix seconds after which the token is no longer accepted
    kind: str = "jwt"          # "jwt" or "pat"


@dataclass
class RevocationState:
    cursor: int = 0
    synced: bool = False                          # the whole feed was read at least once
    tokens: set[str] = field(default_factory=set)
    grants: set[str] = field(default_factory=set)
    clients: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    stores: dict[str, int] = field(default_factory=dict)
    listeners: list[Callable[[], None]] = field(default_factory=list)

    def apply(self, event: RevocationEvent) -> None:
        if event.kind == "token":
            self.tokens.add(event.value)
        elif event.kind == "grant":
            self.grants.add(event.value)
        else:
            table = {"client": self.clients, "user": self.users, "store": self.stores}[event.kind]
            table[event.value] = max(table.get(event.value, event.before), event.before)
        self.cursor = max(self.cursor, event.seq)
        for listener in self.listeners:
            listener()

    def is_revoked(self, c: Credential) -> bool:
        if c.token_id in self.tokens or (c.gid is not None and c.gid in self.grants):
            return True
        # "issued before" includes the same second (SPEC §4): iat ≤ before is dead.
        if c.client_id is not None and c.iat <= self.clients.get(c.client_id, -1):
            return True
        return c.iat <= self.users.get(str(c.user_id), -1) or c.iat <= self.stores.get(str(c.store_id), -1)

    async def sync(self, fetch: Callable[[int], Awaitable[RevocationPage]], max_pages: int = 1000) -> int:
        """Read the feed from the cursor to its end; returns how many events were applied."""
        applied = 0
        for _ in range(max_pages):
            before = self.cursor
            page = await fetch(before)
            for event in page.events:        # applying twice is harmless: every kind is idempotent
                self.apply(event)
                applied += 1
            self.cursor = max(self.cursor, page.cursor)
            if not page.events or self.cursor == before:
                break
        self.synced = True
        return applied
