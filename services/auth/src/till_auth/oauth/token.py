"""RFC 6749 §4.1.3 / §6 token endpoint grants; one transaction per exchange (nothing half-written).

Single use is enforced by the database, not by a read-then-write: the first statement of each
exchange is a conditional UPDATE (``used_at IS NULL`` / ``rotated_at IS NULL``), which also
takes SQLite's write lock before anything is read, so two racing requests serialise.
Failures that must stick even though the request fails — a replayed code revoking its family,
a reused refresh token revoking its family — are returned as an error *after* commit.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from till_auth.keys import ActiveKey
from till_auth.oauth import access_token, pkce, resource, scopes
from till_auth.oauth.errors import InvalidGrant, InvalidRequest, InvalidTarget, OAuthError, UnauthorizedClient
from till_auth.registry import Tx
from till_auth.store import revocations, users
from till_auth.store.models import AuthorizationCode, Client, Grant, RefreshToken
from till_common.sealing import Sealer, SealError

CODE_LIFETIME = 60
REFRESH_LIFETIME = 30 * 24 * 3600
GRACE = 30      # two tabs refreshing at once is not theft (RFC 9700 §4.14.2; SPEC §4)


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Issuer:
    issuer: str
    key: ActiveKey        # fetched before the transaction: KeyRing reads through its own session
    ttl: int
    successors: Sealer


@dataclass
class Outcome:
    body: dict[str, Any] | None = None
    error: OAuthError | None = None


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def create_code(tx: Tx, *, client_id: str, user_id: int, store_id: int, redirect_uri: str,
                      redirect_uri_sent: bool, code_challenge: str, scope: str, resource: str, now: int) -> str:
    code = secrets.token_urlsafe(32)
    # stamped like a token: a code approved in the second of a cutoff must outlive that cutoff
    born = access_token.stamp(now, await revocations.cutoff(tx.db, user_id=user_id, store_id=store_id,
                                                            client_id=client_id))
    tx.db.add(AuthorizationCode(code_hash=sha256(code), gid="g_" + secrets.token_urlsafe(18), client_id=client_id,
                                user_id=user_id, store_id=store_id, redirect_uri=redirect_uri,
                                redirect_uri_sent=redirect_uri_sent, code_challenge=code_challenge, scope=scope,
                                resource=resource, created_at=born, expires_at=now + CODE_LIFETIME))
    await tx.db.flush()
    return code


async def _issue(tx: Tx, ctx: Issuer, grant: Grant, scope: str, *, refresh: str | None, now: int) -> dict[str, Any]:
    member = await users.membership(tx.db, grant.user_id, grant.store_id)
    if member is None:
        raise InvalidGrant("the user no longer belongs to this store")
    cut = await revocations.cutoff(tx.db, user_id=grant.user_id, store_id=grant.store_id, client_id=grant.client_id)
    issued = access_token.mint(key=ctx.key.private, kid=ctx.key.kid, issuer=ctx.issuer, sub=grant.user_id,
                               audience=grant.resource, client_id=grant.client_id, scope=scope,
                               store_id=grant.store_id, role=member.role, gid=grant.gid,
                               iat=access_token.stamp(now, cut), ttl=ctx.ttl)
    body: dict[str, Any] = {"access_token": issued.token, "token_type": "Bearer", "expires_in": ctx.ttl,
                            "scope": scope}
    if refresh is not None:
        body["refresh_token"] = refresh
    return body


def _new_refresh(tx: Tx, gid: str, scope: str, now: int, token: str | None = None) -> str:
    token = token or secrets.token_urlsafe(32)
    tx.db.add(RefreshToken(token_hash=sha256(token), gid=gid, scope=scope, created_at=now,
                           expires_at=now + REFRESH_LIFETIME))
    return token


def _wants_refresh(client: Client) -> bool:
    from till_auth.store.clients import metadata

    return "refresh_token" in metadata(client).grant_types


async def exchange_code(tx: Tx, ctx: Issuer, client: Client, form: dict[str, str], now: int) -> Outcome:
    code = form.get("code")
    if not code:
        raise InvalidRequest("code is required")
    if len(code) > 200:
        raise InvalidGrant("unknown authorization code")
    h = sha256(code)
    claimed = _rowcount(await tx.db.execute(
        update(AuthorizationCode).where(AuthorizationCode.code_hash == h, AuthorizationCode.used_at.is_(None))
        .values(used_at=now)))
    row = await tx.db.get(AuthorizationCode, h)
    if row is None:
        raise InvalidGrant("unknown authorization code")
    if not claimed:
        # RFC 6749 §4.1.2: a code used twice revokes what the first use obtained (TK-01)
        tx.events += await revocations.revoke_grant(tx.db, row.gid, now)
        return Outcome(error=InvalidGrant("authorization code already used"))
    # from here on the code is spent whatever happens (commit with the error)
    if row.client_id != client.client_id:
        return Outcome(error=InvalidGrant("authorization code was issued to another client"))
    if row.expires_at < now:
        return Outcome(error=InvalidGrant("authorization code expired"))
    cut = await revocations.cutoff(tx.db, user_id=row.user_id, store_id=row.store_id, client_id=row.client_id)
    if cut is not None and row.created_at <= cut:
        return Outcome(error=InvalidGrant("authorization code has been revoked"))
    sent = form.get("redirect_uri")
    if (row.redirect_uri_sent or sent is not None) and sent != row.redirect_uri:
        return Outcome(error=InvalidGrant("redirect_uri does not match the authorization request"))
    try:
        pkce.verify(form.get("code_verifier"), row.code_challenge)
        if "resource" in form and resource.resolve(form["resource"], ctx.issuer) != row.resource:
            raise InvalidTarget("resource differs from the one authorized")
    except (InvalidGrant, InvalidTarget) as exc:
        return Outcome(error=exc)
    grant = Grant(gid=row.gid, user_id=row.user_id, store_id=row.store_id, client_id=client.client_id,
                  scope=row.scope, resource=row.resource, created_at=now, last_used_at=now)
    tx.db.add(grant)
    refresh = _new_refresh(tx, grant.gid, row.scope, now) if _wants_refresh(client) else None
    client.last_used_at = now
    await tx.db.flush()
    return Outcome(body=await _issue(tx, ctx, grant, row.scope, refresh=refresh, now=now))


async def refresh(tx: Tx, ctx: Issuer, client: Client, form: dict[str, str], now: int) -> Outcome:
    token = form.get("refresh_token")
    if not token:
        raise InvalidRequest("refresh_token is required")
    if not _wants_refresh(client):
        raise UnauthorizedClient("this client did not register the refresh_token grant")
    if len(token) > 200:
        raise InvalidGrant("unknown refresh token")
    h = sha256(token)
    successor = secrets.token_urlsafe(32)
    rotated = _rowcount(await tx.db.execute(
        update(RefreshToken).where(RefreshToken.token_hash == h, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=now, successor_sealed=ctx.successors.seal(successor.encode(), h.encode()))))
    row = await tx.db.get(RefreshToken, h)
    if row is None:
        raise InvalidGrant("unknown refresh token")
    grant = await tx.db.get(Grant, row.gid)
    if grant is None or grant.client_id != client.client_id:
        raise InvalidGrant("refresh token was issued to another client")     # rolls back: nothing rotated
    if grant.revoked_at is not None:
        raise InvalidGrant("refresh token has been revoked")
    if row.expires_at < now:
        raise InvalidGrant("refresh token expired")
    if "resource" in form and resource.resolve(form["resource"], ctx.issuer) != grant.resource:
        raise InvalidTarget("resource differs from the one authorized")
    scope = scopes.narrow(row.scope, form.get("scope"))
    if not rotated:
        current = await _grace_successor(tx, ctx, row, now)
        if current is None:
            # RFC 9700 §4.14.2: a rotated token came back: assume theft, end the family (TK-08)
            tx.events += await revocations.revoke_grant(tx.db, grant.gid, now)
            return Outcome(error=InvalidGrant("refresh token already used"))
        grant.last_used_at = now
        return Outcome(body=await _issue(tx, ctx, grant, scope, refresh=current, now=now))
    _new_refresh(tx, grant.gid, row.scope, now, successor)
    grant.last_used_at = now
    client.last_used_at = now
    await tx.db.flush()
    return Outcome(body=await _issue(tx, ctx, grant, scope, refresh=successor, now=now))


async def _grace_successor(tx: Tx, ctx: Issuer, row: RefreshToken, now: int) -> str | None:
    """The successor to hand out again, if ``row`` was rotated ≤ GRACE s ago and that successor
    is still the family's current token (the grace covers only the current successor)."""
    if row.rotated_at is None or now - row.rotated_at > GRACE or row.successor_sealed is None:
        return None
    try:
        successor = ctx.successors.open(row.successor_sealed, row.token_hash.encode()).decode()
    except SealError:
        return None
    nxt = await tx.db.scalar(select(RefreshToken).where(RefreshToken.token_hash == sha256(successor)))
    if nxt is None or nxt.rotated_at is not None:
        return None
    return successor
