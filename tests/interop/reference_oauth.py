"""An in-memory OAuth 2.1 authorization server for the reference server's OAuth cells.

It plugs into the MCP Python SDK's own AS routes (``/authorize``, ``/token``, ``/register``,
metadata, PRM; PKCE and DCR are the SDK's) and adds what the SDK leaves to the application: the
merchant's login and consent pages, with the field names SPEC §5 gives Till's pages (``email``,
``password``; ``decision=approve|deny``; a CSRF token in every form).  That is what lets the
OAuth cells of the matrix (Python SDK, TypeScript SDK, mcp-remote) be proven before Till's AS
exists.  Test fixture only: codes and tokens live in dicts, nothing is persisted.
"""

from __future__ import annotations

import hmac
import html
import secrets
import time
from dataclasses import dataclass, field

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

SESSION_COOKIE = "ref_session"


@dataclass
class Pending:
    client: OAuthClientInformationFull
    params: AuthorizationParams
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(16))


class InMemoryAuthServer:
    """``OAuthAuthorizationServerProvider`` plus the two pages; one static bearer token stays valid."""

    def __init__(self, base_url: str, email: str, password: str, static_token: str | None) -> None:
        self.base_url, self.email, self.password, self.static_token = base_url, email, password, static_token
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.pending: dict[str, Pending] = {}
        self.sessions: set[str] = set()
        self.codes: dict[str, AuthorizationCode] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}

    # --- OAuthAuthorizationServerProvider ---------------------------------------------------------

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        txn = secrets.token_urlsafe(12)
        self.pending[txn] = Pending(client, params)
        return f"{self.base_url}/login?txn={txn}"

    async def load_authorization_code(self, client: OAuthClientInformationFull,
                                      authorization_code: str) -> AuthorizationCode | None:
        code = self.codes.get(authorization_code)
        return code if code is not None and code.client_id == client.client_id else None

    async def exchange_authorization_code(self, client: OAuthClientInformationFull,
                                          authorization_code: AuthorizationCode) -> OAuthToken:
        self.codes.pop(authorization_code.code, None)
        return self._issue(client, authorization_code.scopes, authorization_code.resource)

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        found = self.refresh.get(refresh_token)
        return found if found is not None and found.client_id == client.client_id else None

    async def exchange_refresh_token(self, client: OAuthClientInformationFull, refresh_token: RefreshToken,
                                     scopes: list[str]) -> OAuthToken:
        self.refresh.pop(refresh_token.token, None)
        return self._issue(client, scopes or refresh_token.scopes, refresh_token.resource)

    async def load_access_token(self, token: str) -> AccessToken | None:
        if self.static_token and hmac.compare_digest(token, self.static_token):
            return AccessToken(token=token, client_id="static-token", scopes=[])
        found = self.tokens.get(token)
        if found is None or (found.expires_at is not None and found.expires_at < time.time()):
            return None
        return found

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.tokens.pop(token.token, None)
        self.refresh.pop(token.token, None)

    def _issue(self, client: OAuthClientInformationFull, scopes: list[str], resource: str | None) -> OAuthToken:
        assert client.client_id is not None
        access, refresh = "ref_at_" + secrets.token_urlsafe(24), "ref_rt_" + secrets.token_urlsafe(24)
        expires = int(time.time()) + 3600
        self.tokens[access] = AccessToken(token=access, client_id=client.client_id, scopes=scopes,
                                          expires_at=expires, resource=resource)
        self.refresh[refresh] = RefreshToken(token=refresh, client_id=client.client_id, scopes=scopes,
                                             resource=resource)
        return OAuthToken(access_token=access, expires_in=3600, refresh_token=refresh,
                          scope=" ".join(scopes) or None)

    # --- pages --------------------------------------------------------------------------------

    def _page(self, body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(f"<!doctype html><html><body>{body}</body></html>", status_code=status,
                            headers={"Content-Security-Policy": "frame-ancestors 'none'"})

    async def login(self, request: Request) -> Response:
        txn = request.query_params.get("txn", "")
        pending = self.pending.get(txn)
        if pending is None:
            return self._page("<p>Unknown or expired authorization request.</p>", 400)
        failed = False
        if request.method == "POST":
            form = await request.form()
            if not hmac.compare_digest(str(form.get("csrf_token", "")), pending.csrf):
                return self._page("<p>Bad CSRF token.</p>", 403)
            ok = hmac.compare_digest(str(form.get("email", "")), self.email) & hmac.compare_digest(
                str(form.get("password", "")), self.password)
            if ok:
                session = secrets.token_urlsafe(16)
                self.sessions.add(session)
                response = RedirectResponse(f"/consent?txn={txn}", status_code=303)
                response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="lax")
                return response
            failed = True
        return self._page(
            ("<p>Wrong email or password.</p>" if failed else "") +
            f'<form method="post" action="/login?txn={html.escape(txn)}">'
            f'<input type="hidden" name="csrf_token" value="{pending.csrf}">'
            '<label>Email <input type="email" name="email"></label>'
            '<label>Password <input type="password" name="password"></label>'
            '<button type="submit">Log in</button></form>')

    async def consent(self, request: Request) -> Response:
        txn = request.query_params.get("txn", "")
        pending = self.pending.get(txn)
        if pending is None or request.cookies.get(SESSION_COOKIE) not in self.sessions:
            return self._page("<p>Log in first.</p>", 403)
        if request.method == "POST":
            form = await request.form()
            if not hmac.compare_digest(str(form.get("csrf_token", "")), pending.csrf):
                return self._page("<p>Bad CSRF token.</p>", 403)
            del self.pending[txn]
            params = pending.params
            if form.get("decision") != "approve":
                return RedirectResponse(construct_redirect_uri(str(params.redirect_uri), error="access_denied",
                                                               state=params.state), status_code=302)
            code = "ref_code_" + secrets.token_urlsafe(24)
            assert pending.client.client_id is not None
            self.codes[code] = AuthorizationCode(
                code=code, scopes=params.scopes or [], expires_at=time.time() + 300,
                client_id=pending.client.client_id, code_challenge=params.code_challenge,
                redirect_uri=params.redirect_uri, resource=params.resource, subject=self.email,
                redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly)
            return RedirectResponse(construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state),
                                    status_code=302)
        name = html.escape(pending.client.client_name or pending.client.client_id or "an app")
        return self._page(
            f"<p>Allow <b>{name}</b> to use the reference server?</p>"
            f'<form method="post" action="/consent?txn={html.escape(txn)}">'
            f'<input type="hidden" name="csrf_token" value="{pending.csrf}">'
            '<button type="submit" name="decision" value="deny">Deny</button>'
            '<button type="submit" name="decision" value="approve">Approve</button></form>')
