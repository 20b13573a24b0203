"""The registry: every SPEC §6 name, self-contained MCP definitions, role listings."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from till_common.permissions import ALL_SCOPES, ROLE_PERMISSIONS
from till_tools.registry import default_catalogue
from till_tools.spec import Args, Catalogue, Ctx, Result, tool

SPEC_NAMES = (
    "list_products", "get_product", "create_product", "update_product", "delete_product", "update_inventory",
    "list_orders", "get_order", "create_order", "update_order_status", "fulfill_order", "refund_order",
    "list_categories", "create_category", "update_category", "delete_category", "list_customers",
    "get_customer", "create_customer", "update_customer", "get_sales_report", "get_top_products",
    "get_traffic_report", "get_product_analytics", "list_coupons", "create_coupon", "update_coupon",
    "delete_coupon", "list_blog_posts", "create_blog_post", "update_blog_post", "delete_blog_post",
    "list_pages", "create_page", "update_page", "delete_page", "get_theme", "get_theme_settings",
    "update_theme_settings", "update_theme_section", "list_menus", "create_menu", "update_menu", "delete_menu",
    "get_store_settings", "update_store_settings", "get_shipping_settings", "update_shipping_settings",
    "get_checkout_settings", "update_checkout_settings",
)

CAT = default_catalogue()


def refs(schema: Any) -> set[str]:
    return set(re.findall(r'"\$ref": "#/\$defs/([^"]+)"', json.dumps(schema)))


def test_every_spec_tool_exists_plus_extras() -> None:
    assert set(SPEC_NAMES) <= set(CAT.specs)
    assert {"get_variant", "update_variant", "bulk_update_prices", "add_order_note",
            "list_orders_awaiting_fulfillment"} <= set(CAT.specs)


@pytest.mark.parametrize("name", sorted(CAT.specs))
def test_definition_is_a_self_contained_mcp_tool(name: str) -> None:
    d = CAT.definitions[name]
    spec = CAT.specs[name]
    assert d["name"] == name
    assert d["title"]
    assert len(d["description"]) > 20
    assert d["_meta"] == {"till/permission": spec.permission}
    assert spec.permission in ALL_SCOPES
    for key in ("inputSchema", "outputSchema"):
        schema = d[key]
        assert schema["type"] == "object"
        assert refs(schema) <= set(schema.get("$defs", {})), (key, refs(schema))
        jsonschema.Draft202012Validator.check_schema(schema)
    assert d["inputSchema"]["additionalProperties"] is False
    ann = d["annotations"]
    assert ann["readOnlyHint"] is spec.read_only
    assert ann["openWorldHint"] is False
    if not spec.read_only:
        props = d["inputSchema"]["properties"]
        assert "idempotency_key" in props
        assert "dry_run" in props
        assert "changes" in d["outputSchema"]["properties"]
    if spec.destructive:
        assert not spec.read_only


def test_sort_fields_are_enums() -> None:
    for name, d in CAT.definitions.items():
        sort = d["inputSchema"]["properties"].get("sort")
        if sort is not None:
            assert "enum" in sort, name


def test_role_listings() -> None:
    for role, perms in ROLE_PERMISSIONS.items():
        listed = {t["name"] for t in CAT.by_role[role]}
        assert listed == {n for n, s in CAT.specs.items() if s.permission in perms}
    assert all(CAT.specs[t["name"]].read_only for t in CAT.by_role["analyst"])


def test_duplicate_names_are_refused() -> None:
    class A(Args):
        pass

    class R(Result):
        pass

    @tool("twice", "Twice", "A tool defined twice for this test.", A, R, "products:read")
    async def twice(ctx: Ctx, a: A) -> R:
        return R()

    with pytest.raises(ValueError, match="duplicate"):
        Catalogue([twice, twice])
