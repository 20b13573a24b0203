"""fastredis.py (the pipelined connection, its subscriber) and the rate-limit hit folded into the SSE
delivery script (D840-D842), against the real Redis and a private redis-server that is killed."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tests.support import private_redis

from till_gateway.fastredis import PipelinedRedis, Script, pipelined
from till_gateway.ratelimit import WINDOW, RedisRateLimiter
from till_gateway.revocations import Credential
from till_gateway.sessions import Count, RateLimited, SessionHub

pytestmark = pytest.mark.redis


def fast_for(url: str) -> PipelinedRedis:
    fast = pipelined(Redis.from_url(url))
    assert fast is not None
    return fast


async def test_concurrent_calls_get_their_own_replies_in_order(redis_url: str, redis_namespace: str) -> None:
    fast = fast_for(redis_url)
    keys = [f"{redis_namespace}:fast:{i}" for i in range(50)]
    try:
        replies = await asyncio.gather(*(fast.execute("INCRBY", k, i + 1) for i, k in enumerate(keys)))
        assert replies == list(range(1, 51))
        assert await fast.execute("GET", keys[9]) == b"10"
        assert await fast.execute("GET", f"{redis_namespace}:fast:absent") is None
        with pytest.raises(ResponseError):
            await fast.execute("INCR", "a", "b", "c")
        assert await fast.execute("PING") == b"PONG"          # the connection survives an error reply
    finally:
        await fast.execute("DEL", *keys)
        fast.close()


async def test_an_unknown_script_is_sent_in_full_after_noscript(redis_url: str) -> None:
    fast = fast_for(redis_url)
    script = Script(f"-- {secrets.token_hex(8)}\nreturn {{KEYS[1], ARGV[1]}}")   # never loaded before
    try:
        assert await fast.evalsha(script, ["k"], ["v"]) == [b"k", b"v"]
        assert await fast.execute("SCRIPT", "EXISTS", script.sha) == [1]
        assert await fast.evalsha(script, ["k2"], [3]) == [b"k2", b"3"]
    finally:
        fast.close()


async def test_a_dead_redis_fails_calls_and_a_restarted_one_is_reconnected(tmp_path: Path) -> None:
    """FT-03 at the connection: every caller in flight and after gets a RedisError (fail open / 503
    upstairs), never a hang; once Redis is back the next call reconnects; scripts reload."""
    with private_redis(tmp_path) as server:
        fast = fast_for(server.url)
        script = Script("return redis.call('INCR', KEYS[1])")
        try:
            assert await fast.evalsha(script, ["n"], []) == 1
            server.kill()
            started = time.monotonic()
            with pytest.raises(RedisError):
                await fast.evalsha(script, ["n"], [])
            with pytest.raises(RedisError):
                await fast.execute("PING")
            assert time.monotonic() - started < 5
            server.start()
            assert await fast.evalsha(script, ["n"], []) == 1       # empty again, script reloaded
        finally:
            fast.close()


async def test_a_silent_server_times_out_every_caller(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    listener.setblocking(False)

    async def accept() -> None:
        loop = asyncio.get_running_loop()
        conn, _ = await loop.sock_accept(listener)
        held.append(conn)                      # accepts, reads nothing, answers nothing

    acceptor = asyncio.create_task(accept())
    fast = PipelinedRedis("127.0.0.1", listener.getsockname()[1], timeout=0.3, connect_timeout=1)
    try:
        started = time.monotonic()
        results = await asyncio.gather(fast.execute("PING"), fast.execute("PING"), return_exceptions=True)
        assert all(isinstance(r, RedisTimeoutError) for r in results), results
        assert time.monotonic() - started < 2
    finally:
        fast.close()
        acceptor.cancel()
        for conn in held:
            conn.close()
        listener.close()


async def test_subscriber_hands_messages_to_the_callback_and_answers_pings(redis_url: str,
                                                                           redis_namespace: str) -> None:
    fast = fast_for(redis_url)
    got: list[tuple[bytes, bytes]] = []
    channel = f"{redis_namespace}:chan"
    sub = await fast.subscribe([channel], lambda c, d: got.append((c, d)))
    try:
        assert await fast.execute("PUBLISH", channel, b"one") == 1
        assert await fast.execute("PUBLISH", channel, b"two\nlines") == 1
        await sub.ping()
        for _ in range(100):
            if len(got) == 2:
                break
            await asyncio.sleep(0.01)
        assert got == [(channel.encode(), b"one"), (channel.encode(), b"two\nlines")]
        assert not await sub.wait_lost(0.01)
    finally:
        sub.close()
        fast.close()
    assert await sub.wait_lost(2)


def cred() -> Credential:
    return Credential(user_id=1, store_id=1, role="owner", scopes=("products:read",), client_id=None,
                      token_id="t", iat=int(time.time()), gid=None, expires_at=time.time() + 3600)


async def test_a_counted_delivery_over_the_limit_publishes_nothing(redis_url: str, redis_namespace: str) -> None:
    """DS-02 inside the delivery script: the hit is counted in the limiter's own key (so the streamable
    transport and other replicas see the same count), and over the limit nothing reaches the stream."""
    redis = Redis.from_url(redis_url)
    fast = pipelined(redis)
    assert fast is not None
    a = SessionHub(redis, redis_namespace, 6, replica_id="a", fast=fast)
    b = SessionHub(redis, redis_namespace, 6, replica_id="b", fast=fast)
    a.routable = True
    limiter = RedisRateLimiter(redis, redis_namespace, 3, fast=fast)
    got: list[bytes] = []

    def on_message(_channel: bytes, data: bytes) -> None:
        a.receive(data)
        got.append(data)

    sub = await fast.subscribe([a.channel], on_message)
    try:
        session = await a.open(cred())
        record = await b.find(session.id, cred())
        assert record is not None
        assert b.relays(record)
        assert not a.relays(record)
        count = Count(limiter.key("tok"), WINDOW, limiter.limit)
        assert await limiter.hit("tok") is None                        # 1, on the streamable path
        assert await b.deliver(session.id, record, b'{"id":1}', count)  # 2
        assert await b.deliver(session.id, record, b'{"id":2}', count)  # 3
        with pytest.raises(RateLimited) as over:
            await b.deliver(session.id, record, b'{"id":3}', count)    # 4: over
        assert 1 <= over.value.retry_after <= WINDOW
        assert await limiter.hit("tok") is not None                    # the same window everywhere
        await sub.ping()                     # every publish before it has been read
        assert [d.split(b"\n", 1)[1] for d in got] == [b'{"id":1}', b'{"id":2}']
        ttl = await redis.ttl(limiter.key("tok"))
        assert 0 < ttl <= WINDOW
        with pytest.raises(RateLimited):
            await b.deliver("no-such-session", record, b"{}", count)  # counted before the lookup
    finally:
        sub.close()
        await a.drain()
        await redis.delete(limiter.key("tok"))
        fast.close()
        await redis.aclose()


async def test_unreachable_redis_keeps_the_rate_limit_fail_open(tmp_path: Path) -> None:
    with private_redis(tmp_path) as server:
        redis = Redis.from_url(server.url)
        fast = pipelined(redis)
        assert fast is not None
        limiter = RedisRateLimiter(redis, "ns", 1, fast=fast)
        assert await limiter.hit("x") is None
        retry = await limiter.hit("x")
        assert retry is not None
        assert 1 <= retry <= WINDOW
        server.kill()
        assert await limiter.hit("x") is None              # fail open
        with pytest.raises(RedisConnectionError):
            await fast.execute("PING")
        fast.close()
        await redis.aclose()
