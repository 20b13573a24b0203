"""Legacy SSE (2024-11-05) over real HTTP, two replicas sharing the real Redis (SS rows, FT-01/02)."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import httpx
import pytest
import redis
from gw_upstream import Gateways
from tests.support import Service, Stream, open_stream


async def send(url: str, stream: Stream | str, token: str, message: dict[str, object]) -> httpx.Response:
    endpoint = stream.endpoint if isinstance(stream, Stream) else stream
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url + endpoint, json=message, headers={"Authorization": f"Bearer {token}"})


def ping(i: int) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": i, "method": "ping"}


async def test_endpoint_event_first_then_heartbeats_and_responses(gateway: Service, gateways: Gateways) -> None:
    """Also the seed's Codex case: a client that hits /mcp/sse gets the endpoint event first."""
    tok = gateways.token()
    async with open_stream(gateway.url, tok) as stream:
        assert stream.endpoint.startswith("/mcp/sse/message?sessionId=")
        r = await send(gateway.url, stream, tok, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        assert (r.status_code, r.content) == (202, b"")
        assert (await stream.next())["result"]["protocolVersion"] == "2024-11-05"
        note = await send(gateway.url, stream, tok, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert (note.status_code, note.content) == (202, b"")
        await asyncio.sleep(2.5)
        assert stream.heartbeats      # TILL_HEARTBEAT_INTERVAL=1 in these tests
        assert stream.events.empty()  # nothing was sent for the notification


async def test_ss01_session_ids_are_unique_and_long(gateway: Service, gateways: Gateways) -> None:
    tok = gateways.token()
    ids = set()
    for _ in range(20):
        async with open_stream(gateway.url, tok) as stream:
            ids.add(stream.session_id)
    assert len(ids) == 20
    assert all(len(i) >= 43 for i in ids)      # token_urlsafe(32): 256 bits


async def test_ss07_stream_on_a_posts_on_b_in_order_on_the_right_stream(gateways: Gateways) -> None:
    a = gateways.start(port=gateways.first_port)  # type: ignore[attr-defined]
    b = gateways.start()
    tok = gateways.token()
    async with open_stream(a.url, tok) as s1, open_stream(a.url, tok) as s2:
        for i in range(100):
            r = await send(b.url, s1, tok, ping(i))
            assert (r.status_code, r.content) == (202, b"")
        received = [(await s1.next())["id"] for _ in range(100)]
        assert received == list(range(100))
        await asyncio.sleep(0.3)
        assert s2.events.empty()


async def test_ss07_a_stream_busy_for_longer_than_the_session_ttl_keeps_its_session(
        gateways: Gateways, redis_url: str, redis_namespace: str) -> None:
    """Issue #6's root cause, forced: the owner refreshed a session's key only when its stream had been
    idle for a heartbeat tick, so a stream answering a POST more often than that lost its key after
    TILL_SESSION_TTL (6 s here) and the next POST was 404 "no such session".  Under load the 100 POSTs
    of the test above took longer than 6 s.  Here POSTs come every 0.2 s for 1.5 x the TTL."""
    a = gateways.start(port=gateways.first_port)  # type: ignore[attr-defined]
    b = gateways.start()
    tok = gateways.token()
    r = redis.Redis.from_url(redis_url)
    async with open_stream(a.url, tok) as stream, httpx.AsyncClient(timeout=10) as http:
        started, i = time.monotonic(), 0
        while time.monotonic() - started < 9:
            resp = await http.post(b.url + stream.endpoint, json=ping(i), headers={"Authorization": f"Bearer {tok}"})
            assert (resp.status_code, resp.content) == (202, b""), (round(time.monotonic() - started, 1), resp.text)
            assert (await stream.next())["id"] == i
            i += 1
            await asyncio.sleep(0.2)
        assert r.ttl(f"{redis_namespace}:sse:{stream.session_id}") > 2
    assert i > 30


async def test_ss02_another_principals_session_is_404_like_an_unknown_one(gateways: Gateways) -> None:
    a = gateways.start(port=gateways.first_port)  # type: ignore[attr-defined]
    b = gateways.start()
    owner, stranger = gateways.token(sub="1"), gateways.token(sub="2")
    async with open_stream(a.url, owner) as stream:
        for gw in (a, b):
            theirs = await send(gw.url, stream, stranger, ping(1))
            unknown = await send(gw.url, "/mcp/sse/message?sessionId=nope", stranger, ping(1))
            assert theirs.status_code == unknown.status_code == 404
            assert theirs.json()["error"] == unknown.json()["error"]
        await asyncio.sleep(0.3)
        assert stream.events.empty()


async def test_ss04_no_or_expired_token_is_401_and_a_refreshed_token_works(gateway: Service,
                                                                          gateways: Gateways) -> None:
    tok = gateways.token()
    async with open_stream(gateway.url, tok) as stream:
        async with httpx.AsyncClient() as http:
            none = await http.post(gateway.url + stream.endpoint, json=ping(1))
        assert none.status_code == 401 and "resource_metadata=" in none.headers["www-authenticate"]
        assert "/.well-known/oauth-protected-resource/mcp/sse" in none.headers["www-authenticate"]
        expired = gateways.token(exp=int(time.time()) - 100, iat=int(time.time()) - 4000)
        assert (await send(gateway.url, stream, expired, ping(1))).status_code == 401
        refreshed = gateways.token()
        assert (await send(gateway.url, stream, refreshed, ping(2))).status_code == 202
        assert (await stream.next())["id"] == 2


@pytest.mark.parametrize("via", ["push", "feed"])
async def test_ss05_revoked_token_is_refused_everywhere_and_its_stream_closes(
        gateways: Gateways, redis_url: str, redis_namespace: str, via: str) -> None:
    a = gateways.start(port=gateways.first_port)  # type: ignore[attr-defined]
    b = gateways.start()
    jti = "jti-to-revoke"
    tok = gateways.token(jti=jti)
    async with open_stream(a.url, tok) as stream:
        assert (await send(b.url, stream, tok, ping(1))).status_code == 202
        event = gateways.upstream.revoke("token", jti)
        started = time.monotonic()
        if via == "push":
            redis.Redis.from_url(redis_url).publish(f"{redis_namespace}:revocations", json.dumps(event))
        await asyncio.wait_for(stream.ended.wait(), 15)   # stream closed ≤ 15 s
        assert time.monotonic() - started < (2 if via == "push" else 15)
        for gw in (a, b):            # each replica polls the feed on its own clock: ≤ 15 s from the revocation
            while (await send(gw.url, "/mcp/sse/message?sessionId=x", tok, ping(2))).status_code != 401:
                assert time.monotonic() - started < 15
                await asyncio.sleep(0.2)
            r = httpx.post(gw.url + "/mcp", json=ping(3), headers={"Authorization": f"Bearer {tok}"})
            assert r.status_code == 401


async def test_user_revocation_kills_pats_and_jwts_issued_before(gateway: Service, gateways: Gateways,
                                                                 redis_url: str, redis_namespace: str) -> None:
    now = int(time.time())
    old_jwt = gateways.token(sub="9", iat=now - 10)
    old_pat, _ = gateways.upstream.pat(sub="9", iat=now - 10)
    url = gateway.url + "/mcp"
    for tok in (old_jwt, old_pat):
        assert httpx.post(url, json=ping(1), headers={"Authorization": f"Bearer {tok}"}).status_code == 200
    event = gateways.upstream.revoke("user", "9", before=now - 1)
    redis.Redis.from_url(redis_url).publish(f"{redis_namespace}:revocations", json.dumps(event))
    await asyncio.sleep(0.5)
    for tok in (old_jwt, old_pat):
        assert httpx.post(url, json=ping(1), headers={"Authorization": f"Bearer {tok}"}).status_code == 401
    fresh = gateways.token(sub="9", iat=now)                # issued after "before": alive
    assert httpx.post(url, json=ping(1), headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


async def test_ft01_replica_killed_reconnect_elsewhere_and_old_session_is_404(gateways: Gateways,
                                                                              redis_url: str,
                                                                              redis_namespace: str) -> None:
    a = gateways.start(port=gateways.first_port)  # type: ignore[attr-defined]
    b = gateways.start()
    tok = gateways.token()
    async with open_stream(a.url, tok) as stream:
        old = stream.endpoint
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        await asyncio.wait_for(stream.ended.wait(), 10)
    killed = time.monotonic()
    async with open_stream(b.url, tok) as fresh:
        assert (await send(b.url, fresh, tok, ping(1))).status_code == 202
        assert (await fresh.next())["id"] == 1
    # never 202 into nothing: while the dead owner's liveness key lasts (≤ 5 s) a POST with no
    # subscriber is retried, then 503; after it, 404 and the session is deleted — within the TTL (6 s)
    statuses = []
    while (status := (await send(b.url, old, tok, ping(2))).status_code) != 404:
        statuses.append(status)
        assert time.monotonic() - killed < 6, statuses
    assert set(statuses) <= {503}, statuses
    assert redis.Redis.from_url(redis_url).get(f"{redis_namespace}:sse:{old.split('=')[1]}") is None


async def test_ft02_sigterm_ends_streams_and_deletes_their_keys(gateways: Gateways, redis_url: str,
                                                                redis_namespace: str) -> None:
    a = gateways.start(port=gateways.first_port)  # type: ignore[attr-defined]
    b = gateways.start()
    tok = gateways.token()
    r = redis.Redis.from_url(redis_url)
    async with open_stream(a.url, tok) as stream:
        key = f"{redis_namespace}:sse:{stream.session_id}"
        assert r.exists(key)
        a.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(stream.ended.wait(), 5)
        assert not r.exists(key)
        assert (await send(b.url, stream, tok, ping(1))).status_code == 404
    assert a.proc.wait(15) in (0, -signal.SIGTERM)


async def test_ft04_without_redis_new_sse_is_503_but_streamable_http_works(gateways: Gateways) -> None:
    gw = gateways.start(port=gateways.first_port, redis=True,  # type: ignore[attr-defined]
                        TILL_REDIS_URL="redis://127.0.0.1:1/0")
    tok = gateways.token()
    assert httpx.post(gw.url + "/mcp", json=ping(1), headers={"Authorization": f"Bearer {tok}"}).status_code == 200
    assert httpx.get(gw.url + "/mcp/sse", headers={"Authorization": f"Bearer {tok}"}, timeout=5).status_code == 503
    assert httpx.get(gw.url + "/readyz").status_code == 503


async def test_in_process_backend_serves_sse_without_redis(gateways: Gateways) -> None:
    gw = gateways.start(port=gateways.first_port, redis=False)  # type: ignore[attr-defined]
    tok = gateways.token()
    async with open_stream(gw.url, tok) as stream:
        assert (await send(gw.url, stream, tok, ping(4))).status_code == 202
        assert (await stream.next())["id"] == 4
        assert (await send(gw.url, stream, gateways.token(sub="2"), ping(5))).status_code == 404


async def test_progress_during_a_call_goes_on_the_session_stream_before_the_response(gateways: Gateways) -> None:
    """exchange.py over legacy SSE: notifications ride the session's stream (here via another replica's
    POST); server requests are not offered there, so sampling is a tool error rather than a hang."""
    a = gateways.start(port=gateways.first_port, TILL_CONFORMANCE_FIXTURES="true")  # type: ignore[attr-defined]
    b = gateways.start(TILL_CONFORMANCE_FIXTURES="true")  # type: ignore[attr-defined]
    tok = gateways.token()
    async with open_stream(a.url, tok) as stream:
        call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                "params": {"name": "test_tool_with_progress", "arguments": {}, "_meta": {"progressToken": 3}}}
        assert (await send(b.url, stream, tok, call)).status_code == 202
        got = [(await stream.next()) for _ in range(4)]
        assert [m["params"]["progress"] for m in got[:3]] == [0, 50, 100]
        assert all(m["params"]["progressToken"] == 3 for m in got[:3])
        assert got[3]["id"] == 9 and got[3]["result"]["content"]
        sampling = {"jsonrpc": "2.0", "id": 10, "method": "tools/call",
                    "params": {"name": "test_sampling", "arguments": {"prompt": "hi"}}}
        assert (await send(a.url, stream, tok, sampling)).status_code == 202
        result = (await stream.next())["result"]
        assert result["isError"] is True and "cannot send sampling/createMessage" in result["content"][0]["text"]


async def test_sessions_per_principal_over_the_cap_is_429_across_replicas(gateways: Gateways) -> None:
    """D306: TILL_SSE_SESSIONS_PER_PRINCIPAL counts a user-and-store's streams on every replica."""
    a = gateways.start(port=gateways.first_port, TILL_SSE_SESSIONS_PER_PRINCIPAL="2")  # type: ignore[attr-defined]
    b = gateways.start(TILL_SSE_SESSIONS_PER_PRINCIPAL="2")
    tok = gateways.token()
    async with open_stream(a.url, tok), open_stream(b.url, tok):
        over = httpx.get(b.url + "/mcp/sse", headers={"Authorization": f"Bearer {tok}"}, timeout=10)
        assert over.status_code == 429
        assert over.json()["error"] == "too_many_sessions"
        assert int(over.headers["retry-after"]) >= 1
        async with open_stream(a.url, gateways.token(sub="2")):     # another principal is not counted
            pass
    async with open_stream(b.url, tok):                              # closing frees the places at once
        pass


async def test_ds02_relayed_posts_count_in_the_delivery_script_and_share_the_window(gateways: Gateways) -> None:
    """D842: a POST relayed to the stream's replica counts its hit inside the delivery script; the
    window is the same one the stream open and the Streamable transport count in, on every replica,
    and over the limit nothing reaches the stream and 429 wins over 404."""
    a = gateways.start(port=gateways.first_port, TILL_RATE_LIMIT_PER_MINUTE="5")  # type: ignore[attr-defined]
    b = gateways.start(TILL_RATE_LIMIT_PER_MINUTE="5")
    tok = gateways.token()
    async with open_stream(a.url, tok) as stream:                   # 1: the GET
        for i in range(4):                                           # 2-5: relayed POSTs via B
            r = await send(b.url, stream, tok, ping(i))
            assert (r.status_code, r.content) == (202, b"")
        over = await send(b.url, stream, tok, ping(99))
        assert over.status_code == 429
        assert over.json()["error"] == "rate_limited"
        assert int(over.headers["retry-after"]) >= 1
        unknown = await send(b.url, "/mcp/sse/message?sessionId=nope", tok, ping(100))
        assert unknown.status_code == 429
        streamable = httpx.post(a.url + "/mcp", json=ping(101), timeout=10, headers={
            "Authorization": f"Bearer {tok}", "Accept": "application/json, text/event-stream"})
        assert streamable.status_code == 429
        received = [(await stream.next())["id"] for _ in range(4)]
        assert received == [0, 1, 2, 3]
        await asyncio.sleep(0.3)
        assert stream.events.empty()                                 # nothing for the refused POSTs
    other = gateways.token(sub="2")
    async with open_stream(a.url, other) as stream:                  # another token has its own window
        r = await send(b.url, stream, other, ping(1))
        assert (r.status_code, r.content) == (202, b"")
