"""Each category's handlers, end to end through the call path, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from till_tools.store.models import Order, Product, Variant


async def test_products_create_read_update_stock_delete(h) -> None:
    p = h.ok(await h.call("create_product", {"title": "Linen Shirt", "description": "Cool.", "tags": ["summer"],
                                             "category_ids": [1], "variants": [
                                                 {"sku": "LS-1-S", "title": "S", "price": "45.00", "stock": 5},
                                                 {"sku": "LS-1-M", "title": "M", "price": "45.00", "stock": 2}]}))
    assert (p["slug"], p["total_stock"], p["category_ids"]) == ("linen-shirt", 7, [1])
    assert h.ok(await h.call("get_product", {"sku": "ls-1-m"}))["id"] == p["id"]       # SKU match ignores case
    assert "already used" in h.failed(await h.call("create_product", {
        "title": "Dup", "variants": [{"sku": "LS-1-S", "price": "1.00"}]}))
    v = h.ok(await h.call("update_inventory", {"sku": "LS-1-M", "adjust_by": -2}))
    assert v["stock"] == 0
    assert "would become -1" in h.failed(await h.call("update_inventory", {"sku": "LS-1-M", "adjust_by": -1}))
    v = h.ok(await h.call("update_variant", {"sku": "LS-1-M", "price": "39.50", "compare_at_price": "45.00",
                                             "new_sku": "LS-1-MED"}))
    assert (v["sku"], v["price"]["amount"], v["compare_at_price"]["amount"]) == ("LS-1-MED", "39.50", "45.00")
    low = h.ok(await h.call("list_products", {"low_stock_below": 6, "limit": 100}))
    assert p["id"] in {i["id"] for i in low["items"]}
    upd = h.ok(await h.call("update_product", {"id": p["id"], "title": "Linen Shirt II", "status": "draft"}))
    assert (upd["slug"], upd["status"]) == ("linen-shirt-ii", "draft")
    gone = h.ok(await h.call("delete_product", {"id": p["id"]}))
    assert gone == {"deleted": "product", "id": p["id"], "changes": [{"action": "delete", "entity": "product",
                                                                      "id": p["id"]}], "dry_run": False}
    assert (await h.sql(select(func.count()).select_from(Variant).where(Variant.product_id == p["id"])))[0][0] == 0
    assert "no product with id" in h.failed(await h.call("get_product", {"id": p["id"]}))


async def test_product_listing_sorts_and_paginates_with_cursors(h) -> None:
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        page = h.ok(await h.call("list_products", {"sort": "price_asc", "limit": 10,
                                                   **({"cursor": cursor} if cursor else {})}))
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    total = (await h.sql(select(func.count()).select_from(Product).where(Product.store_id == 1)))[0][0]
    assert len(seen) == len(set(seen)) == total
    err = h.rpc_error(await h.call("list_orders", {"cursor": cursor or page_cursor(h)}), -32602)
    assert err["data"] == {"path": "$.cursor", "input": True}


def page_cursor(h) -> str:
    from till_tools.pagination import encode_cursor

    return encode_cursor("list_products", 10)


async def test_bulk_price_change_by_percent_rounds_to_the_cent(h) -> None:
    out = h.ok(await h.call("bulk_update_prices", {"percent": -15, "product_ids": [1]}))
    assert out["updated_variants"] == 4
    assert {v["price"]["amount"] for v in out["variants"]} == {"21.24"}     # 24.99 * 0.85 = 21.2415


async def test_orders_create_fulfil_partially_then_fully_refund_and_note(h) -> None:
    stock = (await h.sql(select(Variant.stock).where(Variant.sku == "HD-001-L", Variant.store_id == 1)))[0][0]
    o = h.ok(await h.call("create_order", {"email": "walk-in@example.com", "status": "paid", "shipping": "5.00",
                                           "lines": [{"sku": "HD-001-L", "quantity": 2},
                                                     {"sku": "AC-001", "quantity": 1}]}))
    assert (o["subtotal"]["amount"], o["total"]["amount"], o["status"]) == ("136.00", "141.00", "paid")
    assert (await h.sql(select(Variant.stock).where(Variant.sku == "HD-001-L", Variant.store_id == 1)))[0][0] == \
        stock - 2
    line = o["lines"][0]
    part = h.ok(await h.call("fulfill_order", {"id": o["id"], "items": [{"line_id": line["id"], "quantity": 1}],
                                               "carrier": "UPS", "tracking_number": "1Z1"}))
    assert part["status"] == "partially_fulfilled"
    done = h.ok(await h.call("fulfill_order", {"number": o["number"]}))
    assert done["status"] == "fulfilled"
    assert len(done["fulfilments"]) == 2
    assert "is fulfilled; only paid" in h.failed(await h.call("fulfill_order", {"id": o["id"]}))
    r = h.ok(await h.call("refund_order", {"id": o["id"], "amount": "41.00", "reason": "damaged"}))
    assert (r["status"], r["refunded_total"]["amount"]) == ("fulfilled", "41.00")
    assert "between 0.01 and 100.00" in h.failed(await h.call("refund_order", {"id": o["id"], "amount": "100.01"}))
    r = h.ok(await h.call("refund_order", {"id": o["id"]}))
    assert (r["status"], r["refunded_total"]["amount"]) == ("refunded", "141.00")
    n = h.ok(await h.call("add_order_note", {"id": o["id"], "body": "Customer called."}))
    assert n["notes"][0]["body"] == "Customer called."


async def test_order_status_transitions_and_stock_checks(h) -> None:
    o = h.ok(await h.call("create_order", {"email": "p@example.com", "lines": [{"sku": "AC-002", "quantity": 1}]}))
    assert o["status"] == "pending"
    assert "is pending; only paid" in h.failed(await h.call("fulfill_order", {"id": o["id"]}))
    paid = h.ok(await h.call("update_order_status", {"id": o["id"], "status": "paid"}))
    assert paid["paid_at"] is not None
    stock = (await h.sql(select(Variant.stock).where(Variant.sku == "AC-002", Variant.store_id == 1)))[0][0]
    cancelled = h.ok(await h.call("update_order_status", {"id": o["id"], "status": "cancelled"}))
    assert cancelled["status"] == "cancelled"
    assert (await h.sql(select(Variant.stock).where(Variant.sku == "AC-002", Variant.store_id == 1)))[0][0] == \
        stock + 1
    assert "cannot go from cancelled to paid" in h.failed(
        await h.call("update_order_status", {"id": o["id"], "status": "paid"}))
    assert "in stock" in h.failed(await h.call("create_order", {"email": "p@example.com",
                                                                "lines": [{"sku": "AC-002", "quantity": 100000}]}))
    filtered = h.ok(await h.call("list_orders", {"status": "cancelled", "limit": 100}))
    assert all(i["status"] == "cancelled" for i in filtered["items"])
    count = (await h.sql(select(func.count()).select_from(Order).where(Order.store_id == 1,
                                                                      Order.status == "cancelled")))[0][0]
    assert len(filtered["items"]) == count


async def test_first_order_coupon_applies_once_per_new_customer(h) -> None:
    c = h.ok(await h.call("create_coupon", {"code": "NEW20", "percent_off": 20, "eligibility": "first_order"}))
    assert c["code"] == "NEW20"
    first = h.ok(await h.call("create_order", {"email": "brand-new@example.com", "coupon_code": "new20",
                                               "lines": [{"sku": "AC-005", "quantity": 1}]}))
    assert (first["discount_total"]["amount"], first["coupon_code"]) == ("3.20", "NEW20")
    again = h.failed(await h.call("create_order", {"email": "brand-new@example.com", "coupon_code": "NEW20",
                                                   "lines": [{"sku": "AC-005", "quantity": 1}]}))
    assert "first order only" in again
    assert "SUMMER20 is inactive" in h.failed(await h.call("create_order", {
        "email": "x@example.com", "coupon_code": "SUMMER20", "lines": [{"sku": "AC-005", "quantity": 1}]}))
    upd = h.ok(await h.call("update_coupon", {"code": "NEW20", "active": False, "usage_limit": 10}))
    assert (upd["active"], upd["usage_limit"]) == (False, 10)
    assert h.ok(await h.call("list_coupons", {"query": "new"}))["items"][0]["code"] == "NEW20"
    assert h.ok(await h.call("delete_coupon", {"code": "NEW20"}))["deleted"] == "coupon"
    assert "exactly one" in h.rpc_error(await h.call("create_coupon", {"percent_off": 5, "amount_off": "5.00"}),
                                        -32602)["message"]
    fixed = h.ok(await h.call("create_coupon", {"code": "TENOFF", "amount_off": "10.00", "min_subtotal": "50.00"}))
    assert fixed["summary"] == "TENOFF: 10.00 USD off, all customers"


async def test_categories_crud(h) -> None:
    c = h.ok(await h.call("create_category", {"name": "Winter", "parent_id": 1}))
    assert (c["slug"], c["parent_id"], c["product_count"]) == ("winter", 1, 0)
    assert "already exists" in h.failed(await h.call("create_category", {"name": "winter"}))
    h.ok(await h.call("update_product", {"name": "Beanie", "category_ids": [c["id"]]}))
    u = h.ok(await h.call("update_category", {"name": "Winter", "new_name": "Winter Wear"}))
    assert (u["slug"], u["product_count"]) == ("winter-wear", 1)
    assert "own parent" in h.rpc_error(await h.call("update_category", {"id": c["id"], "parent_id": c["id"]}),
                                       -32602)["message"]
    listed = h.ok(await h.call("list_categories", {"limit": 100}))
    assert "Winter Wear" in {i["name"] for i in listed["items"]}
    d = h.ok(await h.call("delete_category", {"id": c["id"]}))
    assert d["products_unassigned"] == 1


async def test_customers_crud_and_search(h) -> None:
    c = h.ok(await h.call("create_customer", {"email": "Jo@Example.com", "first_name": "Jo", "last_name": "Bloggs",
                                              "tags": ["vip"]}))
    assert (c["orders_count"], c["total_spent"]["amount"]) == (0, "0.00")
    assert "already exists" in h.failed(await h.call("create_customer", {"email": "jo@example.com"}))
    assert h.ok(await h.call("get_customer", {"email": "jo@example.com"}))["id"] == c["id"]
    u = h.ok(await h.call("update_customer", {"id": c["id"], "phone": "+1 555 0199", "accepts_marketing": True}))
    assert (u["phone"], u["accepts_marketing"]) == ("+1 555 0199", True)
    found = h.ok(await h.call("list_customers", {"query": "bloggs"}))
    assert [i["id"] for i in found["items"]] == [c["id"]]
    top = h.ok(await h.call("list_customers", {"sort": "total_spent", "limit": 3}))
    spent = [float(i["total_spent"]["amount"]) for i in top["items"]]
    assert spent == sorted(spent, reverse=True)


async def test_content_posts_and_pages(h) -> None:
    p = h.ok(await h.call("create_blog_post", {"title": "Hello World", "body": "First!", "published": True}))
    assert p["published_at"] is not None
    u = h.ok(await h.call("update_blog_post", {"slug": "hello-world", "body": "Edited"}))
    assert u["body"] == "Edited"
    assert h.ok(await h.call("list_blog_posts", {"query": "edited"}))["items"][0]["id"] == p["id"]
    h.ok(await h.call("delete_blog_post", {"id": p["id"]}))
    page = h.ok(await h.call("create_page", {"title": "Size Guide", "body": "S M L"}))
    assert page["slug"] == "size-guide"
    assert "already exists" in h.failed(await h.call("create_page", {"title": "Other", "slug": "size-guide"}))
    assert h.ok(await h.call("update_page", {"id": page["id"], "published": False}))["published"] is False
    assert h.ok(await h.call("list_pages", {"published": False}))["items"][0]["id"] == page["id"]
    assert h.ok(await h.call("delete_page", {"slug": "size-guide"}))["deleted"] == "page"


async def test_theme_settings_and_sections(h) -> None:
    theme = h.ok(await h.call("get_theme", {}))
    assert [s["key"] for s in theme["sections"]][:2] == ["header", "hero"]
    assert theme["sections"][1]["blocks"]
    s = h.ok(await h.call("update_theme_settings", {"settings": {"color_primary": "#ff0000"}, "remove": ["logo_url"]}))
    assert s["settings"]["color_primary"] == "#ff0000"
    assert "logo_url" not in s["settings"]
    sec = h.ok(await h.call("update_theme_section", {"section": "hero", "enabled": False,
                                                     "blocks": [{"type": "heading", "settings": {"text": "Sale!"}}]}))
    assert sec["enabled"] is False
    assert [b["settings"] for b in sec["blocks"]] == [{"text": "Sale!"}]
    assert "sections: header" in h.failed(await h.call("update_theme_section", {"section": "nope"}))


async def test_menus_nested_crud(h) -> None:
    menus = h.ok(await h.call("list_menus", {}))["items"]
    assert {m["handle"] for m in menus} == {"main-menu", "footer"}
    assert [c["title"] for c in menus[0]["items"][1]["children"]] == ["T-Shirts", "Hoodies", "Accessories"]
    m = h.ok(await h.call("create_menu", {"handle": "promo", "title": "Promo", "items": [
        {"title": "Sale", "url": "/collections/sale",
         "children": [{"title": "Tees", "url": "/collections/t-shirts"}]}]}))
    assert m["items"][0]["children"][0]["title"] == "Tees"
    deep = {"title": "a", "url": "/a", "children": [{"title": "b", "url": "/b", "children": [
        {"title": "c", "url": "/c", "children": [{"title": "d", "url": "/d"}]}]}]}
    assert h.rpc_error(await h.call("update_menu", {"handle": "promo", "items": [deep]}), -32602)["data"] == \
        {"path": "$.items", "input": True}
    assert h.rpc_error(await h.call("create_menu", {"handle": "x", "title": "X", "items": [
        {"title": "evil", "url": "javascript:alert(1)"}]}), -32602)["data"]["path"] == "$.items[0].url"
    u = h.ok(await h.call("update_menu", {"handle": "promo", "title": "Deals", "items": []}))
    assert (u["title"], u["items"]) == ("Deals", [])
    assert h.ok(await h.call("delete_menu", {"handle": "promo"}))["handle"] == "promo"


async def test_settings_general_shipping_checkout(h) -> None:
    g = h.ok(await h.call("update_store_settings", {"contact_email": "ops@demo.store", "weight_unit": "kg"}))
    assert (g["general"]["contact_email"], g["general"]["currency"]) == ("ops@demo.store", "USD")
    s = h.ok(await h.call("update_shipping_settings", {"free_shipping_threshold": "100.00", "zones": [
        {"name": "US", "countries": ["US"], "rates": [{"name": "Ground", "price": "7.50"}]}]}))
    assert s["free_shipping_threshold"]["amount"] == "100.00"
    assert [z["rates"][0]["price"]["amount"] for z in s["zones"]] == ["7.50"]
    assert h.ok(await h.call("get_shipping_settings", {}))["zones"] == s["zones"]
    c = h.ok(await h.call("update_checkout_settings", {"guest_checkout": False}))
    assert c["guest_checkout"] is False
    assert h.ok(await h.call("get_checkout_settings", {}))["guest_checkout"] is False
