"""The reference server the client matrix is proven against: the official MCP Python SDK.

``python -m tests.interop.reference_server --port N [--token T]`` serves, on 127.0.0.1:

- ``POST /mcp``: Streamable HTTP (stateless, JSON responses, like Till's gateway);
- ``GET /mcp/sse`` + ``POST /mcp/sse/messages/?session_id=``: the legacy 2024-11-05 transport;
- ``GET /healthz``: liveness, for the harness's wait loop.

One tool ``echo``, one resource ``ref://greeting``, one prompt ``greet``: the smallest surface every
client of the matrix touches.  With ``--token`` every MCP path requires ``Authorization: Bearer
<token>`` (compared in constant time) and answers 401 with a ``WWW-Authenticate`` challenge
otherwise, which is what makes the "token" cells of the matrix mean something.

With ``--oauth-login EMAIL:PASSWORD`` the SDK's own OAuth 2.1 authorization server is mounted
too (metadata, PRM, DCR, PKCE, token), with reference_oauth's login and consent pages, and the
SDK's bearer middleware replaces the static check (the ``--token`` stays valid).
"""

from __future__ import annotations

import argparse
import hmac
import json
from typing import Any

from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.interop.reference_oauth import InMemoryAuthServer

GREETING = "Hello from the reference server."


def build_server(oauth: InMemoryAuthServer | None = None) -> MCPServer:
    if oauth is None:
        server: MCPServer = MCPServer(name="till-interop-reference", version="1.0.0")
    else:
        # plain strings: AnyHttpUrl would add a trailing slash to the issuer (RFC 8414 compares exactly)
        settings = AuthSettings.model_validate({
            "issuer_url": oauth.base_url, "resource_server_url": oauth.base_url + "/mcp",
            "client_registration_options": ClientRegistrationOptions(enabled=True),
            "revocation_options": RevocationOptions(enabled=True), "validate_token_resource": False})
        server = MCPServer(name="till-interop-reference", version="1.0.0", auth_server_provider=oauth,
                           auth=settings)
        server.custom_route("/login", methods=["GET", "POST"])(oauth.login)
        server.custom_route("/consent", methods=["GET", "POST"])(oauth.consent)

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


def create_app(token: str | None, oauth: InMemoryAuthServer | None = None) -> ASGIApp:
    server = build_server(oauth)
    http_app = server.streamable_http_app(json_response=True, stateless_http=True)
    sse_app = server.sse_app(sse_path="/mcp/sse", message_path="/mcp/sse/messages/")
    # with OAuth the SDK's own middleware checks bearers (the static token stays valid there)
    return Router(http_app, sse_app, None if oauth else token)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default=None, help="required bearer token (none: no auth)")
    parser.add_argument("--oauth-login", default=None, metavar="EMAIL:PASSWORD",
                        help="also run an OAuth authorization server whose login page accepts this merchant")
    args = parser.parse_args(argv)
    oauth = None
    if args.oauth_login:
        email, _, password = args.oauth_login.partition(":")
        oauth = InMemoryAuthServer(f"http://127.0.0.1:{args.port}", email, password, args.token)
    uvicorn.run(create_app(args.token, oauth), host="127.0.0.1", port=args.port, log_level="warning",
                timeout_graceful_shutdown=2)


if __name__ == "__main__":
    main()
