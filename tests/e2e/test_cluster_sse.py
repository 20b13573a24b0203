"""Legacy SSE and token checks through the production topology: nginx round robin (no stickiness)
over two gateway replicas sharing Redis (the session ``till_stack``).

- a stream is held by one replica while its POSTs land on both (each replica's /metrics says so);
  the answers come back in order, each on its own stream;
- a revocation through auth's admin API is refused by BOTH replicas, each polled directly, within
  1 s (SPEC §4), and the revoked token's open stream is closed;
- a token with only products:read gets 403 insufficient_scope with WWW-Authenticate on create_product.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from typing import Any

import httpx
import pytest

from tests.e2e.mcp_client import database
from tests.e2e.oauth import oauth_grant
from tests.e2e.stack import Stack
from tests.support import Stream, open_stream

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(120)]

MESSAGE_ROUTE = "/mcp/sse/message"


def served(replica: str, route: str) -> int:
    """Requests a replica has answered on ``route``, from its own /metrics (never via nginx)."""
    with urllib.request.urlopen(replica + "/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("till_http_requests_total{") and f'route="{route}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def rpc(i: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": i, "method": method, **({"params": params} if params is not None else {})}


INIT = {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}


async def test_sse_posts_land_on_both_replicas_and_answers_come_in_order_on_their_own_stream(
    till_stack: Stack,
) -> None:
    lb, replicas = till_stack.url, till_stack.cluster.gateway_urls
    owner, analyst = till_stack.tokens["owner@demo.store"], till_stack.tokens["analyst@demo.store"]
    before = [served(r, MESSAGE_ROUTE) for r in replicas]
    posts = 0
    async with open_stream(lb, owner) as s1, open_stream(lb, analyst) as s2, httpx.AsyncClient(timeout=15) as http:

        async def post(stream: Stream, token: str, message: dict[str, Any]) -> None:
            nonlocal posts
            r = await http.post(lb + stream.endpoint, json=message, headers={"Authorization": f"Bearer {token}"})
            posts += 1
            assert (r.status_code, r.content) == (202, b""), r.text

        await post(s1, owner, rpc(0, "initialize", INIT))
        await post(s2, analyst, rpc(10_000, "initialize", INIT))
        assert (await s1.next())["result"]["protocolVersion"] == "2024-11-05"
        assert (await s2.next())["result"]["protocolVersion"] == "2024-11-05"
        await post(s1, owner, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        await post(s2, analyst, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        n = 30
        for i in range(1, n + 1):
            # interleaved, and every fifth a real tool call through tools → PostgreSQL
            m1 = rpc(i, "tools/call", {"name": "list_products", "arguments": {"limit": 2}}) if i % 5 == 0 \
                else rpc(i, "ping")
            await post(s1, owner, m1)
            await post(s2, analyst, rpc(10_000 + i, "ping"))
        got1 = [await s1.next() for _ in range(n)]
        got2 = [await s2.next() for _ in range(n)]
        await asyncio.sleep(0.3)
        assert s1.events.empty(), "nothing more, nothing of the other stream"
        assert s2.events.empty(), "nothing more, nothing of the other stream"
    assert [m["id"] for m in got1] == list(range(1, n + 1))
    assert [m["id"] for m in got2] == [10_000 + i for i in range(1, n + 1)]
    assert all("result" in m for m in got1 + got2)
    tool_results = [m["result"] for m in got1 if m["id"] % 5 == 0]
    assert all(not r.get("isError") and r["structuredContent"]["items"] for r in tool_results)
    after = [served(r, MESSAGE_ROUTE) for r in replicas]
    deltas = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(deltas) == posts, deltas
    assert all(d > 0 for d in deltas), f"POSTs per replica {deltas}: both replicas must have served messages"


async def initialize_status(http: httpx.AsyncClient, base: str, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    return await http.post(base + "/mcp", json=rpc(1, "initialize", {**INIT, "protocolVersion": "2025-06-18"}),
                           headers=headers)


async def fresh_token(stack: Stack, kind: str, scope: str | None = None) -> tuple[str, dict[str, str]]:
    """A new token of owner@demo.store and the admin revocation that kills exactly it: a personal token
    (by token id; the gateway introspects and caches it) or an OAuth JWT (by client id; verified locally)."""
    if kind == "pat":
        token, token_id = await stack.amint("owner@demo.store", scope)
        return token, {"token_id": token_id}
    grant = await oauth_grant(stack, "owner@demo.store", scope)
    assert grant.access_token.count(".") == 2, "an RFC 9068 JWT"
    if scope:
        assert grant.scope.split() == [scope]
    return grant.access_token, {"client_id": grant.client_id}


@pytest.mark.parametrize("kind", ["pat", "jwt"])
async def test_admin_revocation_is_refused_by_both_replicas_within_one_second(till_stack: Stack, kind: str) -> None:
    token, revocation = await fresh_token(till_stack, kind)
    replicas = till_stack.cluster.gateway_urls
    async with httpx.AsyncClient(timeout=10) as http, open_stream(till_stack.url, token) as stream:
        for replica in replicas:          # accepted (and its introspection cached) on both first
            assert (await initialize_status(http, replica, token)).status_code == 200
        started = time.monotonic()
        r = await http.post(till_stack.cluster.auth_url + "/admin/v1/revocations", json=revocation,
                            headers={"Authorization": f"Bearer {till_stack.admin_token}"})
        assert r.status_code == 200, r.text
        assert r.json()["revoked"] == 1
        refused: dict[str, float] = {}
        while len(refused) < len(replicas) and time.monotonic() - started < 1.0:
            for replica in replicas:
                if replica not in refused:
                    answer = await initialize_status(http, replica, token)
                    if answer.status_code == 401:
                        challenge = answer.headers["www-authenticate"]
                        assert challenge.startswith("Bearer ")
                        assert 'error="invalid_token"' in challenge
                        assert 'resource_metadata="http' in challenge
                        refused[replica] = time.monotonic() - started
            await asyncio.sleep(0.02)
        assert set(refused) == set(replicas), f"refused within 1 s by {refused} of {replicas}"
        # the revoked token's open stream is ended by the replica holding it
        await asyncio.wait_for(stream.ended.wait(), 15)
        # and through the balancer it is refused whichever replica answers
        for _ in range(4):
            assert (await initialize_status(http, till_stack.url, token)).status_code == 401
        # the session's other tokens are untouched
        assert (await initialize_status(http, till_stack.url, till_stack.tokens["owner@demo.store"])).status_code == 200


CREATE = {"name": "create_product", "arguments": {"title": "E2E scope probe", "price": "1.00"}}


@pytest.mark.parametrize("kind", ["pat", "jwt"])
async def test_products_read_token_gets_403_insufficient_scope_on_create_product(till_stack: Stack, kind: str) -> None:
    token, _ = await fresh_token(till_stack, kind, scope="products:read")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}
    async with httpx.AsyncClient(timeout=15) as http:
        listed = await http.post(till_stack.mcp_url, json=rpc(1, "tools/call", {"name": "list_products",
                                                                                "arguments": {"limit": 1}}),
                                 headers=headers)
        assert listed.status_code == 200, listed.text
        assert not listed.json()["result"].get("isError")
        for _ in range(2):                # through the balancer: once on each replica
            r = await http.post(till_stack.mcp_url, json=rpc(2, "tools/call", CREATE), headers=headers)
            assert r.status_code == 403, r.text
            challenge = r.headers["www-authenticate"]
            assert challenge.startswith("Bearer ")
            assert 'error="insufficient_scope"' in challenge
            assert 'scope="products:write"' in challenge
            assert f'resource_metadata="{till_stack.url}/.well-known/oauth-protected-resource' in challenge
    # legacy SSE through the balancer: 403 on the POST and an error on the stream, nothing created
    async with open_stream(till_stack.url, token) as stream, httpx.AsyncClient(timeout=15) as http:
        r = await http.post(till_stack.url + stream.endpoint, json=rpc(3, "tools/call", CREATE),
                            headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 403
        assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
        error = await stream.next()
        assert error["id"] == 3
        assert "insufficient_scope" in error["error"]["message"]
    async with database(till_stack.tools_database_url) as db:
        assert await db.fetchval("SELECT count(*) FROM products WHERE title = 'E2E scope probe'") == 0
