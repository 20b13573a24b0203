"""MCP resources (SPEC §6): read-only views of store data, permission-checked.

Only URIs of the exact shapes below are read; anything else — another store's id, ``..``,
``file://``, ``http://`` — is "resource not found" (-32002) and nothing is fetched (TL-11).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from till_common.principal import Principal
from till_common.protocol.internal import INSUFFICIENT_SCOPE, INVALID_PARAMS, RESOURCE_NOT_FOUND
from till_tools.call import RpcFault, store_currency
from till_tools.registry import Registry
from till_tools.spec import Ctx, ToolFailure

JSON: Final = "application/json"
STATIC: Final[list[dict[str, Any]]] = [
    {"uri": "store://settings", "name": "settings", "title": "Store settings", "mimeType": JSON,
     "description": "General, shipping and checkout settings of the store."},
    {"uri": "store://theme", "name": "theme", "title": "Published theme", "mimeType": JSON,
     "description": "The published theme: settings, sections and blocks."},
]
TEMPLATES: Final[list[dict[str, Any]]] = [
    {"uriTemplate": "store://products/{id}", "name": "product", "title": "Product", "mimeType": JSON,
     "description": "One product with variants, prices and stock."},
    {"uriTemplate": "store://orders/{id}", "name": "order", "title": "Order", "mimeType": JSON,
     "description": "One order with lines, fulfilments, refunds and notes."},
    {"uriTemplate": "store://pages/{id}", "name": "page", "title": "Page", "mimeType": JSON,
     "description": "One content page (title, slug, body)."},
]
_PERMISSION: Final = {"settings": "settings:read", "theme": "themes:read", "products": "products:read",
                      "orders": "orders:read", "pages": "content:read"}
_URI = re.compile(r"^store://(?:(settings|theme)|(products|orders|pages)/([1-9][0-9]{0,15}))$")
_encoder = msgspec.json.Encoder()


def listed_for(who: Principal) -> list[dict[str, Any]]:
    return [r for r in STATIC if who.role_allows(_PERMISSION[r["name"]])]


def templates_for(who: Principal) -> list[dict[str, Any]]:
    return [t for t in TEMPLATES if who.role_allows(_PERMISSION[t["uriTemplate"].split("/")[2]])]


def _not_found(uri: str) -> RpcFault:
    return RpcFault(RESOURCE_NOT_FOUND, "resource not found", {"uri": uri[:300]})


async def read(reg: Registry, who: Principal, params: dict[str, Any]) -> dict[str, Any]:
    from till_tools.lookup import by_id
    from till_tools.store.models import Product
    from till_tools.tools import content, orders, products, store_settings, themes

    uri = params.get("uri")
    if not isinstance(uri, str):
        raise RpcFault(INVALID_PARAMS, "resources/read needs params.uri", {"path": "$.uri"})
    m = _URI.match(uri)
    if m is None:
        raise _not_found(uri)
    kind = m.group(1) or m.group(2)
    ident = int(m.group(3)) if m.group(3) else None
    permission = _PERMISSION[kind]
    if not who.role_allows(permission):
        raise _not_found(uri)
    if not who.scope_allows(permission):
        raise RpcFault(INSUFFICIENT_SCOPE, f"the token's scope does not include {permission}",
                       {"scope": permission})
    async with reg.sessions() as db, db.begin():
        ctx = Ctx(db=db, store_id=who.store_id, currency=await store_currency(reg, db, who.store_id), who=who,
                  now=datetime.now(UTC), dialect=reg.dialect)
        try:
            if kind == "settings":
                value: Any = await store_settings.all_settings(ctx)
            elif kind == "theme":
                value = await themes.published_theme(ctx)
            elif kind == "products":
                assert ident is not None
                value = await products.product_out(ctx, await by_id(ctx, Product, ident, "product"))
            elif kind == "orders":
                assert ident is not None
                value = await orders.order_detail(ctx, ident)
            else:
                assert ident is not None
                value = await content.page_detail(ctx, ident)
        except ToolFailure:
            raise _not_found(uri) from None
    return {"contents": [{"uri": uri, "mimeType": JSON, "text": _encoder.encode(value).decode()}]}
