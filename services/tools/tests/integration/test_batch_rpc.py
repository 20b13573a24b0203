"""``POST /internal/v1/rpc/batch`` over real HTTP: a uvicorn serving the tools app in this process (D880).

Each request of a batch runs as if sent alone (its own audit row, its own request id) and its line
is written as soon as it completes; a bad batch is refused whole with litestar's problem details.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import select

from tests.support import serving
from till_common.http import InternalClient
from till_common.integrations.direct import DirectApp
from till_common.logging import request_id_var
from till_common.protocol.internal import INTERNAL_ERROR, METHOD_NOT_FOUND, ToolsRpcRequest, ToolsRpcResponse
from till_common.serve import http_protocol
from till_tools import rpc
from till_tools.app import create_app
from till_tools.registry import Registry
from till_tools.store.content import AuditEntry

INTERNAL_TOKEN = "internal-" + "i" * 40      # the conftest registry's (settings_for)

BATCH = "/internal/v1/rpc/batch"
pytestmark = pytest.mark.filterwarnings("ignore::litestar.exceptions.LitestarDeprecationWarning")


def principal(request_id: str) -> dict[str, Any]:
    return {"user_id": 1, "store_id": 1, "role": "owner", "client_id": None, "token_id": "t-1",
            "request_id": request_id, "scopes": ["products:read", "products:write"]}


def call(request_id: str, sku: str = "TS-001-M", method: str = "tools/call") -> dict[str, Any]:
    return {"principal": principal(request_id), "method": method,
            "params": {"name": "get_product", "arguments": {"sku": sku}}}


def encoded(items: Any) -> bytes:
    return json.dumps(items).encode()


@pytest.fixture
async def tools(reg: Registry) -> AsyncIterator[tuple[DirectApp, str]]:
    app = create_app(reg.settings, reg)
    assert isinstance(app, DirectApp)
    assert app.direct
    async with serving(app, http=http_protocol()) as url:
        yield app, url


async def audited(reg: Registry) -> collections.Counter[str]:
    async with reg.sessions() as db:
        rows = (await db.execute(select(AuditEntry.request_id))).all()
    return collections.Counter(r[0] for r in rows)


async def post_batch(url: str, body: bytes, rid: str = "batch-rid") -> tuple[int, list[dict[str, Any]]]:
    client = InternalClient(url, INTERNAL_TOKEN, timeout=20)
    lines: list[bytes] = []
    token = request_id_var.set(rid)
    try:
        status, _ = await client.post_lines(BATCH, body, lines.append)
    finally:
        request_id_var.reset(token)
        await client.close()
    return status, [json.loads(line) for line in lines]


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "litestar-route"])
async def test_each_request_answered_once_by_index_and_audited_once_with_its_own_request_id(
        tools: tuple[DirectApp, str], reg: Registry, fast: bool) -> None:
    app, url = tools
    if not fast:
        app.direct = {}
    items = [call("r-0"), call("r-1", "TS-001-L"), call("r-2", "NO-SUCH-SKU"), call("r-3", method="no/such"),
             call(""), call("r-5")]
    status, lines = await post_batch(url, encoded(items))
    assert status == 200
    assert sorted(line["i"] for line in lines) == list(range(6))
    by_index = {line.pop("i"): line for line in lines}
    for i, item in enumerate(items):      # each line is what rpc.handle gives for that request alone
        alone = await rpc.handle(reg, msgspec.convert(
            item | {"principal": item["principal"] | {"request_id": "x"}}, ToolsRpcRequest))
        expected = json.loads(json.dumps({"result": alone.result} if alone.error is None
                                         else {"error": {"code": alone.error.code, "message": alone.error.message}}))
        if i == 2:                        # a tool error names nothing request-specific; compare as is
            assert by_index[i] == expected
        elif i == 3:
            assert by_index[i]["error"]["code"] == METHOD_NOT_FOUND
        else:
            assert by_index[i]["result"]["structuredContent"] == expected["result"]["structuredContent"]
    counts = await audited(reg)
    # every tools/call once, under its own id; the one sent without an id takes the batch's header
    assert {k: counts[k] for k in ("r-0", "r-1", "r-2", "r-5", "batch-rid")} == {
        "r-0": 1, "r-1": 1, "r-2": 1, "r-5": 1, "batch-rid": 1}
    assert counts["r-3"] == 0


async def test_a_slow_request_does_not_hold_back_a_fast_ones_line(
        tools: tuple[DirectApp, str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = tools
    gate = asyncio.Event()
    real = rpc.handle

    async def gated(reg: Registry, req: ToolsRpcRequest) -> ToolsRpcResponse:
        if req.principal.request_id == "slow":
            await gate.wait()
        return await real(reg, req)

    monkeypatch.setattr(rpc, "handle", gated)
    client = InternalClient(url, INTERNAL_TOKEN, timeout=20)
    lines: list[int] = []
    answer = asyncio.create_task(client.post_lines(
        BATCH, encoded([call("slow"), call("fast-1"), call("fast-2")]),
        lambda line: lines.append(json.loads(line)["i"])))
    for _ in range(500):
        if len(lines) == 2:
            break
        await asyncio.sleep(0.01)
    assert sorted(lines) == [1, 2]
    assert not answer.done()
    gate.set()
    assert await asyncio.wait_for(answer, 20) == (200, b"")
    assert lines[2] == 0
    await client.close()


async def test_a_request_that_raises_gets_an_internal_error_line_with_its_correlation_id(
        tools: tuple[DirectApp, str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = tools
    real = rpc.handle

    async def broken(reg: Registry, req: ToolsRpcRequest) -> ToolsRpcResponse:
        if req.principal.request_id == "boom":
            raise RuntimeError("a bug")
        return await real(reg, req)

    monkeypatch.setattr(rpc, "handle", broken)
    status, lines = await post_batch(url, encoded([call("ok-0"), call("boom"), call("ok-2")]))
    assert status == 200
    by_index = {line["i"]: line for line in lines}
    assert by_index[1] == {"i": 1, "error": {"code": INTERNAL_ERROR, "message": "internal error",
                                             "data": {"correlation_id": "boom"}}}
    assert by_index[0]["result"]["isError"] is False
    assert by_index[2]["result"]["isError"] is False


BAD = {
    "not-json": b"[{",
    "not-an-array": encoded(call("x")),
    "empty": b"[]",
    "65-items": encoded([call(f"x-{n}") for n in range(65)]),
    "an-invalid-item": encoded([call("x-0"), {"method": "tools/call", "params": {}}]),
    "an-unknown-field": encoded([call("x-0"), call("x-1") | {"extra": 1}]),
}


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "litestar-route"])
async def test_a_bad_batch_is_400_problem_details_and_runs_nothing(tools: tuple[DirectApp, str], reg: Registry,
                                                                   fast: bool) -> None:
    app, url = tools
    if not fast:
        app.direct = {}
    before = await audited(reg)
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        for name, body in BAD.items():
            r = await http.post(BATCH, content=body, headers={"Authorization": f"Bearer {INTERNAL_TOKEN}",
                                                               "Content-Type": "application/json"})
            assert r.status_code == 400, (name, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["status"] == 400
    assert await audited(reg) == before


async def test_without_the_internal_token_401_and_over_the_size_limit_413(tools: tuple[DirectApp, str],
                                                                          reg: Registry) -> None:
    _, url = tools
    before = await audited(reg)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for headers in ({}, {"Authorization": "Bearer internal-" + "j" * 40}):
            r = await http.post(BATCH, content=encoded([call("y")]), headers=headers)
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.headers["content-type"].startswith("application/problem+json")
        big = encoded([call("z") | {"params": {"name": "get_product", "arguments": {"sku": "x" * 10_000_001}}}])
        r = await http.post(BATCH, content=big, headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"})
        assert r.status_code == 413
        assert r.headers["content-type"].startswith("application/problem+json")
    assert await audited(reg) == before
