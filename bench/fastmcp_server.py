"""The fastmcp baseline (bench/servers.py role ``fastmcp``): the same tool and data as the MCP SDK
baseline (bench/sdk_server.py) on ``fastmcp`` (PyPI, the dev group), stateless Streamable HTTP with
JSON responses.  No ``from __future__ import annotations``: fastmcp reads the tool's annotations at
registration, as the SDK does.

``get_product`` does in-process what Till's read path does across three processes: a static bearer
compare, one SELECT of a product row and one INSERT of an audit row, committed (the SDK baseline's
SQLite file schema, bench/servers.py ``prepare_sdk_db``).

``unavailable()`` says why fastmcp cannot run here (not installed, or an API it lacks), so the bench
can print the reason instead of the row.
"""

import hmac
import json
import time
from typing import Any

import aiosqlite
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


def unavailable() -> str | None:
    """None when fastmcp can serve the baseline; else the reason, in one line."""
    try:
        import fastmcp
    except ImportError as exc:
        return f"fastmcp is not installed ({exc}); `uv sync` installs it with the dev group"
    if not hasattr(fastmcp.FastMCP, "http_app"):
        return f"fastmcp {getattr(fastmcp, '__version__', '?')} has no FastMCP.http_app"
    return None


def build_fastmcp(db_path: str, token: str) -> Any:
    from fastmcp import FastMCP

    server = FastMCP(name="fastmcp-baseline")
    state: dict[str, aiosqlite.Connection] = {}

    @server.tool(description="Get one product by id.")
    async def get_product(id: int) -> Product:
        db = state["db"]
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

    inner = server.http_app(path="/mcp", json_response=True, stateless_http=True)
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
