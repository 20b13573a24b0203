"""Domain operations behind the ``till`` admin commands; each opens and closes its own registry."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, select

from till_auth.oauth.scopes import for_role
from till_auth.passwords import hash_password
from till_auth.registry import Registry
from till_auth.settings import AuthSettings
from till_auth.store import pats, revocations, users
from till_auth.store.models import Membership, Store, User
from till_common.errors import BadRequest, Conflict, NotFound
from till_common.permissions import ROLES


@dataclass(frozen=True)
class MintedToken:
    token: str
    token_id: str
    expires_at: int


async def mint_token(settings: AuthSettings, email: str, store_id: int | None = None) -> MintedToken:
    """A personal token for the merchant in ``store_id`` (default: their first store)."""
    reg = Registry.build(settings)
    try:
        async with reg.transaction() as tx:
            user = await users.by_email(tx.db, email)
            member = await users.membership(tx.db, user.id, store_id) if user is not None else None
            if user is None:
                raise NotFound(f"no merchant with email {email!r}")
            if member is None:
                raise NotFound(f"{email} is not a member of store {store_id}" if store_id is not None
                               else f"{email} belongs to no store")
            minted = await pats.mint(tx.db, user_id=user.id, store_id=member.store_id,
                                     scope=for_role(member.role, None), now=int(time.time()))
        return MintedToken(minted.token, minted.row.id, minted.row.expires_at)
    finally:
        await reg.close()


@dataclass(frozen=True)
class Merchant:
    user_id: int
    store_id: int
    role: str


async def create_merchant(settings: AuthSettings, *, email: str, password: str, store: str | None = None,
                          store_id: int | None = None, role: str = "owner") -> Merchant:
    """A user with a membership: in a new store named ``store``, or in the existing ``store_id``."""
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}")
    if len(password) < 10:
        raise BadRequest("the password needs at least 10 characters")
    if (store is None) == (store_id is None):
        raise BadRequest("give either a new store name or an existing store id")
    reg = Registry.build(settings)
    try:
        async with reg.transaction() as tx:
            if await users.by_email(tx.db, email) is not None:
                raise Conflict(f"a user with email {email!r} exists already")
            if store_id is None:
                next_id = int(await tx.db.scalar(select(func.coalesce(func.max(Store.id), 0))) or 0) + 1
                tx.db.add(Store(id=next_id, name=store or ""))
                store_id = next_id
            elif await tx.db.get(Store, store_id) is None:
                raise NotFound(f"no store {store_id}")
            await tx.db.flush()
            next_user = int(await tx.db.scalar(select(func.coalesce(func.max(User.id), 0))) or 0) + 1
            tx.db.add(User(id=next_user, email=email.strip().lower(), password_hash=hash_password(password)))
            await tx.db.flush()
            tx.db.add(Membership(user_id=next_user, store_id=store_id, role=role))
        return Merchant(next_user, store_id, role)
    finally:
        await reg.close()


async def join_store(settings: AuthSettings, *, email: str, store_id: int, role: str) -> Merchant:
    """An existing merchant joins another existing store (or changes role there)."""
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}")
    reg = Registry.build(settings)
    try:
        async with reg.transaction() as tx:
            user = await users.by_email(tx.db, email)
            if user is None:
                raise NotFound(f"no merchant with email {email!r}")
            if await tx.db.get(Store, store_id) is None:
                raise NotFound(f"no store {store_id}")
            member = await users.membership(tx.db, user.id, store_id)
            if member is None:
                tx.db.add(Membership(user_id=user.id, store_id=store_id, role=role))
            else:
                member.role = role
        return Merchant(user.id, store_id, role)
    finally:
        await reg.close()


async def rotate_keys(settings: AuthSettings) -> tuple[str, int]:
    reg = Registry.build(settings)
    try:
        await reg.keys.check()
        async with reg.sessions.begin() as db:
            key = await reg.keys.rotate(db)
        return key.kid, key.activates_at
    finally:
        await reg.close()


async def revoke(settings: AuthSettings, kind: str, value: str) -> int:
    """``till revoke``: the same as the admin API, published to Redis when configured."""
    reg = Registry.build(settings)
    now = int(time.time())
    try:
        async with reg.transaction() as tx:
            if kind == "token":
                n, events = await revocations.revoke_token(tx.db, value, now)
            elif kind == "client":
                n, events = await revocations.revoke_client(tx.db, value, now)
            elif kind == "user":
                user = await users.by_email(tx.db, value) if "@" in value else await tx.db.get(User, int(value))
                if user is None:
                    raise NotFound(f"no user {value!r}")
                n, events = await revocations.revoke_user(tx.db, user.id, now, end_sessions=True)
            elif kind == "store":
                n, events = await revocations.revoke_store(tx.db, int(value), now)
            else:
                raise BadRequest(f"unknown revocation kind {kind!r}")
            tx.events += events
        return n
    finally:
        await reg.close()
