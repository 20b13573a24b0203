"""A tool call's transaction (docs/decisions.md D607).

``call.py`` runs a handler and its audit row in one transaction, rolls back on a dry run or a
failure and then writes the audit row alone.  ``CallTx`` is that transaction: ``db`` (the session
handlers use), ``commit()`` and ``rollback()``; after either, the next statement starts a new one.

* ``SessionTx`` (PostgreSQL, any non-inline engine): a plain ``AsyncSession`` per call, as before.
* ``InlineTx`` (SQLite through ``inline_sqlite``): SQLite has one writer and ``Registry.write_slot``
  already runs calls one at a time, so the registry keeps one connection checked out for calls and
  the transaction is the stdlib ``sqlite3`` connection's own (its implicit BEGIN before the first
  write, ``commit()``/``rollback()``), exactly what the session's transaction was on that driver.
  ``Hot`` statements run on it directly; one ``AsyncSession``, kept with that connection and left
  empty after every call (D822), is bound to it, so it only begins its own (SQLAlchemy-side) transaction when a handler
  actually uses the ORM, and then ``commit()`` flushes and commits through it: one ``sqlite3``
  transaction either way.  Without this, the session's begin, connection checkout, commit and close
  through SQLAlchemy's greenlets were ~40 % of a call.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, Final, Protocol

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from till_tools.store.inline_sqlite import InlineConnection, busy_retry

RAW: Final = "till.hot.raw"   # db.info key: (dialect, sqlite3 connection) of an InlineTx (read by hot.py)


class CallTx(Protocol):
    db: AsyncSession

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    async def close(self) -> None: ...


class SessionTx:
    def __init__(self, sessions: async_sessionmaker[Any]) -> None:
        self.db: AsyncSession = sessions()

    async def commit(self) -> None:
        await self.db.commit()

    async def rollback(self) -> None:
        await self.db.rollback()

    async def close(self) -> None:
        await self.db.close()


class InlineConn:
    """The connection calls share on SQLite (used only under ``write_slot``)."""

    def __init__(self, conn: AsyncConnection, raw: sqlite3.Connection) -> None:
        self.conn = conn
        self.raw = raw
        self.dialect: Dialect = conn.dialect
        self.session: AsyncSession | None = None   # one for every call on this connection (D822)
        self.on_commit: Callable[[], None] | None = None   # the registry's WAL checkpointer (D890)

    @classmethod
    async def open(cls, engine: Any) -> InlineConn | None:
        conn: AsyncConnection = await engine.connect()
        driver = conn.sync_connection.connection.driver_connection if conn.sync_connection else None
        if not isinstance(driver, InlineConnection):
            await conn.close()
            return None
        return cls(conn, driver._conn)


class InlineTx:
    def __init__(self, sessions: async_sessionmaker[Any], inline: InlineConn) -> None:
        self.inline = inline
        db = inline.session
        if db is None:
            # calls run one at a time on this connection and each leaves the session as it found it
            # (no transaction, nothing in it: ``rollback``), so they share one instead of building an
            # AsyncSession per call, most of which never touch the ORM
            db = inline.session = sessions(bind=inline.conn)
            db.info[RAW] = (inline.dialect, inline.raw)
        self.db: AsyncSession = db

    def _orm_busy(self) -> bool:
        s = self.db.sync_session
        return s.in_transaction() or bool(s.new) or bool(s.deleted) or bool(s.dirty)

    async def commit(self) -> None:
        if self._orm_busy():
            # flushes, then commits the connection: the sqlite3 transaction, Hot statements included
            await self.db.commit()
        raw = self.inline.raw
        if raw.in_transaction:
            await busy_retry(raw.commit)
        on_commit = self.inline.on_commit
        if on_commit is not None:
            on_commit()

    async def rollback(self) -> None:
        s = self.db.sync_session
        if s.in_transaction():
            await self.db.rollback()
        if s.identity_map or s.new or s.deleted:
            s.expunge_all()
        raw = self.inline.raw
        if raw.in_transaction:
            raw.rollback()

    async def close(self) -> None:
        await self.rollback()
