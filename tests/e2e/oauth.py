"""An OAuth access token from Till the way an MCP client gets one: RFC 7591 registration, the
authorization request with PKCE and ``resource``, Till's real login and consent pages (filled by
tests.interop.oauth_forms), and the code exchange, all through the public origin."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from tests.e2e.stack import Stack
from tests.interop.oauth_forms import ScriptedBrowser

REDIRECT_URI = "http://127.0.0.1:53999/callback"


@dataclass(frozen=True)
class Grant:
    client_id: str
    access_token: str
    refresh_token: str
    scope: str


async def oauth_grant(stack: Stack, email: str, scope: str | None = None) -> Grant:
    async with httpx.AsyncClient(timeout=15) as http:
        meta = (await http.get(stack.url + "/.well-known/oauth-authorization-server")).json()
        reg = await http.post(meta["registration_endpoint"], json={
            "client_name": "till e2e", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]})
        assert reg.status_code == 201, reg.text
        client_id = reg.json()["client_id"]
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = secrets.token_urlsafe(16)
        query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
                 "code_challenge": challenge, "code_challenge_method": "S256", "state": state,
                 "resource": stack.mcp_url, **({"scope": scope} if scope else {})}
        async with ScriptedBrowser(email, stack.demo_password, redirect_uri=REDIRECT_URI) as browser:
            got = await browser.authorize(f"{meta['authorization_endpoint']}?{urlencode(query)}")
        assert got.state == state
        assert got.iss == stack.url
        token = await http.post(meta["token_endpoint"], data={
            "grant_type": "authorization_code", "code": got.code, "client_id": client_id,
            "redirect_uri": REDIRECT_URI, "code_verifier": verifier, "resource": stack.mcp_url})
        assert token.status_code == 200, token.text
        body = token.json()
    return Grant(client_id, body["access_token"], body.get("refresh_token", ""), body.get("scope", ""))
