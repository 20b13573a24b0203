"""SQLite WAL checkpoints on a worker thread, never inside a commit on the event loop (D890).

With SQLite's default ``wal_autocheckpoint=1000`` the commit that pushes the WAL past 1000 pages
runs the checkpoint itself: it copies the pages back into the database file and ``fsync``s both,
inline, on the event loop (the service drives ``sqlite3`` without a thread hop, D203).  The
registry's engine turns that off (``make_store_engine(autocheckpoint=False)``) and a ``Checkpointer``
runs ``PRAGMA wal_checkpoint(PASSIVE)`` on a worker thread with its own ``sqlite3`` connection
instead (``sqlite3`` releases the GIL while SQLite works, so the loop keeps serving).  It is due after
every ``every`` commits the loop reported (``note_commit``: an integer add), and every ``interval``
seconds for writes nobody reported (another session, another process).

A checkpoint runs in two passes.  The first copies the bulk of the WAL while calls keep committing.
SQLite only starts the WAL file over when a writer finds it *completely* copied, which never happens
while writers append during the copy, so the second pass copies the few frames appended meanwhile
while holding the registry's write slot (calls queue for that short while; the loop does not block).
The next commit then starts the WAL from its beginning, and the file stays at the size written
between two checkpoints.  PASSIVE never waits for a lock; TRUNCATE and RESTART are never used.  A
failed checkpoint is logged and retried when next due; the WAL then grows until one succeeds (the last
connection to close checkpoints it anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from till_common.logging import get_logger

log = get_logger("till.tools.checkpoint")

EVERY: Final = 200        # commits between checkpoints: a call's commit writes ~5-6 pages, so ~1000 pages
INTERVAL: Final = 1.0     # seconds between checkpoints when fewer commits were reported


class Checkpointer:
    def __init__(self, path: str, write_slot: asyncio.Lock, every: int = EVERY, interval: float = INTERVAL) -> None:
        self.path = path
        self.every = every
        self.interval = interval
        self.checkpoints = 0       # completed checkpoints (both passes), for tests and metrics
        self.failures = 0
        self.last: tuple[int, int, int] | None = None   # (busy, WAL frames, frames copied) of the last pass
        self._slot = write_slot
        self._commits = 0          # reported commits, ever
        self._pending = 0          # since the last wake-up
        self._due: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None   # used on the pool's one thread only

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        """On the running loop; idempotent."""
        if self._task is not None:
            return
        self._due = asyncio.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="till-wal-checkpoint")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="till-wal-checkpoint")

    def note_commit(self) -> None:
        """Called on the loop after every commit: a counter, and a wake-up every ``every`` of them."""
        self._commits += 1
        self._pending += 1
        if self._pending >= self.every and self._due is not None:
            self._pending = 0
            self._due.set()

    async def stop(self) -> None:
        """Ends the task, closes the connection on its thread and joins the thread."""
        task, self._task = self._task, None
        pool, self._pool = self._pool, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(pool, self._close)
            await asyncio.to_thread(pool.shutdown, wait=True)

    # --- on the worker thread ------------------------------------------------------------------

    def _passive(self) -> tuple[int, int, int]:
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, timeout=0, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
        try:
            row = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
        except BaseException:
            self._close()
            raise
        self.last = (int(row[0]), int(row[1]), int(row[2]))
        return self.last

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # --- on the loop -----------------------------------------------------------------------------

    async def checkpoint_now(self) -> None:
        """Both passes (see the module docstring); raises what the checkpoint raised."""
        pool = self._pool
        assert pool is not None, "start() first"
        loop = asyncio.get_running_loop()
        before = self._commits
        _, frames, _ = await loop.run_in_executor(pool, self._passive)
        if frames and self._commits != before:
            async with self._slot:
                await loop.run_in_executor(pool, self._passive)
        self.checkpoints += 1

    async def _run(self) -> None:
        assert self._due is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), self.interval)
            self._due.clear()
            self._pending = 0
            try:
                await self.checkpoint_now()
            except Exception:
                self.failures += 1
                log.warning("WAL checkpoint failed; retrying when next due", path=self.path, exc_info=True)
