"""Periodic clean-up: sealed refresh successors past their grace, spent codes, old sessions, unused clients."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import delete, update

from till_auth.oauth.token import GRACE
from till_auth.registry import Registry
from till_auth.store import clients
from till_auth.store.models import AuthorizationCode, RefreshToken, WebSession
from till_common.logging import get_logger

log = get_logger("till.auth.maintenance")
INTERVAL = 30.0


async def sweep(reg: Registry, now: int | None = None) -> list[str]:
    """One pass; returns the ids of reaped clients."""
    now = int(time.time()) if now is None else now
    async with reg.sessions.begin() as db:
        # the successor's plaintext exists only for the grace window (SC-01)
        await db.execute(update(RefreshToken).where(RefreshToken.rotated_at < now - GRACE,
                                                    RefreshToken.successor_sealed.is_not(None))
                         .values(successor_sealed=None))
        await db.execute(delete(RefreshToken).where(RefreshToken.expires_at < now))
        await db.execute(delete(AuthorizationCode).where(AuthorizationCode.expires_at < now - 3600))
        await db.execute(delete(WebSession).where(WebSession.expires_at < now))
        reaped = await clients.reap(db, unused_since=now - reg.settings.client_reap_days * 86400)
    if reaped:
        log.info("reaped unused clients", count=len(reaped))
    return reaped


async def run_forever(reg: Registry) -> None:
    while True:
        try:
            await sweep(reg)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("maintenance pass failed", error=type(exc).__name__)
        await asyncio.sleep(INTERVAL)
