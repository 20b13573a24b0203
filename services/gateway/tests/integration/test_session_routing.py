"""SessionHub against the real Redis, two hubs in one process standing for two replicas: the races of
issue #6 forced deterministically, the per-principal cap, and key clean-up (docs/decisions.md D304-D306)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from till_common.errors import Unavailable
from till_gateway.heartbeats import HEARTBEAT
from till_gateway.revocations import Credential
from till_gateway.sessions import OWNER_RETRY, SessionHub, TooManySessions

pytestmark = pytest.mark.redis


def cred(user_id: int = 1, store_id: int = 1) -> Credential:
    return Credential(user_id=user_id, store_id=store_id, role="owner", scopes=("products:read",), client_id=None,
                      token_id="t", iat=int(time.time()), gid=None, expires_at=time.time() + 3600)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def hub(redis: Redis, ns: str, name: str, ttl: int = 6, **kw: int) -> SessionHub:
    h = SessionHub(redis, ns, ttl, replica_id=name, heartbeat=1.0, **kw)
    h.routable = True          # what Background does once subscribed
    return h


@contextlib.asynccontextmanager
async def subscribed(redis: Redis, h: SessionHub) -> AsyncIterator[None]:
    """The owner's subscription, as Background._listen runs it."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(h.channel)

    async def pump() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                h.receive(message["data"])

    task = asyncio.create_task(pump())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def next_message(h: SessionHub, sid: str) -> bytes | None:
    while True:
        item = await asyncio.wait_for(h.local[sid].queue.get(), 5)
        if item != HEARTBEAT:
            return item


async def test_zero_receivers_while_the_owner_is_alive_is_retried_not_a_dead_session(
        redis: Redis, redis_namespace: str) -> None:
    """Issue #6, the suspected path forced: A holds the session and is alive (liveness key set) but its
    subscription is not up when B publishes.  The old hub answered 404 and deleted the session; now
    B retries, and the message arrives once A resubscribes."""
    a, b = hub(redis, redis_namespace, "a"), hub(redis, redis_namespace, "b")
    session = await a.open(cred())
    await a.beat()
    record = await b.find(session.id, cred())
    assert record is not None and record.replica == "a"

    async def resubscribe_later() -> None:
        await asyncio.sleep(0.15)                     # well inside the retry window
        async with subscribed(redis, a):
            await asyncio.sleep(1.0)

    later = asyncio.create_task(resubscribe_later())
    assert await b.deliver(session.id, record, b'{"jsonrpc":"2.0","id":1,"result":{}}') is True
    assert await next_message(a, session.id) == b'{"jsonrpc":"2.0","id":1,"result":{}}'
    assert await redis.exists(a.key(session.id)) == 1, "the session was not dropped"
    await later


async def test_owner_alive_but_unreachable_for_long_is_503_and_the_session_survives(
        redis: Redis, redis_namespace: str) -> None:
    a, b = hub(redis, redis_namespace, "a"), hub(redis, redis_namespace, "b")
    session = await a.open(cred())
    await a.beat()
    record = await b.find(session.id, cred())
    assert record is not None
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await b.deliver(session.id, record, b"{}")
    assert time.monotonic() - started >= sum(OWNER_RETRY) * 0.9
    assert await redis.exists(a.key(session.id)) == 1


async def test_ft01_zero_receivers_and_no_liveness_means_the_owner_died(redis: Redis, redis_namespace: str) -> None:
    """kill -9: no subscriber and the liveness key expired → 404 at once and the keys are deleted."""
    a, b = hub(redis, redis_namespace, "a"), hub(redis, redis_namespace, "b")
    session = await a.open(cred())
    await a.beat()
    await redis.delete(a.alive_key("a"))          # what ALIVE_TTL does after a kill
    record = await b.find(session.id, cred())
    assert record is not None
    assert await b.deliver(session.id, record, b"{}") is False
    assert await redis.exists(a.key(session.id)) == 0
    assert await redis.zcard(a.principal_key(session.fp)) == 0
    assert await b.find(session.id, cred()) is None


async def test_a_session_deleted_after_the_lookup_is_never_202_into_nothing(redis: Redis,
                                                                           redis_namespace: str) -> None:
    """B's lookup is cached for a moment; the delivery script re-checks the key atomically."""
    a, b = hub(redis, redis_namespace, "a"), hub(redis, redis_namespace, "b")
    session = await a.open(cred())
    async with subscribed(redis, a):
        record = await b.find(session.id, cred())
        assert record is not None
        await a.close(session)
        assert await b.find(session.id, cred()) is not None     # still cached…
        assert await b.deliver(session.id, record, b"{}") is False   # …but never delivered into nothing
    assert await b.find(session.id, cred()) is None


async def test_refresh_keeps_busy_sessions_alive_and_ends_streams_whose_key_is_gone(
        redis: Redis, redis_namespace: str) -> None:
    a = hub(redis, redis_namespace, "a", ttl=2)
    kept, lost = await a.open(cred()), await a.open(cred())
    await redis.delete(a.key(lost.id))                  # Redis restarted without its data, or judged dead
    await asyncio.sleep(1.2)
    await a.refresh()
    assert await redis.pttl(a.key(kept.id)) > 1500
    assert lost.id not in a.local and lost.closed
    assert await lost.queue.get() is None               # its stream ends: the client reopens
    assert kept.id in a.local and not kept.closed
    assert await redis.zrange(a.principal_key(kept.fp), 0, -1) == [kept.id.encode()]


async def test_per_principal_cap_is_global_across_replicas_and_frees_on_close(redis: Redis,
                                                                               redis_namespace: str) -> None:
    a, b = hub(redis, redis_namespace, "a", per_principal=3), hub(redis, redis_namespace, "b", per_principal=3)
    held = [await a.open(cred()), await b.open(cred()), await a.open(cred())]
    with pytest.raises(TooManySessions):
        await b.open(cred())
    other = await b.open(cred(user_id=2))              # another principal is not affected
    await a.close(held[0])
    replacement = await b.open(cred())
    assert replacement.id in b.local
    await b.close(other)
    for s in (held[1], replacement):
        await b.close(s)
    await a.close(held[2])
    assert [k async for k in redis.scan_iter(match=f"{redis_namespace}:sse*")] == []


async def test_cap_counts_no_session_of_a_killed_replica_after_its_ttl(redis: Redis, redis_namespace: str) -> None:
    a, b = hub(redis, redis_namespace, "a", ttl=2, per_principal=2), hub(redis, redis_namespace, "b", ttl=2,
                                                                          per_principal=2)
    await a.open(cred())
    await a.open(cred())                 # then "a" is killed: nothing refreshes or deletes them
    with pytest.raises(TooManySessions):
        await b.open(cred())
    await asyncio.sleep(2.2)
    assert (await b.open(cred())).id in b.local


async def test_drain_deletes_keys_and_liveness_at_once(redis: Redis, redis_namespace: str) -> None:
    a = hub(redis, redis_namespace, "a")
    sessions = [await a.open(cred()) for _ in range(3)]
    await a.beat()
    await a.drain()
    assert all(s.closed for s in sessions)
    assert [k async for k in redis.scan_iter(match=f"{redis_namespace}:*")] == []
