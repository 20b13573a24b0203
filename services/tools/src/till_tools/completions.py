"""``completion/complete`` (MCP server/utilities/completion) for the store's prompts and templates.

Suggestions come from the caller's store only, and only where the role and the token's scope allow
reading what they name; otherwise the answer is an empty list (never an error that would reveal
what exists).  Prefix match, case-insensitive, at most 100 values.

- prompt ``update_product_price``, argument ``product``: product titles;
- prompt ``top_selling_products``, argument ``period``: the analytics periods;
- prompt ``create_discount_code``, argument ``percent``: common percentages;
- template ``store://products/{id}`` / ``store://orders/{id}``, argument ``id``: record ids.
"""

from __future__ import annotations

from typing import Any, Final, get_args

from sqlalchemy import String, cast, func, select

from till_common.principal import Principal
from till_common.protocol.internal import INVALID_PARAMS
from till_tools.call import RpcFault
from till_tools.registry import Registry

MAX_VALUES: Final = 100
_PERCENTS: Final = ["5", "10", "15", "20", "25", "30", "40", "50"]


def _argument(params: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    ref = params.get("ref")
    argument = params.get("argument")
    if not isinstance(ref, dict) or ref.get("type") not in ("ref/prompt", "ref/resource"):
        raise RpcFault(INVALID_PARAMS, "ref must be a ref/prompt or ref/resource object", {"path": "$.ref"})
    if not isinstance(argument, dict) or not isinstance(argument.get("name"), str) \
            or not isinstance(argument.get("value", ""), str):
        raise RpcFault(INVALID_PARAMS, "argument must be {name, value} strings", {"path": "$.argument"})
    return ref, argument["name"], str(argument.get("value", ""))[:200]


def _result(values: list[str], total: int | None = None) -> dict[str, Any]:
    shown = values[:MAX_VALUES]
    total = len(values) if total is None else total
    return {"completion": {"values": shown, "total": total, "hasMore": total > len(shown)}}


def _may_read(who: Principal, permission: str) -> bool:
    return who.role_allows(permission) and who.scope_allows(permission)


async def complete(reg: Registry, who: Principal, params: dict[str, Any]) -> dict[str, Any]:
    from till_tools.store.models import Order, Product
    from till_tools.tools.analytics import Period

    ref, name, prefix = _argument(params)
    target = (ref.get("type"), ref.get("name") if ref.get("type") == "ref/prompt" else ref.get("uri"), name)
    if target == ("ref/prompt", "top_selling_products", "period"):
        return _result([p for p in get_args(Period) if p.startswith(prefix.lower())])
    if target == ("ref/prompt", "create_discount_code", "percent"):
        return _result([p for p in _PERCENTS if p.startswith(prefix)])
    if target == ("ref/prompt", "update_product_price", "product") and _may_read(who, "products:read"):
        escaped = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = (select(Product.title).where(Product.store_id == who.store_id,
                                             func.lower(Product.title).like(escaped + "%", escape="\\"))
                 .order_by(Product.title).limit(MAX_VALUES + 1))
    elif target == ("ref/resource", "store://products/{id}", "id") and _may_read(who, "products:read"):
        query = (select(cast(Product.id, String)).where(Product.store_id == who.store_id,
                                                        cast(Product.id, String).like(prefix + "%"))
                 .order_by(Product.id).limit(MAX_VALUES + 1))
    elif target == ("ref/resource", "store://orders/{id}", "id") and _may_read(who, "orders:read"):
        query = (select(cast(Order.id, String)).where(Order.store_id == who.store_id,
                                                      cast(Order.id, String).like(prefix + "%"))
                 .order_by(Order.id).limit(MAX_VALUES + 1))
    else:
        return _result([])
    if name == "id" and prefix and not prefix.isdigit():
        return _result([])
    async with reg.sessions() as db:
        values = [str(v) for v in (await db.scalars(query)).all()]
    more = len(values) > MAX_VALUES
    return {"completion": {"values": values[:MAX_VALUES], "hasMore": more,
                           **({} if more else {"total": len(values)})}}
