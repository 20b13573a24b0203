"""FT-03: Redis restarts and loses its data while calls run.

Two gateway replicas on a private ``redis-server`` (its own free port, no persistence; never the
shared 6379) in front of the in-test upstream of the gateway tests (auth + tools contracts).  While a
loop of Streamable HTTP calls runs against both replicas, Redis is killed, a token is revoked during
the outage (only the feed can carry it: no Redis to push on), and Redis comes back empty.

- Streamable HTTP: every call answers 200 throughout (the rate limit fails open; JWTs verify locally);
- legacy SSE: the session is gone with Redis' data, so its POST is 404 and its stream is ended by the
  owner (its refresh finds the key gone), and the client reopens and works;
- the revocation made during the outage is enforced by both replicas ≤ 15 s after it was made.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import PrivateRedis, Service, Stream, free_port, open_stream, private_redis

sys.path.append(str(Path(__file__).resolve().parents[2] / "services" / "gateway" / "tests"))
from gw_upstream import Upstream, gateway_env

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.timeout(180)]


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream().start()
    yield up
    up.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    with private_redis(tmp_path) as server:
        yield server


def ping(i: int) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": i, "method": "ping"}


async def round_trip(http: httpx.AsyncClient, post_url: str, stream: Stream, token: str, i: int) -> None:
    r = await http.post(post_url + stream.endpoint, json=ping(i), headers={"Authorization": f"Bearer {token}"})
    assert (r.status_code, r.content) == (202, b""), r.text
    assert (await stream.next())["id"] == i


async def test_ft03_redis_restart_with_data_loss_under_load(
        spawn: Callable[..., Service], upstream: Upstream, redis_server: PrivateRedis) -> None:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    env = gateway_env(upstream, public, TILL_REDIS_URL=redis_server.url, TILL_REDIS_NAMESPACE="ft03")
    a = spawn("gateway", env, port=port)
    b = spawn("gateway", env)
    token = upstream.mint(public)
    doomed_jti = "ft03-revoked-during-outage"
    doomed = upstream.mint(public, jti=doomed_jti)
    auth = {"Authorization": f"Bearer {token}"}
    calls: list[tuple[float, int]] = []
    stop = asyncio.Event()

    async def streamable_load(http: httpx.AsyncClient) -> None:
        i = 0
        while not stop.is_set():
            for gw in (a, b):
                started = time.monotonic()
                r = await http.post(gw.url + "/mcp", json=ping(i), headers=auth)
                calls.append((time.monotonic() - started, r.status_code))
                i += 1
            await asyncio.sleep(0.02)

    async with httpx.AsyncClient(timeout=10) as http:
        for gw in (a, b):
            assert (await http.post(gw.url + "/mcp", json=ping(0),
                                    headers={"Authorization": f"Bearer {doomed}"})).status_code == 200
        load = asyncio.create_task(streamable_load(http))
        async with open_stream(a.url, token) as stream:
            await round_trip(http, b.url, stream, token, 1)
            await asyncio.sleep(0.5)
            before = len(calls)

            await asyncio.to_thread(redis_server.kill)            # Redis gone, with every key
            await asyncio.sleep(1.0)
            revoked_at = time.monotonic()
            upstream.revoke("token", doomed_jti)                   # during the outage: feed only
            await asyncio.sleep(1.0)
            await asyncio.to_thread(redis_server.start)           # back, empty
            assert len(calls) > before, "the load kept running through the outage"

            # the old session died with Redis' data: its POST is 404 (503 while a replica reconnects)
            deadline = time.monotonic() + 15
            while True:
                r = await http.post(b.url + stream.endpoint, json=ping(2), headers=auth)
                if r.status_code == 404:
                    break
                assert r.status_code == 503, r.text
                assert time.monotonic() < deadline, "old session never answered 404"
                await asyncio.sleep(0.2)
            # …and the owner ends its stream (its refresh finds the key gone): the client reopens
            await asyncio.wait_for(stream.ended.wait(), 10)

        deadline = time.monotonic() + 15
        while True:                # a new stream opens once the owner is subscribed again
            r = await http.get(a.url + "/readyz")
            if r.status_code == 200:
                break
            assert time.monotonic() < deadline, f"replica A not ready again: {r.text}"
            await asyncio.sleep(0.2)
        async with open_stream(a.url, token) as fresh:
            await round_trip(http, b.url, fresh, token, 3)
            await round_trip(http, a.url, fresh, token, 4)

        # the revocation made during the outage is enforced by both replicas ≤ 15 s after it
        for gw in (a, b):
            while (await http.post(gw.url + "/mcp", json=ping(5),
                                   headers={"Authorization": f"Bearer {doomed}"})).status_code != 401:
                assert time.monotonic() - revoked_at < 15, f"{gw.url} still accepts the revoked token"
                await asyncio.sleep(0.2)
        stop.set()
        await load

    statuses = {status for _, status in calls}
    assert statuses == {200}, f"Streamable HTTP affected: {sorted(statuses)}"
    slowest = max(seconds for seconds, _ in calls)
    assert len(calls) > 50
    print(f"FT-03: {len(calls)} streamable calls, all 200, slowest {slowest * 1000:.0f} ms")
