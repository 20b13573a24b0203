"""Run a service's alembic migrations programmatically against an async engine.

Each service keeps its scripts inside its package (``till_<svc>/migrations``) so installed
images carry them, and its own version table, so auth and tools may share one PostgreSQL
database or use two.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from till_db.engine import make_engine


def alembic_config(package: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files(package) / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(package: str, url: str, setting: str, revision: str = "head") -> None:
    engine = make_engine(url, setting)
    cfg = alembic_config(package, url)

    def run(conn: Connection) -> None:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()


async def downgrade(package: str, url: str, setting: str, revision: str = "base") -> None:
    engine = make_engine(url, setting)
    cfg = alembic_config(package, url)

    def run(conn: Connection) -> None:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()


async def autogenerate(package: str, url: str, message: str, rev_id: str | None = None) -> None:
    """Write a new revision from the models' diff against ``url`` (a developer tool)."""
    engine = make_engine(url, "database URL")
    cfg = alembic_config(package, url)

    def run(conn: Connection) -> None:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()
