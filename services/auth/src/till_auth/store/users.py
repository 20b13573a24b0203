"""Users and their store membership (SPEC §5)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from till_auth.store.models import Membership, Store, User


async def by_email(db: AsyncSession, email: str) -> User | None:
    return await db.scalar(select(User).where(User.email == email.strip().lower()))


async def membership(db: AsyncSession, user_id: int, store_id: int | None = None) -> Membership | None:
    """The user's membership (in ``store_id``, or the first one): its store and role."""
    stmt = select(Membership).where(Membership.user_id == user_id)
    if store_id is not None:
        stmt = stmt.where(Membership.store_id == store_id)
    return await db.scalar(stmt.order_by(Membership.store_id).limit(1))


async def memberships(db: AsyncSession, user_id: int) -> list[tuple[Membership, Store]]:
    """Every store the user belongs to, with the role there, in store id order."""
    rows = await db.execute(select(Membership, Store).join(Store, Store.id == Membership.store_id)
                            .where(Membership.user_id == user_id).order_by(Membership.store_id))
    return [(m, s) for m, s in rows.all()]
