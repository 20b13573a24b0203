"""The four requests of the seed (001, "Try a few commands") each answered in one or two calls."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from till_tools.store.models import AWAITING_FULFILMENT, Coupon, Order, Variant


async def test_top_selling_products_this_month_in_one_call(h) -> None:
    top = h.ok(await h.call("get_top_products", {"period": "this_month"}))
    assert top["by"] == "revenue"
    assert top["items"], top
    revenues = [float(i["revenue"]["amount"]) for i in top["items"]]
    assert revenues == sorted(revenues, reverse=True)
    assert top["start"].startswith(datetime.now(UTC).strftime("%Y-%m-01"))
    assert all(i["revenue"]["currency"] == "USD" for i in top["items"])


async def test_twenty_percent_code_for_new_customers_in_one_call(h) -> None:
    coupon = h.ok(await h.call("create_coupon", {"percent_off": 20, "eligibility": "first_order"}))
    assert coupon["percent_off"] == 20
    assert coupon["eligibility"] == "first_order"
    assert coupon["active"]
    assert "first orders only" in coupon["summary"]
    rows = await h.sql(select(Coupon.code, Coupon.percent_off, Coupon.store_id).where(Coupon.code == coupon["code"]))
    assert rows == [(coupon["code"], 20, 1)]


async def test_update_classic_tshirt_price_by_name_in_one_call(h) -> None:
    product = h.ok(await h.call("update_product", {"name": "Classic T-Shirt", "price": "29.99"}))
    assert {v["price"]["amount"] for v in product["variants"]} == {"29.99"}
    assert any(c["field"] == "price" and c["before"] == "24.99" and c["after"] == "29.99" for c in product["changes"])
    prices = await h.sql(select(Variant.price).where(Variant.product_id == product["id"]))
    assert {p for (p,) in prices} == {2999}


async def test_a_misspelt_product_name_suggests_the_closest(h) -> None:
    text = h.failed(await h.call("update_product", {"name": "Clasic T-Shirt", "price": "29.99"}))
    assert "no product matches 'Clasic T-Shirt'" in text
    assert "Classic T-Shirt (id " in text


async def test_orders_needing_fulfilment_today_in_one_call(h) -> None:
    queue = h.ok(await h.call("list_orders_awaiting_fulfillment", {}))
    expected = await h.sql(select(Order.id).where(Order.store_id == 1, Order.status.in_(AWAITING_FULFILMENT)))
    assert queue["awaiting_total"] == len(expected) > 0
    assert queue["placed_today"] >= 8          # the seed places today's paid orders
    assert all(i["status"] in AWAITING_FULFILMENT and i["lines"] for i in queue["items"])
    created = [i["created_at"] for i in queue["items"]]
    assert created == sorted(created)          # oldest first: what has waited longest ships first
