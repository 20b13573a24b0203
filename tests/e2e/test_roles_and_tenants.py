"""Roles and tenants through the balancer with the MCP Python SDK (SPEC §5, §6): what each demo
merchant's token lists and may call, and that the other store sees none of the demo store's data."""

from __future__ import annotations

import pytest

from tests.e2e.mcp_client import call, database, mcp_client, text_of
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(120)]


async def test_each_role_lists_the_tools_it_may_use(till_stack: Stack) -> None:
    listed: dict[str, set[str]] = {}
    for email in ("owner@demo.store", "analyst@demo.store", "support@demo.store"):
        async with mcp_client(till_stack.mcp_url, till_stack.tokens[email], "http") as client:
            listed[email] = {t.name for t in (await client.list_tools()).tools}
    owner, analyst, support = listed["owner@demo.store"], listed["analyst@demo.store"], listed["support@demo.store"]
    assert {"create_coupon", "update_store_settings", "get_top_products", "fulfill_order"} <= owner
    assert "get_top_products" in analyst
    assert not analyst & {"create_coupon", "update_product", "fulfill_order"}
    assert {"list_orders", "fulfill_order", "update_customer", "list_products"} <= support
    assert not support & {"get_top_products", "update_product", "create_coupon"}
    assert analyst < owner
    assert support < owner


async def test_a_tool_the_role_forbids_is_an_error_result_and_audited_as_denied(till_stack: Stack) -> None:
    async with mcp_client(till_stack.sse_url, till_stack.tokens["analyst@demo.store"], "sse") as client:
        result = await client.call_tool("create_coupon", {"percent_off": 50, "code": "ANALYST-50"})
    assert result.is_error
    assert "coupons:write" in text_of(result)
    async with database(till_stack.tools_database_url) as db:
        assert await db.fetchval("SELECT count(*) FROM coupons WHERE code = 'ANALYST-50'") == 0
        outcome = await db.fetchval(
            "SELECT outcome FROM audit_entries WHERE tool = 'create_coupon' AND arguments LIKE '%ANALYST-50%' "
            "ORDER BY id DESC LIMIT 1")
    assert outcome == "denied"


async def test_the_other_store_sees_only_its_own_orders_and_products(till_stack: Stack) -> None:
    async with database(till_stack.tools_database_url) as db:
        other = await db.fetchval("SELECT id FROM stores WHERE name = 'Other Store'")
        demo = await db.fetchval("SELECT id FROM stores WHERE name = 'Demo Store'")
        other_awaiting = {r["id"] for r in await db.fetch(
            "SELECT id FROM orders WHERE store_id = $1 AND status IN ('paid', 'partially_fulfilled')", other)}
        demo_order = await db.fetchval("SELECT number FROM orders WHERE store_id = $1 ORDER BY id LIMIT 1", demo)
        other_tshirt = await db.fetchval(
            "SELECT id FROM products WHERE store_id = $1 AND title = 'Classic T-Shirt'", other)
    assert other is not None
    async with mcp_client(till_stack.mcp_url, till_stack.tokens["owner@other.store"], "http") as client:
        queue = await call(client, "list_orders_awaiting_fulfillment", {"limit": 100})
        product = await client.call_tool("get_product", {"name": "Classic T-Shirt"})
        order = await client.call_tool("get_order", {"number": demo_order})
    assert {i["id"] for i in queue["items"]} == other_awaiting
    assert queue["awaiting_total"] == len(other_awaiting)
    if other_tshirt is None:
        assert product.is_error, "the demo store's product is not found from the other store"
    else:               # both stores sell one: the other store's owner gets its own
        assert not product.is_error
        assert product.structured_content is not None
        assert product.structured_content["id"] == other_tshirt
    if not order.is_error:    # numbers are per store: the other store may have its own order with that number
        assert order.structured_content is not None
        async with database(till_stack.tools_database_url) as db:
            owner_store = await db.fetchval("SELECT store_id FROM orders WHERE id = $1", order.structured_content["id"])
        assert owner_store == other
