"""The revocation feed and what each kind of revocation marks in auth's own tables (SPEC §4).

Each function records one :class:`Revocation` row (the ordered feed gateways poll) and marks
the stored credentials it kills, in the caller's transaction; the caller publishes the
returned events after commit (registry.Registry.transaction).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from till_auth.store.models import Consent, Grant, Membership, PersonalToken, Revocation, WebSession
from till_common.protocol.internal import RevocationEvent, RevocationKind


def to_event(row: Revocation) -> RevocationEvent:
    at = datetime.fromtimestamp(row.at, tz=UTC).isoformat().replace("+00:00", "Z")
    return RevocationEvent(seq=row.seq, kind=row.kind, value=row.value, before=row.before, at=at)  # type: ignore[arg-type]


async def record(db: AsyncSession, kind: RevocationKind, value: str, now: int) -> RevocationEvent:
    if db.get_bind().dialect.name == "postgresql":
        # seq order must be commit order, or a poller that has seen seq n+1 never sees a slower n;
        # this lock (conflicting with itself and inserts, not with reads) serialises the writers
        await db.execute(text("LOCK TABLE revocations IN SHARE ROW EXCLUSIVE MODE"))
    row = Revocation(kind=kind, value=value, before=now, at=now)
    db.add(row)
    await db.flush()
    return to_event(row)


async def page(db: AsyncSession, after: int, limit: int = 500) -> list[RevocationEvent]:
    rows = await db.scalars(select(Revocation).where(Revocation.seq > after).order_by(Revocation.seq).limit(limit))
    return [to_event(r) for r in rows]


async def last_seq(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.coalesce(func.max(Revocation.seq), 0))) or 0)


async def cutoff(db: AsyncSession, *, user_id: int, store_id: int, client_id: str | None = None) -> int | None:
    """The latest "issued before" that applies to a new credential of this user/store/client."""
    conds = [(Revocation.kind == "user") & (Revocation.value == str(user_id)),
             (Revocation.kind == "store") & (Revocation.value == str(store_id))]
    if client_id is not None:
        conds.append((Revocation.kind == "client") & (Revocation.value == client_id))
    value = await db.scalar(select(func.max(Revocation.before)).where(or_(*conds)))
    return int(value) if value is not None else None


async def revoke_grant(db: AsyncSession, gid: str, now: int) -> list[RevocationEvent]:
    await db.execute(update(Grant).where(Grant.gid == gid, Grant.revoked_at.is_(None)).values(revoked_at=now))
    return [await record(db, "grant", gid, now)]


async def revoke_grants_of(db: AsyncSession, user_id: int, client_id: str, now: int) -> list[RevocationEvent]:
    """Per-app revoke on the connector page: every family of this user with this client."""
    gids = (await db.scalars(select(Grant.gid).where(Grant.user_id == user_id, Grant.client_id == client_id,
                                                     Grant.revoked_at.is_(None)))).all()
    events: list[RevocationEvent] = []
    for gid in gids:
        events += await revoke_grant(db, gid, now)
    await db.execute(delete(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id))
    return events


async def revoke_user(db: AsyncSession, user_id: int, now: int, *, keep_session: str | None = None,
                      end_sessions: bool = False) -> tuple[int, list[RevocationEvent]]:
    """Password change, "Revoke & regenerate", role change: every credential issued up to now."""
    n = await _mark(db, [PersonalToken.user_id == user_id], [Grant.user_id == user_id], now)
    if end_sessions:
        stmt = delete(WebSession).where(WebSession.user_id == user_id)
        if keep_session is not None:
            stmt = stmt.where(WebSession.id_hash != keep_session)
        await db.execute(stmt)
    return n, [await record(db, "user", str(user_id), now)]


async def revoke_store(db: AsyncSession, store_id: int, now: int) -> tuple[int, list[RevocationEvent]]:
    n = await _mark(db, [PersonalToken.store_id == store_id], [Grant.store_id == store_id], now)
    return n, [await record(db, "store", str(store_id), now)]


async def revoke_client(db: AsyncSession, client_id: str, now: int) -> tuple[int, list[RevocationEvent]]:
    n = await _mark(db, [], [Grant.client_id == client_id], now)
    return n, [await record(db, "client", client_id, now)]


async def revoke_token(db: AsyncSession, token_id: str, now: int) -> tuple[int, list[RevocationEvent]]:
    """A PAT id or a JWT ``jti``; auth keeps no copy of access tokens, so a jti is only announced."""
    res = await db.execute(update(PersonalToken).where(PersonalToken.id == token_id,
                                                       PersonalToken.revoked_at.is_(None)).values(revoked_at=now))
    return max(1, _rowcount(res)), [await record(db, "token", token_id, now)]


async def _mark(db: AsyncSession, pat_where: list[object], grant_where: list[object], now: int) -> int:
    n = 0
    if pat_where:
        res = await db.execute(update(PersonalToken).where(*pat_where, PersonalToken.revoked_at.is_(None))  # type: ignore[arg-type]
                               .values(revoked_at=now))
        n += _rowcount(res)
    res = await db.execute(update(Grant).where(*grant_where, Grant.revoked_at.is_(None)).values(revoked_at=now))  # type: ignore[arg-type]
    return n + _rowcount(res)


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def role_change(db: AsyncSession, user_id: int, store_id: int, role: str, now: int) -> list[RevocationEvent]:
    """SPEC §5: a role change counts as a revocation of that user's tokens."""
    await db.execute(update(Membership).where(Membership.user_id == user_id, Membership.store_id == store_id)
                     .values(role=role))
    return (await revoke_user(db, user_id, now))[1]
