"""The seed's four example requests as MCP prompt templates (prompts/list, prompts/get)."""

from __future__ import annotations

from typing import Any, Final

from till_common.protocol.internal import INVALID_PARAMS
from till_tools.call import RpcFault

_PROMPTS: Final[dict[str, dict[str, Any]]] = {
    "top_selling_products": {
        "title": "Top selling products this month",
        "description": "Show the best sellers of a period by revenue.",
        "arguments": [{"name": "period", "description": "this_month (default), last_30_days, …",
                       "required": False}],
        "text": "Show me my top selling products {period}. Use get_top_products with period "
                "\"{period_value}\" ranked by revenue and summarise units and revenue per product.",
        "defaults": {"period": "this month", "period_value": "this_month"},
    },
    "create_discount_code": {
        "title": "Create a discount code for new customers",
        "description": "Create a percentage coupon limited to customers' first order.",
        "arguments": [{"name": "percent", "description": "Percent off, e.g. 20", "required": False}],
        "text": "Create a {percent}% discount code for new customers. Use create_coupon with percent_off "
                "{percent} and eligibility \"first_order\", then tell me the code.",
        "defaults": {"percent": "20"},
    },
    "update_product_price": {
        "title": "Update a product's price",
        "description": "Change the price of a product found by name.",
        "arguments": [{"name": "product", "description": "Product name, e.g. Classic T-Shirt", "required": True},
                      {"name": "price", "description": "New price as a decimal, e.g. 29.99", "required": True}],
        "text": "Update the price of '{product}' to {price}. Use update_product with name \"{product}\" and "
                "price \"{price}\" (a decimal string), then confirm the old and new price.",
        "defaults": {},
    },
    "orders_to_fulfill": {
        "title": "Orders that need fulfillment today",
        "description": "List paid orders waiting to be shipped.",
        "arguments": [],
        "text": "What orders need fulfillment today? Use list_orders_awaiting_fulfillment and list each order "
                "number, customer, items and how long it has waited.",
        "defaults": {},
    },
}

LIST: Final[list[dict[str, Any]]] = [
    {"name": n, "title": p["title"], "description": p["description"], "arguments": p["arguments"]}
    for n, p in _PROMPTS.items()
]


def get(params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("name")
    prompt = _PROMPTS.get(name) if isinstance(name, str) else None
    if prompt is None:
        raise RpcFault(INVALID_PARAMS, f"unknown prompt {str(name)[:100]!r}", {"path": "$.name"})
    given = params.get("arguments") or {}
    if not isinstance(given, dict) or not all(isinstance(v, str) and len(v) <= 200 for v in given.values()):
        raise RpcFault(INVALID_PARAMS, "prompt arguments must be strings", {"path": "$.arguments"})
    values = dict(prompt["defaults"])
    for arg in prompt["arguments"]:
        if arg["name"] in given:
            values[arg["name"]] = given[arg["name"]]
        elif arg["required"]:
            raise RpcFault(INVALID_PARAMS, f"prompt argument {arg['name']!r} is required",
                           {"path": f"$.arguments.{arg['name']}"})
    if name == "top_selling_products" and "period" in given:
        values["period_value"] = given["period"]
    text = prompt["text"].format(**values)
    return {"description": prompt["description"],
            "messages": [{"role": "user", "content": {"type": "text", "text": text}}]}
