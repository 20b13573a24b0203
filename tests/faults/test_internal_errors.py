"""SC-06: internal errors in each service reach the client as ``-32603`` / ``server_error`` with a
correlation id, and nothing else: no stack trace, SQL, file path, database or host name.

Faults are real where they can be: the tools and auth databases lose a table under the running
processes (a schema out of step with the code — the errors then carry SQL and relation names, just
what must not leak).  The gateway holds no database, so its fault is injected in-process: a gateway
built in the test whose tools client raises an exception full of such details.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import asyncpg
import httpx
import pytest

from tests.faults.harness import FaultStack, InProcessGateway, dsn, tools_call
from tests.support import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LEAK = ('relation "secret_table" does not exist [SQL: SELECT password_hash FROM users WHERE id = $1] '
        'File "/srv/till/services/tools/src/till_tools/call.py", line 12, host db-7.internal.example:5432')
#: What must never reach a client, whatever the fault.
FORBIDDEN = ("Traceback", "File \"", "SELECT", "INSERT", "UPDATE ", "[SQL", 'relation "', "does not exist",
             "sqlalchemy", "asyncpg", "psycopg", "postgres", "5432", "/srv/", "/work/", "site-packages", ".py",
             "internal.example",
             "products_sc06", "oauth_clients", "secret_table", "password_hash", "RuntimeError", "ProgrammingError")


def assert_clean(response: httpx.Response) -> None:
    text = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    for leak in FORBIDDEN:
        assert leak not in text, (leak, text)


def assert_rpc_internal(response: httpx.Response, request_id: str) -> None:
    assert response.status_code == 200, response.text
    error = response.json()["error"]
    assert error["code"] == -32603
    assert error["data"]["correlation_id"] == request_id
    assert response.headers["x-request-id"] == request_id
    assert_clean(response)


def rpc(url: str, token: str, method: str, params: dict[str, Any], request_id: str) -> httpx.Response:
    return httpx.post(url + "/mcp", timeout=30, json={"jsonrpc": "2.0", "id": 7, "method": method, "params": params},
                      headers={"Authorization": f"Bearer {token}", "X-Request-Id": request_id,
                               "MCP-Protocol-Version": "2025-06-18"})


async def execute(url: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn(url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


REGISTRATION = {"client_name": "sc06", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code"], "response_types": ["code"]}


def test_sc06_internal_errors_in_tools_auth_and_gateway_carry_a_correlation_id_and_no_internals(
        make_stack: Callable[..., AbstractContextManager[FaultStack]]) -> None:
    with make_stack() as stack:
        _, _, gw = stack.start_all("auth", "tools", "gateway")
        token, _ = stack.jwt()

        # tools: the products table is gone under the running service
        asyncio.run(execute(stack.tools_database_url, "ALTER TABLE products RENAME TO products_sc06"))
        try:
            assert_rpc_internal(tools_call(gw.url, token, "list_products", {"limit": 1}, request_id="sc06-tools-1"),
                                "sc06-tools-1")
            assert_rpc_internal(rpc(gw.url, token, "resources/read", {"uri": "store://products/1"}, "sc06-tools-2"),
                                "sc06-tools-2")
        finally:
            asyncio.run(execute(stack.tools_database_url, "ALTER TABLE products_sc06 RENAME TO products"))
        assert tools_call(gw.url, token, "list_products", {"limit": 1}).json()["result"]["isError"] is False
        stack.audit_verify()             # the failed calls were audited, the chain holds

        # auth: the clients table is gone; registration and the token endpoint answer in OAuth JSON
        asyncio.run(execute(stack.auth_database_url, "ALTER TABLE oauth_clients RENAME TO oauth_clients_sc06"))
        try:
            reg = httpx.post(gw.url + "/mcp/oauth/register", json=REGISTRATION, timeout=30,
                             headers={"X-Request-Id": "sc06-auth-1"})
            tok = httpx.post(gw.url + "/mcp/oauth/token", timeout=30, headers={"X-Request-Id": "sc06-auth-2"},
                             data={"grant_type": "authorization_code", "code": "x" * 43, "client_id": "c",
                                   "redirect_uri": "http://127.0.0.1/cb", "code_verifier": "v" * 43})
        finally:
            asyncio.run(execute(stack.auth_database_url, "ALTER TABLE oauth_clients_sc06 RENAME TO oauth_clients"))
        for response, rid in ((reg, "sc06-auth-1"), (tok, "sc06-auth-2")):
            assert response.status_code in (500, 503), response.text
            assert response.headers["content-type"].startswith("application/json")
            body = response.json()
            assert body["error"] in ("server_error", "temporarily_unavailable"), body
            assert response.headers["x-request-id"] == rid
            assert body.get("request_id") == rid, body
            assert_clean(response)
        assert httpx.post(gw.url + "/mcp/oauth/register", json=REGISTRATION, timeout=30).status_code == 201

        # gateway: its own code fails (a fault only a test can inject: the tools client raises)
        with InProcessGateway(stack.environ("gateway"), port=free_port(), configure=inject_gateway_fault) as igw:
            assert_rpc_internal(tools_call(igw.url, token, "list_products", {"limit": 1}, request_id="sc06-gw-1"),
                                "sc06-gw-1")
            listing = httpx.get(igw.url + "/mcp/tools", headers={"X-Request-Id": "sc06-gw-2"}, timeout=30)
            assert listing.status_code == 500
            assert listing.json()["request_id"] == "sc06-gw-2"
            assert_clean(listing)


async def _raise(*_: Any) -> Any:
    raise RuntimeError(LEAK)


def inject_gateway_fault(reg: Any) -> None:
    reg.tools_api.call = _raise
    reg.tools_api.catalogue = _raise
