"""Variants: read one, stock, price and SKU changes, and store-wide price changes by percent."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta
from sqlalchemy import Row, bindparam, func, select, update

from till_tools.lookup import by_id, by_text, row_by_id, row_by_text
from till_tools.money import MoneyStr, money
from till_tools.spec import Args, Ctx, Id, InvalidArgument, Name, Result, Sku, ToolFailure, WriteArgs, tool
from till_tools.store.hot import Hot
from till_tools.store.models import Category, ProductCategory, Variant
from till_tools.tools.products import Stock, VariantOut, parse_money, variant_out


def _with_stock(v: Variant | Row[Any], stock: int, currency: str) -> VariantOut:
    out = variant_out(v, currency)
    out.stock = stock
    return out


class BulkPriceResult(Result, kw_only=True):
    updated_variants: int
    variants: list[VariantOut]


async def resolve_variant(ctx: Ctx, id: int | None, sku: str | None) -> Variant:
    if (id is None) == (sku is None):
        raise InvalidArgument("$", "give exactly one of variant_id or sku")
    if id is not None:
        return await by_id(ctx, Variant, id, "variant")
    assert sku is not None
    return await by_text(ctx, Variant, Variant.sku, sku, "variant with that SKU")


async def read_variant(ctx: Ctx, id: int | None, sku: str | None) -> Variant | Row[Any]:
    """``resolve_variant`` as a Core row, no ORM object: reads and the stock update use it."""
    if (id is None) == (sku is None):
        raise InvalidArgument("$", "give exactly one of variant_id or sku")
    if id is not None:
        by_number: Row[Any] = await row_by_id(ctx, Variant, id, "variant")
        return by_number
    assert sku is not None
    found: Variant | Row[Any] = await row_by_text(ctx, Variant, Variant.sku, sku, "variant with that SKU")
    return found


_SET_STOCK = Hot(update(Variant).where(Variant.id == bindparam("vid")).values(stock=bindparam("stock")))


class VariantRef(Args, kw_only=True):
    variant_id: Id | None = None
    sku: Sku | None = None


class WriteVariantRef(WriteArgs, kw_only=True):
    variant_id: Id | None = None
    sku: Sku | None = None


@tool("get_variant", "Get a variant", "One variant (SKU, price, compare-at price, stock) by variant_id or SKU.",
      VariantRef, VariantOut, "products:read")
async def get_variant(ctx: Ctx, a: VariantRef) -> VariantOut:
    return variant_out(await read_variant(ctx, a.variant_id, a.sku), ctx.currency)


class UpdateInventory(WriteVariantRef, kw_only=True):
    set_to: Annotated[int, Meta(ge=0, le=10_000_000, description="New absolute stock (≥ 0).")] | None = None
    adjust_by: Annotated[int, Meta(ge=-10_000_000, le=10_000_000,
                                    description="Add (or, negative, remove) this many units.")] | None = None


@tool("update_inventory", "Update stock",
      "Set (set_to) or adjust (adjust_by) the stock of one variant picked by variant_id or SKU. "
      "Stock never goes below zero.", UpdateInventory, VariantOut, "products:write")
async def update_inventory(ctx: Ctx, a: UpdateInventory) -> VariantOut:
    if (a.set_to is None) == (a.adjust_by is None):
        raise InvalidArgument("$", "give exactly one of set_to or adjust_by")
    v = await read_variant(ctx, a.variant_id, a.sku)
    new = a.set_to if a.set_to is not None else v.stock + (a.adjust_by or 0)
    if new < 0:
        raise ToolFailure(f"stock of {v.sku} would become {new}; it has {v.stock}")
    ctx.updated("variant", v.id, "stock", v.stock, new)
    # one Core UPDATE, no ORM unit of work: stock is the commonest write (D606)
    await _SET_STOCK.run(ctx.db, {"vid": v.id, "stock": new})
    return _with_stock(v, new, ctx.currency)


class UpdateVariant(WriteVariantRef, kw_only=True):
    price: MoneyStr | None = None
    compare_at_price: MoneyStr | None = None
    stock: Stock | None = None
    title: Name | None = None
    new_sku: Sku | None = None


@tool("update_variant", "Update a variant",
      "Change one variant (by variant_id or SKU): price, compare-at price, stock, title or SKU.",
      UpdateVariant, VariantOut, "products:write", idempotent=True)
async def update_variant(ctx: Ctx, a: UpdateVariant) -> VariantOut:
    v = await resolve_variant(ctx, a.variant_id, a.sku)
    if a.price is not None:
        price = parse_money(ctx, a.price, "$.price")
        ctx.updated("variant", v.id, "price", money(v.price, ctx.currency).amount, money(price, ctx.currency).amount)
        v.price = price
    if a.compare_at_price is not None:
        v.compare_at_price = parse_money(ctx, a.compare_at_price, "$.compare_at_price")
    if a.stock is not None:
        ctx.updated("variant", v.id, "stock", v.stock, a.stock)
        v.stock = a.stock
    if a.title is not None:
        v.title = a.title
    if a.new_sku is not None and a.new_sku != v.sku:
        clash = await ctx.db.scalar(select(Variant.id).where(Variant.store_id == ctx.store_id,
                                                             func.lower(Variant.sku) == a.new_sku.lower()))
        if clash:
            raise ToolFailure(f"SKU {a.new_sku} is already used in this store")
        ctx.updated("variant", v.id, "sku", v.sku, a.new_sku)
        v.sku = a.new_sku
    await ctx.db.flush()
    return variant_out(v, ctx.currency)


class BulkUpdatePrices(WriteArgs, kw_only=True):
    percent: Annotated[int, Meta(ge=-90, le=500, description="Change every matched price by this percent, "
                                                              "e.g. 10 (+10%) or -15 (-15%).")]
    category_id: Id | None = None
    product_ids: Annotated[list[Id], Meta(max_length=500)] | None = None


@tool("bulk_update_prices", "Change prices by a percentage",
      "Raise or lower the price of every variant in a category, in a list of products, or (neither given) in "
      "the whole store by a percentage, rounded to the cent. Try dry_run first.",
      BulkUpdatePrices, BulkPriceResult, "products:write")
async def bulk_update_prices(ctx: Ctx, a: BulkUpdatePrices) -> BulkPriceResult:
    if a.percent == 0:
        raise InvalidArgument("$.percent", "0% changes nothing")
    q = select(Variant).where(Variant.store_id == ctx.store_id)
    if a.category_id is not None:
        await by_id(ctx, Category, a.category_id, "category")
        q = q.where(Variant.product_id.in_(select(ProductCategory.product_id).where(
            ProductCategory.category_id == a.category_id)))
    if a.product_ids is not None:
        q = q.where(Variant.product_id.in_(a.product_ids))
    variants = (await ctx.db.scalars(q.order_by(Variant.id))).all()
    for v in variants:
        new = (v.price * (100 + a.percent) + 50) // 100     # half-up to the minor unit, integers only
        ctx.updated("variant", v.id, "price", money(v.price, ctx.currency).amount, money(new, ctx.currency).amount)
        v.price = new
    await ctx.db.flush()
    return BulkPriceResult(updated_variants=len(variants),
                           variants=[variant_out(v, ctx.currency) for v in variants[:200]])


TOOLS = (get_variant, update_inventory, update_variant, bulk_update_prices)
