"""Core statements of the per-call hot path, run on SQLite's stdlib connection without SQLAlchemy's
execution layer (docs/decisions.md D606).

On this machine one ``AsyncConnection.execute`` costs ~200 µs (a greenlet switch pair plus the
execution context); the same statement on the ``sqlite3`` connection ~15 µs.  A ``Hot`` statement
is compiled once per dialect by SQLAlchemy itself (same SQL, same bind and result type processing
through the column types' public ``bind_processor`` / ``result_processor``), then, when the session's
connection is the inline SQLite one (``inline_sqlite.InlineConnection``), executed on the very
``sqlite3`` connection of the session's transaction: same connection, same transaction, same
commit.  Anything else (PostgreSQL, a test engine) runs the statement through ``conn.execute``.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler

from till_tools.store.inline_sqlite import InlineConnection, busy_retry
from till_tools.store.tx import RAW

Processor = Callable[[Any], Any] | None
_MEMO = "till.hot.sqlite"


class _Compiled:
    def __init__(self, stmt: Any, dialect: Dialect, column_keys: Sequence[str] | None) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        names = list(compiled.positiontup or ())
        binds = [compiled.binds[name] for name in names]
        # (parameter key, value baked into the statement such as ``.limit(2)``, bind processor)
        self.binds = [(b.key, b.effective_value, b.type.dialect_impl(dialect).bind_processor(dialect))
                      for b in binds]
        selected = list(getattr(stmt, "selected_columns", ()))
        self.result: list[Processor] = [c.type.dialect_impl(dialect).result_processor(dialect, None)
                                        for c in selected]
        self.processed = [(i, p) for i, p in enumerate(self.result) if p is not None]
        self.row: Any = namedtuple("HotRow", [c.key for c in selected], rename=True) if selected else None

    def parameters(self, params: Mapping[str, Any]) -> list[Any]:
        out = []
        for key, fixed, proc in self.binds:
            value = params.get(key, fixed)
            out.append(proc(value) if proc is not None else value)
        return out


class Hot:
    """One statement (a ``select``/``insert``/``update`` built once at import)."""

    def __init__(self, stmt: Executable, column_keys: Sequence[str] | None = None) -> None:
        self.stmt = stmt
        self.column_keys = column_keys
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        c = self._compiled.get(dialect.name)
        if c is None:
            c = self._compiled[dialect.name] = _Compiled(self.stmt, dialect, self.column_keys)
        return c

    async def _sqlite(self, db: AsyncSession) -> tuple[AsyncConnection | None, Dialect, sqlite3.Connection | None]:
        # the session's connection stays the same for the life of its transaction: remember it per
        # transaction, so only the first statement of a call pays ``db.connection()`` (a greenlet hop)
        raw_tx = db.info.get(RAW)
        if raw_tx is not None:
            # a call's InlineTx (store/tx.py): the registry's own connection, its sqlite3 transaction
            return None, raw_tx[0], raw_tx[1]
        tx = db.sync_session.get_transaction()
        memo = db.info.get(_MEMO)
        if tx is not None and memo is not None and memo[0] is tx and tx.is_active:
            return None, memo[1], memo[2]
        conn = await db.connection()
        driver = conn.sync_connection.connection.driver_connection if conn.sync_connection else None
        raw = driver._conn if isinstance(driver, InlineConnection) else None
        tx = db.sync_session.get_transaction()
        if raw is not None and tx is not None:
            db.info[_MEMO] = (tx, conn.dialect, raw)
        return conn, conn.dialect, raw

    async def rows(self, db: AsyncSession, params: Mapping[str, Any]) -> list[Any]:
        """Every row, each with attribute access by column key (like a Core ``Row``)."""
        conn, dialect, raw = await self._sqlite(db)
        if raw is None:
            assert conn is not None
            return list((await conn.execute(self.stmt, dict(params))).all())
        c = self._for(dialect)
        assert c.row is not None
        values = c.parameters(params)
        got = (await busy_retry(lambda: raw.execute(c.sql, values))).fetchall()
        make = c.row._make
        if not c.processed:
            return list(map(make, got))
        out = []
        for r in got:
            # only the columns whose type converts (DATETIME, Numeric…): most are returned as stored
            cells = list(r)
            for i, p in c.processed:
                cells[i] = p(cells[i])
            out.append(make(cells))
        return out

    async def run(self, db: AsyncSession, params: Mapping[str, Any]) -> int:
        """An insert/update/delete; returns the row count."""
        conn, dialect, raw = await self._sqlite(db)
        if raw is None:
            assert conn is not None
            count: int = (await conn.execute(self.stmt, dict(params))).rowcount
            return count
        c = self._for(dialect)
        values = c.parameters(params)
        return (await busy_retry(lambda: raw.execute(c.sql, values))).rowcount
