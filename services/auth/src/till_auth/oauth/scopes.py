"""Scope requests against the role (SPEC §4): narrowed to the role, unknown strings refused."""

from __future__ import annotations

from till_auth.oauth.errors import InvalidScope
from till_common.permissions import UnknownScope, format_scope, grant_scopes, parse_scope

#: Standard scopes some clients add by habit; they ask for nothing Till does not already do
#: (refresh tokens are issued to every client registered for the refresh_token grant).
IGNORED = frozenset({"offline_access"})


def requested(scope: str | None) -> tuple[str, ...] | None:
    if scope is not None:
        kept = [s for s in scope.split() if s not in IGNORED]
        if len(kept) != len(scope.split()):
            scope = " ".join(kept)
    try:
        return parse_scope(scope)
    except UnknownScope as exc:
        raise InvalidScope(f"unknown scope {exc.args[0]!r}") from None


def for_role(role: str, scope: str | None) -> str:
    return format_scope(grant_scopes(role, requested(scope)))  # type: ignore[arg-type]


def narrow(granted: str, scope: str | None) -> str:
    """RFC 6749 §6: a refresh may ask for a subset of the original grant, never more."""
    wanted = requested(scope)
    if wanted is None:
        return granted
    have = set(granted.split())
    wider = [s for s in wanted if s not in have]
    if wider:
        raise InvalidScope(f"scope {wider[0]!r} was not granted")
    return format_scope(frozenset(wanted))
