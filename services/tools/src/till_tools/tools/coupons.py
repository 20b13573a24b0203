"""Coupons (discount codes): percent or fixed, limits, first-order eligibility, start and end."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta
from sqlalchemy import func, select

from till_tools.lookup import by_id_or_text
from till_tools.money import Money, MoneyStr, money
from till_tools.pagination import DEFAULT_LIMIT, decode_cursor, finish, like_contains
from till_tools.spec import (
    Args,
    Ctx,
    Cursor,
    Id,
    InvalidArgument,
    Limit,
    Page,
    Query,
    Result,
    ToolFailure,
    WriteArgs,
    tool,
)
from till_tools.store.models import Coupon, Order

Code = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{3,32}$", description="3 to 32 letters, digits, - or _.")]
Percent = Annotated[int, Meta(ge=1, le=100, description="Whole percent off, 1 to 100.")]
Eligibility = Literal["everyone", "first_order"]
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class CouponOut(Result, kw_only=True):
    id: int
    code: str
    kind: str
    percent_off: int | None
    amount_off: Money | None
    eligibility: str
    min_subtotal: Money | None
    usage_limit: int | None
    once_per_customer: bool
    times_used: int
    active: bool
    starts_at: datetime | None
    ends_at: datetime | None
    summary: str


class CouponPage(Page, kw_only=True):
    items: list[CouponOut]


class CouponDeleted(Result, kw_only=True):
    deleted: str
    id: int
    code: str


def coupon_out(c: Coupon, currency: str) -> CouponOut:
    off = f"{c.percent_off}% off" if c.kind == "percent" else f"{money(c.amount_off or 0, currency).amount} " \
                                                                f"{currency} off"
    who = "first orders only" if c.eligibility == "first_order" else "all customers"
    return CouponOut(id=c.id, code=c.code, kind=c.kind, percent_off=c.percent_off,
                     amount_off=None if c.amount_off is None else money(c.amount_off, currency),
                     eligibility=c.eligibility,
                     min_subtotal=None if c.min_subtotal is None else money(c.min_subtotal, currency),
                     usage_limit=c.usage_limit, once_per_customer=c.once_per_customer, times_used=c.times_used,
                     active=c.active, starts_at=c.starts_at, ends_at=c.ends_at,
                     summary=f"{c.code}: {off}, {who}" + ("" if c.active else " (inactive)"))


def discount_for(c: Coupon, subtotal: int) -> int:
    if c.kind == "percent":
        return subtotal * (c.percent_off or 0) // 100
    return min(c.amount_off or 0, subtotal)


async def check_coupon(ctx: Ctx, c: Coupon, customer_id: int, subtotal: int) -> None:
    if not c.active:
        raise ToolFailure(f"coupon {c.code} is inactive")
    if c.starts_at and ctx.now < c.starts_at:
        raise ToolFailure(f"coupon {c.code} starts {c.starts_at.isoformat()}")
    if c.ends_at and ctx.now >= c.ends_at:
        raise ToolFailure(f"coupon {c.code} ended {c.ends_at.isoformat()}")
    if c.usage_limit is not None and c.times_used >= c.usage_limit:
        raise ToolFailure(f"coupon {c.code} reached its usage limit of {c.usage_limit}")
    if c.min_subtotal is not None and subtotal < c.min_subtotal:
        raise ToolFailure(f"coupon {c.code} needs a subtotal of {money(c.min_subtotal, ctx.currency).amount}")
    if c.eligibility == "first_order" or c.once_per_customer:
        prior = await ctx.db.scalar(select(func.count()).where(
            Order.store_id == ctx.store_id, Order.customer_id == customer_id, Order.status != "cancelled",
            *([Order.coupon_code == c.code] if c.eligibility != "first_order" else [])))
        if prior:
            raise ToolFailure(f"coupon {c.code} is for a customer's first order only" if c.eligibility == "first_order"
                              else f"coupon {c.code} was already used by this customer")


class ListCoupons(Args, kw_only=True):
    query: Annotated[Query | None, Meta(description="Text in the code (literal match).")] = None
    active: bool | None = None
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None


@tool("list_coupons", "List discount codes", "List the store's coupons with their terms and usage.",
      ListCoupons, CouponPage, "coupons:read")
async def list_coupons(ctx: Ctx, a: ListCoupons) -> CouponPage:
    offset = decode_cursor("list_coupons", a.cursor)
    q = select(Coupon).where(Coupon.store_id == ctx.store_id)
    if a.query:
        q = q.where(func.lower(Coupon.code).like(like_contains(a.query), escape="\\"))
    if a.active is not None:
        q = q.where(Coupon.active == a.active)
    rows = (await ctx.db.scalars(q.order_by(Coupon.created_at.desc(), Coupon.id.desc())
                                 .offset(offset).limit(a.limit + 1))).all()
    return finish("list_coupons", CouponPage, [coupon_out(c, ctx.currency) for c in rows], offset, a.limit)


class CreateCoupon(WriteArgs, kw_only=True):
    code: Annotated[Code | None, Meta(description="Omit to generate one, e.g. WELCOME-7KQ2.")] = None
    percent_off: Percent | None = None
    amount_off: Annotated[MoneyStr | None, Meta(description='Fixed amount off, e.g. "10.00".')] = None
    eligibility: Annotated[Eligibility, Meta(description="'first_order' = new customers only.")] = "everyone"
    min_subtotal: MoneyStr | None = None
    usage_limit: Annotated[int, Meta(ge=1, le=10_000_000)] | None = None
    once_per_customer: bool = False
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    active: bool = True


@tool("create_coupon", "Create a discount code",
      "Create a coupon: percent_off (1 to 100) or amount_off (decimal string), for everyone or new customers only "
      "(eligibility 'first_order'), with optional minimum subtotal, usage limit and start/end times. A code is "
      "generated when none is given.", CreateCoupon, CouponOut, "coupons:write")
async def create_coupon(ctx: Ctx, a: CreateCoupon) -> CouponOut:
    from till_tools.tools.products import parse_money

    if (a.percent_off is None) == (a.amount_off is None):
        raise InvalidArgument("$", "give exactly one of percent_off or amount_off")
    if a.starts_at and a.ends_at and a.ends_at <= a.starts_at:
        raise InvalidArgument("$.ends_at", "ends_at must be after starts_at")
    for name, value in (("starts_at", a.starts_at), ("ends_at", a.ends_at)):
        if value is not None and value.tzinfo is None:
            raise InvalidArgument(f"$.{name}", "give a time zone, e.g. 2026-12-01T00:00:00Z")
    code = a.code
    if code is None:
        prefix = "WELCOME" if a.eligibility == "first_order" else "SAVE"
        code = f"{prefix}{a.percent_off or ''}-" + "".join(secrets.choice(_ALPHABET) for _ in range(4))
    clash = await ctx.db.scalar(select(Coupon.id).where(Coupon.store_id == ctx.store_id,
                                                        func.lower(Coupon.code) == code.lower()))
    if clash:
        raise ToolFailure(f"a coupon with code {code} already exists (id {clash}); pick another code")
    c = Coupon(store_id=ctx.store_id, code=code.upper(), kind="percent" if a.percent_off else "fixed",
               percent_off=a.percent_off,
               amount_off=None if a.amount_off is None else parse_money(ctx, a.amount_off, "$.amount_off"),
               eligibility=a.eligibility,
               min_subtotal=None if a.min_subtotal is None else parse_money(ctx, a.min_subtotal, "$.min_subtotal"),
               usage_limit=a.usage_limit, once_per_customer=a.once_per_customer, active=a.active,
               starts_at=a.starts_at, ends_at=a.ends_at, created_at=ctx.now)
    if c.amount_off == 0:
        raise InvalidArgument("$.amount_off", "amount_off must be more than 0")
    ctx.db.add(c)
    await ctx.db.flush()
    ctx.created("coupon", c.id)
    return coupon_out(c, ctx.currency)


class CouponRef(WriteArgs, kw_only=True):
    id: Id | None = None
    code: Code | None = None


async def resolve_coupon(ctx: Ctx, a: CouponRef) -> Coupon:
    return await by_id_or_text(ctx, Coupon, a.id, Coupon.code, a.code, "coupon", "code")


class UpdateCoupon(CouponRef, kw_only=True):
    active: bool | None = None
    percent_off: Percent | None = None
    amount_off: MoneyStr | None = None
    usage_limit: Annotated[int, Meta(ge=1, le=10_000_000)] | None = None
    min_subtotal: MoneyStr | None = None
    eligibility: Eligibility | None = None
    ends_at: datetime | None = None


@tool("update_coupon", "Update a discount code",
      "Change a coupon (by id or code): activate/deactivate, amount, limit, eligibility or end time.",
      UpdateCoupon, CouponOut, "coupons:write", idempotent=True)
async def update_coupon(ctx: Ctx, a: UpdateCoupon) -> CouponOut:
    from till_tools.tools.products import parse_money

    c = await resolve_coupon(ctx, a)
    if a.percent_off is not None and c.kind != "percent":
        raise InvalidArgument("$.percent_off", f"coupon {c.code} is a fixed-amount coupon; set amount_off")
    if a.amount_off is not None and c.kind != "fixed":
        raise InvalidArgument("$.amount_off", f"coupon {c.code} is a percent coupon; set percent_off")
    changes = {"active": a.active, "percent_off": a.percent_off, "usage_limit": a.usage_limit,
               "eligibility": a.eligibility, "ends_at": a.ends_at,
               "amount_off": None if a.amount_off is None else parse_money(ctx, a.amount_off, "$.amount_off"),
               "min_subtotal": None if a.min_subtotal is None else parse_money(ctx, a.min_subtotal, "$.min_subtotal")}
    for name, value in changes.items():
        if value is not None:
            before = getattr(c, name)
            ctx.updated("coupon", c.id, name, before.isoformat() if isinstance(before, datetime) else before,
                        value.isoformat() if isinstance(value, datetime) else value)
            setattr(c, name, value)
    await ctx.db.flush()
    return coupon_out(c, ctx.currency)


class DeleteCoupon(CouponRef, kw_only=True):
    pass


@tool("delete_coupon", "Delete a discount code", "Delete a coupon by id or code. Orders that used it keep "
      "the code. To pause it instead, update_coupon with active false.", DeleteCoupon, CouponDeleted,
      "coupons:write", destructive=True)
async def delete_coupon(ctx: Ctx, a: DeleteCoupon) -> CouponDeleted:
    c = await resolve_coupon(ctx, a)
    await ctx.db.delete(c)
    await ctx.db.flush()
    ctx.deleted("coupon", c.id)
    return CouponDeleted(deleted="coupon", id=c.id, code=c.code)


TOOLS = (list_coupons, create_coupon, update_coupon, delete_coupon)
