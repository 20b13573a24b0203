"""Everything the tools service holds open, built once by ``create_app``."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from till_db.engine import ping, sessionmaker
from till_tools.audit import HeadCache
from till_tools.payment_keys import PaymentKeys
from till_tools.settings import ToolsSettings
from till_tools.spec import Catalogue
from till_tools.store.checkpoint import Checkpointer
from till_tools.store.inline_sqlite import make_store_engine
from till_tools.store.tx import CallTx, InlineConn, InlineTx, SessionTx


def default_catalogue() -> Catalogue:
    from till_tools.tools import ALL_MODULES

    return Catalogue.from_modules(*ALL_MODULES)


@dataclass
class Registry:
    settings: ToolsSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[Any]
    catalogue: Catalogue
    currencies: dict[int, str] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    audit_heads: HeadCache = field(default_factory=HeadCache)
    payment_keys: PaymentKeys = field(default_factory=lambda: PaymentKeys(None))
    _sqlite_lock: asyncio.Lock | None = None
    _inline: InlineConn | None = None
    _checkpointer: Checkpointer | None = None

    @classmethod
    def build(cls, settings: ToolsSettings, catalogue: Catalogue | None = None) -> Registry:
        url = make_url(settings.tools_database_url)
        sqlite = url.drivername.startswith("sqlite")
        path = url.database if sqlite else None
        # WAL checkpoints on a worker thread, not inside a call's commit on the loop (D890); a
        # database the thread cannot open by path keeps SQLite's own checkpoints, so its WAL stays bounded
        lock = asyncio.Lock() if sqlite else None
        checkpointer = (Checkpointer(path, lock) if lock is not None and path and path != ":memory:"
                        and not path.startswith("file:") else None)
        engine = make_store_engine(settings.tools_database_url, autocheckpoint=checkpointer is None)
        return cls(settings=settings, engine=engine, sessions=sessionmaker(engine),
                   catalogue=catalogue or default_catalogue(), _sqlite_lock=lock,
                   payment_keys=PaymentKeys(settings.key_encryption_key), _checkpointer=checkpointer)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def write_slot(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """SQLite has one writer: queue here rather than spin in its busy handler (every call writes
        its audit row).  PostgreSQL serializes per store on the audit chain head instead.  The lock
        itself (or a no-op) rather than a generator-based context manager: this is on every call."""
        lock = self._sqlite_lock
        return _NO_SLOT if lock is None else lock

    def transaction(self) -> _Transaction:
        """A tool call's transaction (``store/tx.py``); call it under ``write_slot``.  Whatever the
        body leaves uncommitted is rolled back on the way out."""
        return _Transaction(self)

    async def _open_tx(self) -> CallTx:
        if self._sqlite_lock is None:
            return SessionTx(self.sessions)
        assert self._sqlite_lock.locked(), "SQLite call transactions run under write_slot"
        if self._inline is None:
            self._inline = await InlineConn.open(self.engine)
            if self._inline is not None and self._checkpointer is not None:
                self._checkpointer.start()
                self._inline.on_commit = self._checkpointer.note_commit
        return SessionTx(self.sessions) if self._inline is None else InlineTx(self.sessions, self._inline)

    async def _drop_inline(self) -> None:
        inline, self._inline = self._inline, None
        if inline is not None:
            with contextlib.suppress(Exception):
                await inline.conn.invalidate()

    async def check_database(self) -> None:
        await ping(self.engine)

    async def close(self) -> None:
        if self._checkpointer is not None:
            await self._checkpointer.stop()
        inline, self._inline = self._inline, None
        if inline is not None:
            await inline.conn.close()
        await self.engine.dispose()


class _NoSlot:
    """``write_slot`` on PostgreSQL: nothing to queue for."""

    __slots__ = ()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_: object) -> None:
        return None


_NO_SLOT: Final = _NoSlot()


class _Transaction:
    """``Registry.transaction()``: a class, not an ``@asynccontextmanager`` generator (on every call)."""

    __slots__ = ("_reg", "_tx")

    def __init__(self, reg: Registry) -> None:
        self._reg = reg
        self._tx: CallTx | None = None

    async def __aenter__(self) -> CallTx:
        self._tx = tx = await self._reg._open_tx()
        return tx

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        tx, self._tx = self._tx, None
        assert tx is not None
        try:
            await tx.close()
        except BaseException:
            # the shared connection could not be rolled back: never hand it to the next call
            await self._reg._drop_inline()
            raise
