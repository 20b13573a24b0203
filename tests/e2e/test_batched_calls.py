"""Concurrent tools/call through a gateway replica are batched to tools and each is answered and audited once (D880)."""

from __future__ import annotations

import asyncio
import json
import secrets

import httpx
import pytest

from deploy.cluster.runner import request_count
from tests.e2e.mcp_client import database
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(120)]

CALLS = 64


async def test_64_concurrent_calls_are_answered_right_and_audited_once_each(till_stack: Stack) -> None:
    token = till_stack.tokens["owner@demo.store"]
    async with database(till_stack.tools_database_url) as db:
        products = [dict(r) for r in await db.fetch(
            "SELECT p.id, p.title FROM products p JOIN stores s ON s.id = p.store_id "
            "WHERE s.name = 'Demo Store' ORDER BY p.id LIMIT 8")]
    assert len(products) == 8
    batches_before = request_count(till_stack.cluster.tools_url, "/rpc/batch")
    gateway = till_stack.cluster.gateway_urls[0]        # one replica: all 64 meet in one coalescer
    run = secrets.token_hex(4)
    rids = [f"batch-e2e-{run}-{n}" for n in range(CALLS)]
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-11-25", "Authorization": f"Bearer {token}"}

    limits = httpx.Limits(max_connections=CALLS, max_keepalive_connections=CALLS)
    async with httpx.AsyncClient(base_url=gateway, timeout=60, limits=limits) as http:
        async def one(n: int) -> tuple[int, dict[str, object], str]:
            body = {"jsonrpc": "2.0", "id": n, "method": "tools/call",
                    "params": {"name": "get_product", "arguments": {"id": products[n % 8]["id"]}}}
            r = await http.post("/mcp", content=json.dumps(body), headers=headers | {"X-Request-Id": rids[n]})
            return r.status_code, r.json(), r.headers.get("x-request-id", "")

        for _ in range(3):                                # warm connections, then the burst that counts
            answers = await asyncio.gather(*(one(n) for n in range(CALLS)))
    for n, (status, doc, rid) in enumerate(answers):
        assert status == 200, doc
        assert doc["id"] == n, doc
        assert "error" not in doc, doc
        result = doc["result"]
        assert isinstance(result, dict), doc
        assert result["isError"] is False, doc
        assert result["structuredContent"]["id"] == products[n % 8]["id"]
        assert result["structuredContent"]["title"] == products[n % 8]["title"]
        assert rid == rids[n]
    async with database(till_stack.tools_database_url) as db:
        rows = await db.fetch("SELECT request_id, count(*) AS n FROM audit_entries WHERE request_id = ANY($1::text[]) "
                              "GROUP BY request_id", rids)
    assert {r["request_id"]: r["n"] for r in rows} == dict.fromkeys(rids, 3)   # three rounds, one row each
    assert request_count(till_stack.cluster.tools_url, "/rpc/batch") > batches_before
