"""A real browser (Debian's chromium via Playwright): log in, approve consent, land on the callback
with a code; the consent page escapes hostile names (WP-03) and cannot be framed (WP-02)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest
from tests.support import chromium


@pytest.fixture
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


class Callback(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (b"<html><body>callback</body></html>" if self.path.startswith("/cb") else
                self.server.frame_page)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def callback_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Callback)
    server.frame_page = b""  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_browser_logs_in_approves_consent_and_lands_on_the_redirect_with_a_code(auth, browser, helpers,
                                                                                 callback_server) -> None:
    port = callback_server.server_address[1]
    redirect = "http://127.0.0.1/cb"
    hostile = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
    client = auth.http().post("/mcp/oauth/register", json={
        "client_name": hostile, "redirect_uris": [redirect], "token_endpoint_auth_method": "none"}).json()
    verifier, challenge = helpers.verifier_pair()
    query = urlencode({"response_type": "code", "client_id": client["client_id"],
                       "redirect_uri": f"http://127.0.0.1:{port}/cb", "code_challenge": challenge,
                       "code_challenge_method": "S256", "state": "a&b ✓"})
    page = browser.new_page()  # type: ignore[attr-defined]
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{auth.url}/mcp/oauth/authorize?{query}")
    assert "/login" in page.url
    page.fill("#email", helpers.OWNER)
    page.fill("#password", helpers.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#approve")
    assert page.inner_text("#client-name") == hostile              # literal text, not markup
    assert page.is_visible("#local-warning")
    with page.expect_navigation(url=f"http://127.0.0.1:{port}/cb**"):
        page.click("#approve")
    q = helpers.query_of(page.url)
    assert q["state"] == "a&b ✓"
    assert q["iss"] == auth.issuer
    assert dialogs == []
    r = auth.http().post("/mcp/oauth/token", data={
        "grant_type": "authorization_code", "code": q["code"], "code_verifier": verifier,
        "client_id": client["client_id"], "redirect_uri": f"http://127.0.0.1:{port}/cb"})
    assert r.status_code == 200, r.text


def test_wp02_pages_stay_blank_when_framed(auth, browser, callback_server) -> None:
    callback_server.frame_page = (f'<html><body><iframe id="f" src="{auth.url}/login"></iframe>'  # type: ignore[attr-defined]
                                  "</body></html>").encode()
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(f"http://127.0.0.1:{callback_server.server_address[1]}/frame")
    page.wait_for_timeout(500)
    frame = page.frame_locator("#f")
    assert frame.locator("#email").count() == 0


def test_wp04_consent_for_a_client_named_claude_shows_who_where_and_what(auth, browser, helpers) -> None:
    """C2 calls itself "Claude": the page must still show its client_id, where the code goes, and the
    scopes in plain words, so that the merchant can tell it from the real one (WP-04); the page near
    the code is never cached and never leaks a Referer (WP-09)."""
    from till_common.permissions import SCOPE_DESCRIPTIONS

    redirect = "https://claude.example.net/api/mcp/auth_callback"
    c2 = auth.http().post("/mcp/oauth/register", json={
        "client_name": "Claude", "redirect_uris": [redirect], "token_endpoint_auth_method": "none"}).json()
    _, challenge = helpers.verifier_pair()
    requested = ["products:read", "orders:write"]
    query = urlencode({"response_type": "code", "client_id": c2["client_id"], "redirect_uri": redirect,
                       "code_challenge": challenge, "code_challenge_method": "S256", "state": "s",
                       "scope": " ".join(requested)})
    page = browser.new_page()  # type: ignore[attr-defined]
    consent_responses = []
    page.on("response", lambda r: consent_responses.append(r)
            if "/mcp/oauth/authorize?" in r.url and r.status == 200 else None)
    page.goto(f"{auth.url}/mcp/oauth/authorize?{query}")
    page.fill("#email", helpers.OWNER)
    page.fill("#password", helpers.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#approve")
    assert page.inner_text("#client-name") == "Claude"
    assert page.inner_text("#client-id") == c2["client_id"]
    assert page.inner_text("#redirect-host") == "claude.example.net"
    items = page.locator("#scopes li").all_inner_texts()
    assert [i.split(" (")[0] for i in items] == [SCOPE_DESCRIPTIONS[s] for s in requested]
    assert all(s in " ".join(items) for s in requested)
    assert page.locator("#local-warning").count() == 0            # a web redirect, not a local app
    headers = consent_responses[-1].headers
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
