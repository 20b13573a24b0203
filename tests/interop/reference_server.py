"""The reference server the client matrix is proven against: the official MCP Python SDK.

``python -m tests.interop.reference_server --port N [--token T]`` serves, on 127.0.0.1:

- ``POST /mcp``: Streamable HTTP (stateless, JSON responses, like Till's gateway);
- ``GET /mcp/sse`` + ``POST /mcp/sse/messages/?session_id=``: the legacy 2024-11-05 transport;
- ``GET /healthz``: liveness, for the harness's wait loop.

One tool ``echo``, one resource ``ref://greeting``, one prompt ``greet``: the smallest surface every
client of the matrix touches.  With ``--token`` every MCP path requires ``Authorization: Bearer
<token>`` (compared in constant time) and answers 401 with a ``WWW-Authenticate`` challenge
otherwise, which is what makes the "token" cells of the matrix mean something.
"""

from __future__ import annotations

import argparse
import hmac
import json
from typing import Any

from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

GREETING = "Hello from the reference server."


def build_server() -> MCPServer:
    server: MCPServer = MCPServer(name="till-interop-reference", version="1.0.0")

    @server.tool(description="Echo the text back, unchanged.")
    def echo(text: str) -> str:
        return text

    @server.resource("ref://greeting", name="greeting", mime_type="text/plain", description="A fixed greeting.")
    def greeting() -> str:
        return GREETING

    @server.prompt(description="Greet someone by name.")
    def greet(name: str) -> str:
        return f"Please greet {name} warmly."

    return server


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


class Router:
    """Legacy SSE under /mcp/sse, Streamable HTTP elsewhere, one bearer check in front of both."""

    def __init__(self, http_app: ASGIApp, sse_app: ASGIApp, token: str | None) -> None:
        self.http_app, self.sse_app, self.token = http_app, sse_app, token

    def _authorized(self, scope: Scope) -> bool:
        if self.token is None:
            return True
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"")
        return hmac.compare_digest(given, b"Bearer " + self.token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.http_app(scope, receive, send)      # the session manager lives in this lifespan
            return
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path == "/healthz":
            await _send_json(send, 200, {"status": "ok"}, [])
            return
        if scope["type"] == "http" and not self._authorized(scope):
            challenge = b'Bearer error="invalid_token", error_description="missing or wrong bearer token"'
            await _send_json(send, 401, {"error": "invalid_token"}, [(b"www-authenticate", challenge)])
            return
        app = self.sse_app if path.startswith("/mcp/sse") else self.http_app
        await app(scope, receive, send)


def create_app(token: str | None) -> ASGIApp:
    server = build_server()
    http_app = server.streamable_http_app(json_response=True, stateless_http=True)
    sse_app = server.sse_app(sse_path="/mcp/sse", message_path="/mcp/sse/messages/")
    return Router(http_app, sse_app, token)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default=None, help="required bearer token (none: no auth)")
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.token), host="127.0.0.1", port=args.port, log_level="warning",
                timeout_graceful_shutdown=2)


if __name__ == "__main__":
    main()
