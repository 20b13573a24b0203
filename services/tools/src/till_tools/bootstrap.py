"""Migrate the store database and seed the demo stores of SPEC §1 (idempotent)."""

from __future__ import annotations

from till_common import demo
from till_db.engine import make_engine, sessionmaker
from till_db.migrate import upgrade
from till_tools.settings import ToolsSettings
from till_tools.store.models import Store


async def migrate(settings: ToolsSettings) -> None:
    await upgrade("till_tools", settings.tools_database_url, "TILL_TOOLS_DATABASE_URL")


async def seed_demo(settings: ToolsSettings) -> None:
    engine = make_engine(settings.tools_database_url, "TILL_TOOLS_DATABASE_URL")
    try:
        async with sessionmaker(engine).begin() as db:
            for store_id, name, currency in demo.STORES:
                if await db.get(Store, store_id) is None:
                    db.add(Store(id=store_id, name=name, currency=currency))
    finally:
        await engine.dispose()
