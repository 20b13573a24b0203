"""Migrate the store database and seed the demo stores of SPEC §1 (idempotent)."""

from __future__ import annotations

from till_db.engine import make_engine, sessionmaker
from till_db.migrate import upgrade
from till_tools.settings import ToolsSettings
from till_tools.store.seed import seed_all


async def migrate(settings: ToolsSettings) -> None:
    await upgrade("till_tools", settings.tools_database_url, "TILL_TOOLS_DATABASE_URL")


async def seed_demo(settings: ToolsSettings) -> list[int]:
    """Load the demo stores that have no data yet; returns the ids of those loaded."""
    engine = make_engine(settings.tools_database_url, "TILL_TOOLS_DATABASE_URL")
    try:
        async with sessionmaker(engine).begin() as db:
            return await seed_all(db)
    finally:
        await engine.dispose()
