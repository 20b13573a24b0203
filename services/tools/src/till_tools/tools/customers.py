"""Customers: list, search, read (with order totals), create, update."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta
from sqlalchemy import Select, func, or_, select

from till_tools.lookup import by_id
from till_tools.money import Money, money
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
    ToolFailure,
    WriteArgs,
    tool,
)
from till_tools.store.models import SALES_STATUSES, Customer, Order

Email = Annotated[str, Meta(min_length=3, max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")]
PersonName = Annotated[str, Meta(max_length=100, pattern=r"^[^\x00-\x1f]*$")]
Phone = Annotated[str, Meta(max_length=40, pattern=r"^[0-9+() .-]*$")]
Tag = Annotated[str, Meta(min_length=1, max_length=50, pattern=r"^[^\x00-\x1f,]+$")]


class CustomerOut(Result, kw_only=True):
    id: int
    email: str
    first_name: str
    last_name: str
    phone: str
    accepts_marketing: bool
    note: str
    tags: list[str]
    orders_count: int
    total_spent: Money
    created_at: datetime


class CustomerPage(Page, kw_only=True):
    items: list[CustomerOut]


def _stats() -> Select[int | None, int, int]:  # one row per customer: id, orders, spent
    return (select(Order.customer_id, func.count().label("n"), func.sum(Order.total - Order.refunded_total)
                   .label("spent")).where(Order.status.in_(SALES_STATUSES)).group_by(Order.customer_id))


def _out(c: Customer, n: int, spent: int, currency: str) -> CustomerOut:
    return CustomerOut(id=c.id, email=c.email, first_name=c.first_name, last_name=c.last_name, phone=c.phone,
                       accepts_marketing=c.accepts_marketing, note=c.note, tags=list(c.tags), orders_count=n,
                       total_spent=money(spent, currency), created_at=c.created_at)


async def customer_out(ctx: Ctx, c: Customer) -> CustomerOut:
    row = (await ctx.db.execute(_stats().where(Order.customer_id == c.id, Order.store_id == ctx.store_id))).first()
    return _out(c, int(row[1]) if row else 0, int(row[2] or 0) if row else 0, ctx.currency)


class ListCustomers(Args, kw_only=True):
    query: Annotated[Query | None, Meta(description="Text in email or name (literal match).")] = None
    sort: Literal["newest", "oldest", "name", "total_spent"] = "newest"
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None


@tool("list_customers", "List customers", "List or search customers (email or name) with their order count "
      "and total spent; sort newest, oldest, name or total_spent.", ListCustomers, CustomerPage, "customers:read")
async def list_customers(ctx: Ctx, a: ListCustomers) -> CustomerPage:
    offset = decode_cursor("list_customers", a.cursor)
    stats = _stats().where(Order.store_id == ctx.store_id).subquery()
    spent = func.coalesce(stats.c.spent, 0)
    q = (select(Customer, func.coalesce(stats.c.n, 0), spent).outerjoin(stats, stats.c.customer_id == Customer.id)
         .where(Customer.store_id == ctx.store_id))
    if a.query:
        p = like_contains(a.query)
        q = q.where(or_(func.lower(Customer.email).like(p, escape="\\"),
                        func.lower(Customer.first_name + " " + Customer.last_name).like(p, escape="\\")))
    order = {"newest": (Customer.created_at.desc(), Customer.id.desc()), "oldest": (Customer.created_at, Customer.id),
             "name": (Customer.last_name, Customer.first_name, Customer.id),
             "total_spent": (spent.desc(), Customer.id)}[a.sort]
    rows = (await ctx.db.execute(q.order_by(*order).offset(offset).limit(a.limit + 1))).all()
    items = [_out(c, int(n), int(s), ctx.currency) for c, n, s in rows]
    return finish("list_customers", CustomerPage, items, offset, a.limit)


class CustomerRef(Args, kw_only=True):
    id: Id | None = None
    email: Email | None = None


async def resolve(ctx: Ctx, a: CustomerRef | UpdateCustomer) -> Customer:
    if (a.id is None) == (a.email is None):
        raise InvalidArgument("$", "give exactly one of id or email")
    if a.id is not None:
        return await by_id(ctx, Customer, a.id, "customer")
    c = await ctx.db.scalar(select(Customer).where(Customer.store_id == ctx.store_id,
                                                   func.lower(Customer.email) == (a.email or "").lower()))
    if c is None:
        raise ToolFailure(f"no customer with email {a.email} in this store")
    return c


@tool("get_customer", "Get a customer", "One customer by id or email, with order count and total spent.",
      CustomerRef, CustomerOut, "customers:read")
async def get_customer(ctx: Ctx, a: CustomerRef) -> CustomerOut:
    return await customer_out(ctx, await resolve(ctx, a))


class CreateCustomer(WriteArgs, kw_only=True):
    email: Email
    first_name: PersonName = ""
    last_name: PersonName = ""
    phone: Phone = ""
    accepts_marketing: bool = False
    note: LongText = ""
    tags: Annotated[list[Tag], Meta(max_length=50)] = msgspec.field(default_factory=list)


@tool("create_customer", "Create a customer", "Create a customer; the email must be new in this store.",
      CreateCustomer, CustomerOut, "customers:write")
async def create_customer(ctx: Ctx, a: CreateCustomer) -> CustomerOut:
    clash = await ctx.db.scalar(select(Customer.id).where(Customer.store_id == ctx.store_id,
                                                          func.lower(Customer.email) == a.email.lower()))
    if clash:
        raise ToolFailure(f"a customer with email {a.email} already exists (id {clash})")
    c = Customer(store_id=ctx.store_id, email=a.email, first_name=a.first_name, last_name=a.last_name,
                 phone=a.phone, accepts_marketing=a.accepts_marketing, note=a.note, tags=list(a.tags),
                 created_at=ctx.now)
    ctx.db.add(c)
    await ctx.db.flush()
    ctx.created("customer", c.id)
    return await customer_out(ctx, c)


class UpdateCustomer(WriteArgs, kw_only=True):
    id: Id | None = None
    email: Annotated[Email | None, Meta(description="Pick the customer by email (or id).")] = None
    new_email: Email | None = None
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    phone: Phone | None = None
    accepts_marketing: bool | None = None
    note: LongText | None = None
    tags: Annotated[list[Tag], Meta(max_length=50)] | None = None


@tool("update_customer", "Update a customer", "Change a customer's (by id or email) name, email, phone, "
      "marketing consent, note or tags.", UpdateCustomer, CustomerOut, "customers:write", idempotent=True)
async def update_customer(ctx: Ctx, a: UpdateCustomer) -> CustomerOut:
    c = await resolve(ctx, a)
    if a.new_email is not None and a.new_email.lower() != c.email.lower():
        clash = await ctx.db.scalar(select(Customer.id).where(Customer.store_id == ctx.store_id,
                                                              func.lower(Customer.email) == a.new_email.lower()))
        if clash:
            raise ToolFailure(f"another customer already uses {a.new_email} (id {clash})")
        ctx.updated("customer", c.id, "email", c.email, a.new_email)
        c.email = a.new_email
    for name in ("first_name", "last_name", "phone", "accepts_marketing", "note"):
        value = getattr(a, name)
        if value is not None:
            ctx.updated("customer", c.id, name, getattr(c, name), value)
            setattr(c, name, value)
    if a.tags is not None:
        ctx.updated("customer", c.id, "tags", list(c.tags), list(a.tags))
        c.tags = list(a.tags)
    await ctx.db.flush()
    return await customer_out(ctx, c)


TOOLS = (list_customers, get_customer, create_customer, update_customer)
