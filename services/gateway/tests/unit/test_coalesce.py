"""The coalescer with a fake sender (plain asyncio): when calls are batched and what each caller gets (D880)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from till_common.errors import Unavailable, UpstreamError
from till_common.http import LineSink
from till_gateway.coalesce import BATCH_PATH, SINGLE_PATH, Coalescer


def line(i: int, value: Any) -> bytes:
    return json.dumps({"i": i, "result": {"v": value}}).encode()


class FakeTools:
    """Records what is sent; each request waits until the test answers it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.pending: list[asyncio.Future[Any]] = []
        self.sinks: list[LineSink] = []

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.sent.append((path, body))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        result: tuple[int, bytes] = await future
        return result

    async def post_lines(self, path: str, body: bytes, on_line: LineSink) -> tuple[int, bytes]:
        self.sinks.append(on_line)
        return await self.post(path, body)

    def bodies(self, path: str) -> list[Any]:
        return [json.loads(b) for p, b in self.sent if p == path]


def body(n: int) -> bytes:
    return json.dumps({"n": n}).encode()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def started(limit: int = 2, timeout: float = 5.0) -> tuple[FakeTools, Coalescer]:
    tools = FakeTools()
    return tools, Coalescer(tools, limit=limit, timeout=timeout)


Call = asyncio.Task[tuple[int, bytes]]


async def batch_behind_one(n: int) -> tuple[FakeTools, Coalescer, Call, list[Call]]:
    """Window 1: one call in flight, ``n`` queued behind it; the first is answered, so the ``n``
    leave as one batch (``tools.pending[1]``, its lines through ``tools.sinks[0]``)."""
    tools, co = await started(limit=1)
    first = asyncio.create_task(co.call(body(0)))
    await settle()
    queued = [asyncio.create_task(co.call(body(k))) for k in range(1, n + 1)]
    await settle()
    tools.pending[0].set_result((200, b"{}"))
    await settle()
    return tools, co, first, queued



async def test_below_the_limit_every_call_goes_alone_at_once() -> None:
    tools, co = await started(limit=2)
    calls = [asyncio.create_task(co.call(body(n))) for n in range(2)]
    await settle()
    assert [p for p, _ in tools.sent] == [SINGLE_PATH, SINGLE_PATH]
    for n, future in enumerate(tools.pending):
        future.set_result((200, b'{"result":{"n":%d}}' % n))
    assert await asyncio.gather(*calls) == [(200, b'{"result":{"n":0}}'), (200, b'{"result":{"n":1}}')]
    assert co.batches == 0 and co.in_flight == 0


async def test_above_the_limit_queued_calls_leave_as_one_batch_answered_out_of_order() -> None:
    tools, co = await started(limit=2)
    singles = [asyncio.create_task(co.call(body(n))) for n in range(2)]
    await settle()
    queued = [asyncio.create_task(co.call(body(n))) for n in range(10, 15)]
    await settle()
    assert len(tools.sent) == 2                       # the five wait: two requests are in flight
    tools.pending[0].set_result((200, b"{}"))         # one ends: everything queued leaves together
    await settle()
    assert [p for p, _ in tools.sent] == [SINGLE_PATH, SINGLE_PATH, BATCH_PATH]
    assert tools.bodies(BATCH_PATH) == [[{"n": n} for n in range(10, 15)]]
    sink = tools.sinks[0]
    sink(line(3, "c"))
    await settle()
    assert queued[3].done() and not queued[0].done()  # each caller gets its line as it arrives
    assert queued[3].result() == (200, line(3, "c"))
    for i in (4, 0, 2, 1):
        sink(line(i, i))
    tools.pending[2].set_result((200, b""))
    assert [await q for q in queued] == [(200, line(i, i if i != 3 else "c")) for i in range(5)]
    tools.pending[1].set_result((200, b"{}"))
    await asyncio.gather(*singles)
    assert (co.batches, co.batched_calls, co.in_flight) == (1, 5, 0)


async def test_a_batch_carries_at_most_max_items_the_rest_waits_for_the_next_free_slot() -> None:
    tools = FakeTools()
    co = Coalescer(tools, limit=1, timeout=5.0, max_items=3)
    first = asyncio.create_task(co.call(body(0)))
    await settle()
    queued = [asyncio.create_task(co.call(body(n))) for n in range(1, 6)]
    await settle()
    tools.pending[0].set_result((200, b"{}"))
    await settle()
    assert tools.bodies(BATCH_PATH) == [[{"n": 1}, {"n": 2}, {"n": 3}]]
    for i in range(3):
        tools.sinks[0](line(i, i))
    tools.pending[1].set_result((200, b""))
    await settle()
    assert tools.bodies(BATCH_PATH)[1] == [{"n": 4}, {"n": 5}]
    for i in range(2):
        tools.sinks[1](line(i, i))
    tools.pending[2].set_result((200, b""))
    await asyncio.gather(first, *queued)


async def test_a_cancelled_queued_call_is_never_sent_and_a_sent_ones_late_line_is_dropped() -> None:
    tools, co = await started(limit=1)
    first = asyncio.create_task(co.call(body(0)))
    await settle()
    gone = asyncio.create_task(co.call(body(1)))
    kept = [asyncio.create_task(co.call(body(n))) for n in (2, 3)]
    await settle()
    gone.cancel()
    await settle()
    assert len(co.queue) == 2
    tools.pending[0].set_result((200, b"{}"))
    await settle()
    assert tools.bodies(BATCH_PATH) == [[{"n": 2}, {"n": 3}]]       # n=1 never left
    kept[1].cancel()                                                 # sent, then its caller goes away
    await settle()
    tools.sinks[0](line(1, "late"))                                  # dropped, nothing raised
    tools.sinks[0](line(0, "ok"))
    tools.pending[1].set_result((200, b""))
    assert await kept[0] == (200, line(0, "ok"))
    await first
    await settle()
    assert co.in_flight == 0


async def test_an_answer_that_ends_early_fails_the_calls_still_waiting() -> None:
    tools, _, first, queued = await batch_behind_one(3)
    tools.sinks[0](line(1, "one"))
    tools.pending[1].set_result((200, b""))                          # ended with lines 0 and 2 missing
    results = await asyncio.gather(*queued, return_exceptions=True)
    assert results[1] == (200, line(1, "one"))
    assert isinstance(results[0], Unavailable) and isinstance(results[2], Unavailable)
    await first


async def test_a_transport_failure_mid_answer_fails_the_rest_with_that_error_and_nothing_is_resent() -> None:
    tools, _, first, queued = await batch_behind_one(2)
    tools.sinks[0](line(0, "zero"))
    tools.pending[1].set_exception(Unavailable("upstream unavailable"))
    results = await asyncio.gather(*queued, return_exceptions=True)
    assert results[0] == (200, line(0, "zero"))
    assert isinstance(results[1], Unavailable) and str(results[1]) == "upstream unavailable"
    assert len(tools.sent) == 2
    await first


@pytest.mark.parametrize("answer", [b"not json", b'{"i": 7, "result": {}}', b'{"result": {}}'])
async def test_an_unreadable_line_fails_the_calls_without_a_line(answer: bytes) -> None:
    tools, _, first, queued = await batch_behind_one(2)
    tools.sinks[0](line(1, "one"))
    tools.sinks[0](answer)
    tools.pending[1].set_result((200, b""))
    results = await asyncio.gather(*queued, return_exceptions=True)
    assert isinstance(results[0], Unavailable) and results[1] == (200, line(1, "one"))
    await first


async def test_another_status_on_the_batch_is_every_calls_status() -> None:
    tools, _, first, queued = await batch_behind_one(2)
    tools.pending[1].set_result((500, b"problem"))
    assert await asyncio.gather(*queued) == [(500, b"problem"), (500, b"problem")]
    await first


@pytest.mark.parametrize("status", [404, 405])
async def test_no_batch_route_sends_those_calls_alone_and_stops_batching(status: int) -> None:
    tools, co, first, queued = await batch_behind_one(2)
    tools.pending[1].set_result((status, b"not found"))
    await settle()
    assert not co.batching
    assert [p for p, _ in tools.sent] == [SINGLE_PATH, BATCH_PATH, SINGLE_PATH, SINGLE_PATH]
    assert tools.bodies(SINGLE_PATH)[1:] == [{"n": 1}, {"n": 2}]
    tools.pending[2].set_result((200, b"one"))
    tools.pending[3].set_result((200, b"two"))
    assert await asyncio.gather(*queued) == [(200, b"one"), (200, b"two")]
    # from now on every call goes alone at once, however many are in flight
    more = [asyncio.create_task(co.call(body(n))) for n in range(3, 6)]
    await settle()
    assert [p for p, _ in tools.sent[4:]] == [SINGLE_PATH] * 3
    for future in tools.pending[4:]:
        future.set_result((200, b"x"))
    await asyncio.gather(first, *more)


async def test_a_queued_calls_wait_is_bounded_by_the_timeout() -> None:
    tools, co = await started(limit=1, timeout=0.2)
    first = asyncio.create_task(co.call(body(0)))
    await settle()
    with pytest.raises(UpstreamError, match="timed out"):
        await co.call(body(1))                        # the only slot never frees
    assert not co.queue
    tools.pending[0].set_result((200, b"{}"))
    await first
    assert [p for p, _ in tools.sent] == [SINGLE_PATH]


async def test_zero_never_batches() -> None:
    tools, co = await started(limit=0)
    calls = [asyncio.create_task(co.call(body(n))) for n in range(8)]
    await settle()
    assert [p for p, _ in tools.sent] == [SINGLE_PATH] * 8
    for future in tools.pending:
        future.set_result((200, b"{}"))
    await asyncio.gather(*calls)
