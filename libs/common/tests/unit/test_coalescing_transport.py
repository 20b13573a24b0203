"""``CoalescingTransport``: what one loop iteration writes leaves in one ``write`` (D820)."""

from __future__ import annotations

import asyncio
from typing import Any

from till_common.serve import CoalescingTransport


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))
        self.events.append("write")

    def close(self) -> None:
        self.closing = True
        self.events.append("close")

    def abort(self) -> None:
        self.closing = True
        self.events.append("abort")

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


async def test_head_and_body_written_in_one_iteration_leave_in_one_write() -> None:
    real = Recording()
    t = CoalescingTransport(real, asyncio.get_running_loop())
    t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    t.write(b"{}")
    assert real.writes == []
    assert t.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


async def test_a_write_followed_by_a_yield_is_sent_before_the_writer_resumes() -> None:
    real = Recording()
    t = CoalescingTransport(real, asyncio.get_running_loop())
    t.write(b"data: one\n\n")
    await asyncio.sleep(0)              # an SSE stream waiting for its next event
    assert real.writes == [b"data: one\n\n"]
    t.write(b"data: two\n\n")
    await asyncio.sleep(0)
    assert real.writes == [b"data: one\n\n", b"data: two\n\n"]


async def test_close_sends_what_is_held_before_closing() -> None:
    real = Recording()
    t = CoalescingTransport(real, asyncio.get_running_loop())
    t.write(b"head")
    t.write(b"body")
    t.close()
    assert real.events == ["write", "close"]
    assert real.writes == [b"headbody"]
    await asyncio.sleep(0)              # the scheduled flush finds nothing left to send
    assert real.writes == [b"headbody"]


async def test_abort_drops_what_is_held_and_a_closed_peer_gets_nothing() -> None:
    real = Recording()
    t = CoalescingTransport(real, asyncio.get_running_loop())
    t.write(b"lost")
    t.abort()
    await asyncio.sleep(0)
    assert real.writes == []
    other = Recording()
    t2 = CoalescingTransport(other, asyncio.get_running_loop())
    t2.write(b"late")
    other.closing = True                # connection_lost before the flush
    await asyncio.sleep(0)
    assert other.writes == []


async def test_empty_writes_schedule_nothing() -> None:
    real = Recording()
    t = CoalescingTransport(real, asyncio.get_running_loop())
    t.write(b"")
    t.writelines([b"a", memoryview(b"b"), bytearray(b"c")])
    await asyncio.sleep(0)
    assert real.writes == [b"abc"]
