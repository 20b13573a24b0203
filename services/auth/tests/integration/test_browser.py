"""A real browser (Debian's chromium via Playwright): log in, approve consent, land on the callback
with a code; the consent page escapes hostile names (WP-03) and cannot be framed (WP-02)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@pytest.fixture
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("TILL_REQUIRE_SERVICES") == "1":
            pytest.fail("chromium is missing at /usr/bin/chromium (TILL_REQUIRE_SERVICES=1)")
        pytest.skip("chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


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
