"""Concurrent calls to tools share one internal request under load (docs/decisions.md D880).

While fewer than ``limit`` requests to tools are in flight, a call goes out alone on
``POST /internal/v1/rpc``, exactly as without this module: no added latency at low load.  Beyond
that, calls wait in a queue; whenever an in-flight request ends, what is queued (at most
:data:`MAX_ITEMS` calls and about :data:`MAX_BYTES`) leaves as one ``POST /internal/v1/rpc/batch``,
which takes one in-flight slot until its answer ends.  Tools streams one line per call, in
completion order (``{"i": <index>, "result": …}`` or ``{"i": …, "error": …}``), and each caller
waits for its own line only: a slow call does not hold up the others.

Every call gets what a single request would have given it: ``(status, body)``, or the transport's
:class:`~till_common.errors.TillError`.  For a batched call, a line is answered as ``(200, line)``
(the line is a ToolsRpcResponse plus ``i``, which a reader of ToolsRpcResponse ignores); a batch
answered with another status gives every call of it ``(status, body)``; a transport failure or
timeout raises for every call still waiting; an answer that ended without a call's line, or a line
that cannot be read, fails the calls still waiting as :class:`Unavailable`.  Nothing is resent once
written.  A queued call whose caller is cancelled leaves the queue; a sent one's late line is
dropped.  Each call's wait is bounded by the client's timeout from the moment it was made.

Rolling upgrade: a tools that answers 404/405 on the batch route (older than this) did not run the
calls; batching is then switched off for the process (logged once) and those calls go out singly.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Coroutine
from typing import Any, Final, Protocol

import msgspec

from till_common.errors import TillError, Unavailable, UpstreamError
from till_common.http import LineSink
from till_common.logging import get_logger, request_id_var

log = get_logger("till.gateway.coalesce")

SINGLE_PATH: Final = "/internal/v1/rpc"
BATCH_PATH: Final = "/internal/v1/rpc/batch"
MAX_ITEMS: Final = 64                # tools refuses more (till_common.protocol.internal.BATCH_MAX_ITEMS)
MAX_BYTES: Final = 1 << 20           # a batch body stops growing past this (one oversized call still goes)
DEFAULT_LIMIT: Final = 8             # TILL_TOOLS_BATCH_INFLIGHT's default


class Sender(Protocol):
    """What the coalescer sends with: :class:`till_common.http.InternalClient`, or a test's fake."""

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]: ...

    async def post_lines(self, path: str, body: bytes, on_line: LineSink) -> tuple[int, bytes]: ...


class _Index(msgspec.Struct):
    i: int


_index_decoder: Final = msgspec.json.Decoder(_Index)


class _Item:
    __slots__ = ("body", "future", "rid", "sent")

    def __init__(self, body: bytes, future: asyncio.Future[tuple[int, bytes]], rid: str) -> None:
        self.body = body
        self.future = future
        self.rid = rid
        self.sent = False


def _settle(item: _Item, value: tuple[int, bytes] | BaseException) -> None:
    future = item.future
    if future.done():                    # its caller gave up (cancelled or timed out): dropped
        return
    if isinstance(value, BaseException):
        future.set_exception(value)
    else:
        future.set_result(value)


class _Batch:
    """The calls of one batch request and which of them have had their line."""

    def __init__(self, items: list[_Item]) -> None:
        self.items = items
        self.answered = [False] * len(items)
        self.broken = ""                      # why a line could not be read, if one could not

    def body(self) -> bytes:
        return b"[" + b",".join(item.body for item in self.items) + b"]"

    def on_line(self, line: bytes) -> None:
        try:
            index = _index_decoder.decode(line).i
        except msgspec.DecodeError as exc:
            self.broken = self.broken or str(exc)[:200]
            return
        if not 0 <= index < len(self.items) or self.answered[index]:
            self.broken = self.broken or f"index {index} out of range or repeated"
            return
        self.answered[index] = True
        _settle(self.items[index], (200, line))

    def ended(self, status: int, raw: bytes) -> None:
        if status != 200:
            self.fail((status, raw))
        elif self.broken or not all(self.answered):
            self.fail(Unavailable("the batch answer is incomplete or unreadable",
                                  debug=self.broken or "ended before every call's line"))

    def fail(self, value: tuple[int, bytes] | BaseException) -> None:
        """Every call still waiting gets ``value``."""
        for done, item in zip(self.answered, self.items, strict=True):
            if not done:
                _settle(item, value)


class Coalescer:
    def __init__(self, sender: Sender, *, limit: int = DEFAULT_LIMIT, timeout: float = 30.0,
                 max_items: int = MAX_ITEMS, max_bytes: int = MAX_BYTES) -> None:
        self.sender = sender
        self.limit = limit                  # 0: never batch
        self.timeout = timeout
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.batching = limit > 0
        self.in_flight = 0
        self.queue: collections.deque[_Item] = collections.deque()
        self.tasks: set[asyncio.Task[None]] = set()
        # counters for the debug log and the tests: batches sent and the calls they carried
        self.batches = 0
        self.batched_calls = 0
        self.single_calls = 0

    async def call(self, body: bytes) -> tuple[int, bytes]:
        """``post(SINGLE_PATH, body)`` as seen by the caller, batched with others when busy."""
        if not self.batching or self.in_flight < self.limit:
            self.in_flight += 1
            self.single_calls += 1
            try:
                return await self.sender.post(SINGLE_PATH, body)
            finally:
                self.in_flight -= 1
                self._flush()
        loop = asyncio.get_running_loop()
        item = _Item(body, loop.create_future(), request_id_var.get())
        self.queue.append(item)
        try:
            async with asyncio.timeout(self.timeout):
                return await item.future
        except TimeoutError:
            raise UpstreamError("upstream timed out", debug=f"POST {BATCH_PATH} (queued or batched call)") from None
        finally:
            if not item.sent:
                self.queue.remove(item)

    def _flush(self) -> None:
        """Send what is queued while slots are free; one batch (or lone call) per slot."""
        if not self.batching:                # switched off while these waited: each goes alone
            while self.queue:
                item = self.queue.popleft()
                item.sent = True
                self._spawn(self._single(item, counted=False))
            return
        while self.queue and self.in_flight < self.limit:
            items = [self.queue.popleft()]
            size = len(items[0].body)
            while self.queue and len(items) < self.max_items and size + len(self.queue[0].body) <= self.max_bytes:
                item = self.queue.popleft()
                size += len(item.body)
                items.append(item)
            for item in items:
                item.sent = True
            self.in_flight += 1
            self._spawn(self._single(items[0]) if len(items) == 1 else self._batch(items))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _single(self, item: _Item, counted: bool = True) -> None:
        """One queued call alone (nothing else was waiting, or batching is off)."""
        request_id_var.set(item.rid)     # this task's own context: the header tools logs it under
        try:
            _settle(item, await self.sender.post(SINGLE_PATH, item.body))
        except TillError as exc:
            _settle(item, exc)
        except BaseException as exc:     # never leave a caller waiting on a bug
            _settle(item, Unavailable("tools call failed", debug=f"{type(exc).__name__}: {exc}"))
            if not isinstance(exc, Exception):
                raise
        finally:
            if counted:
                self.in_flight -= 1
                self._flush()

    async def _batch(self, items: list[_Item]) -> None:
        request_id_var.set(items[0].rid)     # the batch request's header; each call carries its own id
        self.batches += 1
        self.batched_calls += len(items)
        log.debug("tools batch", calls=len(items), batches=self.batches,
                  mean=round(self.batched_calls / self.batches, 2))
        batch = _Batch(items)
        fallback = False
        try:
            status, raw = await self.sender.post_lines(BATCH_PATH, batch.body(), batch.on_line)
            if status in (404, 405):          # an older tools: the route did not run anything
                fallback = True
                if self.batching:
                    self.batching = False
                    log.warning("tools has no batch route; calls go out one by one from now on",
                                status=status)
            else:
                batch.ended(status, raw)
        except TillError as exc:
            batch.fail(exc)
        except BaseException as exc:
            batch.fail(Unavailable("tools call failed", debug=f"{type(exc).__name__}: {exc}"))
            if not isinstance(exc, Exception):
                raise
        finally:
            self.in_flight -= 1
            if fallback:
                for item in items:
                    self._spawn(self._single(item, counted=False))
            self._flush()

    async def close(self) -> None:
        """Wait for the batches still running (their callers are waiting for them anyway)."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
