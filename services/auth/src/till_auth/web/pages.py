"""Merchant pages (SPEC §5): login, logout, AI Connector (MCP), password.

Every form carries a CSRF token: before login an HMAC of a random pre-login cookie, after
login an HMAC of the session id, so a token from another session never fits (WP-01).  Login
is throttled per account and per client IP, and an unknown email answers exactly like a
wrong password (WP-07, WP-08).
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from sqlalchemy import func, select

from till_auth.oauth.errors import InvalidRequest
from till_auth.passwords import MAX_PASSWORD_BYTES, hash_password, verify_password
from till_auth.registry import Registry
from till_auth.store import clients, pats, revocations, sessions, users
from till_auth.store.models import Client, Grant, PersonalToken, Store, User
from till_auth.web import common, snippets
from till_auth.web.html import render
from till_common.sealing import SealError

LOGIN_COOKIE = "till_login"
SESSION_COOKIE = "till_session"
FLASH_COOKIE = "till_new_token"     # WP-09: a new token, sealed to the session, for one page view
FLASH_SECONDS = 120
ACCOUNT_FAILURES = 10          # per account per window, from any IP
IP_ATTEMPTS = 60               # per IP per window, any accounts
WINDOW = 900
MIN_PASSWORD = 10


def _redirect(location: str) -> Response[bytes]:
    return Response(b"", status_code=303, headers={"Location": location, "Cache-Control": "no-store",
                                                   "Referrer-Policy": "no-referrer"})


def safe_next(value: str | None) -> str:
    """Only our own pages: a relative path under the prefixes we serve (no open redirect)."""
    if value and value.startswith(("/mcp/oauth/authorize?", "/settings/")) and "\\" not in value \
            and not value.startswith("//"):
        return value
    return "/settings/connector"


def _forbidden() -> Response[bytes]:
    return render("error.html", status=403, title="Request refused",
                  detail="This form has expired or did not come from this site. Reload the page and try again.")


def _login_page(reg: Registry, request: Request[Any, Any, Any], *, next_url: str, status: int = 200,
                message: str = "", email: str = "") -> Response[bytes]:
    nonce = request.cookies.get(common.cookie_name(reg, LOGIN_COOKIE)) or secrets.token_urlsafe(24)
    response = render("login.html", status=status, csrf=reg.csrf.sign("login:" + nonce), next=next_url,
                      message=message, email=email)
    common.set_cookie(reg, response, LOGIN_COOKIE, nonce, 3600)
    return response


@get("/login", include_in_schema=False)
async def login_form(request: Request[Any, Any, Any]) -> Response[bytes]:
    reg = common.registry(request)
    return _login_page(reg, request, next_url=safe_next(request.query_params.get("next")))


async def check_password(reg: Registry, ip: str, email: str, password: str) -> User | int | None:
    """The user, None for bad credentials, or seconds to wait when throttled."""
    account = email.strip().lower()[:320]
    wait = await reg.limiter.peek("login-account", account, limit=ACCOUNT_FAILURES, window=WINDOW)
    wait = wait or await reg.limiter.hit("login-ip", ip, limit=IP_ATTEMPTS, window=WINDOW)
    if wait:
        return wait
    async with reg.sessions() as db:
        user = await users.by_email(db, account)
    if len(password.encode()) > MAX_PASSWORD_BYTES or not verify_password(user.password_hash if user else None,
                                                                          password) or user is None:
        await reg.limiter.hit("login-account", account, limit=ACCOUNT_FAILURES, window=WINDOW)
        return None
    return user


@post("/login", status_code=200, include_in_schema=False)
async def login(request: Request[Any, Any, Any]) -> Response[bytes]:
    reg = common.registry(request)
    try:
        data = await common.form(request)
    except InvalidRequest:
        return _forbidden()
    nonce = request.cookies.get(common.cookie_name(reg, LOGIN_COOKIE))
    if not nonce or not reg.csrf.verify("login:" + nonce, data.get("csrf")):
        return _forbidden()
    next_url = safe_next(data.get("next"))
    email, password = data.get("email", ""), data.get("password", "")
    result = await check_password(reg, common.client_ip(request, reg), email, password)
    if isinstance(result, int):
        response = _login_page(reg, request, next_url=next_url, status=429, email=email[:320],
                               message="Too many sign-in attempts. Wait a few minutes and try again.")
        response.headers["Retry-After"] = str(result)
        return response
    if result is None:
        return _login_page(reg, request, next_url=next_url, status=401, email=email[:320],
                           message="Wrong email or password.")
    old = request.cookies.get(common.cookie_name(reg, SESSION_COOKIE))
    async with reg.sessions.begin() as db:
        if old:
            await sessions.end(db, old)          # WP-06: a planted or old id never becomes the session
        session_id = await sessions.create(db, result.id, common.now())
    response = _redirect(next_url)
    common.set_cookie(reg, response, SESSION_COOKIE, session_id, sessions.LIFETIME)
    common.clear_cookie(reg, response, LOGIN_COOKIE)
    return response


@post("/logout", status_code=200, include_in_schema=False)
async def logout(request: Request[Any, Any, Any]) -> Response[bytes]:
    reg = common.registry(request)
    checked = await _checked(request, reg)
    if checked is None:
        return _forbidden()
    async with reg.sessions.begin() as db:
        await sessions.end(db, checked[0].session_id)
    response = _redirect("/login")
    common.clear_cookie(reg, response, SESSION_COOKIE)
    return response


def _when(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC") if ts else "never"


def _seal_flash(reg: Registry, who: common.Merchant, minted: pats.Minted) -> str:
    payload = msgspec.json.encode({"token": minted.token, "expires_at": minted.row.expires_at, "at": common.now()})
    return base64.urlsafe_b64encode(reg.flash.seal(payload, ("session:" + who.session_id).encode())).decode()


def _open_flash(reg: Registry, who: common.Merchant, value: str | None) -> tuple[str, int] | None:
    """The token of the flash cookie if it is this session's, fresh, and intact; else None."""
    if not value:
        return None
    try:
        sealed = base64.urlsafe_b64decode(value.encode())
        data = msgspec.json.decode(reg.flash.open(sealed, ("session:" + who.session_id).encode()))
    except (SealError, ValueError, msgspec.DecodeError):
        return None
    if not isinstance(data, dict) or common.now() - int(data.get("at", 0)) > FLASH_SECONDS:
        return None
    return str(data["token"]), int(data["expires_at"])


def _shown_once(reg: Registry, who: common.Merchant, minted: pats.Minted) -> Response[bytes]:
    """Post/redirect/get: the POST that minted the token redirects, and the next GET shows the token
    once and clears it — a reload or the back button never shows it again (and never re-posts a
    "Revoke & regenerate" that would kill the token just shown)."""
    response = _redirect("/settings/connector")
    common.set_cookie(reg, response, FLASH_COOKIE, _seal_flash(reg, who, minted), FLASH_SECONDS)
    return response


async def _connector(request: Request[Any, Any, Any], reg: Registry, who: common.Merchant, *,
                     token: tuple[str, int] | None = None) -> Response[bytes]:
    async with reg.sessions() as db:
        rows = (await db.execute(
            select(Grant.client_id, func.min(Grant.created_at), func.max(Grant.last_used_at), func.max(Grant.scope))
            .where(Grant.user_id == who.user.id, Grant.revoked_at.is_(None)).group_by(Grant.client_id))).all()
        apps = []
        for client_id, first, last, scope in rows:
            client = await db.get(Client, client_id)
            name = clients.metadata(client).client_name if client else None
            apps.append({"client_id": client_id, "name": name or "Unnamed application", "scope": scope,
                         "first_used": _when(first), "last_used": _when(last)})
        pat_count = await db.scalar(select(func.count()).select_from(PersonalToken).where(
            PersonalToken.user_id == who.user.id, PersonalToken.revoked_at.is_(None),
            PersonalToken.expires_at > common.now()))
        store = await db.get(Store, who.member.store_id)
        stores = await common.store_choices(db, who)
    public = reg.settings.public_url
    return render("connector.html", user_email=who.user.email, csrf=who.csrf(reg), apps=apps, pat_count=pat_count,
                  stores=stores, here=request.url.path,
                  store_name=store.name if store else "your store", mcp_url=public + "/mcp",
                  token=token[0] if token else None,
                  token_expires=_when(token[1]) if token else None,
                  snippets=snippets.all_snippets(public, token[0]) if token else [])


async def _session_or_login(request: Request[Any, Any, Any], reg: Registry) -> common.Merchant | Response[bytes]:
    async with reg.sessions() as db:
        who = await common.merchant(request, reg, db)
    if who is None:
        return _redirect("/login?next=" + request.url.path)
    return who


@get("/settings/connector", include_in_schema=False)
async def connector(request: Request[Any, Any, Any]) -> Response[bytes]:
    reg = common.registry(request)
    who = await _session_or_login(request, reg)
    if isinstance(who, Response):
        return who
    flash = request.cookies.get(common.cookie_name(reg, FLASH_COOKIE))
    response = await _connector(request, reg, who, token=_open_flash(reg, who, flash))
    if flash is not None:
        common.clear_cookie(reg, response, FLASH_COOKIE)
    return response


async def _checked(request: Request[Any, Any, Any], reg: Registry) -> tuple[common.Merchant, dict[str, str]] | None:
    async with reg.sessions() as db:
        who = await common.merchant(request, reg, db)
    try:
        data = await common.form(request)
    except InvalidRequest:
        return None
    if who is None or not common.csrf_ok(reg, who, data.get("csrf")):
        return None
    return who, data


async def mint_for(reg: Registry, user_id: int, store_id: int, role: str) -> pats.Minted:
    from till_auth.oauth.scopes import for_role

    async with reg.transaction() as tx:
        return await pats.mint(tx.db, user_id=user_id, store_id=store_id, scope=for_role(role, None),
                               now=common.now())


@post("/settings/connector/token", status_code=200, include_in_schema=False)
async def generate(request: Request[Any, Any, Any]) -> Response[bytes]:
    reg = common.registry(request)
    checked = await _checked(request, reg)
    if checked is None:
        return _forbidden()
    who, _ = checked
    minted = await mint_for(reg, who.user.id, who.member.store_id, who.member.role)
    return _shown_once(reg, who, minted)


@post("/settings/connector/regenerate", status_code=200, include_in_schema=False)
async def regenerate(request: Request[Any, Any, Any]) -> Response[bytes]:
    """"Revoke & regenerate": every credential of the merchant dies, a new token is shown."""
    reg = common.registry(request)
    checked = await _checked(request, reg)
    if checked is None:
        return _forbidden()
    who, _ = checked
    async with reg.transaction() as tx:
        tx.events += (await revocations.revoke_user(tx.db, who.user.id, common.now()))[1]
    minted = await mint_for(reg, who.user.id, who.member.store_id, who.member.role)
    return _shown_once(reg, who, minted)


@post("/settings/store", status_code=200, include_in_schema=False)
async def switch_store(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The store switcher: these pages (consent, connector, tokens) now act in the chosen store."""
    reg = common.registry(request)
    checked = await _checked(request, reg)
    if checked is None:
        return _forbidden()
    who, data = checked
    chosen = data.get("store_id", "")
    async with reg.transaction() as tx:
        member = await users.membership(tx.db, who.user.id, int(chosen)) if chosen.isdigit() and \
            len(chosen) < 10 else None
        if member is None:
            return render("error.html", status=403, title="Not your store",
                          detail="You are not a member of that store. Pick one of the stores in the list.")
        row = await sessions.get(tx.db, who.session_id, common.now())
        if row is not None:
            row.store_id = member.store_id
    return _redirect(safe_next(data.get("next")))


@post("/settings/connector/apps/revoke", status_code=200, include_in_schema=False)
async def revoke_app(request: Request[Any, Any, Any]) -> Response[bytes]:
    reg = common.registry(request)
    checked = await _checked(request, reg)
    if checked is None:
        return _forbidden()
    who, data = checked
    async with reg.transaction() as tx:
        tx.events += await revocations.revoke_grants_of(tx.db, who.user.id, data.get("client_id", ""), common.now())
    return _redirect("/settings/connector")


@get("/settings/password", include_in_schema=False)
async def password_form(request: Request[Any, Any, Any]) -> Response[bytes]:
    reg = common.registry(request)
    who = await _session_or_login(request, reg)
    if isinstance(who, Response):
        return who
    return render("password.html", user_email=who.user.email, csrf=who.csrf(reg))


@post("/settings/password", status_code=200, include_in_schema=False)
async def change_password(request: Request[Any, Any, Any]) -> Response[bytes]:
    reg = common.registry(request)
    checked = await _checked(request, reg)
    if checked is None:
        return _forbidden()
    who, data = checked
    current, new = data.get("current_password", ""), data.get("new_password", "")
    result = await check_password(reg, common.client_ip(request, reg), who.user.email, current)
    if not isinstance(result, User):
        return render("password.html", status=429 if isinstance(result, int) else 400, user_email=who.user.email,
                      csrf=who.csrf(reg), failed=True, message="The current password is wrong."
                      if result is None else "Too many attempts. Wait a few minutes and try again.")
    if not (len(new) >= MIN_PASSWORD and len(new.encode()) <= MAX_PASSWORD_BYTES):
        return render("password.html", status=400, user_email=who.user.email, csrf=who.csrf(reg), failed=True,
                      message=f"The new password needs at least {MIN_PASSWORD} characters.")
    async with reg.transaction() as tx:
        user = await tx.db.get(User, who.user.id)
        assert user is not None
        user.password_hash = hash_password(new)
        # every credential issued before now dies, and every web session (this one is replaced)
        tx.events += (await revocations.revoke_user(tx.db, user.id, common.now(), end_sessions=True))[1]
        session_id = await sessions.create(tx.db, user.id, common.now())
    response = render("password.html", user_email=who.user.email, csrf=reg.csrf.sign("session:" + session_id),
                      message="Password changed. Your other sessions, tokens and connected apps were signed out.")
    common.set_cookie(reg, response, SESSION_COOKIE, session_id, sessions.LIFETIME)
    return response


HANDLERS = [login_form, login, logout, connector, generate, regenerate, revoke_app, switch_store, password_form,
            change_password]
