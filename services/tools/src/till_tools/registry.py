"""Everything the tools service holds open, built once by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from till_db.engine import make_engine, ping, sessionmaker
from till_tools.settings import ToolsSettings


@dataclass
class Registry:
    settings: ToolsSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[Any]
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: ToolsSettings) -> Registry:
        engine = make_engine(settings.tools_database_url, "TILL_TOOLS_DATABASE_URL")
        return cls(settings=settings, engine=engine, sessions=sessionmaker(engine))

    async def check_database(self) -> None:
        await ping(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()
