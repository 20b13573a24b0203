"""The official MCP Python SDK's OAuth client against this service: discovery → DCR → authorize →
token → refresh, through a tiny gateway stand-in that serves the 401 challenge and PRM (RFC 9728)
and reverse-proxies the auth paths exactly as the real gateway does."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
import uvicorn

from till_common.jwt import AccessTokenVerifier, JwksCache
from till_common.permissions import ALL_SCOPES

mcp_auth = pytest.importorskip("mcp.client.auth")
httpx2 = pytest.importorskip("httpx2")
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken  # noqa: E402

CALLBACK = "http://127.0.0.1:9/callback"     # never fetched: the handler reads the redirect itself


def gateway_app(public: str, auth_url: str, internal_token: str) -> Any:
    prm = {"resource": public + "/mcp", "authorization_servers": [public], "scopes_supported": list(ALL_SCOPES),
           "bearer_methods_supported": ["header"]}

    async def fetch_jwks() -> bytes:
        async with httpx.AsyncClient() as c:
            return (await c.get(auth_url + "/.well-known/jwks.json")).content

    verifier = AccessTokenVerifier(JwksCache(fetch_jwks), issuer=public,
                                   audiences=[public, public + "/mcp", public + "/mcp/sse"])

    async def respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path, headers = scope["path"], dict(scope["headers"])
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        if path.startswith("/.well-known/oauth-protected-resource"):
            import json

            await respond(send, 200, json.dumps(prm).encode(), [(b"content-type", b"application/json")])
            return
        if path == "/mcp":
            token = headers.get(b"authorization", b"").decode().removeprefix("Bearer ")
            try:
                claims = await verifier.verify(token)
            except Exception:
                challenge = f'Bearer resource_metadata="{public}/.well-known/oauth-protected-resource/mcp"'
                await respond(send, 401, b"", [(b"www-authenticate", challenge.encode())])
                return
            await respond(send, 200, f'{{"sub": "{claims.sub}"}}'.encode(), [(b"content-type", b"application/json")])
            return
        forward = {k.decode(): v.decode() for k, v in scope["headers"]
                   if k.lower() not in (b"host", b"content-length") and not k.lower().startswith(b"x-")}
        forward.update({"X-Forwarded-For": scope["client"][0], "X-Forwarded-Proto": "http",
                        "X-Till-Gateway": internal_token})
        query = scope["query_string"].decode()
        async with httpx.AsyncClient() as c:
            upstream = await c.request(scope["method"], auth_url + path + ("?" + query if query else ""),
                                       content=body, headers=forward)
        out = [(k.encode(), v.encode()) for k, v in upstream.headers.multi_items()
               if k.lower() not in ("content-length", "transfer-encoding", "content-encoding", "connection")]
        await respond(send, upstream.status_code, upstream.content, out)

    return app


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def test_official_sdk_oauth_client_completes_discovery_registration_authorization_and_refresh(
        sqlite_template, tmp_path, helpers) -> None:
    db = tmp_path / "auth.db"
    shutil.copyfile(sqlite_template, db)
    gw_port, auth_port = helpers.free_port(), helpers.free_port()
    public = f"http://127.0.0.1:{gw_port}"
    srv = helpers.serve(helpers.make_settings(f"sqlite+aiosqlite:///{db}", gw_port), auth_port)
    gw = uvicorn.Server(uvicorn.Config(gateway_app(public, srv.url, srv.settings.internal_token), host="127.0.0.1",
                                       port=gw_port, log_config=None, access_log=False, lifespan="off"))
    thread = threading.Thread(target=gw.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not gw.started and time.monotonic() < deadline:
        time.sleep(0.02)
    seen: dict[str, str] = {}

    async def scenario() -> None:
        result: dict[str, AuthorizationCodeResult] = {}

        async def redirect_handler(url: str) -> None:
            # a person in a browser: log in, approve, land on the callback
            seen["authorize_url"] = url
            async with httpx.AsyncClient(follow_redirects=False, timeout=30) as browser:
                r = await browser.get(url)
                while r.status_code in (302, 303) and not r.headers["location"].startswith(CALLBACK):
                    r = await browser.get(urljoin(public, r.headers["location"]))
                    if r.status_code == 200 and 'action="/login"' in r.text:
                        r = await browser.post(public + "/login", data={
                            "email": helpers.OWNER, "password": helpers.PASSWORD,
                            "csrf": helpers.hidden(r.text, "csrf"), "next": helpers.hidden(r.text, "next")})
                assert r.status_code == 200, r.text[:300]
                r = await browser.post(public + "/mcp/oauth/authorize/decision", data={
                    "csrf": helpers.hidden(r.text, "csrf"), "request": helpers.hidden(r.text, "request"),
                    "decision": "approve"})
                location = r.headers["location"]
                assert location.startswith(CALLBACK)
                q = helpers.query_of(location)
                result["r"] = AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss"))

        async def callback_handler() -> AuthorizationCodeResult:
            return result["r"]

        storage = MemoryStorage()
        provider = mcp_auth.OAuthClientProvider(
            server_url=public + "/mcp",
            client_metadata=OAuthClientMetadata(client_name="MCP SDK test", redirect_uris=[CALLBACK],
                                                grant_types=["authorization_code", "refresh_token"],
                                                response_types=["code"], token_endpoint_auth_method="none"),
            storage=storage, redirect_handler=redirect_handler, callback_handler=callback_handler)
        async with httpx2.AsyncClient(auth=provider, timeout=30) as client:
            r = await client.post(public + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
            assert r.status_code == 200, r.text
            assert r.json() == {"sub": "1"}
            assert storage.tokens is not None
            assert storage.tokens.refresh_token
            first_access = storage.tokens.access_token
            # expire the access token: the SDK refreshes through the rotated refresh token
            provider.context.token_expiry_time = time.time() - 1
            r = await client.post(public + "/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "ping"})
            assert r.status_code == 200
            assert storage.tokens.access_token != first_access
        assert storage.client is not None
        seen["client_id"] = storage.client.client_id

    try:
        asyncio.run(scenario())
        assert "resource=" in seen["authorize_url"]
        clients = srv.admin().get("/admin/v1/clients").json()
        assert seen["client_id"] in [c["client_id"] for c in clients]
    finally:
        gw.should_exit = True
        thread.join(10)
        srv.stop()
