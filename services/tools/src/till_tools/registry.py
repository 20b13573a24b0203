"""Everything the tools service holds open, built once by ``create_app``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from till_db.engine import ping, sessionmaker
from till_tools.audit import HeadCache
from till_tools.payment_keys import PaymentKeys
from till_tools.settings import ToolsSettings
from till_tools.spec import Catalogue
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

    @classmethod
    def build(cls, settings: ToolsSettings, catalogue: Catalogue | None = None) -> Registry:
        engine = make_store_engine(settings.tools_database_url)
        lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        return cls(settings=settings, engine=engine, sessions=sessionmaker(engine),
                   catalogue=catalogue or default_catalogue(), _sqlite_lock=lock,
                   payment_keys=PaymentKeys(settings.key_encryption_key))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.asynccontextmanager
    async def write_slot(self) -> AsyncIterator[None]:
        """SQLite has one writer: queue here rather than spin in its busy handler (every call writes
        its audit row).  PostgreSQL serializes per store on the audit chain head instead."""
        if self._sqlite_lock is None:
            yield
            return
        async with self._sqlite_lock:
            yield

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[CallTx]:
        """A tool call's transaction (``store/tx.py``); call it under ``write_slot``.  Whatever the
        body leaves uncommitted is rolled back on the way out."""
        if self._sqlite_lock is None:
            tx: CallTx = SessionTx(self.sessions)
        else:
            assert self._sqlite_lock.locked(), "SQLite call transactions run under write_slot"
            if self._inline is None:
                self._inline = await InlineConn.open(self.engine)
            tx = SessionTx(self.sessions) if self._inline is None else InlineTx(self.sessions, self._inline)
        try:
            yield tx
        finally:
            try:
                await tx.close()
            except BaseException:
                # the shared connection could not be rolled back: never hand it to the next call
                await self._drop_inline()
                raise

    async def _drop_inline(self) -> None:
        inline, self._inline = self._inline, None
        if inline is not None:
            with contextlib.suppress(Exception):
                await inline.conn.invalidate()

    async def check_database(self) -> None:
        await ping(self.engine)

    async def close(self) -> None:
        inline, self._inline = self._inline, None
        if inline is not None:
            await inline.conn.close()
        await self.engine.dispose()
