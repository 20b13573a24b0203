"""``till doctor URL``: walk the discovery and OAuth chain an MCP client walks; say which step fails.

The steps follow MCP authorization (2025-06-18 / 2025-11-25) and SPEC §9, the list of things
clients are known to trip on: the 401 challenge, RFC 9728 protected-resource metadata, RFC 8414
authorization-server metadata, JWKS, RFC 7591 registration, an authorization URL with PKCE, and
the token endpoint's answer to an unknown client.  Each step prints PASS/FAIL and, on failure,
the fix.  With ``--token`` it also initializes an MCP session and lists tools.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import re
import secrets
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

from till_common.jwt import canonical_resource


@dataclass
class Step:
    name: str
    ok: bool
    detail: str = ""
    fix: str = ""


@dataclass
class Walk:
    url: str
    steps: list[Step] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, ok: bool, detail: str = "", fix: str = "") -> bool:
        self.steps.append(Step(name, ok, detail, "" if ok else fix))
        return ok

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("doctor", help="check what an MCP client will see at URL")
    p.add_argument("url", help="the MCP server URL, e.g. https://till.example/mcp")
    p.add_argument("--token", help="also initialize and list tools with this bearer token")
    p.add_argument("--no-register", action="store_true", help="skip the dynamic client registration step")
    p.set_defaults(run=run)


_PARAM = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    params = dict(_PARAM.findall(rest))
    params["scheme"] = scheme
    return params


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "till-doctor", "version": "1"}}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url, allow_redirects=False) as r:
        try:
            return r.status, await r.json(content_type=None)
        except ValueError:
            return r.status, None


async def walk(url: str, *, token: str | None = None, do_register: bool = True) -> Walk:
    w = Walk(url)
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        try:
            if not await challenge(w, http):
                return w
            if not await protected_resource(w, http):
                return w
            if not await authorization_server(w, http):
                return w
            await jwks(w, http)
            if do_register:
                await registration(w, http)
            await unknown_client(w, http)
            if token:
                await with_token(w, http, token)
        except aiohttp.ClientError as exc:
            w.add("reach the server", False, f"{type(exc).__name__}: {exc}",
                  "check the URL, DNS, TLS and that the gateway is running")
        except TimeoutError:
            w.add("reach the server", False, "timed out after 15 s", "check the server and any proxy in front")
    return w


async def challenge(w: Walk, http: aiohttp.ClientSession) -> bool:
    async with http.post(w.url, json=INIT, headers=HEADERS, allow_redirects=False) as r:
        status, header = r.status, r.headers.get("WWW-Authenticate", "")
    if status != 401:
        return w.add("401 challenge without a token", False, f"got HTTP {status}",
                     "the MCP endpoint must answer 401 to a request without a token")
    if not header:
        return w.add("401 challenge without a token", False, "401 without WWW-Authenticate",
                     "send WWW-Authenticate: Bearer resource_metadata=\"<absolute PRM URL>\"; "
                     "clients never start OAuth without it")
    params = parse_challenge(header)
    prm = params.get("resource_metadata", "")
    if params["scheme"].lower() != "bearer" or not prm.startswith(("https://", "http://")):
        return w.add("401 challenge without a token", False, f"WWW-Authenticate: {header}",
                     "use the Bearer scheme with an absolute resource_metadata URL")
    w.facts["prm_url"] = prm
    return w.add("401 challenge without a token", True, f"resource_metadata={prm}")


async def protected_resource(w: Walk, http: aiohttp.ClientSession) -> bool:
    status, doc = await get_json(http, w.facts["prm_url"])
    if status != 200 or not isinstance(doc, dict):
        return w.add("protected-resource metadata (RFC 9728)", False, f"HTTP {status}",
                     "serve the PRM document at the URL the challenge names")
    resource, servers = doc.get("resource", ""), doc.get("authorization_servers") or []
    if canonical_resource(resource) != canonical_resource(w.url):
        return w.add("protected-resource metadata (RFC 9728)", False,
                     f"resource {resource!r} is not {w.url!r}",
                     "the PRM `resource` must name the URL the client connects to")
    if not servers:
        return w.add("protected-resource metadata (RFC 9728)", False, "no authorization_servers",
                     "list the issuer in authorization_servers")
    w.facts["issuer"] = servers[0]
    return w.add("protected-resource metadata (RFC 9728)", True, f"issuer {servers[0]}")


async def authorization_server(w: Walk, http: aiohttp.ClientSession) -> bool:
    issuer: str = w.facts["issuer"]
    parts = urlsplit(issuer)
    meta_url = f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{parts.path.rstrip('/')}"
    status, meta = await get_json(http, meta_url)
    name = "authorization-server metadata (RFC 8414)"
    if status != 200 or not isinstance(meta, dict):
        return w.add(name, False, f"GET {meta_url} → HTTP {status}", "serve RFC 8414 metadata at that URL")
    if str(meta.get("issuer", "")).endswith("/"):
        return w.add(name, False, f"issuer {meta.get('issuer')!r} has a trailing slash",
                     "publish the issuer without a trailing slash (TILL_PUBLIC_URL); SDKs compare it exactly")
    if meta.get("issuer") != issuer:
        return w.add(name, False, f"issuer {meta.get('issuer')!r} ≠ {issuer!r}",
                     "issuer must equal the PRM's authorization server exactly (no trailing slash)")
    if "S256" not in (meta.get("code_challenge_methods_supported") or []):
        return w.add(name, False, "S256 not in code_challenge_methods_supported",
                     "advertise PKCE S256; clients refuse servers without it")
    missing = [k for k in ("authorization_endpoint", "token_endpoint") if not meta.get(k)]
    if missing:
        return w.add(name, False, f"missing {', '.join(missing)}", "advertise every endpoint")
    w.facts["meta"] = meta
    return w.add(name, True, f"{meta_url}")


async def jwks(w: Walk, http: aiohttp.ClientSession) -> bool:
    uri = w.facts["meta"].get("jwks_uri")
    if not uri:
        return w.add("JWKS", True, "no jwks_uri advertised (opaque tokens)")
    status, doc = await get_json(http, uri)
    keys = doc.get("keys", []) if isinstance(doc, dict) else []
    if status != 200 or not keys:
        return w.add("JWKS", False, f"HTTP {status}, {len(keys)} keys", "publish the signing keys at jwks_uri")
    private = [k.get("kid") for k in keys if "d" in k or k.get("kty") == "oct"]
    if private:
        return w.add("JWKS", False, f"private or symmetric key material in {private}",
                     "publish public keys only; rotate the exposed keys now")
    return w.add("JWKS", True, f"{len(keys)} key(s): {', '.join(str(k.get('kid')) for k in keys)}")


async def registration(w: Walk, http: aiohttp.ClientSession) -> bool:
    meta = w.facts["meta"]
    endpoint = meta.get("registration_endpoint")
    if not endpoint:
        return w.add("dynamic client registration (RFC 7591)", False, "no registration_endpoint",
                     "claude.ai registers itself; advertise registration_endpoint")
    redirect = "http://127.0.0.1:33418/callback"
    body = {"client_name": "till doctor", "redirect_uris": [redirect], "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]}
    async with http.post(endpoint, json=body) as r:
        status = r.status
        doc = await r.json(content_type=None) if r.content_type == "application/json" else None
    if status != 201 or not isinstance(doc, dict) or "client_id" not in doc:
        return w.add("dynamic client registration (RFC 7591)", False, f"HTTP {status}: {doc}",
                     "accept a public client with a loopback redirect URI (RFC 8252 §7.3)")
    w.add("dynamic client registration (RFC 7591)", True, f"client_id {doc['client_id']}")
    await authorize_url(w, http, doc["client_id"], redirect)
    if doc.get("registration_client_uri") and doc.get("registration_access_token"):
        async with http.delete(doc["registration_client_uri"],
                               headers={"Authorization": f"Bearer {doc['registration_access_token']}"}):
            pass
    return True


async def authorize_url(w: Walk, http: aiohttp.ClientSession, client_id: str, redirect: str) -> bool:
    verifier = secrets.token_urlsafe(48)
    challenge_ = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect,
                       "code_challenge": challenge_, "code_challenge_method": "S256", "state": "doctor",
                       "resource": w.url})
    url = f"{w.facts['meta']['authorization_endpoint']}?{query}"
    async with http.get(url, allow_redirects=False) as r:
        status, location = r.status, r.headers.get("Location", "")
    if status == 200 or (status in (302, 303) and "error=" not in location):
        return w.add("authorization request with PKCE", True, f"HTTP {status} (login or consent)")
    return w.add("authorization request with PKCE", False, f"HTTP {status} {location}",
                 "the authorization endpoint must accept a registered client with S256 and `resource`")


async def unknown_client(w: Walk, http: aiohttp.ClientSession) -> bool:
    endpoint = w.facts["meta"]["token_endpoint"]
    data = {"grant_type": "authorization_code", "code": "x", "client_id": "till-doctor-unknown",
            "redirect_uri": "http://127.0.0.1/cb", "code_verifier": "a" * 43}
    async with http.post(endpoint, data=data) as r:
        status = r.status
        doc = await r.json(content_type=None) if r.content_type == "application/json" else None
    ok = status == 401 and isinstance(doc, dict) and doc.get("error") == "invalid_client"
    return w.add("token endpoint: unknown client → 401 invalid_client", ok, f"HTTP {status} {doc}",
                 "answer 401 invalid_client so claude.ai registers again (SPEC §9)")


async def with_token(w: Walk, http: aiohttp.ClientSession, token: str) -> bool:
    headers = {**HEADERS, "Authorization": f"Bearer {token}"}
    async with http.post(w.url, json=INIT, headers=headers) as r:
        status = r.status
        doc = await r.json(content_type=None) if r.content_type == "application/json" else None
    if status != 200 or not isinstance(doc, dict) or "result" not in doc:
        return w.add("initialize with the token", False, f"HTTP {status} {doc}",
                     "the token is invalid, expired or revoked; mint a new one")
    version = doc["result"].get("protocolVersion")
    w.add("initialize with the token", True, f"protocol {version}")
    headers["MCP-Protocol-Version"] = version
    async with http.post(w.url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                         headers=headers) as r:
        doc = await r.json(content_type=None)
    tools = doc.get("result", {}).get("tools", []) if isinstance(doc, dict) else []
    return w.add("tools/list with the token", bool(tools), f"{len(tools)} tools",
                 "the token's role allows no tools; check the merchant's role")


def render(w: Walk) -> str:
    out = [f"till doctor {w.url}"]
    for s in w.steps:
        out.append(f"  {'PASS' if s.ok else 'FAIL'}  {s.name}: {s.detail}")
        if s.fix:
            out.append(f"        fix: {s.fix}")
    out.append("all checks passed" if w.ok else "some checks failed")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    w = asyncio.run(walk(args.url, token=args.token, do_register=not args.no_register))
    print(render(w), file=sys.stdout)
    return 0 if w.ok else 1
