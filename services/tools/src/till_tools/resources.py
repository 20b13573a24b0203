"""MCP resources (SPEC §6): read-only views of store data, permission-checked.

Only URIs of the exact shapes below are read; anything else — another store's id, ``..``,
``file://``, ``http://`` — is "resource not found" (-32002) and nothing is fetched (TL-11).

Every read with a URI is audited like a tool call (D862): one row in the store's chain, ``tool``
``resources/read``, the URI as its (redacted) arguments; a read that returns data writes its row in
the read's own transaction, a refused or failed one writes it alone.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from till_common.logging import get_logger
from till_common.principal import Principal
from till_common.protocol.internal import INSUFFICIENT_SCOPE, INVALID_PARAMS, RESOURCE_NOT_FOUND
from till_tools import audit
from till_tools.call import RpcFault, _audit_alone, store_currency
from till_tools.registry import Registry
from till_tools.spec import Ctx, ToolFailure

JSON: Final = "application/json"
AUDIT_NAME: Final = "resources/read"      # the audit row's ``tool``
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
log = get_logger("till.tools.resources")


def listed_for(who: Principal) -> list[dict[str, Any]]:
    return [r for r in STATIC if who.role_allows(_PERMISSION[r["name"]])]


def templates_for(who: Principal) -> list[dict[str, Any]]:
    return [t for t in TEMPLATES if who.role_allows(_PERMISSION[t["uriTemplate"].split("/")[2]])]


def _not_found(uri: str) -> RpcFault:
    return RpcFault(RESOURCE_NOT_FOUND, "resource not found", {"uri": uri[:300]})


async def _value(ctx: Ctx, kind: str, ident: int | None) -> Any:
    from till_tools.lookup import by_id
    from till_tools.store.models import Product
    from till_tools.tools import content, orders, products, store_settings, themes

    if kind == "settings":
        return await store_settings.all_settings(ctx)
    if kind == "theme":
        return await themes.published_theme(ctx)
    assert ident is not None
    if kind == "products":
        return await products.product_out(ctx, await by_id(ctx, Product, ident, "product"))
    if kind == "orders":
        return await orders.order_detail(ctx, ident)
    return await content.page_detail(ctx, ident)


async def read(reg: Registry, who: Principal, params: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    uri = params.get("uri")
    if not isinstance(uri, str):          # like a tools/call without a name: nothing to record
        raise RpcFault(INVALID_PARAMS, "resources/read needs params.uri", {"path": "$.uri"})
    args_text = audit.arguments_text({"uri": uri[:2000]})

    async def refuse(outcome: audit.Outcome, detail: str, fault: RpcFault) -> RpcFault:
        await _audit_alone(reg, who, AUDIT_NAME, args_text, outcome, detail, started)
        return fault

    m = _URI.match(uri)
    if m is None:
        raise await refuse("refused", "no such resource", _not_found(uri))
    kind = m.group(1) or m.group(2)
    ident = int(m.group(3)) if m.group(3) else None
    permission = _PERMISSION[kind]
    if not who.role_allows(permission):
        raise await refuse("denied", f"role {who.role} lacks {permission}", _not_found(uri))
    if not who.scope_allows(permission):
        raise await refuse("denied", f"token scope lacks {permission}",
                           RpcFault(INSUFFICIENT_SCOPE, f"the token's scope does not include {permission}",
                                    {"scope": permission}))
    now = datetime.now(UTC)
    try:
        async with reg.write_slot(), reg.transaction() as tx:
            ctx = Ctx(db=tx.db, store_id=who.store_id, currency=await store_currency(reg, tx.db, who.store_id),
                      who=who, now=now, dialect=reg.dialect, payment_keys=reg.payment_keys)
            try:
                value = await _value(ctx, kind, ident)
                outcome: audit.Outcome = "success"
                detail = ""
            except ToolFailure as exc:
                await tx.rollback()
                value, outcome, detail = None, "failed", exc.message[:500]
            await audit.append(tx.db, who, AUDIT_NAME, args_text, outcome, detail,
                               (time.perf_counter() - started) * 1000, now, reg.audit_heads)
            await tx.commit()
    except Exception:
        # rpc.py logs it and answers "internal error"; the read still leaves its row (as a call does)
        try:
            await _audit_alone(reg, who, AUDIT_NAME, args_text, "failed", "internal error", started)
        except Exception:
            log.exception("audit of a failed resource read failed too")
        raise
    if outcome != "success":
        raise _not_found(uri)
    return {"contents": [{"uri": uri, "mimeType": JSON, "text": _encoder.encode(value).decode()}]}
