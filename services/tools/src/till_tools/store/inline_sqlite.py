"""SQLite for the async engine without a thread hop per statement (docs/decisions.md D203).

aiosqlite runs every statement on its own thread and wakes the event loop through a self-pipe; a
tool call issues 8-12 statements, so on this 2-core machine the hops cost more than the queries.
Here the stdlib ``sqlite3`` connection is driven inline behind the coroutine interface SQLAlchemy's
aiosqlite dialect expects (``create_async_engine(async_creator=...)``).  A statement on a local file
takes microseconds, and the tools service already runs SQLite writers one at a time
(``Registry.write_slot``), so blocking the loop for that long is cheaper than the hop.  PostgreSQL
keeps asyncpg.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from till_db.engine import make_engine


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Any) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *_: Any) -> None:
        return None


class InlineConnection:
    """The subset of ``aiosqlite.Connection`` that SQLAlchemy's aiosqlite adapter uses."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)


def make_store_engine(url: str, setting: str = "TILL_TOOLS_DATABASE_URL") -> AsyncEngine:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return make_engine(url, setting)
    database = parsed.database or ":memory:"

    async def connect() -> InlineConnection:
        # the pool hands a connection to one task at a time; SQLite itself checks nothing across threads here
        return InlineConnection(sqlite3.connect(database, timeout=30, check_same_thread=False))

    return make_engine(url, setting, async_creator=connect)
