"""TL-01: Other Store's owner calls every tool and resource with Demo Store ids, SKUs, slugs and names.
Nothing of Demo is read or changed; a Demo id answers exactly like an id that does not exist; every
call is audited in Other Store's chain."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from sqlalchemy import func, select

from till_common.protocol.internal import RESOURCE_NOT_FOUND
from till_tools.store.content import AuditEntry, BlogPost, Menu, Page
from till_tools.store.models import Base, Category, Coupon, Customer, Order, Product, Variant

MISSING = 999_999_999
DEMO_MARKERS = ("USD", "Demo Store", "demo.store", "Running Shoes", "Sustainability Report")


async def demo_snapshot(h) -> dict[str, list[Any]]:
    snap = {}
    for table in Base.metadata.sorted_tables:
        if "store_id" in table.c:
            rows = await h.sql(select(table).where(table.c.store_id == 1).order_by(*table.primary_key.columns))
            snap[table.name] = [tuple(r) for r in rows]
    return snap


async def demo_refs(h) -> dict[str, Any]:
    async def one(stmt: Any) -> Any:
        return (await h.sql(stmt))[0][0]

    return {
        "P": await one(select(Product.id).where(Product.store_id == 1, Product.title == "Running Shoes")),
        "V": await one(select(Variant.id).where(Variant.store_id == 1, Variant.sku == "SHO-001-9")),
        "O": await one(select(Order.id).where(Order.store_id == 1, Order.status == "paid").limit(1)),
        "C": await one(select(Customer.id).where(Customer.store_id == 1).order_by(Customer.id.desc()).limit(1)),
        "EMAIL": await one(select(Customer.email).where(Customer.store_id == 1).order_by(Customer.id.desc()).limit(1)),
        "CAT": await one(select(Category.id).where(Category.store_id == 1, Category.name == "Shoes")),
        "CP": await one(select(Coupon.id).where(Coupon.store_id == 1, Coupon.code == "VIP15")),
        "BP": await one(select(BlogPost.id).where(BlogPost.store_id == 1, BlogPost.slug == "sustainability-report")),
        "PG": await one(select(Page.id).where(Page.store_id == 1, Page.slug == "privacy-policy")),
        "M": await one(select(Menu.id).where(Menu.store_id == 1, Menu.handle == "main-menu")),
    }


def cases(r: dict[str, Any]) -> list[tuple[str, dict[str, Any], str | None]]:
    """(tool, arguments, the id key whose value is a Demo id — the call must fail as if it were missing)."""
    return [
        ("list_products", {"query": "Running"}, None),
        ("get_product", {"id": r["P"]}, "id"),
        ("get_product", {"sku": "SHO-001-9"}, None),
        ("get_product", {"name": "Running Shoes"}, None),
        ("get_variant", {"variant_id": r["V"]}, "variant_id"),
        ("create_product", {"title": "Trail Shoes", "variants": [{"sku": "SHO-001-9", "price": "1.00"}]}, None),
        ("update_product", {"id": r["P"], "price": "1.00"}, "id"),
        ("update_product", {"name": "Classic T-Shirt", "price": "1.00"}, None),   # Other's own namesake
        ("delete_product", {"id": r["P"]}, "id"),
        ("update_inventory", {"variant_id": r["V"], "set_to": 0}, "variant_id"),
        ("update_variant", {"sku": "SHO-001-9", "price": "1.00"}, None),
        ("bulk_update_prices", {"percent": 10, "product_ids": [r["P"]]}, None),
        ("list_orders", {"customer_id": r["C"]}, None),
        ("get_order", {"id": r["O"]}, "id"),
        ("list_orders_awaiting_fulfillment", {}, None),
        ("create_order", {"email": r["EMAIL"], "lines": [{"sku": "SHO-001-9", "quantity": 1}]}, None),
        ("update_order_status", {"id": r["O"], "status": "cancelled"}, "id"),
        ("fulfill_order", {"id": r["O"]}, "id"),
        ("refund_order", {"id": r["O"]}, "id"),
        ("add_order_note", {"id": r["O"], "body": "x"}, "id"),
        ("list_categories", {}, None),
        ("create_category", {"name": "Sub", "parent_id": r["CAT"]}, "parent_id"),
        ("update_category", {"id": r["CAT"], "new_name": "Hacked"}, "id"),
        ("delete_category", {"id": r["CAT"]}, "id"),
        ("list_customers", {"query": r["EMAIL"]}, None),
        ("get_customer", {"id": r["C"]}, "id"),
        ("get_customer", {"email": r["EMAIL"]}, None),
        ("create_customer", {"email": "fresh@example.org"}, None),
        ("update_customer", {"id": r["C"], "note": "hacked"}, "id"),
        ("get_sales_report", {}, None),
        ("get_top_products", {}, None),
        ("get_traffic_report", {}, None),
        ("get_product_analytics", {"id": r["P"]}, "id"),
        ("list_coupons", {}, None),
        ("create_coupon", {"code": "VIP15", "percent_off": 50}, None),
        ("update_coupon", {"id": r["CP"], "active": False}, "id"),
        ("delete_coupon", {"id": r["CP"]}, "id"),
        ("list_blog_posts", {"query": "Sustainability"}, None),
        ("create_blog_post", {"title": "Hello"}, None),
        ("update_blog_post", {"id": r["BP"], "title": "Hacked"}, "id"),
        ("update_blog_post", {"slug": "sustainability-report", "title": "Hacked"}, None),
        ("delete_blog_post", {"id": r["BP"]}, "id"),
        ("list_pages", {}, None),
        ("create_page", {"title": "Privacy Policy", "slug": "privacy-policy"}, None),
        ("update_page", {"id": r["PG"], "body": "hacked"}, "id"),
        ("delete_page", {"id": r["PG"]}, "id"),
        ("get_theme", {}, None),
        ("get_theme_settings", {}, None),
        ("update_theme_settings", {"settings": {"color_primary": "#000000"}}, None),
        ("update_theme_section", {"section": "hero", "enabled": False}, None),
        ("list_menus", {}, None),
        ("create_menu", {"handle": "extra", "title": "Extra"}, None),
        ("update_menu", {"id": r["M"], "title": "Hacked"}, "id"),
        ("delete_menu", {"id": r["M"]}, "id"),
        ("get_store_settings", {}, None),
        ("update_store_settings", {"store_name": "Other Store"}, None),
        ("get_shipping_settings", {}, None),
        ("update_shipping_settings", {"free_shipping_threshold": "50.00"}, None),
        ("get_checkout_settings", {}, None),
        ("update_checkout_settings", {"tipping": True}, None),
    ]


async def test_tl01_every_tool_as_other_store_never_touches_demo(h) -> None:
    refs = await demo_refs(h)
    table = cases(refs)
    assert {t for t, _, _ in table} == set(h.catalogue.specs), "every tool must be covered"
    before = await demo_snapshot(h)
    demo_ids = {v for k, v in refs.items() if k != "EMAIL"}
    other_audit = (await h.sql(select(func.count()).select_from(AuditEntry).where(AuditEntry.store_id == 2)))[0][0]
    for tool, args, id_key in table:
        out = await h.call(tool, args, h.OTHER)
        text = msgspec.json.encode(out).decode()
        if id_key is not None:
            message = h.failed(out)
            missing = h.failed(await h.call(tool, {**args, id_key: MISSING}, h.OTHER))
            assert message.replace(str(args[id_key]), "N") == missing.replace(str(MISSING), "N"), (tool, message)
            continue
        result = out["result"]
        if not result["isError"]:
            for marker in DEMO_MARKERS:
                assert marker not in text, (tool, marker, text[:300])
        else:
            assert "USD" not in text, (tool, text)
            assert "Demo Store" not in text, (tool, text)
            for n in re.findall(r"\(id (\d+)\)", result["content"][0]["text"]):
                assert int(n) not in demo_ids, (tool, text)
    assert await demo_snapshot(h) == before
    after = (await h.sql(select(func.count()).select_from(AuditEntry).where(AuditEntry.store_id == 2)))[0][0]
    assert after - other_audit == len(table) + sum(1 for _, _, k in table if k)


async def test_tl01_resources_of_demo_are_not_found_for_other(h) -> None:
    refs = await demo_refs(h)
    for uri in (f"store://products/{refs['P']}", f"store://orders/{refs['O']}", f"store://pages/{refs['PG']}"):
        err = h.rpc_error(await h.rpc("resources/read", {"uri": uri}, h.OTHER), RESOURCE_NOT_FOUND)
        missing = h.rpc_error(await h.rpc("resources/read", {"uri": re.sub(r"\d+$", str(MISSING), uri)}, h.OTHER),
                              RESOURCE_NOT_FOUND)
        assert err["message"] == missing["message"]
    settings = (await h.rpc("resources/read", {"uri": "store://settings"}, h.OTHER))["result"]["contents"][0]["text"]
    assert "EUR" in settings
    assert "USD" not in settings
    assert "Other Store" in settings


async def test_same_names_and_skus_resolve_to_each_stores_own_rows(h) -> None:
    demo = h.ok(await h.call("get_product", {"sku": "TS-001-M"}))
    other = h.ok(await h.call("get_product", {"sku": "TS-001-M"}, h.OTHER))
    assert demo["id"] != other["id"]
    assert demo["title"] == other["title"] == "Classic T-Shirt"
    assert other["variants"][0]["price"]["currency"] == "EUR"
    d_order = h.ok(await h.call("get_order", {"number": 1001}))
    o_order = h.ok(await h.call("get_order", {"number": 1001}, h.OTHER))
    assert d_order["id"] != o_order["id"]
    assert o_order["total"]["currency"] == "EUR"
