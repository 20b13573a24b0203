"""Internal API for the gateway (bearer TILL_INTERNAL_TOKEN): introspection and the revocation feed."""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from sqlalchemy import update

from till_auth.store import pats, revocations, users
from till_auth.store.models import PersonalToken
from till_auth.web import common
from till_common.errors import BadRequest, Unauthorized
from till_common.permissions import ROLE_PERMISSIONS
from till_common.protocol.internal import Introspection, RevocationPage

INACTIVE = msgspec.json.encode(Introspection(active=False))
_LAST_USED_GRANULARITY = 60


def require_bearer(request: Request[Any, Any, Any], secret: str) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), secret.encode()):
        raise Unauthorized("missing or wrong bearer token")


def _json(body: bytes) -> Response[bytes]:
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


@post("/internal/v1/introspect", status_code=200, include_in_schema=False)
async def introspect(request: Request[Any, Any, Any]) -> Response[bytes]:
    """RFC 7662 for personal tokens; anything unknown, revoked or expired is ``{"active": false}``."""
    reg = common.registry(request)
    require_bearer(request, reg.settings.internal_token)
    data = await common.form(request)
    token = data.get("token", "")
    now = common.now()
    async with reg.sessions.begin() as db:
        row = await pats.find_active(db, token, now)
        member = await users.membership(db, row.user_id, row.store_id) if row is not None else None
        if row is None or member is None:
            return _json(INACTIVE)
        if row.last_used_at is None or now - row.last_used_at >= _LAST_USED_GRANULARITY:
            await db.execute(update(PersonalToken).where(PersonalToken.id == row.id).values(last_used_at=now))
        allowed = ROLE_PERMISSIONS[member.role]  # type: ignore[index]
        scope = " ".join(s for s in row.scope.split() if s in allowed)
        if not scope:
            return _json(INACTIVE)
        body = Introspection(active=True, scope=scope, sub=str(row.user_id), store_id=row.store_id, role=member.role,
                             iat=row.created_at, exp=row.expires_at, jti=row.id, token_type="Bearer",  # noqa: S106 - RFC 7662 token_type
                             
                             token_kind="pat")  # noqa: S106 - a kind, not a secret
    return _json(msgspec.json.encode(body))


@get("/internal/v1/revocations", include_in_schema=False)
async def revocation_feed(request: Request[Any, Any, Any]) -> Response[bytes]:
    reg = common.registry(request)
    require_bearer(request, reg.settings.internal_token)
    raw = request.query_params.get("after", "0")
    try:
        after = int(raw)
    except ValueError:
        raise BadRequest("after must be an integer sequence number") from None
    async with reg.sessions() as db:
        events = await revocations.page(db, max(after, 0))
    cursor = events[-1].seq if events else after
    return _json(msgspec.json.encode(RevocationPage(events=events, cursor=cursor)))


HANDLERS = [introspect, revocation_feed]
