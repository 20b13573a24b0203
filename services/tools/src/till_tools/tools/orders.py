"""Orders: list, read, the fulfilment queue, manual orders (status, shipping, refunds: ``fulfilment.py``)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from sqlalchemy import BindParameter, Integer, String, bindparam, func, select

from till_tools.lookup import by_id, row_by_id
from till_tools.money import Money, MoneyStr, money
from till_tools.pagination import DEFAULT_LIMIT, decode_cursor, finish, like_contains
from till_tools.spec import (
    Args,
    Ctx,
    Cursor,
    Id,
    InvalidArgument,
    Limit,
    LongText,
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
from till_tools.store.models import (
    AWAITING_FULFILMENT,
    Coupon,
    Customer,
    Fulfilment,
    Order,
    OrderLine,
    OrderNote,
    Refund,
    Variant,
)
from till_tools.tools.coupons import check_coupon, discount_for
from till_tools.tools.products import parse_money

Status = Literal["pending", "paid", "partially_fulfilled", "fulfilled", "cancelled", "refunded"]
OrderNumber = Annotated[int, Meta(ge=1, le=10**9, description="The order number merchants see, e.g. 1042.")]
Quantity = Annotated[int, Meta(ge=1, le=100_000)]
TRANSITIONS: dict[str, tuple[str, ...]] = {"pending": ("paid", "cancelled"), "paid": ("cancelled",)}


class LineOut(Result, kw_only=True):
    id: int
    sku: str
    title: str
    quantity: int
    unit_price: Money
    total: Money
    fulfilled_quantity: int


class FulfilmentOut(Result, kw_only=True):
    id: int
    carrier: str
    tracking_number: str
    items: list[dict[str, int]]
    created_at: datetime


class RefundOut(Result, kw_only=True):
    id: int
    amount: Money
    reason: str
    restock: bool
    created_at: datetime


class NoteOut(Result, kw_only=True):
    id: int
    body: str
    created_at: datetime


class OrderOut(Result, kw_only=True):
    id: int
    number: int
    status: str
    email: str
    customer_id: int | None
    subtotal: Money
    discount_total: Money
    shipping_total: Money
    total: Money
    refunded_total: Money
    coupon_code: str | None
    shipping_address: dict[str, Any]
    lines: list[LineOut]
    fulfilments: list[FulfilmentOut]
    refunds: list[RefundOut]
    notes: list[NoteOut]
    created_at: datetime
    paid_at: datetime | None
    fulfilled_at: datetime | None
    cancelled_at: datetime | None


class OrderSummary(Result, kw_only=True):
    id: int
    number: int
    status: str
    email: str
    total: Money
    items: int
    created_at: datetime


class OrderPage(Page, kw_only=True):
    items: list[OrderSummary]


class QueueLine(Result, kw_only=True):
    sku: str
    title: str
    remaining: int


class QueueItem(Result, kw_only=True):
    id: int
    number: int
    status: str
    email: str
    total: Money
    created_at: datetime
    waiting_hours: int
    lines: list[QueueLine]


class QueuePage(Page, kw_only=True):
    items: list[QueueItem]
    awaiting_total: int
    placed_today: int
    oldest_waiting_hours: int | None


async def order_detail(ctx: Ctx, order_id: int) -> OrderOut:
    return await order_out(ctx, await by_id(ctx, Order, order_id, "order"))


async def order_out(ctx: Ctx, o: Order) -> OrderOut:
    lines = (await ctx.db.scalars(select(OrderLine).where(OrderLine.order_id == o.id).order_by(OrderLine.id))).all()
    fuls = (await ctx.db.scalars(select(Fulfilment).where(Fulfilment.order_id == o.id).order_by(Fulfilment.id))).all()
    refs = (await ctx.db.scalars(select(Refund).where(Refund.order_id == o.id).order_by(Refund.id))).all()
    notes = (await ctx.db.scalars(select(OrderNote).where(OrderNote.order_id == o.id).order_by(OrderNote.id))).all()
    return _order_out(o, lines, fuls, refs, notes)


def _children(model: Any) -> Hot:
    return Hot(select(*model.__table__.c).where(model.order_id == bindparam("oid")).order_by(model.id))


_LINES, _FULFILMENTS, _REFUNDS, _NOTES = (_children(m) for m in (OrderLine, Fulfilment, Refund, OrderNote))
_ORDER_BY_NUMBER = Hot(select(*Order.__table__.c).where(Order.store_id == bindparam("store"),
                                                        Order.number == bindparam("number")))


async def read_order_out(ctx: Ctx, ref: Any) -> OrderOut:
    """``get_order`` without ORM objects: rows of statements built once (store/hot.py).  Only for reads:
    ``Hot`` statements do not flush what a handler changed through the session."""
    if (ref.id is None) == (ref.number is None):
        raise InvalidArgument("$", "give exactly one of id or number to pick the order")
    if ref.id is not None:
        o = await row_by_id(ctx, Order, ref.id, "order")
    else:
        found = await _ORDER_BY_NUMBER.rows(ctx.db, {"store": ctx.store_id, "number": ref.number})
        if not found:
            raise ToolFailure(f"no order number {ref.number} in this store")
        o = found[0]
    key = {"oid": o.id}
    return _order_out(o, await _LINES.rows(ctx.db, key), await _FULFILMENTS.rows(ctx.db, key),
                      await _REFUNDS.rows(ctx.db, key), await _NOTES.rows(ctx.db, key))


def _order_out(o: Any, lines: Sequence[Any], fuls: Sequence[Any], refs: Sequence[Any],
               notes: Sequence[Any]) -> OrderOut:
    c = o.currency
    return OrderOut(
        id=o.id, number=o.number, status=o.status, email=o.email, customer_id=o.customer_id,
        subtotal=money(o.subtotal, c), discount_total=money(o.discount_total, c),
        shipping_total=money(o.shipping_total, c), total=money(o.total, c), refunded_total=money(o.refunded_total, c),
        coupon_code=o.coupon_code, shipping_address=dict(o.shipping_address),
        lines=[LineOut(id=ln.id, sku=ln.sku, title=ln.title, quantity=ln.quantity, unit_price=money(ln.unit_price, c),
                       total=money(ln.unit_price * ln.quantity, c), fulfilled_quantity=ln.fulfilled_quantity)
               for ln in lines],
        fulfilments=[FulfilmentOut(id=f.id, carrier=f.carrier, tracking_number=f.tracking_number,
                                   items=list(f.items), created_at=f.created_at) for f in fuls],
        refunds=[RefundOut(id=r.id, amount=money(r.amount, c), reason=r.reason, restock=r.restock,
                           created_at=r.created_at) for r in refs],
        notes=[NoteOut(id=n.id, body=n.body, created_at=n.created_at) for n in notes],
        created_at=o.created_at, paid_at=o.paid_at, fulfilled_at=o.fulfilled_at, cancelled_at=o.cancelled_at)


class OrderRef(Args, kw_only=True):
    id: Id | None = None
    number: OrderNumber | None = None


class WriteOrderRef(WriteArgs, kw_only=True):
    id: Id | None = None
    number: OrderNumber | None = None


async def resolve_order(ctx: Ctx, ref: Any) -> Order:
    if (ref.id is None) == (ref.number is None):
        raise InvalidArgument("$", "give exactly one of id or number to pick the order")
    if ref.id is not None:
        return await by_id(ctx, Order, ref.id, "order")
    o = await ctx.db.scalar(select(Order).where(Order.store_id == ctx.store_id, Order.number == ref.number))
    if o is None:
        raise ToolFailure(f"no order number {ref.number} in this store")
    return o


def day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


# --- read tools --------------------------------------------------------------------------------

class ListOrders(Args, kw_only=True):
    status: Status | None = None
    customer_id: Id | None = None
    email: Annotated[Query | None, Meta(description="Text in the customer email (literal match).")] = None
    since: Annotated[date | None, Meta(description="Placed on or after this day (YYYY-MM-DD, UTC).")] = None
    until: Annotated[date | None, Meta(description="Placed on or before this day (YYYY-MM-DD, UTC).")] = None
    sort: Literal["newest", "oldest", "total_desc", "total_asc"] = "newest"
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None


@functools.cache
def _list_orders(status: bool, customer: bool, email: bool, since: bool, until: bool, sort: str) -> Hot:
    """``list_orders``' statement for one combination of filters and sort, built once (store/hot.py)."""
    store: BindParameter[int] = bindparam("store")
    items = (select(OrderLine.order_id, func.sum(OrderLine.quantity).label("n"))
             .where(OrderLine.store_id == store).group_by(OrderLine.order_id).subquery())
    q = (select(Order.id, Order.number, Order.status, Order.email, Order.total, Order.currency, Order.created_at,
                func.coalesce(items.c.n, 0))
         .outerjoin(items, items.c.order_id == Order.id).where(Order.store_id == store))
    if status:
        q = q.where(Order.status == bindparam("status"))
    if customer:
        q = q.where(Order.customer_id == bindparam("customer"))
    if email:
        q = q.where(func.lower(Order.email).like(bindparam("email", type_=String), escape="\\"))
    if since:
        q = q.where(Order.created_at >= bindparam("since"))
    if until:
        q = q.where(Order.created_at < bindparam("until"))
    order = {"newest": (Order.created_at.desc(), Order.id.desc()), "oldest": (Order.created_at, Order.id),
             "total_desc": (Order.total.desc(), Order.id), "total_asc": (Order.total, Order.id)}[sort]
    return Hot(q.order_by(*order).offset(bindparam("offset", type_=Integer)).limit(bindparam("limit", type_=Integer)))


@tool("list_orders", "List orders",
      "List orders with status, customer email, total and item count. Filter by status, customer, email text or "
      "date range; sort by date or total. For orders waiting to ship use list_orders_awaiting_fulfillment.",
      ListOrders, OrderPage, "orders:read")
async def list_orders(ctx: Ctx, a: ListOrders) -> OrderPage:
    offset = decode_cursor("list_orders", a.cursor)
    stmt = _list_orders(bool(a.status), bool(a.customer_id), bool(a.email), bool(a.since), bool(a.until), a.sort)
    rows = await stmt.rows(ctx.db, {
        "store": ctx.store_id, "status": a.status, "customer": a.customer_id,
        "email": like_contains(a.email) if a.email else None, "since": day_start(a.since) if a.since else None,
        "until": day_start(a.until + timedelta(days=1)) if a.until else None, "offset": offset,
        "limit": a.limit + 1})
    out = [OrderSummary(id=oid, number=number, status=status, email=email, total=money(total, currency),
                        items=int(n), created_at=created_at)
           for oid, number, status, email, total, currency, created_at, n in rows]
    return finish("list_orders", OrderPage, out, offset, a.limit)


@tool("get_order", "Get an order",
      "One order by id or order number: lines, totals, coupon, fulfilments, refunds and notes.",
      OrderRef, OrderOut, "orders:read")
async def get_order(ctx: Ctx, a: OrderRef) -> OrderOut:
    return await read_order_out(ctx, a)


class FulfilmentQueue(Args, kw_only=True):
    limit: Limit = 50
    cursor: Cursor | None = None


_AWAITING = (Order.store_id == bindparam("store"),
             Order.status.in_([bindparam(f"awaiting{i}", v, type_=Order.status.type)
                               for i, v in enumerate(AWAITING_FULFILMENT)]))
_QUEUE_SIZE = Hot(select(func.count(), func.min(Order.created_at)).where(*_AWAITING))
_QUEUE_TODAY = Hot(select(func.count()).where(*_AWAITING, Order.created_at >= bindparam("today")))
_QUEUE_PAGE = Hot(select(Order.id, Order.number, Order.status, Order.email, Order.total, Order.currency,
                         Order.created_at).where(*_AWAITING).order_by(Order.created_at, Order.id)
                  .offset(bindparam("offset", type_=Integer)).limit(bindparam("limit", type_=Integer)))


@functools.cache
def _lines_of(n: int) -> Hot:
    """The lines of ``n`` orders (parameters o0…o<n-1>), by line id."""
    return Hot(select(OrderLine.order_id, OrderLine.sku, OrderLine.title, OrderLine.quantity,
                      OrderLine.fulfilled_quantity)
               .where(OrderLine.order_id.in_([bindparam(f"o{i}", type_=Integer) for i in range(n)]))
               .order_by(OrderLine.id))


@tool("list_orders_awaiting_fulfillment", "Orders that need fulfillment",
      "Answers 'what orders need fulfillment today?': paid and partially fulfilled orders not yet shipped, "
      "oldest first, with what remains to ship per line, how many hours each has waited and how many were "
      "placed today.", FulfilmentQueue, QueuePage, "orders:read")
async def list_orders_awaiting_fulfillment(ctx: Ctx, a: FulfilmentQueue) -> QueuePage:
    offset = decode_cursor("list_orders_awaiting_fulfillment", a.cursor)
    store = {"store": ctx.store_id}
    total, oldest = (await _QUEUE_SIZE.rows(ctx.db, store))[0]
    today = (await _QUEUE_TODAY.rows(ctx.db, {**store, "today": day_start(ctx.now.date())}))[0][0]
    orders = await _QUEUE_PAGE.rows(ctx.db, {**store, "offset": offset, "limit": a.limit + 1})
    lines: dict[int, list[QueueLine]] = {}
    if orders:
        for order_id, sku, title, quantity, fulfilled in await _lines_of(len(orders)).rows(
                ctx.db, {f"o{i}": o.id for i, o in enumerate(orders)}):
            if quantity > fulfilled:
                lines.setdefault(order_id, []).append(QueueLine(sku=sku, title=title, remaining=quantity - fulfilled))

    def hours(at: datetime) -> int:
        return int((ctx.now - at).total_seconds() // 3600)

    oldest_at = None if oldest is None else (oldest if isinstance(oldest, datetime) else datetime.fromisoformat(oldest))
    if oldest_at is not None and oldest_at.tzinfo is None:
        oldest_at = oldest_at.replace(tzinfo=UTC)
    items = [QueueItem(id=o.id, number=o.number, status=o.status, email=o.email, total=money(o.total, o.currency),
                       created_at=o.created_at, waiting_hours=hours(o.created_at), lines=lines.get(o.id, []))
             for o in orders]
    return finish("list_orders_awaiting_fulfillment", QueuePage, items, offset, a.limit, awaiting_total=int(total),
                  placed_today=int(today or 0), oldest_waiting_hours=None if oldest_at is None else hours(oldest_at))


# --- write tools -------------------------------------------------------------------------------

class LineIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    sku: Sku
    quantity: Quantity


class AddressIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: ShortText = ""
    line1: ShortText = ""
    line2: ShortText = ""
    city: ShortText = ""
    postcode: ShortText = ""
    country: Annotated[str, Meta(pattern=r"^[A-Z]{2}$")] = "US"


class CreateOrder(WriteArgs, kw_only=True):
    email: Annotated[str, Meta(min_length=3, max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")]
    lines: Annotated[list[LineIn], Meta(min_length=1, max_length=100)]
    coupon_code: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{3,32}$")] | None = None
    shipping: MoneyStr = "0"
    status: Literal["pending", "paid"] = "pending"
    shipping_address: AddressIn | None = None
    note: LongText | None = None


@tool("create_order", "Create a manual order",
      "Create an order for a customer email (the customer is created if new) from SKUs and quantities; stock is "
      "reserved, an optional coupon applied. status 'paid' records an order already paid.",
      CreateOrder, OrderOut, "orders:write")
async def create_order(ctx: Ctx, a: CreateOrder) -> OrderOut:
    customer = await ctx.db.scalar(select(Customer).where(Customer.store_id == ctx.store_id,
                                                          func.lower(Customer.email) == a.email.lower()))
    if customer is None:
        customer = Customer(store_id=ctx.store_id, email=a.email, created_at=ctx.now)
        ctx.db.add(customer)
        await ctx.db.flush()
        ctx.created("customer", customer.id)
    priced: list[tuple[Variant, int]] = []
    for i, line in enumerate(a.lines):
        v = await ctx.db.scalar(select(Variant).where(Variant.store_id == ctx.store_id,
                                                      func.lower(Variant.sku) == line.sku.lower()))
        if v is None:
            raise ToolFailure(f"lines[{i}]: no variant with SKU {line.sku} in this store")
        if v.stock < line.quantity:
            raise ToolFailure(f"lines[{i}]: only {v.stock} of {v.sku} in stock, {line.quantity} wanted")
        priced.append((v, line.quantity))
    subtotal = sum(v.price * q for v, q in priced)
    shipping = parse_money(ctx, a.shipping, "$.shipping")
    discount, coupon = 0, None
    if a.coupon_code:
        coupon = await ctx.db.scalar(select(Coupon).where(Coupon.store_id == ctx.store_id,
                                                          func.lower(Coupon.code) == a.coupon_code.lower()))
        if coupon is None:
            raise ToolFailure(f"no coupon {a.coupon_code} in this store")
        await check_coupon(ctx, coupon, customer.id, subtotal)
        discount = discount_for(coupon, subtotal)
        coupon.times_used += 1
    number = (await ctx.db.scalar(select(func.max(Order.number)).where(Order.store_id == ctx.store_id)) or 1000) + 1
    o = Order(store_id=ctx.store_id, number=number, customer_id=customer.id, email=customer.email, status=a.status,
              currency=ctx.currency, subtotal=subtotal, discount_total=discount, shipping_total=shipping,
              total=subtotal - discount + shipping, coupon_code=coupon.code if coupon else None,
              shipping_address=msgspec.to_builtins(a.shipping_address) if a.shipping_address else {},
              created_at=ctx.now, updated_at=ctx.now, paid_at=ctx.now if a.status == "paid" else None)
    ctx.db.add(o)
    await ctx.db.flush()
    for v, q in priced:
        title = await ctx.db.scalar(select(Variant.title).where(Variant.id == v.id))
        ctx.db.add(OrderLine(store_id=ctx.store_id, order_id=o.id, product_id=v.product_id, variant_id=v.id,
                             sku=v.sku, title=f"{v.sku} {title}", quantity=q, unit_price=v.price))
        ctx.updated("variant", v.id, "stock", v.stock, v.stock - q)
        v.stock -= q
    if a.note:
        ctx.db.add(OrderNote(store_id=ctx.store_id, order_id=o.id, body=a.note, author_user_id=ctx.who.user_id,
                             created_at=ctx.now))
    await ctx.db.flush()
    ctx.created("order", o.id)
    return await order_out(ctx, o)


TOOLS = (list_orders, get_order, list_orders_awaiting_fulfillment, create_order)

