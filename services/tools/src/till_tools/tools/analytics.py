"""Analytics, computed in SQL (GROUP BY) on SQLite and PostgreSQL alike.  Days are UTC days.

Sales count orders in ``SALES_STATUSES`` (paid, partially_fulfilled, fulfilled, refunded) by the day
they were placed; refunds are subtracted from the period of their order.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from msgspec import Meta
from sqlalchemy import distinct, func, literal_column, select

from till_tools.money import Money, money
from till_tools.spec import Args, Ctx, Id, InvalidArgument, Name, Result, Sku, tool
from till_tools.store.content import Visit
from till_tools.store.models import SALES_STATUSES, Order, OrderLine, Product
from till_tools.tools.products import resolve_product

Period = Literal["today", "yesterday", "last_7_days", "last_30_days", "last_90_days", "this_week", "this_month",
                 "last_month", "this_year"]
PERIOD_DOC = ("Period: today, yesterday, last_7_days, last_30_days, last_90_days, this_week, this_month, "
              "last_month, this_year; or since/until days (YYYY-MM-DD, inclusive), which win over period.")


def period_bounds(now: datetime, period: str, since: date | None, until: date | None) -> tuple[datetime, datetime]:
    """[start, end) in UTC."""
    today = now.astimezone(UTC).date()
    if since or until:
        start_d = since or date(2000, 1, 1)
        end_d = (until or today) + timedelta(days=1)
        if end_d <= start_d:
            raise InvalidArgument("$.until", "until must not be before since")
    else:
        start_d, end_d = {
            "today": (today, today + timedelta(days=1)),
            "yesterday": (today - timedelta(days=1), today),
            "last_7_days": (today - timedelta(days=6), today + timedelta(days=1)),
            "last_30_days": (today - timedelta(days=29), today + timedelta(days=1)),
            "last_90_days": (today - timedelta(days=89), today + timedelta(days=1)),
            "this_week": (today - timedelta(days=today.weekday()), today + timedelta(days=1)),
            "this_month": (today.replace(day=1), today + timedelta(days=1)),
            "last_month": ((today.replace(day=1) - timedelta(days=1)).replace(day=1), today.replace(day=1)),
            "this_year": (today.replace(month=1, day=1), today + timedelta(days=1)),
        }[period]

    def at(d: date) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=UTC)

    return at(start_d), at(end_d)


def bucket(dialect: str, column: Any, unit: str) -> Any:
    """The bucket's first day as 'YYYY-MM-DD' (weeks start on Monday)."""
    # literals, not bind parameters: PostgreSQL must see the SELECT and GROUP BY expressions as one
    assert unit in ("day", "week", "month")
    if dialect == "postgresql":
        return func.to_char(func.date_trunc(literal_column(f"'{unit}'"), column), literal_column("'YYYY-MM-DD'"))
    if unit == "day":
        return func.strftime(literal_column("'%Y-%m-%d'"), column)
    if unit == "week":
        return func.strftime(literal_column("'%Y-%m-%d'"), column, literal_column("'weekday 0'"),
                             literal_column("'-6 days'"))
    return func.strftime(literal_column("'%Y-%m-01'"), column)


class PeriodArgs(Args, kw_only=True):
    period: Period = "last_30_days"
    since: date | None = None
    until: date | None = None


class SalesTotals(Result, kw_only=True):
    orders: int
    units: int
    gross: Money
    discounts: Money
    refunds: Money
    net: Money
    average_order_value: Money


class SalesBucket(Result, kw_only=True):
    start: str
    orders: int
    gross: Money
    refunds: Money
    net: Money


class SalesReport(Result, kw_only=True):
    currency: str
    start: datetime
    end: datetime
    group_by: str
    totals: SalesTotals
    buckets: list[SalesBucket]


class SalesArgs(PeriodArgs, kw_only=True):
    group_by: Literal["day", "week", "month"] = "day"


def _sales_filter(ctx: Ctx, start: datetime, end: datetime) -> tuple[Any, ...]:
    return (Order.store_id == ctx.store_id, Order.status.in_(SALES_STATUSES), Order.created_at >= start,
            Order.created_at < end)


@tool("get_sales_report", "Sales report",
      "Orders, units, gross sales, discounts, refunds and net sales for a period, in day, week or month buckets, "
      "in the store currency. " + PERIOD_DOC, SalesArgs, SalesReport, "analytics:read")
async def get_sales_report(ctx: Ctx, a: SalesArgs) -> SalesReport:
    start, end = period_bounds(ctx.now, a.period, a.since, a.until)
    where = _sales_filter(ctx, start, end)
    b = bucket(ctx.dialect, Order.created_at, a.group_by).label("b")
    rows = (await ctx.db.execute(
        select(b, func.count(), func.sum(Order.total), func.sum(Order.refunded_total))
        .where(*where).group_by(b).order_by(b))).all()
    n, gross, disc, refunds = (await ctx.db.execute(
        select(func.count(), func.coalesce(func.sum(Order.total), 0), func.coalesce(func.sum(Order.discount_total), 0),
               func.coalesce(func.sum(Order.refunded_total), 0)).where(*where))).one()
    units = await ctx.db.scalar(select(func.coalesce(func.sum(OrderLine.quantity), 0))
                                .join(Order, Order.id == OrderLine.order_id).where(*where))
    c = ctx.currency
    n, gross, disc, refunds = int(n), int(gross), int(disc), int(refunds)
    totals = SalesTotals(orders=n, units=int(units or 0), gross=money(gross, c), discounts=money(disc, c),
                         refunds=money(refunds, c), net=money(gross - refunds, c),
                         average_order_value=money((gross + n // 2) // n if n else 0, c))
    buckets = [SalesBucket(start=str(k), orders=int(cnt), gross=money(int(g), c), refunds=money(int(r), c),
                           net=money(int(g) - int(r), c)) for k, cnt, g, r in rows]
    return SalesReport(currency=c, start=start, end=end, group_by=a.group_by, totals=totals, buckets=buckets)


class TopArgs(PeriodArgs, kw_only=True):
    period: Period = "this_month"
    by: Literal["revenue", "units"] = "revenue"
    limit: Annotated[int, Meta(ge=1, le=50)] = 10


class TopProduct(Result, kw_only=True):
    rank: int
    product_id: int | None
    title: str
    units: int
    orders: int
    revenue: Money


class TopProducts(Result, kw_only=True):
    currency: str
    start: datetime
    end: datetime
    by: str
    items: list[TopProduct]


@tool("get_top_products", "Top selling products",
      "Best-selling products of a period ranked by revenue or units sold, with orders and revenue "
      "(line price times quantity, before refunds). Default: this month by revenue. " + PERIOD_DOC,
      TopArgs, TopProducts, "analytics:read")
async def get_top_products(ctx: Ctx, a: TopArgs) -> TopProducts:
    start, end = period_bounds(ctx.now, a.period, a.since, a.until)
    units = func.sum(OrderLine.quantity).label("units")
    revenue = func.sum(OrderLine.quantity * OrderLine.unit_price).label("revenue")
    title = func.coalesce(func.max(Product.title), func.max(OrderLine.title))
    q = (select(OrderLine.product_id, title, units, func.count(distinct(OrderLine.order_id)), revenue)
         .join(Order, Order.id == OrderLine.order_id).outerjoin(Product, Product.id == OrderLine.product_id)
         .where(*_sales_filter(ctx, start, end)).group_by(OrderLine.product_id))
    first, second = (revenue, units) if a.by == "revenue" else (units, revenue)
    rows = (await ctx.db.execute(q.order_by(first.desc(), second.desc(), OrderLine.product_id).limit(a.limit))).all()
    items = [TopProduct(rank=i + 1, product_id=pid, title=str(t), units=int(u), orders=int(o),
                        revenue=money(int(r), ctx.currency)) for i, (pid, t, u, o, r) in enumerate(rows)]
    return TopProducts(currency=ctx.currency, start=start, end=end, by=a.by, items=items)


class SourceRow(Result, kw_only=True):
    source: str
    visits: int
    sessions: int
    share_of_visits: float


class PathRow(Result, kw_only=True):
    path: str
    visits: int


class TrafficReport(Result, kw_only=True):
    start: datetime
    end: datetime
    visits: int
    sessions: int
    by_source: list[SourceRow]
    top_paths: list[PathRow]


@tool("get_traffic_report", "Traffic report",
      "Storefront visits and sessions of a period by traffic source (direct, search, social, email, referral, "
      "ads) with the most visited paths. " + PERIOD_DOC, PeriodArgs, TrafficReport, "analytics:read")
async def get_traffic_report(ctx: Ctx, a: PeriodArgs) -> TrafficReport:
    start, end = period_bounds(ctx.now, a.period, a.since, a.until)
    where = (Visit.store_id == ctx.store_id, Visit.occurred_at >= start, Visit.occurred_at < end)
    visits, sessions = (await ctx.db.execute(
        select(func.count(), func.count(distinct(Visit.session_id))).where(*where))).one()
    n = func.count().label("n")
    rows = (await ctx.db.execute(select(Visit.source, n, func.count(distinct(Visit.session_id))).where(*where)
                                 .group_by(Visit.source).order_by(n.desc(), Visit.source))).all()
    paths = (await ctx.db.execute(select(Visit.path, n).where(*where).group_by(Visit.path)
                                  .order_by(n.desc(), Visit.path).limit(10))).all()
    total = int(visits)
    return TrafficReport(start=start, end=end, visits=total, sessions=int(sessions),
                         by_source=[SourceRow(source=s, visits=int(v), sessions=int(ss),
                                              share_of_visits=round(int(v) / total, 4) if total else 0.0)
                                    for s, v, ss in rows],
                         top_paths=[PathRow(path=p, visits=int(v)) for p, v in paths])


class ProductAnalyticsArgs(PeriodArgs, kw_only=True):
    id: Id | None = None
    name: Name | None = None
    sku: Sku | None = None


class ProductAnalytics(Result, kw_only=True):
    product_id: int
    title: str
    start: datetime
    end: datetime
    views: int
    viewing_sessions: int
    orders: int
    units: int
    revenue: Money
    conversion_rate: Annotated[float, Meta(description="orders ÷ viewing sessions")]


@tool("get_product_analytics", "Product analytics",
      "For one product (id, exact title or SKU): page views, viewing sessions, orders, units, revenue and "
      "conversion (orders ÷ viewing sessions) over a period. " + PERIOD_DOC,
      ProductAnalyticsArgs, ProductAnalytics, "analytics:read")
async def get_product_analytics(ctx: Ctx, a: ProductAnalyticsArgs) -> ProductAnalytics:
    p = await resolve_product(ctx, a)
    start, end = period_bounds(ctx.now, a.period, a.since, a.until)
    views, sessions = (await ctx.db.execute(
        select(func.count(), func.count(distinct(Visit.session_id))).where(
            Visit.store_id == ctx.store_id, Visit.product_id == p.id, Visit.occurred_at >= start,
            Visit.occurred_at < end))).one()
    orders, units, revenue = (await ctx.db.execute(
        select(func.count(distinct(OrderLine.order_id)), func.coalesce(func.sum(OrderLine.quantity), 0),
               func.coalesce(func.sum(OrderLine.quantity * OrderLine.unit_price), 0))
        .join(Order, Order.id == OrderLine.order_id)
        .where(OrderLine.product_id == p.id, *_sales_filter(ctx, start, end)))).one()
    sessions = int(sessions)
    return ProductAnalytics(product_id=p.id, title=p.title, start=start, end=end, views=int(views),
                            viewing_sessions=sessions, orders=int(orders), units=int(units),
                            revenue=money(int(revenue), ctx.currency),
                            conversion_rate=round(int(orders) / sessions, 4) if sessions else 0.0)


TOOLS = (get_sales_report, get_top_products, get_traffic_report, get_product_analytics)
