"""Request plumbing for the edge: the registry, the clock, client IP, cookies, CSRF, sessions."""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from till_auth.oauth.errors import InvalidRequest
from till_auth.registry import Registry
from till_auth.store import sessions, users
from till_auth.store.models import Membership, User
from till_auth.web.errors import malformed

GATEWAY_HEADER = "x-till-gateway"

#: NUL in a query string: a literal byte or its escape (parse_qsl and litestar decode both)
_QUERY_NUL = re.compile(rb"%00|\x00")
NO_NUL = "must not contain a NUL character"


async def refuse_nul(request: Request[Any, Any, Any]) -> None:
    """``before_request`` of the whole app: a NUL in the path or the query is malformed input (D861).

    PostgreSQL text cannot hold NUL (asyncpg refuses the parameter), so a ``%00`` in a client id
    used to reach the database and come back as a 500; no value we store has one, so refusing it
    here changes no answer but that one.  Bodies are checked where they are parsed (:func:`form`,
    the registration JSON, Basic credentials, the consent form's embedded request).
    """
    path: str = request.scope["path"]
    if "\x00" in path or _QUERY_NUL.search(request.scope["query_string"]):
        raise malformed(path, "the URL " + NO_NUL)


def registry(request: Request[Any, Any, Any]) -> Registry:
    reg: Registry = request.app.state["registry"]
    return reg


def now() -> int:
    return int(time.time())


def client_ip(request: Request[Any, Any, Any], reg: Registry) -> str:
    """The forwarded client IP only when the request provably came through our gateway."""
    marker = request.headers.get(GATEWAY_HEADER)
    if marker is not None and hmac.compare_digest(marker.encode(), reg.settings.internal_token.encode()):
        forwarded = request.headers.get("x-forwarded-for", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first[:64]
    return request.client.host if request.client else "unknown"


def secure(reg: Registry) -> bool:
    return reg.settings.public_url.startswith("https://")


def cookie_name(reg: Registry, base: str) -> str:
    # __Host- needs Secure, Path=/ and no Domain: only possible over https
    return f"__Host-{base}" if secure(reg) else base


def set_cookie(reg: Registry, response: Response[Any], base: str, value: str, max_age: int) -> None:
    response.set_cookie(cookie_name(reg, base), value, max_age=max_age, path="/", secure=secure(reg),
                        httponly=True, samesite="lax")


def clear_cookie(reg: Registry, response: Response[Any], base: str) -> None:
    response.set_cookie(cookie_name(reg, base), "", max_age=0, path="/", secure=secure(reg), httponly=True,
                        samesite="lax")


def same_origin(request: Request[Any, Any, Any], reg: Registry) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return request.headers.get("sec-fetch-site") == "same-origin"
    public = urlsplit(reg.settings.public_url)
    return origin.lower() == f"{public.scheme}://{public.netloc}".lower()


async def form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """A urlencoded form as a dict; a repeated field is ``invalid_request`` (RFC 6749 §3.1)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise InvalidRequest("the body must be application/x-www-form-urlencoded")
    data = await request.form()
    out: dict[str, str] = {}
    for key, value in data.multi_items():
        if not isinstance(value, str):
            raise InvalidRequest("file uploads are not accepted")
        if "\x00" in key or "\x00" in value:
            raise InvalidRequest(f"form fields {NO_NUL}")
        if key in out:
            raise InvalidRequest(f"parameter {key} was sent more than once")
        out[key] = value
    return out


@dataclass(frozen=True)
class Merchant:
    session_id: str
    user: User
    member: Membership

    def csrf(self, reg: Registry) -> str:
        return reg.csrf.sign("session:" + self.session_id)


async def merchant(request: Request[Any, Any, Any], reg: Registry, db: AsyncSession) -> Merchant | None:
    session_id = request.cookies.get(cookie_name(reg, "till_session"))
    row = await sessions.get(db, session_id, now())
    if row is None or session_id is None:
        return None
    user = await db.get(User, row.user_id)
    # the store chosen on these pages, if the user still belongs to it; else the first one
    member = (await users.membership(db, row.user_id, row.store_id) if row.store_id is not None else None) \
        or await users.membership(db, row.user_id)
    if user is None or member is None:
        return None
    return Merchant(session_id, user, member)


async def store_choices(db: AsyncSession, who: Merchant) -> list[dict[str, Any]]:
    """The store switcher's entries; empty when the merchant has only one store (nothing to pick)."""
    rows = await users.memberships(db, who.user.id)
    if len(rows) < 2:
        return []
    return [{"id": m.store_id, "name": s.name, "role": m.role, "current": m.store_id == who.member.store_id}
            for m, s in rows]



def csrf_ok(reg: Registry, who: Merchant, token: str | None) -> bool:
    return reg.csrf.verify("session:" + who.session_id, token)
