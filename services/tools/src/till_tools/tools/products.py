"""Products: list, find, read, create, update, delete (variants, stock and prices: ``variants.py``)."""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from sqlalchemy import BindParameter, Integer, Row, String, bindparam, delete, func, or_, select

from till_tools.lookup import by_id, by_text, row_by_id
from till_tools.money import Money, MoneyError, MoneyStr, money, to_minor
from till_tools.pagination import DEFAULT_LIMIT, decode_cursor, finish, like_contains
from till_tools.spec import (
    Args,
    Ctx,
    Cursor,
    Id,
    InvalidArgument,
    Limit,
    Name,
    Page,
    Query,
    Result,
    ShortText,
    Sku,
    ToolFailure,
    WriteArgs,
    tool,
)
from till_tools.store.hot import Hot
from till_tools.store.models import Category, Product, ProductCategory, Variant

ProductStatus = Literal["active", "draft", "archived"]
Tag = Annotated[str, Meta(min_length=1, max_length=50, pattern=r"^[^\x00-\x1f,]+$")]
Stock = Annotated[int, Meta(ge=0, le=10_000_000)]
Description = Annotated[str, Meta(max_length=20_000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$")]


# --- results -----------------------------------------------------------------------------------

class VariantOut(Result, kw_only=True):
    id: int
    product_id: int
    sku: str
    title: str
    price: Money
    compare_at_price: Money | None
    stock: int


class ProductOut(Result, kw_only=True):
    id: int
    title: str
    slug: str
    status: str
    description: str
    vendor: str
    product_type: str
    tags: list[str]
    category_ids: list[int]
    variants: list[VariantOut]
    total_stock: int
    created_at: datetime
    updated_at: datetime


class ProductSummary(Result, kw_only=True):
    id: int
    title: str
    status: str
    min_price: Money
    max_price: Money
    total_stock: int
    skus: list[str]


class ProductPage(Page, kw_only=True):
    items: list[ProductSummary]


class Deleted(Result, kw_only=True):
    deleted: str
    id: int


# --- helpers -----------------------------------------------------------------------------------

def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:180] or "item"


async def unique_slug(ctx: Ctx, model: Any, title: str, exclude_id: int | None = None) -> str:
    base = slugify(title)
    taken = set((await ctx.db.scalars(select(model.slug).where(
        model.store_id == ctx.store_id, model.slug.like(f"{base}%"),
        model.id != (exclude_id or 0)))).all())
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def parse_money(ctx: Ctx, value: str, path: str) -> int:
    try:
        return to_minor(value, ctx.currency)
    except MoneyError as exc:
        raise InvalidArgument(path, str(exc)) from None


def variant_out(v: Variant | Row[Any], currency: str) -> VariantOut:
    return VariantOut(id=v.id, product_id=v.product_id, sku=v.sku, title=v.title, price=money(v.price, currency),
                      compare_at_price=None if v.compare_at_price is None else money(v.compare_at_price, currency),
                      stock=v.stock)


_VARIANT_COLUMNS = (Variant.id, Variant.product_id, Variant.sku, Variant.title, Variant.price,
                    Variant.compare_at_price, Variant.stock)
_VARIANTS_OF = Hot(select(*_VARIANT_COLUMNS).where(Variant.product_id == bindparam("pid"))
                    .order_by(Variant.position, Variant.id))
_CATEGORIES_OF = Hot(select(ProductCategory.category_id).where(ProductCategory.product_id == bindparam("pid"))
                     .order_by(ProductCategory.category_id))


async def product_out(ctx: Ctx, p: Product | Row[Any]) -> ProductOut:
    # rows of statements built once (store/hot.py): every product read comes through here
    c = ctx.currency
    variants = [VariantOut(id=r[0], product_id=r[1], sku=r[2], title=r[3], price=money(r[4], c),
                           compare_at_price=None if r[5] is None else money(r[5], c), stock=r[6])
                for r in await _VARIANTS_OF.rows(ctx.db, {"pid": p.id})]
    cats = [r[0] for r in await _CATEGORIES_OF.rows(ctx.db, {"pid": p.id})]
    return ProductOut(id=p.id, title=p.title, slug=p.slug, status=p.status, description=p.description,
                      vendor=p.vendor, product_type=p.product_type, tags=list(p.tags), category_ids=cats,
                      variants=variants, total_stock=sum(v.stock for v in variants), created_at=p.created_at,
                      updated_at=p.updated_at)


RefId = Annotated[Id | None, Meta(description="Product id.")]
RefName = Annotated[Name | None, Meta(description='Exact product title, e.g. "Classic T-Shirt".')]
RefSku = Annotated[Sku | None, Meta(description="SKU of any of its variants, e.g. TS-001-M.")]


class ProductRef(Args, kw_only=True):
    id: RefId = None
    name: RefName = None
    sku: RefSku = None


class WriteProductRef(WriteArgs, kw_only=True):
    id: RefId = None
    name: RefName = None
    sku: RefSku = None


_PRODUCT_BY_SKU = (select(Variant.product_id).where(Variant.store_id == bindparam("store"),
                                                    func.lower(Variant.sku) == bindparam("sku")).limit(2))


async def resolve_product(ctx: Ctx, ref: Any) -> Product:
    given = [k for k in ("id", "name", "sku") if getattr(ref, k) is not None]
    if len(given) != 1:
        raise InvalidArgument("$", "give exactly one of id, name or sku to pick the product")
    if ref.id is not None:
        return await by_id(ctx, Product, ref.id, "product")
    if ref.name is not None:
        return await by_text(ctx, Product, Product.title, ref.name, "product")
    found = (await ctx.db.execute(_PRODUCT_BY_SKU, {"store": ctx.store_id, "sku": ref.sku.lower()})).all()
    if len(found) == 1:
        return await by_id(ctx, Product, found[0][0], "product")
    variant = await by_text(ctx, Variant, Variant.sku, ref.sku, "variant with that SKU")
    return await by_id(ctx, Product, variant.product_id, "product")


_PRODUCT_ROW_BY_SKU = Hot(select(*Product.__table__.c).join(Variant, Variant.product_id == Product.id)
                          .where(Variant.store_id == bindparam("store"), func.lower(Variant.sku) == bindparam("sku"))
                          .limit(2))


async def read_product(ctx: Ctx, ref: Any) -> Product | Row[Any]:
    """``resolve_product`` for reads: by id or SKU one Core statement and no ORM object (the product
    read is the commonest call); by name, and every miss or ambiguity, through ``resolve_product``."""
    given = [k for k in ("id", "name", "sku") if getattr(ref, k) is not None]
    if len(given) == 1 and ref.id is not None:
        product_row: Row[Any] = await row_by_id(ctx, Product, ref.id, "product")
        return product_row
    if len(given) == 1 and ref.sku is not None:
        found = await _PRODUCT_ROW_BY_SKU.rows(ctx.db, {"store": ctx.store_id, "sku": ref.sku.lower()})
        if len(found) == 1:
            product: Row[Any] = found[0]
            return product
    return await resolve_product(ctx, ref)


async def set_categories(ctx: Ctx, product_id: int, ids: list[int]) -> None:
    for cid in ids:
        await by_id(ctx, Category, cid, "category")
    await ctx.db.execute(delete(ProductCategory).where(ProductCategory.product_id == product_id))
    for cid in dict.fromkeys(ids):
        ctx.db.add(ProductCategory(product_id=product_id, category_id=cid, store_id=ctx.store_id))


# --- read tools --------------------------------------------------------------------------------

class ListProducts(Args, kw_only=True):
    query: Annotated[Query | None, Meta(description="Text in the title or a SKU (literal match).")] = None
    status: ProductStatus | None = None
    category_id: Id | None = None
    low_stock_below: Annotated[int, Meta(ge=0, le=1_000_000,
                                          description="Only products with total stock below this.")] | None = None
    sort: Literal["title", "newest", "oldest", "price_asc", "price_desc", "stock_asc", "stock_desc"] = "title"
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None


@functools.cache
def _list_products(query: bool, status: bool, category: bool, low: bool, sort: str) -> Hot:
    """``list_products``' statement for one combination of filters and sort, built once (store/hot.py);
    every value is a bound parameter."""
    store: BindParameter[int] = bindparam("store")
    agg = (select(Variant.product_id.label("pid"), func.min(Variant.price).label("lo"),
                  func.max(Variant.price).label("hi"), func.sum(Variant.stock).label("stock"))
           .where(Variant.store_id == store).group_by(Variant.product_id).subquery())
    stock = func.coalesce(agg.c.stock, 0)
    q = (select(Product.id, Product.title, Product.status, func.coalesce(agg.c.lo, 0), func.coalesce(agg.c.hi, 0),
                stock)
         .outerjoin(agg, agg.c.pid == Product.id).where(Product.store_id == store))
    if query:
        pattern = bindparam("pattern", type_=String)
        by_sku = select(Variant.product_id).where(Variant.store_id == store,
                                                  func.lower(Variant.sku).like(pattern, escape="\\"))
        q = q.where(or_(func.lower(Product.title).like(pattern, escape="\\"), Product.id.in_(by_sku)))
    if status:
        q = q.where(Product.status == bindparam("status"))
    if category:
        q = q.where(Product.id.in_(select(ProductCategory.product_id).where(
            ProductCategory.category_id == bindparam("category"), ProductCategory.store_id == store)))
    if low:
        q = q.where(stock < bindparam("low", type_=Integer))
    order = {"title": (Product.title, Product.id), "newest": (Product.created_at.desc(), Product.id.desc()),
             "oldest": (Product.created_at, Product.id), "price_asc": (agg.c.lo, Product.id),
             "price_desc": (agg.c.hi.desc(), Product.id), "stock_asc": (stock, Product.id),
             "stock_desc": (stock.desc(), Product.id)}[sort]
    return Hot(q.order_by(*order).offset(bindparam("offset", type_=Integer)).limit(bindparam("limit", type_=Integer)))


@functools.cache
def _skus_of(n: int) -> Hot:
    """The SKUs of ``n`` products (parameters p0…p<n-1>), in the order ``list_products`` shows them."""
    return Hot(select(Variant.product_id, Variant.sku)
               .where(Variant.product_id.in_([bindparam(f"p{i}", type_=Integer) for i in range(n)]))
               .order_by(Variant.position, Variant.id))


@tool("list_products", "List products",
      "List or search the store's products with price range and stock. Filter by text (title or SKU), "
      "status, category or low stock; sort by title, date, price or stock. Paginated: pass next_cursor.",
      ListProducts, ProductPage, "products:read")
async def list_products(ctx: Ctx, a: ListProducts) -> ProductPage:
    offset = decode_cursor("list_products", a.cursor)
    stmt = _list_products(bool(a.query), bool(a.status), bool(a.category_id), a.low_stock_below is not None, a.sort)
    rows = await stmt.rows(ctx.db, {"store": ctx.store_id, "pattern": like_contains(a.query) if a.query else None,
                                    "status": a.status, "category": a.category_id, "low": a.low_stock_below,
                                    "offset": offset, "limit": a.limit + 1})
    skus: dict[int, list[str]] = {}
    if rows:
        for pid, sku in await _skus_of(len(rows)).rows(ctx.db, {f"p{i}": r[0] for i, r in enumerate(rows)}):
            skus.setdefault(pid, []).append(sku)
    items = [ProductSummary(id=pid, title=title, status=status, min_price=money(int(lo), ctx.currency),
                            max_price=money(int(hi), ctx.currency), total_stock=int(st), skus=skus.get(pid, []))
             for pid, title, status, lo, hi, st in rows]
    return finish("list_products", ProductPage, items, offset, a.limit)


@tool("get_product", "Get a product",
      "Full details of one product — variants with SKU, price, compare-at price and stock, categories — "
      'found by id, exact title ("Classic T-Shirt") or any variant SKU. Near misses suggest the closest names.',
      ProductRef, ProductOut, "products:read")
async def get_product(ctx: Ctx, a: ProductRef) -> ProductOut:
    return await product_out(ctx, await read_product(ctx, a))


# --- write tools -------------------------------------------------------------------------------

class VariantIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    sku: Sku
    price: MoneyStr
    title: Name = "Default"
    compare_at_price: MoneyStr | None = None
    stock: Stock = 0


class CreateProduct(WriteArgs, kw_only=True):
    title: Name
    variants: Annotated[list[VariantIn], Meta(min_length=1, max_length=100,
                                              description="At least one variant; a simple product has one.")]
    description: Description = ""
    status: ProductStatus = "active"
    vendor: ShortText = ""
    product_type: ShortText = ""
    tags: Annotated[list[Tag], Meta(max_length=50)] = msgspec.field(default_factory=list)
    category_ids: Annotated[list[Id], Meta(max_length=50)] = msgspec.field(default_factory=list)


@tool("create_product", "Create a product",
      "Create a product with one or more variants (SKU, price as a decimal string, stock). SKUs must be new "
      "in this store.", CreateProduct, ProductOut, "products:write")
async def create_product(ctx: Ctx, a: CreateProduct) -> ProductOut:
    skus = [v.sku for v in a.variants]
    if len(set(s.lower() for s in skus)) != len(skus):
        raise InvalidArgument("$.variants", "two variants share a SKU")
    taken = (await ctx.db.scalars(select(Variant.sku).where(
        Variant.store_id == ctx.store_id, func.lower(Variant.sku).in_([s.lower() for s in skus])))).all()
    if taken:
        raise ToolFailure(f"SKU {taken[0]} is already used in this store")
    prices = [(parse_money(ctx, v.price, f"$.variants[{i}].price"),
               None if v.compare_at_price is None else parse_money(ctx, v.compare_at_price,
                                                                   f"$.variants[{i}].compare_at_price"))
              for i, v in enumerate(a.variants)]
    p = Product(store_id=ctx.store_id, title=a.title, slug=await unique_slug(ctx, Product, a.title),
                description=a.description, status=a.status, vendor=a.vendor, product_type=a.product_type,
                tags=list(a.tags), created_at=ctx.now, updated_at=ctx.now)
    ctx.db.add(p)
    await ctx.db.flush()
    for i, (v, (price, compare)) in enumerate(zip(a.variants, prices, strict=True)):
        ctx.db.add(Variant(store_id=ctx.store_id, product_id=p.id, sku=v.sku, title=v.title, price=price,
                           compare_at_price=compare, stock=v.stock, position=i + 1))
    await set_categories(ctx, p.id, list(a.category_ids))
    await ctx.db.flush()
    ctx.created("product", p.id)
    return await product_out(ctx, p)


class UpdateProduct(WriteProductRef, kw_only=True):
    title: Name | None = None
    description: Description | None = None
    status: ProductStatus | None = None
    vendor: ShortText | None = None
    product_type: ShortText | None = None
    tags: Annotated[list[Tag], Meta(max_length=50)] | None = None
    category_ids: Annotated[list[Id], Meta(max_length=50)] | None = None
    price: Annotated[MoneyStr | None, Meta(description='New price for every variant, e.g. "29.99".')] = None
    compare_at_price: MoneyStr | None = None


@tool("update_product", "Update a product",
      'Change a product found by id, exact title or SKU: title, description, status, tags, categories, and '
      '"price" (a decimal string such as "29.99", applied to every variant; use update_variant for one).',
      UpdateProduct, ProductOut, "products:write", idempotent=True)
async def update_product(ctx: Ctx, a: UpdateProduct) -> ProductOut:
    p = await resolve_product(ctx, a)
    for name in ("title", "description", "status", "vendor", "product_type"):
        value = getattr(a, name)
        if value is not None:
            ctx.updated("product", p.id, name, getattr(p, name), value)
            setattr(p, name, value)
    if a.tags is not None:
        ctx.updated("product", p.id, "tags", list(p.tags), list(a.tags))
        p.tags = list(a.tags)
    if a.title is not None:
        p.slug = await unique_slug(ctx, Product, a.title, exclude_id=p.id)
    if a.category_ids is not None:
        await set_categories(ctx, p.id, list(a.category_ids))
        ctx.updated("product", p.id, "category_ids", None, list(a.category_ids))
    if a.price is not None or a.compare_at_price is not None:
        price = None if a.price is None else parse_money(ctx, a.price, "$.price")
        compare = None if a.compare_at_price is None else parse_money(ctx, a.compare_at_price, "$.compare_at_price")
        for v in (await ctx.db.scalars(select(Variant).where(Variant.product_id == p.id))).all():
            if price is not None:
                ctx.updated("variant", v.id, "price", money(v.price, ctx.currency).amount,
                            money(price, ctx.currency).amount)
                v.price = price
            if compare is not None:
                v.compare_at_price = compare
    p.updated_at = ctx.now
    await ctx.db.flush()
    return await product_out(ctx, p)


class DeleteProduct(WriteProductRef, kw_only=True):
    pass


@tool("delete_product", "Delete a product",
      "Delete a product and its variants (order history keeps its lines). Prefer status 'archived' to hide it.",
      DeleteProduct, Deleted, "products:write", destructive=True, idempotent=False)
async def delete_product(ctx: Ctx, a: DeleteProduct) -> Deleted:
    p = await resolve_product(ctx, a)
    await ctx.db.delete(p)
    await ctx.db.flush()
    ctx.deleted("product", p.id)
    return Deleted(deleted="product", id=p.id)


TOOLS = (list_products, get_product, create_product, update_product, delete_product)
