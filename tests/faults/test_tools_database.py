"""FT-06: the store database fails inside ``create_product``; nothing is half-written.

Faults are injected in PostgreSQL itself, so the real tools process runs unmodified:

- *connection killed before commit*: a deferred constraint trigger on ``products`` runs at COMMIT
  and sleeps; the test finds that backend in ``pg_stat_activity`` (``wait_event = 'PgSleep'``)
  and ends it with ``pg_terminate_backend`` from a second connection — the transaction has done
  every statement (product, variant, idempotency record, audit row) and dies in its commit;
- *audit insert fails*: a ``BEFORE INSERT`` trigger on ``audit_entries`` raises for the success
  row of ``create_product``, so the write and its audit row must roll back together.

Then the same ``idempotency_key`` is retried: exactly one product, and the audit chain verifies.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest

from tests.faults.harness import FaultStack, product_args, tools_call

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PAUSE_AT_COMMIT = """
CREATE FUNCTION ft06_pause() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(60); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER ft06_pause AFTER INSERT ON products DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW WHEN (NEW.title = 'FT06 Killed At Commit') EXECUTE FUNCTION ft06_pause();
"""
FAIL_AUDIT = """
CREATE FUNCTION ft06_fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'injected: INSERT INTO audit_entries failed on db-7.internal.example (/srv/till/x.py)';
END $$;
CREATE TRIGGER ft06_fail BEFORE INSERT ON audit_entries
FOR EACH ROW WHEN (NEW.tool = 'create_product' AND NEW.outcome = 'success') EXECUTE FUNCTION ft06_fail();
"""
REMOVE = """
DROP TRIGGER IF EXISTS ft06_pause ON products; DROP FUNCTION IF EXISTS ft06_pause();
DROP TRIGGER IF EXISTS ft06_fail ON audit_entries; DROP FUNCTION IF EXISTS ft06_fail();
"""


async def sql(stack: FaultStack, statement: str, *args: Any) -> list[Any]:
    conn = await stack.tools_db()
    try:
        return list(await conn.fetch(statement, *args))
    finally:
        await conn.close()


async def execute(stack: FaultStack, script: str) -> None:
    conn = await stack.tools_db()
    try:
        await conn.execute(script)
    finally:
        await conn.close()


async def state(stack: FaultStack, title: str, key: str) -> dict[str, Any]:
    """Everything create_product can write, counted."""
    conn = await stack.tools_db()
    try:
        return {
            "products": await conn.fetchval("SELECT count(*) FROM products WHERE title = $1", title),
            "variants": await conn.fetchval("SELECT count(*) FROM variants v JOIN products p ON p.id = v.product_id "
                                            "WHERE p.title = $1", title),
            "idempotency": await conn.fetchval("SELECT count(*) FROM idempotency_records WHERE key = $1", key),
            "audit": [tuple(r) for r in await conn.fetch(
                "SELECT outcome, detail FROM audit_entries WHERE tool = 'create_product' "
                "AND arguments LIKE $1 ORDER BY seq", f"%{key}%")],
        }
    finally:
        await conn.close()


async def kill_when_paused(stack: FaultStack, timeout: float = 20) -> int:
    """Wait for the backend sleeping in the commit trigger, then terminate it from this connection."""
    database = stack.tools_database_url.rsplit("/", 1)[1]
    conn = await stack.tools_db()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = await conn.fetchval("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'PgSleep'",
                                      database)
            if pid is not None:
                assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
                return int(pid)
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise AssertionError("create_product never reached its commit")


def assert_internal_error(response: httpx.Response, request_id: str) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "result" not in body, body
    assert body["error"]["code"] == -32603
    assert body["error"]["data"] == {"correlation_id": request_id}
    for leak in ("Traceback", "INSERT", "SELECT", "audit_entries", "internal.example", "/srv/", ".py",
                 "asyncpg", "sqlalchemy", "terminat"):
        assert leak not in response.text, leak


def test_ft06_store_database_fault_in_create_product_leaves_nothing_half_written(
        make_stack: Callable[..., AbstractContextManager[FaultStack]]) -> None:
    with make_stack() as stack:
        _, _, gw = stack.start_all("auth", "tools", "gateway")
        token, _ = stack.jwt()
        for fault in ("connection_killed_at_commit", "audit_insert_fails"):
            fault_then_retry(stack, gw.url, token, fault)
        stack.audit_verify()


def fault_then_retry(stack: FaultStack, url: str, token: str, fault: str) -> None:
    title = "FT06 Killed At Commit" if fault == "connection_killed_at_commit" else "FT06 Audit Fails"
    key = f"ft06-{fault}"
    args = product_args(title, f"FT06-{fault[:10].upper()}", key)
    rows_before = asyncio.run(sql(stack, "SELECT count(*) FROM audit_entries WHERE store_id = 1"))[0][0]
    asyncio.run(execute(stack, PAUSE_AT_COMMIT if fault == "connection_killed_at_commit" else FAIL_AUDIT))
    rid = f"ft06-{fault[:5]}-first"
    if fault == "connection_killed_at_commit":
        answer: dict[str, httpx.Response] = {}
        caller = threading.Thread(target=lambda: answer.update(r=tools_call(
            url, token, "create_product", args, request_id=rid)))
        caller.start()
        killed = asyncio.run(kill_when_paused(stack))
        caller.join(30)
        first = answer["r"]
        assert killed > 0
    else:
        first = tools_call(url, token, "create_product", args, request_id=rid)
    assert_internal_error(first, rid)
    asyncio.run(execute(stack, REMOVE))

    # nothing of the write survived; the failure itself is on the record, written alone
    after_fault = asyncio.run(state(stack, title, key))
    assert (after_fault["products"], after_fault["variants"], after_fault["idempotency"]) == (0, 0, 0), fault
    assert after_fault["audit"] == [("failed", "internal error")], fault

    # the client retries with the same key: one product, then the stored answer
    second = tools_call(url, token, "create_product", args)
    created = second.json()["result"]
    assert created["isError"] is False, second.text
    third = tools_call(url, token, "create_product", args)
    replayed = third.json()["result"]["structuredContent"]
    assert replayed["replayed"] is True
    assert replayed["id"] == created["structuredContent"]["id"]
    final = asyncio.run(state(stack, title, key))
    assert (final["products"], final["variants"], final["idempotency"]) == (1, 1, 1), fault
    assert final["audit"] == [("failed", "internal error"), ("success", ""), ("success", "replayed")], fault
    rows_after = asyncio.run(sql(stack, "SELECT count(*) FROM audit_entries WHERE store_id = 1"))[0][0]
    assert rows_after == rows_before + 3          # one row per call, none lost, none extra
    assert stack.audit_verify().endswith(f"({rows_after} rows)")
