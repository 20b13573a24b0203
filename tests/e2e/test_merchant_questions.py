"""The seed's four merchant questions, answered through Till's balancer by the official MCP Python SDK
client over both transports, each answer checked against the tools database with plain SQL.

1. "Show me my top selling products this month"   → get_top_products (analytics)
2. "Update the price of 'Classic T-Shirt' to 29.99" → update_product, read back with get_product
3. "Create a 20% discount code for new customers"  → create_coupon eligibility first_order
4. "What orders need fulfillment today?"           → list_orders_awaiting_fulfillment
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.e2e.mcp_client import TRANSPORTS, call, database, mcp_client, text_of
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(180)]

OWNER = "owner@demo.store"
SALES = ("paid", "partially_fulfilled", "fulfilled", "refunded")


def url(stack: Stack, transport: str) -> str:
    return stack.sse_url if transport == "sse" else stack.mcp_url


def cents(money: dict[str, str]) -> int:
    return int(Decimal(money["amount"]) * 100)


async def demo_store_id(db: Any) -> int:
    store_id: int = await db.fetchval("SELECT id FROM stores WHERE name = 'Demo Store'")
    return store_id


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_four_seed_prompts_are_offered(till_stack: Stack, transport: str) -> None:
    async with mcp_client(url(till_stack, transport), till_stack.tokens[OWNER], transport) as client:
        names = {p.name for p in (await client.list_prompts()).prompts}
        assert names >= {"top_selling_products", "create_discount_code", "update_product_price", "orders_to_fulfill"}
        got = await client.get_prompt("update_product_price", {"product": "Classic T-Shirt", "price": "29.99"})
        text = got.messages[0].content.text
        assert "Classic T-Shirt" in text
        assert "29.99" in text
        assert "update_product" in text


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("period", ["this_month", "last_30_days"])
async def test_top_selling_products_by_revenue_match_sql(till_stack: Stack, transport: str, period: str) -> None:
    async with mcp_client(url(till_stack, transport), till_stack.tokens[OWNER], transport) as client:
        answer = await call(client, "get_top_products", {"period": period, "by": "revenue", "limit": 10})
    start = datetime.fromisoformat(answer["start"]).astimezone(UTC)
    end = datetime.fromisoformat(answer["end"]).astimezone(UTC)
    today = datetime.now(UTC).date()
    first = today.replace(day=1) if period == "this_month" else today - timedelta(days=29)
    assert start.date() == first
    assert end.date() == today + timedelta(days=1)
    async with database(till_stack.tools_database_url) as db:
        store = await demo_store_id(db)
        rows = await db.fetch(
            """SELECT l.product_id, SUM(l.quantity) AS units, COUNT(DISTINCT l.order_id) AS orders,
                      SUM(l.quantity * l.unit_price) AS revenue
                 FROM order_lines l JOIN orders o ON o.id = l.order_id
                WHERE o.store_id = $1 AND o.status = ANY($2::text[])
                  AND o.created_at >= $3 AND o.created_at < $4
                GROUP BY l.product_id
                ORDER BY revenue DESC, units DESC, l.product_id
                LIMIT 10""",
            store, list(SALES), start.replace(tzinfo=None), end.replace(tzinfo=None))
        titles = dict(await db.fetch("SELECT id, title FROM products WHERE store_id = $1", store))
    if period == "last_30_days":
        assert rows, "the demo store has sales in the last 30 days"
    expected = [(r["product_id"], titles.get(r["product_id"]), int(r["units"]), int(r["orders"]), int(r["revenue"]))
                for r in rows]
    got = [(i["product_id"], i["title"], i["units"], i["orders"], cents(i["revenue"])) for i in answer["items"]]
    assert got == expected
    assert [i["rank"] for i in answer["items"]] == list(range(1, len(rows) + 1))
    assert all(i["revenue"]["currency"] == answer["currency"] for i in answer["items"])


@pytest.mark.parametrize(("transport", "before"), [("http", "24.50"), ("sse", "31.00")])
async def test_classic_tshirt_price_is_updated_to_29_99_and_read_back(till_stack: Stack, transport: str,
                                                                     before: str) -> None:
    async with database(till_stack.tools_database_url) as db:
        store = await demo_store_id(db)
        product_id = await db.fetchval("SELECT id FROM products WHERE store_id = $1 AND title = 'Classic T-Shirt'",
                                       store)
        assert product_id is not None, "the demo store sells a Classic T-Shirt"
        audited = await db.fetchval(
            "SELECT count(*) FROM audit_entries WHERE store_id = $1 AND tool = 'update_product'", store)
    async with mcp_client(url(till_stack, transport), till_stack.tokens[OWNER], transport) as client:
        # from a known other price, so that each transport's write is seen to happen
        await call(client, "update_product", {"name": "Classic T-Shirt", "price": before})
        updated = await call(client, "update_product", {"name": "Classic T-Shirt", "price": "29.99"})
        read_back = await call(client, "get_product", {"name": "Classic T-Shirt"})
    assert updated["id"] == product_id
    assert {v["price"]["amount"] for v in updated["variants"]} == {"29.99"}
    assert {v["price"]["amount"] for v in read_back["variants"]} == {"29.99"}
    async with database(till_stack.tools_database_url) as db:
        prices = {r["price"] for r in await db.fetch("SELECT price FROM variants WHERE product_id = $1", product_id)}
        trail = await db.fetch(
            """SELECT outcome, source, arguments FROM audit_entries
                WHERE store_id = $1 AND tool = 'update_product' ORDER BY seq DESC LIMIT 2""", store)
        now_audited = await db.fetchval(
            "SELECT count(*) FROM audit_entries WHERE store_id = $1 AND tool = 'update_product'", store)
    assert prices == {2999}
    assert len(read_back["variants"]) >= 1
    assert now_audited == audited + 2
    assert [(r["outcome"], r["source"]) for r in trail] == [("success", "mcp")] * 2
    assert '"29.99"' in trail[0]["arguments"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_20_percent_code_for_new_customers_is_created(till_stack: Stack, transport: str) -> None:
    async with mcp_client(url(till_stack, transport), till_stack.tokens[OWNER], transport) as client:
        prompt = await client.get_prompt("create_discount_code", {"percent": "20"})
        assert "first_order" in prompt.messages[0].content.text
        coupon = await call(client, "create_coupon", {"percent_off": 20, "eligibility": "first_order"})
        listed = await call(client, "list_coupons", {"limit": 100})
    assert coupon["percent_off"] == 20
    assert coupon["eligibility"] == "first_order"
    assert coupon["active"] is True
    assert coupon["code"]
    async with database(till_stack.tools_database_url) as db:
        store = await demo_store_id(db)
        row = await db.fetchrow("SELECT * FROM coupons WHERE store_id = $1 AND code = $2", store, coupon["code"])
    assert row is not None, f"coupon {coupon['code']} is in the demo store's table"
    assert (row["id"], row["kind"], row["percent_off"], row["eligibility"], row["active"]) == \
        (coupon["id"], "percent", 20, "first_order", True)
    assert row["amount_off"] is None
    codes = {c["code"] for c in listed["items"]}
    assert coupon["code"] in codes or listed["next_cursor"], "the new code is listed (or the list goes on)"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_orders_needing_fulfilment_today_match_the_database(till_stack: Stack, transport: str) -> None:
    pages: list[dict[str, Any]] = []
    async with mcp_client(url(till_stack, transport), till_stack.tokens[OWNER], transport) as client:
        arguments: dict[str, Any] = {"limit": 50}
        for _ in range(20):
            page = await call(client, "list_orders_awaiting_fulfillment", arguments)
            pages.append(page)
            if not page["next_cursor"]:
                break
            arguments = {"limit": 50, "cursor": page["next_cursor"]}
    items = [item for page in pages for item in page["items"]]
    async with database(till_stack.tools_database_url) as db:
        store = await demo_store_id(db)
        orders = await db.fetch(
            """SELECT id, number, status, created_at FROM orders
                WHERE store_id = $1 AND status IN ('paid', 'partially_fulfilled')
                ORDER BY created_at, id""", store)
        remaining = await db.fetch(
            """SELECT l.order_id, l.sku, l.quantity - l.fulfilled_quantity AS remaining
                 FROM order_lines l JOIN orders o ON o.id = l.order_id
                WHERE o.store_id = $1 AND o.status IN ('paid', 'partially_fulfilled')
                  AND l.quantity > l.fulfilled_quantity
                ORDER BY l.id""", store)
    assert orders, "the demo store has orders waiting to ship"
    assert [(i["id"], i["number"], i["status"]) for i in items] == [(o["id"], o["number"], o["status"]) for o in orders]
    assert pages[0]["awaiting_total"] == len(orders)
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    assert pages[0]["placed_today"] == sum(o["created_at"] >= midnight for o in orders)
    expected_lines: dict[int, list[tuple[str, int]]] = {}
    for r in remaining:
        expected_lines.setdefault(r["order_id"], []).append((r["sku"], r["remaining"]))
    assert {i["id"]: [(ln["sku"], ln["remaining"]) for ln in i["lines"]] for i in items if i["lines"]} == expected_lines
    oldest = orders[0]["created_at"].replace(tzinfo=UTC)
    assert abs(pages[0]["oldest_waiting_hours"] - (datetime.now(UTC) - oldest).total_seconds() // 3600) <= 1


async def test_a_bad_price_and_a_misspelt_name_come_back_to_the_model_as_tool_errors(till_stack: Stack) -> None:
    """SEP-1303 (MCP 2025-11-25): the model sees what was wrong and can retry; nothing is written."""
    async with database(till_stack.tools_database_url) as db:
        store = await demo_store_id(db)
        before = await db.fetch("SELECT id, price FROM variants WHERE store_id = $1 ORDER BY id", store)
    async with mcp_client(till_stack.mcp_url, till_stack.tokens[OWNER], "http") as client:
        bad_price = await client.call_tool("update_product", {"name": "Classic T-Shirt", "price": "abc"})
        misspelt = await client.call_tool("update_product", {"name": "Clasic T-Shirt", "price": "29.99"})
    assert bad_price.is_error
    assert "$.price" in text_of(bad_price)
    assert misspelt.is_error
    assert "Classic T-Shirt" in text_of(misspelt)
    async with database(till_stack.tools_database_url) as db:
        after = await db.fetch("SELECT id, price FROM variants WHERE store_id = $1 ORDER BY id", store)
        outcomes = [r["outcome"] for r in await db.fetch(
            """SELECT outcome FROM audit_entries WHERE store_id = $1 AND tool = 'update_product'
                ORDER BY seq DESC LIMIT 2""", store)]
    assert [tuple(r) for r in after] == [tuple(r) for r in before]
    assert outcomes == ["failed", "refused"]          # newest first: not found (a tool failure), then bad input
