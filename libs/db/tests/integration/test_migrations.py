"""Migrations run forward (and back) on SQLite and PostgreSQL for both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from till_db.engine import make_engine
from till_db.migrate import downgrade, upgrade


async def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("package", "expected"), [
    ("till_auth", {"users", "stores", "memberships"}),
    ("till_tools", {"stores"}),
])
async def test_migrations_upgrade_downgrade_upgrade(database_url: str, package: str, expected: set[str]) -> None:
    await upgrade(package, database_url, "TEST_URL")
    after = await tables(database_url)
    assert expected <= after
    assert f"alembic_version_{package.removeprefix('till_')}" in after
    await downgrade(package, database_url, "TEST_URL")
    assert not (expected & await tables(database_url))
    await upgrade(package, database_url, "TEST_URL")
    assert expected <= await tables(database_url)

