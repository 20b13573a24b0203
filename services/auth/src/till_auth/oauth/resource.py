"""RFC 8707 resource indicators: one server, three names (SPEC §4)."""

from __future__ import annotations

from till_auth.oauth.errors import InvalidTarget
from till_common.jwt import canonical_resource


def accepted(public_url: str) -> frozenset[str]:
    base = canonical_resource(public_url)
    return frozenset({base, base + "/mcp", base + "/mcp/sse"})


def resolve(resource: str | None, public_url: str) -> str:
    """The canonical audience for ``resource``; none given → ``<public>/mcp``."""
    if resource is None:
        return canonical_resource(public_url) + "/mcp"
    if "#" in resource or "://" not in resource:
        raise InvalidTarget("resource must be an absolute URI without a fragment")
    canonical = canonical_resource(resource)
    if canonical not in accepted(public_url):
        raise InvalidTarget("this server does not issue tokens for that resource")
    return canonical
