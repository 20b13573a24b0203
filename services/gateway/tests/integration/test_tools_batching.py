"""A gateway in front of a tools without the batch route (a rolling upgrade, D880): every call still answered once."""

from __future__ import annotations

import collections
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
from gw_upstream import Gateways
from tests.support import Service

CALLS = 24


def call(url: str, token: str, n: int) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": n, "method": "tools/call",
            "params": {"name": "slow", "arguments": {"seconds": 0.3, "id": n}}}
    return httpx.post(url + "/mcp", content=json.dumps(body).encode(), timeout=20,
                      headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}",
                               "X-Request-Id": f"upgrade-{n}"})


def test_an_older_tools_gets_each_call_alone_once_after_one_refused_batch(gateway: Service,
                                                                           gateways: Gateways) -> None:
    token = gateways.token()
    upstream = gateways.upstream
    for attempt in range(2):              # the second burst: batching already off, no batch tried again
        with ThreadPoolExecutor(CALLS) as pool:
            answers = list(pool.map(lambda n: call(gateway.url, token, n), range(CALLS)))
        for n, r in enumerate(answers):
            assert r.status_code == 200, r.text
            doc = r.json()
            assert doc["id"] == n and doc["result"]["structuredContent"]["id"] == n, doc
        batches = [s for s in upstream.seen if s["path"] == "/internal/v1/rpc/batch"]
        assert len(batches) == 1, attempt     # tried once (calls were queued behind 4 in flight), then never
        calls = collections.Counter(s["body"]["principal"]["request_id"] for s in upstream.seen
                                    if s["path"] == "/internal/v1/rpc")
        assert calls == collections.Counter({f"upgrade-{n}": attempt + 1 for n in range(CALLS)})
