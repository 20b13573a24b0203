"""An order's life after it is placed: paid or cancelled, shipped, refunded, annotated."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta
from sqlalchemy import select

from till_tools.money import MoneyStr, money
from till_tools.spec import Ctx, Id, ShortText, ToolFailure, tool
from till_tools.store.models import AWAITING_FULFILMENT, Fulfilment, Order, OrderLine, OrderNote, Refund, Variant
from till_tools.tools.orders import TRANSITIONS, OrderOut, Quantity, WriteOrderRef, order_out, resolve_order
from till_tools.tools.products import parse_money


class UpdateOrderStatus(WriteOrderRef, kw_only=True):
    status: Literal["paid", "cancelled"]
    restock: Annotated[bool, Meta(description="On cancel, put the items back in stock.")] = True


@tool("update_order_status", "Change an order's status",
      "Mark a pending order paid, or cancel a pending or paid (unshipped) order, restocking by default. "
      "Shipping is fulfill_order; money back is refund_order.", UpdateOrderStatus, OrderOut, "orders:write")
async def update_order_status(ctx: Ctx, a: UpdateOrderStatus) -> OrderOut:
    o = await resolve_order(ctx, a)
    allowed = TRANSITIONS.get(o.status, ())
    if a.status not in allowed:
        hint = f"allowed from {o.status}: {', '.join(allowed)}" if allowed else f"{o.status} is final here"
        raise ToolFailure(f"order {o.number} cannot go from {o.status} to {a.status}; {hint}")
    ctx.updated("order", o.id, "status", o.status, a.status)
    o.status = a.status
    if a.status == "paid":
        o.paid_at = ctx.now
    else:
        o.cancelled_at = ctx.now
        if a.restock:
            await _restock(ctx, o, None)
    o.updated_at = ctx.now
    await ctx.db.flush()
    return await order_out(ctx, o)


async def _restock(ctx: Ctx, o: Order, only: dict[int, int] | None) -> None:
    for ln in (await ctx.db.scalars(select(OrderLine).where(OrderLine.order_id == o.id))).all():
        qty = ln.quantity if only is None else only.get(ln.id, 0)
        if qty and ln.variant_id is not None:
            v = await ctx.db.get(Variant, ln.variant_id)
            if v is not None and v.store_id == ctx.store_id:
                ctx.updated("variant", v.id, "stock", v.stock, v.stock + qty)
                v.stock += qty


class FulfilItem(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    line_id: Id
    quantity: Quantity


class FulfillOrder(WriteOrderRef, kw_only=True):
    items: Annotated[list[FulfilItem], Meta(max_length=100, description="Lines to ship; omit to ship all "
                                                                         "that remain.")] | None = None
    carrier: ShortText = ""
    tracking_number: ShortText = ""


@tool("fulfill_order", "Fulfill an order",
      "Record a shipment of a paid order (all remaining items, or the given line quantities) with optional "
      "carrier and tracking number; the order becomes fulfilled or partially_fulfilled.",
      FulfillOrder, OrderOut, "orders:write")
async def fulfill_order(ctx: Ctx, a: FulfillOrder) -> OrderOut:
    o = await resolve_order(ctx, a)
    if o.status not in AWAITING_FULFILMENT:
        raise ToolFailure(f"order {o.number} is {o.status}; only paid or partially_fulfilled orders can ship")
    lines = {ln.id: ln for ln in (await ctx.db.scalars(select(OrderLine).where(OrderLine.order_id == o.id))).all()}
    wanted = {ln.id: ln.quantity - ln.fulfilled_quantity for ln in lines.values()} if a.items is None else {}
    for i, item in enumerate(a.items or ()):
        ln = lines.get(item.line_id)
        if ln is None:
            raise ToolFailure(f"items[{i}]: order {o.number} has no line {item.line_id}")
        if item.quantity > ln.quantity - ln.fulfilled_quantity:
            raise ToolFailure(f"items[{i}]: only {ln.quantity - ln.fulfilled_quantity} of line {ln.id} left to ship")
        wanted[ln.id] = wanted.get(ln.id, 0) + item.quantity
    shipped = [{"line_id": lid, "quantity": q} for lid, q in wanted.items() if q > 0]
    if not shipped:
        raise ToolFailure(f"order {o.number} has nothing left to ship")
    for s in shipped:
        lines[s["line_id"]].fulfilled_quantity += s["quantity"]
    f = Fulfilment(store_id=ctx.store_id, order_id=o.id, carrier=a.carrier, tracking_number=a.tracking_number,
                   items=shipped, created_at=ctx.now)
    ctx.db.add(f)
    done = all(ln.fulfilled_quantity >= ln.quantity for ln in lines.values())
    new = "fulfilled" if done else "partially_fulfilled"
    ctx.updated("order", o.id, "status", o.status, new)
    o.status = new
    o.fulfilled_at = ctx.now if done else o.fulfilled_at
    o.updated_at = ctx.now
    await ctx.db.flush()
    ctx.created("fulfilment", f.id)
    return await order_out(ctx, o)


class RefundOrder(WriteOrderRef, kw_only=True):
    amount: Annotated[MoneyStr | None, Meta(description="Decimal amount; omit to refund all that remains.")] = None
    reason: ShortText = ""
    restock: bool = False


@tool("refund_order", "Refund an order",
      "Refund all or part (amount as a decimal string) of a paid order; a full refund sets status refunded. "
      "restock puts all its items back in stock.", RefundOrder, OrderOut, "orders:write")
async def refund_order(ctx: Ctx, a: RefundOrder) -> OrderOut:
    o = await resolve_order(ctx, a)
    if o.status not in ("paid", "partially_fulfilled", "fulfilled"):
        raise ToolFailure(f"order {o.number} is {o.status}; only paid or fulfilled orders can be refunded")
    remaining = o.total - o.refunded_total
    amount = remaining if a.amount is None else parse_money(ctx, a.amount, "$.amount")
    if amount <= 0 or amount > remaining:
        raise ToolFailure(f"refund must be between 0.01 and {money(remaining, o.currency).amount} {o.currency}")
    r = Refund(store_id=ctx.store_id, order_id=o.id, amount=amount, currency=o.currency, reason=a.reason,
               restock=a.restock, created_at=ctx.now)
    ctx.db.add(r)
    ctx.updated("order", o.id, "refunded_total", money(o.refunded_total, o.currency).amount,
                money(o.refunded_total + amount, o.currency).amount)
    o.refunded_total += amount
    if o.refunded_total == o.total:
        ctx.updated("order", o.id, "status", o.status, "refunded")
        o.status = "refunded"
    if a.restock:
        await _restock(ctx, o, None)
    o.updated_at = ctx.now
    await ctx.db.flush()
    ctx.created("refund", r.id)
    return await order_out(ctx, o)


class AddOrderNote(WriteOrderRef, kw_only=True):
    body: Annotated[str, Meta(min_length=1, max_length=5000, pattern=r"^[^\x00]*$")]


@tool("add_order_note", "Add an order note", "Add an internal note to an order (staff only, never sent to "
      "the customer).", AddOrderNote, OrderOut, "orders:write")
async def add_order_note(ctx: Ctx, a: AddOrderNote) -> OrderOut:
    o = await resolve_order(ctx, a)
    n = OrderNote(store_id=ctx.store_id, order_id=o.id, body=a.body, author_user_id=ctx.who.user_id,
                  created_at=ctx.now)
    ctx.db.add(n)
    await ctx.db.flush()
    ctx.created("order_note", n.id)
    return await order_out(ctx, o)


TOOLS = (update_order_status, fulfill_order, refund_order, add_order_note)
