"""The one call path: permission, scope, validation, idempotency, dry run, audit outcomes."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from sqlalchemy import func, select

from till_common.protocol.internal import INSUFFICIENT_SCOPE, INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND
from till_tools.store.content import AuditEntry, IdempotencyRecord
from till_tools.store.models import Coupon, Product, Store, Variant


async def last_audit(h, store_id: int = 1) -> AuditEntry:
    async with h.reg.sessions() as db:
        row = await db.scalar(select(AuditEntry).where(AuditEntry.store_id == store_id)
                              .order_by(AuditEntry.seq.desc()).limit(1))
    assert row is not None
    return row


async def audit_count(h, store_id: int = 1) -> int:
    return (await h.sql(select(func.count()).select_from(AuditEntry).where(AuditEntry.store_id == store_id)))[0][0]


async def test_success_is_audited_with_who_what_and_how_long(h) -> None:
    h.ok(await h.call("get_product", {"name": "Classic T-Shirt"}))
    row = await last_audit(h)
    assert (row.tool, row.outcome, row.source, row.user_id, row.client_id, row.token_id, row.request_id) == \
        ("get_product", "success", "mcp", 1, "test-client", "tok-1", "req-test")
    assert msgspec.json.decode(row.arguments) == {"name": "Classic T-Shirt"}
    assert row.duration_ms >= 0
    assert len(row.hash) == 64


async def test_tl04_analyst_lists_read_tools_only_and_write_is_denied_and_audited(h) -> None:
    analyst = h.principal("analyst")
    tools = (await h.rpc("tools/list", {}, analyst))["result"]["tools"]
    assert tools
    assert all(t["annotations"]["readOnlyHint"] for t in tools)
    assert all(t["_meta"]["till/permission"].endswith(":read") for t in tools)
    text = h.failed(await h.call("update_product", {"name": "Classic T-Shirt", "price": "1.00"}, analyst))
    assert "products:write" in text
    assert "analyst" in text
    row = await last_audit(h)
    assert (row.tool, row.outcome, row.user_id) == ("update_product", "denied", 3)
    assert (await h.sql(select(Variant.price).where(Variant.sku == "TS-001-M", Variant.store_id == 1)))[0][0] == 2499


async def test_tl04_support_cannot_change_settings_but_can_refund(h) -> None:
    support = h.principal("support")
    names = {t["name"] for t in (await h.rpc("tools/list", {}, support))["result"]["tools"]}
    assert "refund_order" in names
    assert "update_store_settings" not in names
    assert "get_product" in names
    text = h.failed(await h.call("update_store_settings", {"store_name": "Hacked"}, support))
    assert "settings:write" in text
    assert (await last_audit(h)).outcome == "denied"
    paid = await h.call("list_orders", {"status": "fulfilled", "limit": 1}, support)
    order = h.ok(paid)["items"][0]
    refunded = h.ok(await h.call("refund_order", {"id": order["id"], "amount": "1.00"}, support))
    assert refunded["refunded_total"]["amount"] != "0.00"
    assert (await h.sql(select(Store.name).where(Store.id == 1)))[0][0] == "Demo Store"


async def test_scope_missing_from_token_is_insufficient_scope_and_denied(h) -> None:
    narrow = h.principal("owner", scopes=("products:read",))
    err = h.rpc_error(await h.call("update_product", {"name": "Classic T-Shirt", "price": "1.00"}, narrow),
                      INSUFFICIENT_SCOPE)
    assert err["data"] == {"scope": "products:write"}
    assert (await last_audit(h)).outcome == "denied"
    # tools/list still shows the role's tools, so the client can step up
    names = {t["name"] for t in (await h.rpc("tools/list", {}, narrow))["result"]["tools"]}
    assert "update_product" in names


@pytest.mark.parametrize("extra", ["store_id", "storeId", "user_id", "role", "__proto__"])
async def test_tl02_unexpected_fields_are_refused(h, extra: str) -> None:
    err = h.rpc_error(await h.call("get_product", {"name": "Classic T-Shirt", extra: 2}), INVALID_PARAMS)
    assert err["data"]["unexpected"] == extra
    assert (await last_audit(h)).outcome == "refused"


async def test_unknown_tool_and_unknown_method(h) -> None:
    err = h.rpc_error(await h.call("drop_database", {}), INVALID_PARAMS)
    assert err["data"] == {"path": "$.name"}
    assert ((await last_audit(h)).tool, (await last_audit(h)).outcome) == ("drop_database", "refused")
    h.rpc_error(await h.rpc("tools/destroy", {}), METHOD_NOT_FOUND)


PRICE_CASES: list[tuple[Any, str]] = [
    (29.99, "$.price"), ("29.999", "$.price"), ("-5", "$.price"), ("1e309", "$.price"), ("NaN", "$.price"),
    ("٣", "$.price"), ("29,99", "$.price"), ("abc", "$.price"), ("", "$.price"),
]


@pytest.mark.parametrize(("price", "path"), PRICE_CASES)
async def test_tl08_bad_prices_name_the_field_write_nothing_and_are_refused(h, price: Any, path: str) -> None:
    before = await h.sql(select(Variant.id, Variant.price).order_by(Variant.id))
    err = h.rpc_error(await h.call("update_product", {"name": "Classic T-Shirt", "price": price}), INVALID_PARAMS)
    assert err["data"]["path"] == path
    assert await h.sql(select(Variant.id, Variant.price).order_by(Variant.id)) == before
    assert (await last_audit(h)).outcome == "refused"


@pytest.mark.parametrize(("tool", "args", "path"), [
    ("create_coupon", {"percent_off": 150}, "$.percent_off"),
    ("update_inventory", {"sku": "TS-001-M", "set_to": -1}, "$.set_to"),
    ("update_variant", {"sku": "TS-001-M", "stock": -1}, "$.stock"),
    ("create_product", {"title": "bad\u0000name", "variants": [{"sku": "Z-1", "price": "1.00"}]}, "$.title"),
    ("create_product", {"title": "x" * 1_000_000, "variants": [{"sku": "Z-1", "price": "1.00"}]}, "$.title"),
    ("create_product", {"title": "ok", "variants": [{"sku": "Z-1", "price": 1}]}, "$.variants[0].price"),
    ("get_order", {"id": "12"}, "$.id"),
    ("list_products", {"limit": 1000}, "$.limit"),
    ("list_products", {"cursor": "not-a-cursor"}, "$.cursor"),
])
async def test_tl08_bad_input_is_precise_and_refused(h, tool: str, args: dict[str, Any], path: str) -> None:
    products = await h.sql(select(func.count()).select_from(Product))
    err = h.rpc_error(await h.call(tool, args), INVALID_PARAMS)
    assert err["data"]["path"] == path, err
    assert await h.sql(select(func.count()).select_from(Product)) == products
    assert (await last_audit(h)).outcome == "refused"


async def test_unknown_ids_fail_as_tool_errors_and_are_audited_failed(h) -> None:
    text = h.failed(await h.call("get_order", {"id": 999_999}))
    assert "no order with id 999999" in text
    assert (await last_audit(h)).outcome == "failed"
    text = h.failed(await h.call("update_inventory", {"sku": "TS-01", "set_to": 3}))
    assert "TS-001" in text      # suggests the close SKUs


async def test_tl05_injection_strings_are_literal_and_sort_is_an_enum(h) -> None:
    counts = await h.sql(select(func.count()).select_from(Product))
    for q in ("x' OR '1'='1", "%", "_"):
        assert h.ok(await h.call("list_products", {"query": q}))["items"] == []
    assert h.ok(await h.call("list_customers", {"query": "%"}))["items"] == []
    for sort in ("price; DROP TABLE orders", "(CASE WHEN 1=1 THEN id END)"):
        err = h.rpc_error(await h.call("list_products", {"sort": sort}), INVALID_PARAMS)
        assert err["data"]["path"] == "$.sort"
    assert await h.sql(select(func.count()).select_from(Product)) == counts
    # a literal % in data is found by a literal % query
    h.ok(await h.call("create_product", {"title": "100% Cotton Tee", "variants": [{"sku": "PCT-1", "price": "5.00"}]}))
    assert [p["title"] for p in h.ok(await h.call("list_products", {"query": "%"}))["items"]] == ["100% Cotton Tee"]


async def test_idempotency_same_key_same_args_returns_stored_result(h) -> None:
    args = {"title": "Idem Tee", "variants": [{"sku": "IDEM-1", "price": "9.00"}], "idempotency_key": "k-1"}
    first = h.ok(await h.call("create_product", args))
    second = h.ok(await h.call("create_product", args))
    assert second["id"] == first["id"]
    assert second["replayed"] is True
    assert (await h.sql(select(func.count()).select_from(Product).where(Product.title == "Idem Tee")))[0][0] == 1
    err = h.rpc_error(await h.call("create_product", {**args, "title": "Other"}), INVALID_PARAMS)
    assert err["data"] == {"path": "$.idempotency_key", "input": True}
    assert (await last_audit(h)).outcome == "refused"


async def test_idempotency_under_concurrency_creates_exactly_one(h) -> None:
    args = {"code": "RACE10", "percent_off": 10, "idempotency_key": "race"}
    outs = await asyncio.gather(*(h.call("create_coupon", args) for _ in range(5)))
    ids = {h.ok(o)["id"] for o in outs}
    assert len(ids) == 1
    assert (await h.sql(select(func.count()).select_from(Coupon).where(Coupon.code == "RACE10")))[0][0] == 1
    assert (await h.sql(select(func.count()).select_from(IdempotencyRecord)))[0][0] == 1


async def test_dry_run_returns_the_diff_and_changes_nothing(h) -> None:
    before = await h.sql(select(Variant.id, Variant.price).order_by(Variant.id))
    out = h.ok(await h.call("bulk_update_prices", {"percent": 10, "dry_run": True}))
    assert out["dry_run"] is True
    assert out["updated_variants"] > 40
    assert any(c["field"] == "price" for c in out["changes"])
    assert await h.sql(select(Variant.id, Variant.price).order_by(Variant.id)) == before
    row = await last_audit(h)
    assert (row.outcome, row.detail) == ("success", "dry run")
    created = h.ok(await h.call("create_coupon", {"code": "DRY1", "percent_off": 5, "dry_run": True}))
    assert created["code"] == "DRY1"
    assert (await h.sql(select(func.count()).select_from(Coupon).where(Coupon.code == "DRY1")))[0][0] == 0


async def test_sc03_secret_fields_are_redacted_in_the_audit_row(h) -> None:
    h.ok(await h.call("update_checkout_settings", {"payment_provider": "stripe",
                                                   "payment_provider_api_key": "sk_live_abcdefgh12345678"}))
    row = await last_audit(h)
    assert msgspec.json.decode(row.arguments) == {"payment_provider": "stripe",
                                                  "payment_provider_api_key": "[REDACTED]"}
    h.rpc_error(await h.call("update_store_settings", {"api_key": "k1", "secret": "s1", "password": "p1"}),
                INVALID_PARAMS)
    row = await last_audit(h)
    assert row.outcome == "refused"
    assert msgspec.json.decode(row.arguments) == {"api_key": "[REDACTED]", "secret": "[REDACTED]",
                                                  "password": "[REDACTED]"}
    assert "sk_live" not in row.arguments
    shown = h.ok(await h.call("get_checkout_settings", {}))
    assert shown["payment_provider_api_key"] == "…5678"


async def test_internal_error_rolls_back_and_answers_with_a_correlation_id(h, monkeypatch) -> None:
    from till_tools.tools import coupons

    spec = h.reg.catalogue.specs["create_coupon"]
    original = spec.handler

    async def explode(ctx, a):  # type: ignore[no-untyped-def]
        await original(ctx, a)          # the coupon row is written, then the handler blows up
        raise RuntimeError("boom /etc/secret path")

    object.__setattr__(spec, "handler", explode)
    try:
        out = await h.call("create_coupon", {"code": "BOOM1", "percent_off": 5})
    finally:
        object.__setattr__(spec, "handler", original)
    err = h.rpc_error(out, INTERNAL_ERROR)
    assert err["data"] == {"correlation_id": "req-test"}
    assert "boom" not in err["message"]
    assert (await h.sql(select(func.count()).select_from(Coupon).where(Coupon.code == "BOOM1")))[0][0] == 0
    row = await last_audit(h)
    assert (row.tool, row.outcome) == ("create_coupon", "failed")
    assert coupons is not None


async def test_a_failure_after_core_and_orm_writes_rolls_both_back_and_the_next_call_commits(h) -> None:
    # update_inventory writes the stock with a Core statement (on SQLite straight on the call's sqlite3
    # connection, D607); the ORM then adds a coupon in the same transaction; the failure undoes both
    from till_tools.spec import ToolFailure

    spec = h.reg.catalogue.specs["update_inventory"]
    original = spec.handler

    async def fail_late(ctx, a):  # type: ignore[no-untyped-def]
        await original(ctx, a)
        ctx.db.add(Coupon(store_id=ctx.store_id, code="LATE1", kind="percent", percent_off=5))
        await ctx.db.flush()
        raise ToolFailure("refused after writing")

    stock = select(Variant.stock).where(Variant.store_id == 1, Variant.sku == "TS-001-M")
    before = (await h.sql(stock))[0][0]
    object.__setattr__(spec, "handler", fail_late)
    try:
        text = h.failed(await h.call("update_inventory", {"sku": "TS-001-M", "adjust_by": 7}))
    finally:
        object.__setattr__(spec, "handler", original)
    assert text == "refused after writing"
    assert (await h.sql(stock))[0][0] == before
    assert (await h.sql(select(func.count()).select_from(Coupon).where(Coupon.code == "LATE1")))[0][0] == 0
    row = await last_audit(h)
    assert (row.tool, row.outcome, row.detail) == ("update_inventory", "failed", "refused after writing")
    h.ok(await h.call("update_inventory", {"sku": "TS-001-M", "adjust_by": 2}))
    assert (await h.sql(stock))[0][0] == before + 2
    assert (await last_audit(h)).outcome == "success"
