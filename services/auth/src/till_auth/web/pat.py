"""``POST /mcp/token`` and ``GET /mcp/config`` (SPEC §2; seed 001).

A merchant proves who they are with the session cookie — on a same-origin request or with
the page's CSRF token, so another site cannot mint tokens with it — or with HTTP Basic
``email:password`` (throttled like the login form).

``?store_id=N`` picks one of the merchant's stores (D116); without it a Basic caller gets their first
store and a session caller the store chosen on the pages.  A store the merchant is not in is a 403.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, get, post

from till_auth.registry import Registry
from till_auth.store import pats, users
from till_auth.store.models import User
from till_auth.web import common, snippets
from till_auth.web.pages import check_password, mint_for
from till_common.errors import BadRequest, Forbidden, RateLimited, Unauthorized
from till_common.integrations.litestar import problem

MAX_STORE_ID = 2**53 - 1


def _store_id(request: Request[Any, Any, Any]) -> int | None:
    """The ``store_id`` query parameter: absent, or a positive integer (else BadRequest)."""
    raw = request.query_params.get("store_id")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_STORE_ID:
        raise BadRequest("store_id must be a positive integer")
    return int(raw)


async def _merchant_user(request: Request[Any, Any, Any], reg: Registry, csrf: str | None,
                         store_id: int | None) -> tuple[int, int, str]:
    """(user id, store id, role) of the authenticated merchant in ``store_id`` (default: first store for
    Basic, the chosen store for a session); Unauthorized if not authenticated, Forbidden if not a member."""
    auth = request.headers.get("authorization")
    if auth is not None and auth[:6].lower() == "basic ":
        try:
            email, sep, password = base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        if "\x00" in email:              # no account has one; PostgreSQL cannot compare it (D861)
            raise Unauthorized("malformed Basic credentials")
        result = await check_password(reg, common.client_ip(request, reg), email, password) if sep else None
        if isinstance(result, int):
            raise RateLimited("too many attempts", retry_after=result)
        if not isinstance(result, User):
            raise Unauthorized("wrong email or password")
        user_id = result.id
        async with reg.sessions() as db:
            member = await users.membership(db, user_id, store_id)
        if member is None:
            if store_id is not None:
                raise Forbidden(f"this account is not a member of store {store_id}")
            raise Unauthorized("this account belongs to no store")
        return user_id, member.store_id, member.role
    async with reg.sessions() as db:
        who = await common.merchant(request, reg, db)
        if who is None:
            raise Unauthorized("sign in first, or use HTTP Basic with your email and password")
        if not (common.same_origin(request, reg) or common.csrf_ok(reg, who, csrf)):
            raise Unauthorized("cross-site request refused: send it from this site or with the CSRF token")
        member = who.member
        if store_id is not None and store_id != member.store_id:
            found = await users.membership(db, who.user.id, store_id)
            if found is None:
                raise Forbidden(f"this account is not a member of store {store_id}")
            member = found
    return who.user.id, member.store_id, member.role


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def _challenge(response: Response[bytes]) -> Response[bytes]:
    response.headers["WWW-Authenticate"] = 'Basic realm="till", charset="UTF-8"'
    return response


@post("/mcp/token", status_code=200, include_in_schema=False)
async def mint_token(request: Request[Any, Any, Any]) -> Response[bytes]:
    reg = common.registry(request)
    csrf = request.headers.get("x-csrf-token")
    if csrf is None and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        csrf = (await request.form()).get("csrf")
    store = _store_id(request)
    try:
        user_id, store_id, role = await _merchant_user(request, reg, csrf if isinstance(csrf, str) else None, store)
    except Unauthorized as exc:
        return _challenge(problem(401, exc.code, exc.description))
    minted = await mint_for(reg, user_id, store_id, role)
    body = {"token": minted.token, "expires_at": _iso(minted.row.expires_at), "token_id": minted.row.id}
    return Response(msgspec.json.encode(body), media_type="application/json", status_code=200,
                    headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@get("/mcp/config", include_in_schema=False)
async def config(request: Request[Any, Any, Any]) -> Response[bytes]:
    reg = common.registry(request)
    client = request.query_params.get("client")
    if client not in snippets.CLIENTS:
        raise BadRequest(f"client must be one of {', '.join(snippets.CLIENTS)}")
    token = request.query_params.get("token")
    extra: dict[str, str] = {}
    if token is not None:
        async with reg.sessions() as db:
            if await pats.find_active(db, token, common.now()) is None:
                return problem(401, "invalid_token", "the token is not valid")
    else:
        try:
            user_id, store_id, role = await _merchant_user(request, reg, request.query_params.get("csrf"),
                                                           _store_id(request))
        except Unauthorized as exc:
            return _challenge(problem(401, exc.code, exc.description))
        token = (await mint_for(reg, user_id, store_id, role)).token
        if client == "codex":
            # the TOML names an environment variable, not the token: hand the fresh token over too
            extra[snippets.TOKEN_HEADER] = token
    body, media = snippets.snippet(client, reg.settings.public_url, token)
    return Response(body.encode(), media_type=media, headers={"Cache-Control": "no-store", "Pragma": "no-cache",
                                                             "Referrer-Policy": "no-referrer", **extra})


HANDLERS = [mint_token, config]
