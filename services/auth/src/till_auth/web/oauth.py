"""OAuth endpoints (SPEC §2): metadata, JWKS, registration, authorize + consent, token, revoke.

Thin: each handler parses, calls ``oauth/`` and ``store/``, and renders.  OAuth errors raised
here are rendered by web/errors.py; authorization errors after the redirect URI is established
go back to the client as a redirect (RFC 6749 §4.1.2.1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote

import jwt
import msgspec
from litestar import Request, Response, get, post
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from till_auth import cimd
from till_auth.oauth import authorize as az
from till_auth.oauth import client_auth, redirects, scopes
from till_auth.oauth import token as tokens
from till_auth.oauth.errors import (
    AccessDenied,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    TemporarilyUnavailable,
    TooManyRequests,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from till_auth.oauth.metadata import server_metadata
from till_auth.registry import Registry
from till_auth.store import clients, revocations
from till_auth.store.models import Client, Consent, Grant, RefreshToken, Store
from till_auth.web import common
from till_auth.web.errors import NO_STORE, oauth_json, page_error
from till_auth.web.html import render
from till_common.permissions import SCOPE_DESCRIPTIONS


def _redirect(location: str) -> Response[bytes]:
    return Response(b"", status_code=302, headers={"Location": location, **NO_STORE,
                                                   "Referrer-Policy": "no-referrer"})


def _issuer(reg: Registry) -> str:
    return reg.settings.public_url


@get("/.well-known/oauth-authorization-server", include_in_schema=False)
async def metadata(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _public_json(server_metadata(_issuer(common.registry(request))))


@get("/.well-known/jwks.json", include_in_schema=False)
async def jwks(request: Request[Any, Any, Any]) -> Response[bytes]:
    reg = common.registry(request)
    await reg.keys.signing_key()        # a first start publishes its first key here
    return _public_json(await reg.keys.jwks())


def _public_json(body: dict[str, Any]) -> Response[bytes]:
    # short cache: gateways refetch JWKS on an unknown kid anyway, and rotation waits for this
    return Response(msgspec.json.encode(body), media_type="application/json",
                    headers={"Cache-Control": "public, max-age=60"})


def _is_url(client_id: str | None) -> bool:
    # http only works with TILL_CIMD_ALLOW_PRIVATE (cimd.refresh refuses it otherwise)
    return bool(client_id) and str(client_id).startswith(("https://", "http://"))


async def prefetch(reg: Registry, client_id: str | None) -> None:
    """A metadata-document client is fetched before any transaction opens (cimd.refresh)."""
    if _is_url(client_id):
        await cimd.refresh(reg, str(client_id))


async def load_client(reg: Registry, db: AsyncSession, client_id: str | None) -> Client | None:
    if not client_id:
        return None
    if _is_url(client_id):
        return await cimd.resolve(db, client_id)
    return await clients.get(db, client_id)


# --- authorization endpoint -----------------------------------------------------------------------

async def _establish(reg: Registry, db: AsyncSession, raw: az.RawRequest) -> tuple[Client, str]:
    client = await load_client(reg, db, raw.get("client_id"))
    registered = clients.metadata(client).redirect_uris if client is not None else None
    redirect_uri = az.establish_redirect(raw, registered)
    assert client is not None
    return client, redirect_uri


@get("/mcp/oauth/authorize", include_in_schema=False)
async def authorize(request: Request[Any, Any, Any]) -> Response[bytes]:
    reg = common.registry(request)
    issuer = _issuer(reg)
    try:
        raw = az.RawRequest.from_pairs(parse_qsl(request.url.query or "", keep_blank_values=True))
        await prefetch(reg, raw.get("client_id"))
        async with reg.sessions() as db:
            client, redirect_uri = await _establish(reg, db, raw)
            state = raw.params.get("state")
            try:
                req = az.validate(raw, redirect_uri, issuer)
            except OAuthError as exc:
                return _redirect(az.error_redirect(redirect_uri, exc, state, issuer))
            who = await common.merchant(request, reg, db)
            if who is None:
                here = "/mcp/oauth/authorize?" + (request.url.query or "")
                return _redirect("/login?next=" + quote(here, safe=""))
            try:
                scope = _granted_scope(who.member.role, req.scope)
            except OAuthError as exc:
                return _redirect(az.error_redirect(redirect_uri, exc, state, issuer))
            local = redirects.kind(redirect_uri) != "web"
            consent = await db.get(Consent, (who.user.id, client.client_id))
            stores = await common.store_choices(db, who)      # several stores: always ask which one
            remembered = consent is not None and consent.scope == scope and not local and not stores
            store = await db.get(Store, who.member.store_id)
        if remembered:
            return await _approve(reg, req, who, scope, remember=False)
        meta = clients.metadata(client)
        return render("consent.html", client_name=meta.client_name or "An unnamed application",
                      client_id=client.client_id, redirect_host=redirects.host_of(redirect_uri), local_app=local,
                      scopes=[{"name": s, "description": SCOPE_DESCRIPTIONS[s]} for s in scope.split()],
                      store_name=store.name if store else "your store", user_email=who.user.email,
                      role=who.member.role, csrf=who.csrf(reg), request=request.url.query or "",
                      can_remember=not local, stores=stores, store_id=who.member.store_id,
                      here="/mcp/oauth/authorize?" + (request.url.query or ""))
    except az.PageError as exc:
        return page_error(exc)


def _granted_scope(role: str, requested: str | None) -> str:
    scope = scopes.for_role(role, requested)
    if not scope:
        raise InvalidScope("none of the requested scopes is allowed for your role")
    return scope


async def _approve(reg: Registry, req: az.AuthorizationRequest, who: common.Merchant, scope: str, *,
                   remember: bool) -> Response[bytes]:
    now = common.now()
    async with reg.transaction() as tx:
        code = await tokens.create_code(tx, client_id=req.client_id, user_id=who.user.id,
                                        store_id=who.member.store_id, redirect_uri=req.redirect_uri,
                                        redirect_uri_sent=req.redirect_uri_sent, code_challenge=req.code_challenge,
                                        scope=scope, resource=req.resource, now=now)
        if remember:
            row = await tx.db.get(Consent, (who.user.id, req.client_id))
            if row is None:
                tx.db.add(Consent(user_id=who.user.id, client_id=req.client_id, scope=scope, created_at=now))
            else:
                row.scope, row.created_at = scope, now
    return _redirect(az.success_redirect(req.redirect_uri, code, req.state, _issuer(reg)))


@post("/mcp/oauth/authorize/decision", status_code=200, include_in_schema=False)
async def decision(request: Request[Any, Any, Any]) -> Response[bytes]:
    reg = common.registry(request)
    issuer = _issuer(reg)
    try:
        data = await common.form(request)
    except InvalidRequest:
        return page_error(az.PageError("Invalid request", "The form could not be read."))
    try:
        raw = az.RawRequest.from_pairs(parse_qsl(data.get("request", ""), keep_blank_values=True))
        await prefetch(reg, raw.get("client_id"))
        async with reg.sessions() as db:
            who = await common.merchant(request, reg, db)
            if who is None or not common.csrf_ok(reg, who, data.get("csrf")):
                return page_error(az.PageError("Request refused", "This form has expired or did not come from "
                                               "this site. Go back to the application and start again."), 403)
            shown = data.get("store_id")      # the store the consent page named (absent: older form)
            if shown is not None and shown != str(who.member.store_id):
                return page_error(az.PageError("The store changed", "You switched stores in another window. "
                                               "Go back to the application and start again."), 409)
            client, redirect_uri = await _establish(reg, db, raw)
        state = raw.params.get("state")
        try:
            req = az.validate(raw, redirect_uri, issuer)
            scope = _granted_scope(who.member.role, req.scope)
        except OAuthError as exc:
            return _redirect(az.error_redirect(redirect_uri, exc, state, issuer))
        choice = data.get("decision")
        if choice == "deny":
            return _redirect(az.error_redirect(redirect_uri, AccessDenied("the user denied access"), state, issuer))
        if choice != "approve":
            raise az.PageError("Invalid request", "Choose Allow or Deny.")
        local = redirects.kind(redirect_uri) != "web"
        return await _approve(reg, req, who, scope, remember=data.get("remember") == "1" and not local
                              and client.kind == "dcr")
    except az.PageError as exc:
        return page_error(exc)


# --- token endpoint ------------------------------------------------------------------------------

def credentials(request: Request[Any, Any, Any], data: dict[str, str]) -> client_auth.ClientCredentials:
    return client_auth.parse(request.headers.get("authorization"), data.get("client_id"), data.get("client_secret"))


async def authenticated_client(reg: Registry, db: AsyncSession, creds: client_auth.ClientCredentials) -> Client:
    client = await load_client(reg, db, creds.client_id)
    client_auth.authenticate(creds, registered_method=client.token_endpoint_auth_method if client else None,
                             secret_hash=client.secret_hash if client else None)
    assert client is not None
    return client


@dataclass
class _Attempt:
    """What the token handler learnt before failing: the throttle key of a *known* client."""

    client_key: str | None = None


def _client_key(client_id: str) -> str:
    # client ids may be long metadata-document URLs: the throttle key is a fixed-size digest
    return hashlib.sha256(client_id.encode()).hexdigest()[:32]


@post("/mcp/oauth/token", status_code=200, include_in_schema=False)
async def token(request: Request[Any, Any, Any]) -> Response[bytes]:
    """DS-05: failed requests are throttled per client IP and per known client_id (D112)."""
    reg = common.registry(request)
    ip = common.client_ip(request, reg)
    per_ip = reg.settings.token_failures_per_minute
    wait = await reg.limiter.peek("token-fail", ip, limit=per_ip, window=60)
    if wait:
        raise TooManyRequests("too many failed token requests from this address", retry_after=wait)
    attempt = _Attempt()
    try:
        return await _token(request, reg, attempt)
    except OAuthError as exc:
        if exc.status in (400, 401):
            await reg.limiter.hit("token-fail", ip, limit=per_ip, window=60)
            if attempt.client_key is not None:
                await reg.limiter.hit("token-fail-client", attempt.client_key,
                                      limit=reg.settings.client_token_failures_per_minute, window=60)
        raise
    except SQLAlchemyError as exc:
        # FT-07: the transaction rolled back, nothing was issued; say so in the OAuth format
        raise TemporarilyUnavailable("the authorization server cannot reach its database; try again",
                                     debug=type(exc).__name__) from None


async def _token(request: Request[Any, Any, Any], reg: Registry, attempt: _Attempt) -> Response[bytes]:
    data = await common.form(request)
    grant_type = data.get("grant_type")
    if not grant_type:
        raise InvalidRequest("grant_type is required")
    creds = credentials(request, data)
    key = _client_key(creds.client_id)
    wait = await reg.limiter.peek("token-fail-client", key, limit=reg.settings.client_token_failures_per_minute,
                                  window=60)
    if wait:
        raise TooManyRequests("too many failed token requests for this client", retry_after=wait)
    await prefetch(reg, creds.client_id)
    ctx = tokens.Issuer(issuer=_issuer(reg), key=await reg.keys.signing_key(), ttl=reg.settings.access_token_ttl,
                        successors=reg.successors)
    async with reg.transaction() as tx:
        client = await load_client(reg, tx.db, creds.client_id)
        if client is not None:
            attempt.client_key = key        # only known clients get a bucket: no key per guessed id
        client_auth.authenticate(creds, registered_method=client.token_endpoint_auth_method if client else None,
                                 secret_hash=client.secret_hash if client else None)
        assert client is not None
        if grant_type == "authorization_code":
            outcome = await tokens.exchange_code(tx, ctx, client, data, common.now())
        elif grant_type == "refresh_token":
            outcome = await tokens.refresh(tx, ctx, client, data, common.now())
        else:
            raise UnsupportedGrantType(f"grant_type {grant_type[:40]!r} is not supported")
    if outcome.error is not None:
        raise outcome.error
    return oauth_json(outcome.body)


# --- revocation endpoint (RFC 7009) --------------------------------------------------------------

@post("/mcp/oauth/revoke", status_code=200, include_in_schema=False)
async def revoke(request: Request[Any, Any, Any]) -> Response[bytes]:
    reg = common.registry(request)
    data = await common.form(request)
    value = data.get("token")
    if not value:
        raise InvalidRequest("token is required")
    now = common.now()
    claims = await _access_token_claims(reg, value) if value.count(".") == 2 else None
    creds = credentials(request, data)
    await prefetch(reg, creds.client_id)
    async with reg.transaction() as tx:
        client = await authenticated_client(reg, tx.db, creds)
        if claims is not None:
            if claims.get("client_id") != client.client_id:
                raise UnauthorizedClient("this token was not issued to this client")
            jti = claims.get("jti")
            if isinstance(jti, str):
                tx.events += (await revocations.revoke_token(tx.db, jti, now))[1]
        elif len(value) <= 200:
            row = await tx.db.get(RefreshToken, tokens.sha256(value))
            grant = await tx.db.get(Grant, row.gid) if row is not None else None
            if grant is not None:
                if grant.client_id != client.client_id:
                    raise UnauthorizedClient("this token was not issued to this client")
                if grant.revoked_at is None:
                    tx.events += await revocations.revoke_grant(tx.db, grant.gid, now)
    return Response(b"", status_code=200, headers=NO_STORE)


async def _access_token_claims(reg: Registry, value: str) -> dict[str, Any] | None:
    """Claims of one of our unexpired access tokens, else None (RFC 7009 §2.2: unknown is fine)."""
    try:
        kid = jwt.get_unverified_header(value).get("kid")
        key = await reg.keys.public_key(str(kid))
        if key is None:
            return None
        claims = jwt.decode(value, key, algorithms=["ES256"], issuer=_issuer(reg), options={"verify_aud": False})
    except jwt.PyJWTError:
        return None
    return claims


HANDLERS = [metadata, jwks, authorize, decision, token, revoke]
