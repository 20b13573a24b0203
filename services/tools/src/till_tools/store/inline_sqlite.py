"""SQLite for the async engine without a thread hop per statement (docs/decisions.md D203).

aiosqlite runs every statement on its own thread and wakes the event loop through a self-pipe; a
tool call issues 8-12 statements, so on this 2-core machine the hops cost more than the queries.
Here the stdlib ``sqlite3`` connection is driven inline behind the coroutine interface SQLAlchemy's
aiosqlite dialect expects (``create_async_engine(async_creator=...)``).  A statement on a local file
takes microseconds, and the tools service already runs SQLite writers one at a time
(``Registry.write_slot``), so blocking the loop for that long is cheaper than the hop.  PostgreSQL
keeps asyncpg.

Waiting for another process's write lock must not block the loop: SQLite's own busy handler waits
at most ``BUSY_SLICE_MS`` inline, then ``busy_retry`` yields to the loop (``asyncio.sleep``) and tries
again, up to ``BUSY_TIMEOUT`` seconds in all (what ``busy_timeout=30000`` allowed before, D606).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

from till_db.engine import make_engine

T = TypeVar("T")
BUSY_SLICE_MS: Final = 5
BUSY_TIMEOUT: Final = 30.0
SQLITE_BUSY: Final = 5      # plain "database is locked"; not SQLITE_BUSY_SNAPSHOT, which waiting cannot cure


def _busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == SQLITE_BUSY


async def busy_retry(fn: Callable[[], T]) -> T:
    """``fn()`` now; while another connection holds the lock, sleep on the loop and try again."""
    try:
        return fn()
    except sqlite3.OperationalError as exc:
        if not _busy(exc):
            raise
    deadline = time.monotonic() + BUSY_TIMEOUT
    pause = 0.001
    while True:
        await asyncio.sleep(pause)
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not _busy(exc) or time.monotonic() >= deadline:
                raise
        pause = min(pause * 2, 0.05)


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
        await busy_retry(lambda: self._cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Any) -> InlineCursor:
        await busy_retry(lambda: self._cursor.executemany(sql, parameters))
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
        await busy_retry(self._conn.commit)

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


def make_store_engine(url: str, setting: str = "TILL_TOOLS_DATABASE_URL", *,
                      autocheckpoint: bool = True) -> AsyncEngine:
    """``autocheckpoint=False`` (the service's ``Registry``, D890): no connection of this engine ever
    checkpoints the WAL inside a commit; the owner runs a ``checkpoint.Checkpointer`` instead."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return make_engine(url, setting)
    database = parsed.database or ":memory:"

    async def connect() -> InlineConnection:
        # the pool hands a connection to one task at a time; SQLite itself checks nothing across threads here
        return InlineConnection(sqlite3.connect(database, timeout=30, check_same_thread=False))

    engine = make_engine(url, setting, async_creator=connect)

    @event.listens_for(engine.sync_engine, "connect")
    def _short_busy_wait(dbapi_conn: Any, _: ConnectionPoolEntry) -> None:
        # after make_engine's pragmas (listeners run in order): wait inline briefly, then busy_retry
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_SLICE_MS}")
        if not autocheckpoint:
            cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.close()

    return engine
