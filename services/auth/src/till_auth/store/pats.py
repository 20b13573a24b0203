"""Personal MCP tokens (SPEC §4): ``till_pat_`` + 256 random bits, stored as SHA-256, one year."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from till_auth.oauth.access_token import stamp
from till_auth.store import revocations
from till_auth.store.models import PersonalToken

PREFIX = "till_pat_"
LIFETIME = 365 * 24 * 3600


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Minted:
    token: str
    row: PersonalToken


async def mint(db: AsyncSession, *, user_id: int, store_id: int, scope: str, now: int) -> Minted:
    token = PREFIX + secrets.token_urlsafe(32)
    iat = stamp(now, await revocations.cutoff(db, user_id=user_id, store_id=store_id))
    row = PersonalToken(id="pat_" + secrets.token_hex(12), token_hash=token_hash(token), user_id=user_id,
                        store_id=store_id, scope=scope, created_at=iat, expires_at=iat + LIFETIME)
    db.add(row)
    await db.flush()
    return Minted(token, row)


async def find_active(db: AsyncSession, token: str, now: int) -> PersonalToken | None:
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = await db.scalar(select(PersonalToken).where(PersonalToken.token_hash == token_hash(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    cut = await revocations.cutoff(db, user_id=row.user_id, store_id=row.store_id)
    if cut is not None and row.created_at <= cut:
        return None
    return row
