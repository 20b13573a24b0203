"""Async engines for SQLite (aiosqlite, the embedded default) and PostgreSQL (asyncpg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from till_common.errors import ConfigError, Unavailable

SUPPORTED = ("sqlite+aiosqlite", "postgresql+asyncpg")


def parse_url(url: str, setting: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"{setting}={safe_url(url)!r} is not a database URL") from None
    if parsed.drivername not in SUPPORTED:
        raise ConfigError(f"{setting} uses {parsed.drivername!r}; use one of {', '.join(SUPPORTED)}")
    return parsed


def safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable>"


def make_engine(url: str, setting: str = "database URL", **kwargs: Any) -> AsyncEngine:
    parsed = parse_url(url, setting)
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(parsed, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets readers run beside the single writer; foreign keys are off by default in SQLite.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(parsed, **kwargs)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def preflight(url: str, setting: str) -> None:
    """One line naming the setting when the database cannot be reached."""
    engine = make_engine(url, setting)
    try:
        await ping(engine)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise Unavailable(f"cannot reach the database {setting}={safe_url(url)}: {reason}") from None
    finally:
        await engine.dispose()
