"""In-test upstream: a small aiohttp server implementing the auth and tools internal contracts.

It runs on its own event loop in a thread, so a gateway subprocess (and the test's own loop)
can talk to it.  Everything it receives is recorded, for GW-10.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from tests.support import Service, clean_environ, free_port

INTERNAL = "internal-" + "i" * 40

PRODUCT_SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                  "required": ["id", "name"]}
TOOLS = [
    {"name": "get_product", "title": "Get product", "description": "One product by id.",
     "inputSchema": {"type": "object", "properties": {"id": {"type": "integer", "description": "product id"}},
                     "required": ["id"]},
     "outputSchema": PRODUCT_SCHEMA, "annotations": {"readOnlyHint": True}},
    {"name": "create_product", "title": "Create product", "description": "Create a product.",
     "inputSchema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
     "outputSchema": PRODUCT_SCHEMA, "annotations": {"destructiveHint": False}},
    {"name": "slow", "description": "Sleeps.", "inputSchema": {"type": "object", "properties": {
        "seconds": {"type": "number"}}}},
]
PERMISSION = {"get_product": "products:read", "create_product": "products:write", "slow": "products:read"}
RESOURCES = [{"uri": "store://settings", "name": "settings", "mimeType": "application/json"}]
TEMPLATES = [{"uriTemplate": "store://products/{id}", "name": "product"}]
PROMPTS = [{"name": "weekly_report", "description": "Summarise the week.", "arguments": []}]


@dataclass
class Upstream:
    url: str = ""
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    kid: str = "k1"
    pats: dict[str, dict[str, Any]] = field(default_factory=dict)
    revocations: list[dict[str, Any]] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)
    auth_down: bool = False
    tools_down: bool = False
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread = field(default_factory=threading.Thread)

    # --- tokens ---------------------------------------------------------------------------------
    def mint(self, public_url: str, *, sub: str = "1", store_id: int = 1, role: str = "owner",
             scope: str = "products:read products:write", aud: str | None = None, client_id: str = "client-1",
             iat: int | None = None, exp: int | None = None, gid: str | None = None, jti: str | None = None,
             **extra: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": public_url, "sub": sub, "aud": aud or public_url + "/mcp",
                                  "client_id": client_id, "scope": scope, "store_id": store_id,
                                  "jti": jti or secrets.token_hex(8), "iat": iat if iat is not None else now,
                                  "exp": exp if exp is not None else now + 3600, "role": role, **extra}
        if gid is not None:
            claims["gid"] = gid
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid, "typ": "at+jwt"})

    def pat(self, *, sub: str = "1", store_id: int = 1, role: str = "owner",
            scope: str = "products:read products:write", iat: int | None = None) -> tuple[str, str]:
        token = "till_pat_" + secrets.token_urlsafe(32)
        pat_id = "pat-" + secrets.token_hex(4)
        self.pats[token] = {"active": True, "sub": sub, "store_id": store_id, "role": role, "scope": scope,
                            "jti": pat_id, "iat": iat if iat is not None else int(time.time()) - 5,
                            "exp": int(time.time()) + 86400 * 365, "token_kind": "pat"}
        return token, pat_id

    def revoke(self, kind: str, value: str, before: int | None = None) -> dict[str, Any]:
        event = {"seq": len(self.revocations) + 1, "kind": kind, "value": value,
                 "before": before if before is not None else int(time.time()), "at": "2026-01-01T00:00:00Z"}
        self.revocations.append(event)
        return event

    # --- handlers -------------------------------------------------------------------------------
    def _internal(self, request: web.Request) -> None:
        self.seen.append({"path": request.path, "headers": dict(request.headers)})
        if request.headers.get("Authorization") != f"Bearer {INTERNAL}":
            raise web.HTTPUnauthorized()

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def jwks(self, request: web.Request) -> web.Response:
        if self.auth_down:
            raise web.HTTPServiceUnavailable()
        jwk = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, use="sig", alg="ES256")
        return web.json_response({"keys": [jwk]})

    async def introspect(self, request: web.Request) -> web.Response:
        self._internal(request)
        if self.auth_down:
            raise web.HTTPServiceUnavailable()
        form = await request.post()
        return web.json_response(self.pats.get(str(form.get("token")), {"active": False}))

    async def revocation_feed(self, request: web.Request) -> web.Response:
        self._internal(request)
        after = int(request.query.get("after", "0"))
        events = [e for e in self.revocations if e["seq"] > after][:2]     # small pages: exercise paging
        cursor = events[-1]["seq"] if events else after
        return web.json_response({"events": events, "cursor": cursor})

    async def catalogue(self, request: web.Request) -> web.Response:
        self._internal(request)
        return web.json_response({"tools": TOOLS, "resources": RESOURCES, "resourceTemplates": TEMPLATES,
                                  "prompts": PROMPTS})

    async def rpc(self, request: web.Request) -> web.Response:
        self._internal(request)
        if self.tools_down:
            await asyncio.sleep(60)
        body = await request.json()
        self.seen[-1]["body"] = body
        principal, method, params = body["principal"], body["method"], body.get("params", {})
        if method == "tools/list":
            return web.json_response({"result": {"tools": TOOLS}})
        if method == "tools/call":
            name = params.get("name")
            if name not in PERMISSION:
                return web.json_response({"error": {"code": -32602, "message": f"unknown tool {name}"}})
            if PERMISSION[name] not in principal["scopes"]:
                return web.json_response({"error": {"code": -32043, "message": "insufficient scope",
                                                    "data": {"scope": PERMISSION[name]}}})
            args = params.get("arguments") or {}
            if name == "slow":
                await asyncio.sleep(float(args.get("seconds", 1)))
            product = {"id": int(args.get("id", 7)), "name": args.get("name", "Classic T-Shirt")}
            return web.json_response({"result": {
                "content": [{"type": "text", "text": json.dumps(product)}], "structuredContent": product,
                "isError": False}})
        if method == "resources/list":
            return web.json_response({"result": {"resources": RESOURCES}})
        if method == "resources/templates/list":
            return web.json_response({"result": {"resourceTemplates": TEMPLATES}})
        if method == "resources/read":
            return web.json_response({"result": {"contents": [
                {"uri": params["uri"], "mimeType": "application/json",
                 "text": json.dumps({"store_id": principal["store_id"]})}]}})
        if method == "prompts/list":
            return web.json_response({"result": {"prompts": PROMPTS}})
        if method == "prompts/get":
            return web.json_response({"result": {"messages": [
                {"role": "user", "content": {"type": "text", "text": "Summarise my week."}}]}})
        return web.json_response({"error": {"code": -32601, "message": "no"}})

    async def no_batch(self, request: web.Request) -> web.Response:
        """A tools older than the batch route (D880): litestar answers a path it has no route for with 404."""
        self.seen.append({"path": request.path, "headers": dict(request.headers), "status": 404})
        return web.json_response({"status": 404, "title": "Not Found"}, status=404)

    async def echo(self, request: web.Request) -> web.Response:
        """Stands in for auth's public pages: shows what arrived, sets cookies, redirects."""
        body = await request.read()
        data = {"method": request.method, "path": request.path, "query": request.query_string,
                "headers": {k: v for k, v in request.headers.items() if k.lower() != "cookie"},
                "cookie": request.headers.get("Cookie"), "body": body.decode(errors="replace")}
        if request.path == "/login" and request.method == "POST":
            resp = web.Response(status=302, headers={"Location": "/settings/connector"})
        else:
            resp = web.json_response(data)
        resp.headers.add("Set-Cookie", "a=1; Path=/; HttpOnly")
        resp.headers.add("Set-Cookie", "b=2; Path=/")
        return resp

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.health)
        app.router.add_get("/.well-known/jwks.json", self.jwks)
        app.router.add_post("/internal/v1/introspect", self.introspect)
        app.router.add_get("/internal/v1/revocations", self.revocation_feed)
        app.router.add_get("/internal/v1/catalogue", self.catalogue)
        app.router.add_post("/internal/v1/rpc", self.rpc)
        app.router.add_post("/internal/v1/rpc/batch", self.no_batch)
        app.router.add_route("*", "/{tail:.*}", self.echo)
        return app

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self, port: int | None = None) -> Upstream:
        port = port or free_port()
        self.url = f"http://127.0.0.1:{port}"
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._runner = web.AppRunner(self.app(), access_log=None)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", port).start())
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        started.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None


@dataclass
class Gateways:
    upstream: Upstream
    public_url: str
    start: Callable[..., Service]
    first_port: int

    def token(self, **kw: object) -> str:
        return self.upstream.mint(self.public_url, **kw)  # type: ignore[arg-type]


def gateway_env(up: Upstream, public_url: str, **extra: str) -> dict[str, str]:
    defaults = {"TILL_AUTH_URL": up.url, "TILL_TOOLS_URL": up.url, "TILL_PUBLIC_URL": public_url,
                "TILL_HEARTBEAT_INTERVAL": "1", "TILL_SESSION_TTL": "6", "TILL_UPSTREAM_TIMEOUT": "3",
                "TILL_LOG_LEVEL": "warning"}
    return clean_environ(**{**defaults, **extra})      # extra may override a default
