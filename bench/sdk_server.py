"""The MCP SDK baseline (bench/servers.py role ``sdk``): no ``from __future__ import annotations`` here,
because the SDK evaluates the tool's annotations at registration and they must resolve.

Stateless Streamable HTTP with JSON responses; one tool, ``get_product``, doing in-process what
Till's read path does across three processes: a static bearer compare (Till verifies a JWT or a
PAT), one SELECT of a product row and one INSERT of an audit row, committed.  Raw aiosqlite on one
connection, no ORM and no hash chain: the SDK side gets the cheaper database path.
"""

import hmac
import json
import time
from typing import Any

import aiosqlite
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send


class Money(BaseModel):
    amount: str
    currency: str


class Product(BaseModel):
    id: int
    title: str
    sku: str
    price: Money
    stock: int


async def read_product(db: aiosqlite.Connection, id: int) -> Product:
    """The baselines' tool body: one SELECT of the product, one INSERT of an audit row, committed."""
    async with db.execute("SELECT id, title, sku, price_minor, currency, stock FROM products "
                          "WHERE id = ? AND store_id = 1", (id,)) as cur:
        row = await cur.fetchone()
    if row is None:
        raise ValueError(f"no product {id}")
    await db.execute("INSERT INTO audit (at, store_id, tool, arguments, outcome) VALUES (?, 1, ?, ?, ?)",
                     (time.time(), "get_product", json.dumps({"id": id}), "success"))
    await db.commit()
    return Product(id=row[0], title=row[1], sku=row[2], price=Money(amount=f"{row[3] / 100:.2f}",
                   currency=row[4]), stock=row[5])


def guarded(inner: Any, db_path: str, token: str, state: dict[str, aiosqlite.Connection]) -> Any:
    """``inner`` behind a static bearer compare; its lifespan opens and closes ``state["db"]``."""
    expected = b"Bearer " + token.encode()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            state["db"] = await aiosqlite.connect(db_path)
            try:
                await inner(scope, receive, send)
            finally:
                await state["db"].close()
            return
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await inner(scope, receive, send)

    return app


def build_sdk(db_path: str, token: str) -> Any:
    server = MCPServer(name="sdk-baseline", version="1.0.0")
    state: dict[str, aiosqlite.Connection] = {}

    @server.tool(description="Get one product by id.")
    async def get_product(id: int) -> Product:
        return await read_product(state["db"], id)

    inner = server.streamable_http_app(json_response=True, stateless_http=True)
    return guarded(inner, db_path, token, state)
