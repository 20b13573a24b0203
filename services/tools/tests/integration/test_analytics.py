"""Analytics computed in SQL agree with the same figures computed independently in Python from the rows."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from till_tools.store.content import Visit
from till_tools.store.models import SALES_STATUSES, Order, OrderLine, Product
from till_tools.tools.analytics import period_bounds


def dec(m: dict[str, str]) -> int:
    return int(Decimal(m["amount"]) * 100)


async def sales_rows(h, start: datetime, end: datetime) -> list[tuple[int, datetime, int, int, int]]:
    rows = await h.sql(select(Order.id, Order.created_at, Order.total, Order.refunded_total, Order.discount_total)
                       .where(Order.store_id == 1, Order.status.in_(SALES_STATUSES)))
    return [r for r in rows if start <= r[1] < end]


def week_start(d: datetime) -> str:
    day = d.date()
    return (day - timedelta(days=day.weekday())).isoformat()


@pytest.mark.parametrize("group_by", ["day", "week", "month"])
async def test_sales_report_matches_python(h, group_by: str) -> None:
    report = h.ok(await h.call("get_sales_report", {"period": "last_90_days", "group_by": group_by}))
    start, end = period_bounds(datetime.now(UTC), "last_90_days", None, None)
    rows = await sales_rows(h, start, end)
    assert report["totals"]["orders"] == len(rows) > 150
    assert dec(report["totals"]["gross"]) == sum(r[2] for r in rows)
    assert dec(report["totals"]["refunds"]) == sum(r[3] for r in rows)
    assert dec(report["totals"]["discounts"]) == sum(r[4] for r in rows)
    assert dec(report["totals"]["net"]) == sum(r[2] - r[3] for r in rows)
    key = {"day": lambda d: d.date().isoformat(), "week": week_start,
           "month": lambda d: d.strftime("%Y-%m-01")}[group_by]
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for _, created, total, refunded, _ in rows:
        b = expected[key(created)]
        b[0] += 1
        b[1] += total
        b[2] += refunded
    got = {b["start"]: [b["orders"], dec(b["gross"]), dec(b["refunds"])] for b in report["buckets"]}
    assert got == dict(expected)
    ids = {r[0] for r in rows}
    units = sum(q for oid, q in await h.sql(select(OrderLine.order_id, OrderLine.quantity)) if oid in ids)
    assert report["totals"]["units"] == units


@pytest.mark.parametrize("by", ["revenue", "units"])
async def test_top_products_match_python(h, by: str) -> None:
    top = h.ok(await h.call("get_top_products", {"period": "last_30_days", "by": by, "limit": 50}))
    start, end = period_bounds(datetime.now(UTC), "last_30_days", None, None)
    ids = {r[0] for r in await sales_rows(h, start, end)}
    revenue: Counter[int] = Counter()
    units: Counter[int] = Counter()
    orders: dict[int, set[int]] = defaultdict(set)
    for oid, pid, q, price in await h.sql(select(OrderLine.order_id, OrderLine.product_id, OrderLine.quantity,
                                                 OrderLine.unit_price)):
        if oid in ids:
            revenue[pid] += q * price
            units[pid] += q
            orders[pid].add(oid)
    titles = dict(await h.sql(select(Product.id, Product.title)))
    primary, secondary = (revenue, units) if by == "revenue" else (units, revenue)
    ranking = sorted(revenue, key=lambda p: (-primary[p], -secondary[p], p))
    assert [i["product_id"] for i in top["items"]] == ranking[:50]
    for item in top["items"]:
        pid = item["product_id"]
        assert (item["title"], item["units"], item["orders"], dec(item["revenue"])) == \
            (titles[pid], units[pid], len(orders[pid]), revenue[pid])


async def test_traffic_report_matches_python(h) -> None:
    report = h.ok(await h.call("get_traffic_report", {"period": "last_7_days"}))
    start, end = period_bounds(datetime.now(UTC), "last_7_days", None, None)
    rows = [r for r in await h.sql(select(Visit.source, Visit.session_id, Visit.path, Visit.occurred_at)
                                   .where(Visit.store_id == 1)) if start <= r[3] < end]
    assert report["visits"] == len(rows) > 0
    assert report["sessions"] == len({r[1] for r in rows})
    by_source = {s["source"]: (s["visits"], s["sessions"]) for s in report["by_source"]}
    expected = {src: (sum(1 for r in rows if r[0] == src), len({r[1] for r in rows if r[0] == src}))
                for src in {r[0] for r in rows}}
    assert by_source == expected
    paths = Counter(r[2] for r in rows)
    assert report["top_paths"][0]["visits"] == max(paths.values())


async def test_product_analytics_matches_python(h) -> None:
    out = h.ok(await h.call("get_product_analytics", {"name": "Classic T-Shirt", "period": "last_90_days"}))
    start, end = period_bounds(datetime.now(UTC), "last_90_days", None, None)
    pid = out["product_id"]
    visits = [r for r in await h.sql(select(Visit.session_id, Visit.occurred_at).where(Visit.product_id == pid))
              if start <= r[1] < end]
    ids = {r[0] for r in await sales_rows(h, start, end)}
    lines = [(oid, q, p) for oid, q, p in await h.sql(
        select(OrderLine.order_id, OrderLine.quantity, OrderLine.unit_price).where(OrderLine.product_id == pid))
        if oid in ids]
    sessions = len({s for s, _ in visits})
    assert (out["views"], out["viewing_sessions"]) == (len(visits), sessions)
    assert out["orders"] == len({oid for oid, _, _ in lines})
    assert out["units"] == sum(q for _, q, _ in lines)
    assert dec(out["revenue"]) == sum(q * p for _, q, p in lines)
    assert out["conversion_rate"] == round(out["orders"] / sessions, 4)


async def test_explicit_day_range_and_bad_range(h) -> None:
    today = datetime.now(UTC).date()
    out = h.ok(await h.call("get_sales_report", {"since": today.isoformat(), "until": today.isoformat()}))
    assert out["totals"]["orders"] >= 8     # today's seeded paid orders
    err = h.rpc_error(await h.call("get_sales_report", {"since": today.isoformat(),
                                                        "until": (today - timedelta(days=2)).isoformat()}), -32602)
    assert err["data"] == {"path": "$.until", "input": True}
