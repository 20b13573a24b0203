"""Migrate the auth database and seed the demo identities of SPEC §1 (idempotent)."""

from __future__ import annotations

from sqlalchemy import select

from till_auth.passwords import hash_password, verify_password
from till_auth.settings import AuthSettings
from till_auth.store.models import Membership, Store, User
from till_common import demo
from till_db.engine import make_engine, sessionmaker
from till_db.migrate import upgrade


async def migrate(settings: AuthSettings) -> None:
    await upgrade("till_auth", settings.auth_database_url, "TILL_AUTH_DATABASE_URL")


async def seed_demo(settings: AuthSettings) -> None:
    """Demo stores and users; passwords follow TILL_DEMO_PASSWORD on every run."""
    password = settings.demo_password
    if not password:
        return
    engine = make_engine(settings.auth_database_url, "TILL_AUTH_DATABASE_URL")
    try:
        async with sessionmaker(engine).begin() as db:
            for store_id, name, _currency in demo.STORES:
                if await db.get(Store, store_id) is None:
                    db.add(Store(id=store_id, name=name))
            await db.flush()
            for user_id, email, store_id, role in demo.USERS:
                user = await db.get(User, user_id)
                if user is None:
                    db.add(User(id=user_id, email=email, password_hash=hash_password(password)))
                elif not verify_password(user.password_hash, password):
                    user.password_hash = hash_password(password)
                await db.flush()
                found = await db.scalar(select(Membership).where(Membership.user_id == user_id,
                                                                 Membership.store_id == store_id))
                if found is None:
                    db.add(Membership(user_id=user_id, store_id=store_id, role=role))
    finally:
        await engine.dispose()


async def mint_dev_token(settings: AuthSettings) -> str:
    """A fresh personal token for owner@demo.store, printed by ``till dev`` (only hashes are stored,
    so an old one cannot be shown again)."""
    from till_auth.operations import mint_token

    return (await mint_token(settings, demo.USERS[0][1])).token
