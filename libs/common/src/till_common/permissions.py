"""Roles, categories and permissions (SPEC §5).  Effective permission = role ∩ token scope."""

from __future__ import annotations

from typing import Final, Literal

Role = Literal["owner", "manager", "support", "analyst"]
ROLES: Final[tuple[Role, ...]] = ("owner", "manager", "support", "analyst")

CATEGORIES: Final = (
    "products", "orders", "categories", "customers", "analytics",
    "coupons", "content", "themes", "menus", "settings",
)

#: The twenty scope strings, in a stable order (this is `scopes_supported`).
ALL_SCOPES: Final[tuple[str, ...]] = tuple(f"{c}:{a}" for c in CATEGORIES for a in ("read", "write"))

#: Plain-language descriptions for the consent page.
SCOPE_DESCRIPTIONS: Final[dict[str, str]] = {
    "products:read": "See your products, variants and stock",
    "products:write": "Create, change and delete products, prices and stock",
    "orders:read": "See your orders",
    "orders:write": "Create orders, change their status, fulfil and refund them",
    "categories:read": "See your categories",
    "categories:write": "Create, change and delete categories",
    "customers:read": "See your customers and their contact details",
    "customers:write": "Create and change customers",
    "analytics:read": "See sales, traffic and product reports",
    "analytics:write": "Change analytics configuration",
    "coupons:read": "See your discount codes",
    "coupons:write": "Create, change and delete discount codes",
    "content:read": "See your blog posts and pages",
    "content:write": "Create, change and delete blog posts and pages",
    "themes:read": "See your theme and its settings",
    "themes:write": "Change your theme settings and sections",
    "menus:read": "See your navigation menus",
    "menus:write": "Create, change and delete navigation menus",
    "settings:read": "See store, shipping and checkout settings",
    "settings:write": "Change store, shipping and checkout settings",
}

ROLE_PERMISSIONS: Final[dict[Role, frozenset[str]]] = {
    "owner": frozenset(ALL_SCOPES),
    "manager": frozenset(s for s in ALL_SCOPES if s != "settings:write"),
    "support": frozenset({"orders:read", "orders:write", "customers:read", "customers:write",
                          "products:read"}),
    "analyst": frozenset(s for s in ALL_SCOPES if s.endswith(":read")),
}


class UnknownScope(ValueError):
    """A scope string that is not one of :data:`ALL_SCOPES`."""


def parse_scope(scope: str | None) -> tuple[str, ...] | None:
    """Split an OAuth ``scope`` parameter; ``None``/empty means "not requested"."""
    if not scope or not scope.strip():
        return None
    parts = tuple(dict.fromkeys(scope.split()))
    bad = [p for p in parts if p not in SCOPE_DESCRIPTIONS]
    if bad:
        raise UnknownScope(bad[0])
    return parts


def grant_scopes(role: Role, requested: tuple[str, ...] | None) -> tuple[str, ...]:
    """SPEC §4: nothing requested → the role's full set; beyond the role → narrowed, not refused."""
    allowed = ROLE_PERMISSIONS[role]
    wanted = ALL_SCOPES if requested is None else requested
    return tuple(s for s in ALL_SCOPES if s in allowed and s in wanted)


def format_scope(scopes: tuple[str, ...] | frozenset[str]) -> str:
    return " ".join(s for s in ALL_SCOPES if s in scopes)
