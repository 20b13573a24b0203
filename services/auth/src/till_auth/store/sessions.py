"""Merchant web sessions: random id in the cookie, its SHA-256 in the table (WP-06)."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from till_auth.store.models import WebSession

LIFETIME = 12 * 3600


def id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def create(db: AsyncSession, user_id: int, now: int) -> str:
    session_id = secrets.token_urlsafe(32)
    db.add(WebSession(id_hash=id_hash(session_id), user_id=user_id, created_at=now, expires_at=now + LIFETIME))
    await db.flush()
    return session_id


async def get(db: AsyncSession, session_id: str | None, now: int) -> WebSession | None:
    if not session_id or len(session_id) > 100:
        return None
    row = await db.get(WebSession, id_hash(session_id))
    return row if row is not None and row.expires_at > now else None


async def end(db: AsyncSession, session_id: str) -> None:
    await db.execute(delete(WebSession).where(WebSession.id_hash == id_hash(session_id)))
