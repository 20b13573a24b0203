"""The heartbeat wheel (D866): each session beaten once per interval, a tick touching only its slot."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from till_gateway.heartbeats import HEARTBEAT, HeartbeatWheel
from till_gateway.revocations import Credential
from till_gateway.sessions import LocalSession, SessionHub

CRED = Credential(user_id=1, store_id=1, role="owner", scopes=(), client_id=None, token_id="t", iat=0, gid=None,
                  expires_at=4e9)


def sessions(n: int) -> dict[str, LocalSession]:
    return {str(i): LocalSession(str(i), CRED, "fp")
            for i in range(n)}


def beats(local: dict[str, LocalSession]) -> Counter[str]:
    out: Counter[str] = Counter()
    for sid, s in local.items():
        while not s.queue.empty():
            assert s.queue.get_nowait() == HEARTBEAT
            out[sid] += 1
    return out


def test_a_turn_beats_every_session_once_and_a_tick_only_its_share() -> None:
    local = sessions(10_000)
    wheel = HeartbeatWheel(15.0)
    for sid in local:
        wheel.add(sid)
    assert wheel.size == 150
    wheel.advance(1, local)
    assert sum(beats(local).values()) in (66, 67)            # 10,000 / 150, not 10,000
    wheel.advance(wheel.size - 1, local)
    counts = beats(local)
    assert len(counts) == 10_000 - 67 or len(counts) == 10_000 - 66
    wheel.advance(wheel.size, local)
    assert set(beats(local).values()) == {1} and len(local) == 10_000


def test_a_late_loop_catches_up_at_most_one_turn() -> None:
    local = sessions(30)
    wheel = HeartbeatWheel(1.0)
    for sid in local:
        wheel.add(sid)
    wheel.advance(10_000, local)
    assert set(beats(local).values()) == {1}


def test_sessions_that_left_are_dropped_from_their_slot() -> None:
    local = sessions(20)
    wheel = HeartbeatWheel(1.0)
    for sid in local:
        wheel.add(sid)
    gone = {k: local.pop(k) for k in ("3", "7")}
    wheel.advance(wheel.size, local)
    assert len(wheel) == 18
    assert all(s.queue.empty() for s in gone.values())


@pytest.mark.parametrize("interval", [0.3, 1.0])
async def test_the_first_heartbeat_comes_within_the_interval(interval: float) -> None:
    hub = SessionHub(None, "t", ttl=30, heartbeat=interval)
    task = asyncio.create_task(hub.maintain())
    try:
        await asyncio.sleep(interval * 0.37)            # join mid-turn
        loop = asyncio.get_running_loop()
        opened = [await hub.open(CRED) for _ in range(5)]
        t0 = loop.time()
        firsts = []
        for s in opened:
            assert await asyncio.wait_for(s.queue.get(), interval * 2) == HEARTBEAT
            firsts.append(loop.time() - t0)
        assert max(firsts) <= interval + 0.15          # one tick of slack for a busy loop
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
