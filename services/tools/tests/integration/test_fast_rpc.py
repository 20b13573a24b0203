"""``POST /internal/v1/rpc`` on ``FastRpc`` answers exactly as litestar's route does (D821).

Each request is sent twice to one app: once through the fast path, once with it switched off (the
litestar route, guard and middleware alone); status, headers and body must match byte for byte
(the audit row's duration aside, which is not in any response).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from till_common.integrations.direct import DirectApp
from till_tools import app as tools_app
from till_tools.app import create_app
from till_tools.registry import Registry, default_catalogue
from till_tools.settings import ToolsSettings

INTERNAL_TOKEN = "internal-" + "f" * 40

PRINCIPAL = {"user_id": 1, "store_id": 1, "role": "owner", "client_id": None, "token_id": "t-1",
             "request_id": "fast-1", "scopes": ["products:read"]}
READ = {"principal": PRINCIPAL, "method": "tools/call", "params": {"name": "get_product",
                                                                   "arguments": {"sku": "TS-001-M"}}}
AUTH = (b"authorization", f"Bearer {INTERNAL_TOKEN}".encode())
RID = (b"x-request-id", b"fast-rid")
Messages = list[dict[str, Any]]

# the audit route's plain query parameters are litestar's deprecated inferred style; unchanged here
pytestmark = pytest.mark.filterwarnings("ignore::litestar.exceptions.LitestarDeprecationWarning")


def one(body: bytes) -> Messages:
    return [{"type": "http.request", "body": body, "more_body": False}]


def encoded(doc: Any) -> bytes:
    return json.dumps(doc).encode()


@pytest.fixture
async def app(sqlite_store_url: str) -> AsyncIterator[DirectApp]:
    reg = Registry.build(ToolsSettings(internal_token=INTERNAL_TOKEN, tools_database_url=sqlite_store_url),
                         default_catalogue())
    built = create_app(reg.settings, reg)
    assert isinstance(built, DirectApp)
    assert built.direct
    yield built
    await reg.close()


async def send(app: DirectApp, messages: Messages, headers: list[tuple[bytes, bytes]], method: str = "POST",
               path: str = "/internal/v1/rpc") -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}
    pending = list(messages)
    sent: Messages = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await asyncio.sleep(30)
        return {"type": "http.disconnect"}

    async def send_(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send_), 30)
    return sent[0]["status"], sorted(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


async def both(app: DirectApp, messages: Messages, headers: list[tuple[bytes, bytes]], **kw: Any) -> Any:
    fast = await send(app, messages, headers, **kw)
    saved, app.direct = app.direct, {}
    try:
        slow = await send(app, messages, headers, **kw)
    finally:
        app.direct = saved
    assert fast == slow
    return fast


CASES: dict[str, tuple[Messages, list[tuple[bytes, bytes]], int, str]] = {
    "read": (one(encoded(READ)), [AUTH, RID], 200, '"isError":false'),
    "request id from the header": (one(encoded({**READ, "principal": {**PRINCIPAL, "request_id": ""}})),
                                   [AUTH, RID], 200, '"isError":false'),
    "body in two messages": ([{"type": "http.request", "body": encoded(READ)[:7], "more_body": True},
                              {"type": "http.request", "body": encoded(READ)[7:]}], [AUTH, RID], 200,
                             '"isError":false'),
    "no token": (one(encoded(READ)), [RID], 401, "bearer token"),
    "wrong token": (one(encoded(READ)), [(b"authorization", b"Bearer " + b"x" * 49), RID], 401, "bearer token"),
    "the token second": (one(encoded(READ)), [(b"authorization", b"Bearer x"), AUTH, RID], 401, "bearer token"),
    "not JSON": (one(b"{nope"), [AUTH, RID], 400, "not a ToolsRpcRequest"),
    "empty body": (one(b""), [AUTH, RID], 400, "not a ToolsRpcRequest"),
    "not a ToolsRpcRequest": (one(encoded({**READ, "extra": 1})), [AUTH, RID], 400, "not a ToolsRpcRequest"),
    "too large": ([{"type": "http.request", "body": b" " * 6_000_000, "more_body": True},
                   {"type": "http.request", "body": b" " * 6_000_000}], [AUTH, RID], 413, "Too Large"),
    "client gone mid-body": ([{"type": "http.request", "body": b"{", "more_body": True},
                              {"type": "http.disconnect"}], [AUTH, RID], 500, "disconnected"),
    "unknown method": (one(encoded({**READ, "method": "nope/x"})), [AUTH, RID], 200, '"code":-32601'),
    "unknown tool": (one(encoded({**READ, "params": {"name": "nope"}})), [AUTH, RID], 200, '"code":-32602'),
}


@pytest.mark.parametrize("case", CASES)
async def test_fast_path_answers_as_the_litestar_route_does(app: DirectApp, case: str) -> None:
    messages, headers, expected, text = CASES[case]
    status, out_headers, body = await both(app, messages, headers)
    assert status == expected
    assert text in body.decode()
    assert (b"x-request-id", b"fast-rid") in out_headers
    if status == 401:
        assert (b"www-authenticate", b"Bearer") in out_headers


async def test_other_methods_and_paths_still_reach_litestar(app: DirectApp) -> None:
    status, headers, _ = await both(app, one(b""), [AUTH, RID], method="GET")
    assert status == 405
    assert b"POST" in dict(headers)[b"allow"]
    status, _, body = await both(app, one(encoded(READ)), [AUTH, RID], path="/internal/v1/rpc/")
    assert status == 200
    assert b'"isError":false' in body


async def test_an_unexpected_exception_is_a_500_problem_with_the_request_id(app: DirectApp,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*_: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(tools_app.rpc, "handle", broken)
    status, headers, body = await both(app, one(encoded(READ)), [AUTH, RID])
    assert status == 500
    assert (b"content-type", b"application/problem+json") in headers
    doc = json.loads(body)
    assert doc["title"] == "server_error"
    assert doc["request_id"] == "fast-rid"
    assert "secret" not in body.decode()


async def test_fast_path_requests_are_counted_under_the_route_template(app: DirectApp) -> None:
    await send(app, one(encoded(READ)), [AUTH, RID])
    status, _, body = await send(app, one(b""), [], method="GET", path="/metrics")
    assert status == 200
    assert 'till_http_requests_total{route="/rpc",service="tools",status="200"} 1.0' in body.decode()
