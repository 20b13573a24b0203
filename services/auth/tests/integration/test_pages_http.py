"""Merchant pages and personal tokens over HTTP: WP rows, /mcp/token, /mcp/config."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import pytest


def logged_in(auth, Flow, email: str = "owner@demo.store"):
    flow = Flow.start(auth, email=email)
    return flow.browser


def page_csrf(browser, helpers, path: str = "/settings/connector") -> str:
    return helpers.hidden(browser.get(path).text, "csrf")


def test_wp02_wp09_every_html_page_sends_the_security_headers(auth, Flow) -> None:
    browser = logged_in(auth, Flow)
    anon = auth.http()
    for client, path in ((anon, "/login"), (browser, "/settings/connector"), (browser, "/settings/password"),
                         (anon, "/mcp/oauth/authorize?client_id=nope")):
        r = client.get(path)
        assert r.headers["content-type"].startswith("text/html"), path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cache-control"] == "no-store"


def test_wp06_session_cookie_is_rotated_at_login_and_has_safe_attributes(auth, helpers) -> None:
    browser = auth.http()
    planted = "planted-session-id"
    browser.cookies.set("till_session", planted, domain="127.0.0.1")
    page = browser.get("/login")
    r = browser.post("/login", data={"email": helpers.OWNER, "password": helpers.PASSWORD,
                                     "csrf": helpers.hidden(page.text, "csrf"), "next": "/settings/connector"})
    assert r.status_code == 303
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("till_session="))
    assert planted not in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert "Path=/" in cookie


def test_wp06_https_issuer_uses_host_prefix_and_secure(sqlite_template, tmp_path, helpers) -> None:
    import shutil

    from till_auth.settings import AuthSettings

    db = tmp_path / "auth.db"
    shutil.copyfile(sqlite_template, db)
    port = helpers.free_port()
    base = helpers.make_settings(f"sqlite+aiosqlite:///{db}", port)
    settings = AuthSettings(**{**{f: getattr(base, f) for f in base.__struct_fields__},
                               "public_url": "https://shop.example"})
    srv = helpers.serve(settings, port)
    try:
        r = srv.http().get("/login")
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("__Host-till_login=")
        assert "Secure" in cookie
        assert "Domain" not in cookie
    finally:
        srv.stop()


def test_wp07_unknown_email_and_wrong_password_look_the_same(auth, helpers) -> None:
    def attempt(email: str) -> tuple[int, str, float]:
        browser = auth.http()
        page = browser.get("/login")
        started = time.perf_counter()
        r = browser.post("/login", data={"email": email, "password": "wrong-password",
                                         "csrf": helpers.hidden(page.text, "csrf"), "next": ""})
        elapsed = time.perf_counter() - started
        body = r.text.replace(email, "EMAIL")
        body = body.replace(helpers.hidden(r.text, "csrf"), "CSRF")
        return r.status_code, body, elapsed

    known = [attempt("analyst@demo.store") for _ in range(3)]
    unknown = [attempt("nobody@demo.store") for _ in range(3)]
    assert known[0][0] == unknown[0][0] == 401
    assert known[0][1] == unknown[0][1]
    k, u = statistics.median(x[2] for x in known), statistics.median(x[2] for x in unknown)
    # both verify an argon2 hash; a missing account is not a shortcut
    assert u > k / 3


def in_one_window(check: Callable[[int], None], window: int = 60) -> None:
    """Run ``check`` so that it falls inside one of auth's clock-aligned rate-limit windows: a run that
    straddles a window boundary (the counters restart there) runs once more, as ``check(1)``, which must
    use identities (accounts, addresses) the first run did not count against."""
    for run in range(2):
        started = int(time.time()) // window
        try:
            check(run)
            return
        except AssertionError:
            if int(time.time()) // window == started:
                raise                                  # one window throughout: a real failure
    raise AssertionError("two runs in a row straddled a rate-limit window boundary")


def test_wp08_login_throttled_per_account_and_per_ip(auth, helpers) -> None:
    def attempt(email: str, ip: str) -> int:
        browser = auth.http(headers={"X-Forwarded-For": ip, "X-Till-Gateway": auth.settings.internal_token})
        page = browser.get("/login")
        return browser.post("/login", data={"email": email, "password": "wrong-password",
                                            "csrf": helpers.hidden(page.text, "csrf"), "next": ""}).status_code

    def per_account(run: int) -> None:
        account = ("manager@demo.store", "support@demo.store")[run]
        codes = [attempt(account, f"198.51.{100 + run}.{i}") for i in range(12)]
        assert codes[:10] == [401] * 10
        assert codes[-1] == 429
        # the right password is refused too while the account is locked; other accounts work
        browser = auth.http()
        page = browser.get("/login")
        r = browser.post("/login", data={"email": account, "password": helpers.PASSWORD,
                                         "csrf": helpers.hidden(page.text, "csrf"), "next": ""})
        assert r.status_code == 429
        assert r.headers["retry-after"]

    def per_ip(run: int) -> None:
        ip_codes = [attempt(f"user{i}@nowhere.example", f"192.0.2.{77 + run}") for i in range(61)]
        assert ip_codes[-1] == 429

    in_one_window(per_account)
    browser = auth.http()
    page = browser.get("/login")
    ok = browser.post("/login", data={"email": helpers.OWNER, "password": helpers.PASSWORD,
                                      "csrf": helpers.hidden(page.text, "csrf"), "next": ""})
    assert ok.status_code == 303
    in_one_window(per_ip)


def test_wp01_forms_need_this_sessions_csrf(auth, Flow, helpers) -> None:
    browser = logged_in(auth, Flow)
    other = logged_in(auth, Flow)
    foreign = page_csrf(other, helpers)
    for path, extra in (("/settings/connector/token", {}), ("/settings/connector/regenerate", {}),
                        ("/settings/connector/apps/revoke", {"client_id": "x"}),
                        ("/settings/password", {"current_password": helpers.PASSWORD, "new_password": "x" * 12}),
                        ("/logout", {})):
        for csrf in (None, foreign):
            data = dict(extra)
            if csrf:
                data["csrf"] = csrf
            assert browser.post(path, data=data).status_code == 403, (path, csrf)
    assert browser.get("/settings/connector").status_code == 200        # still logged in, nothing changed
    anon = auth.http()
    page = anon.get("/login")
    r = anon.post("/login", data={"email": helpers.OWNER, "password": helpers.PASSWORD, "csrf": "forged",
                                  "next": ""})
    assert r.status_code == 403
    assert page.status_code == 200


def test_connector_generates_a_token_once_with_snippets(auth, Flow, helpers) -> None:
    browser = logged_in(auth, Flow)
    page = browser.get("/settings/connector")
    assert "AI Connector (MCP)" in page.text
    posted = browser.post("/settings/connector/token", data={"csrf": helpers.hidden(page.text, "csrf")})
    # WP-09: post/redirect/get — the POST answers a redirect, the next GET shows the token once
    assert (posted.status_code, posted.headers["location"]) == (303, "/settings/connector")
    assert "till_pat_" not in posted.text
    r = browser.get("/settings/connector")
    import re

    token = re.search(r'id="token">(till_pat_[^<]+)<', r.text).group(1)
    assert f"{auth.issuer}/mcp/sse" in r.text
    assert "bearer_token_env_var" in r.text
    assert r.text.count(token) >= 4
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    again = browser.get("/settings/connector")              # a reload
    assert token not in again.text
    assert "till_pat_" not in again.text
    info = auth.internal().post("/internal/v1/introspect", data={"token": token}).json()
    assert info["active"] is True


def test_wp09_the_new_token_cookie_opens_only_in_its_own_session_and_only_once(auth, Flow, helpers) -> None:
    browser = logged_in(auth, Flow)
    page = browser.get("/settings/connector")
    posted = browser.post("/settings/connector/token", data={"csrf": helpers.hidden(page.text, "csrf")})
    sealed = posted.cookies["till_new_token"]
    assert "till_pat_" not in sealed                                  # sealed, not the token itself
    other = logged_in(auth, Flow)                                     # same merchant, another session
    other.cookies.set("till_new_token", sealed, domain="127.0.0.1")
    assert "till_pat_" not in other.get("/settings/connector").text
    shown = browser.get("/settings/connector")
    assert 'id="token">till_pat_' in shown.text
    assert 'till_new_token=""' in shown.headers["set-cookie"]        # cleared on the one view
    assert "till_pat_" not in browser.get("/settings/connector").text


def test_connected_apps_listed_and_revoked_per_app(auth, Flow, helpers) -> None:
    flow = Flow.start(auth, client_name="Cursor <b>")
    refresh = flow.tokens()["refresh_token"]
    page = flow.browser.get("/settings/connector")
    assert "Cursor &lt;b&gt;" in page.text
    assert flow.client_id in page.text
    r = flow.browser.post("/settings/connector/apps/revoke", data={"csrf": helpers.hidden(page.text, "csrf"),
                                                                    "client_id": flow.client_id})
    assert r.status_code == 303
    assert flow.refresh(refresh).json()["error"] == "invalid_grant"
    assert flow.client_id not in flow.browser.get("/settings/connector").text


def test_revoke_and_regenerate_kills_everything_and_shows_a_new_token(auth, Flow, helpers) -> None:
    flow = Flow.start(auth)
    refresh = flow.tokens()["refresh_token"]
    old_pat = auth.http().post("/mcp/token", auth=(helpers.OWNER, helpers.PASSWORD)).json()["token"]
    page = flow.browser.get("/settings/connector")
    posted = flow.browser.post("/settings/connector/regenerate", data={"csrf": helpers.hidden(page.text, "csrf")})
    assert posted.status_code == 303
    r = flow.browser.get(posted.headers["location"])
    import re

    new_pat = re.search(r'id="token">(till_pat_[^<]+)<', r.text).group(1)
    internal = auth.internal()
    assert internal.post("/internal/v1/introspect", data={"token": old_pat}).json() == {"active": False}
    assert internal.post("/internal/v1/introspect", data={"token": new_pat}).json()["active"] is True
    assert flow.refresh(refresh).json()["error"] == "invalid_grant"
    events = internal.get("/internal/v1/revocations").json()["events"]
    assert (events[-1]["kind"], events[-1]["value"]) == ("user", "1")


def test_password_change_kills_credentials_and_other_sessions(auth, Flow, helpers) -> None:
    flow = Flow.start(auth, email="analyst@demo.store")
    other_session = logged_in(auth, Flow, "analyst@demo.store")
    refresh = flow.tokens()["refresh_token"]
    page = flow.browser.get("/settings/password")
    bad = flow.browser.post("/settings/password", data={"csrf": helpers.hidden(page.text, "csrf"),
                                                        "current_password": "nope", "new_password": "x" * 12})
    assert bad.status_code == 400
    old_cookie = flow.browser.cookies.get("till_session")
    r = flow.browser.post("/settings/password", data={"csrf": helpers.hidden(page.text, "csrf"),
                                                      "current_password": helpers.PASSWORD,
                                                      "new_password": "a-new-password-1"})
    assert r.status_code == 200
    assert flow.browser.cookies.get("till_session") != old_cookie          # rotated
    assert flow.browser.get("/settings/connector").status_code == 200      # this session continues
    assert other_session.get("/settings/connector").status_code == 303     # the other one ended
    assert flow.refresh(refresh).json()["error"] == "invalid_grant"
    assert auth.http().post("/mcp/token", auth=("analyst@demo.store", helpers.PASSWORD)).status_code == 401
    assert auth.http().post("/mcp/token", auth=("analyst@demo.store", "a-new-password-1")).status_code == 200


def test_logout_ends_the_session(auth, Flow, helpers) -> None:
    browser = logged_in(auth, Flow)
    r = browser.post("/logout", data={"csrf": page_csrf(browser, helpers)})
    assert r.status_code == 303
    assert browser.get("/settings/connector").status_code == 303


def test_mcp_token_auth_rules(auth, Flow, helpers) -> None:
    api = auth.http()
    assert api.post("/mcp/token").status_code == 401
    assert api.post("/mcp/token", auth=(helpers.OWNER, "wrong")).status_code == 401
    body = api.post("/mcp/token", auth=(helpers.OWNER, helpers.PASSWORD)).json()
    assert body["token"].startswith("till_pat_")
    assert body["expires_at"].endswith("Z")
    browser = logged_in(auth, Flow)
    assert browser.post("/mcp/token").status_code == 401                          # cookie alone: no
    assert browser.post("/mcp/token", headers={"Origin": "https://evil.example"}).status_code == 401
    assert browser.post("/mcp/token", headers={"Origin": auth.issuer}).status_code == 200
    assert browser.post("/mcp/token", headers={"X-CSRF-Token": page_csrf(browser, helpers)}).status_code == 200


@pytest.mark.parametrize("client", ["claude", "claudeCode", "cursor"])
def test_mcp_config_json_snippets(auth, helpers, client: str) -> None:
    token = auth.http().post("/mcp/token", auth=(helpers.OWNER, helpers.PASSWORD)).json()["token"]
    r = auth.http().get("/mcp/config", params={"client": client, "token": token})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert json.loads(r.text) == {"mcpServers": {"till": {"type": "sse", "url": f"{auth.issuer}/mcp/sse",
                                                          "headers": {"Authorization": f"Bearer {token}"}}}}


def test_mcp_config_codex_and_errors(auth, helpers) -> None:
    token = auth.http().post("/mcp/token", auth=(helpers.OWNER, helpers.PASSWORD)).json()["token"]
    r = auth.http().get("/mcp/config", params={"client": "codex", "token": token})
    assert r.headers["content-type"].startswith("application/toml")
    assert r.text == (f'[mcp_servers.till]\nurl = "{auth.issuer}/mcp"\n'
                      'bearer_token_env_var = "TILL_MCP_TOKEN"\nstartup_timeout_sec = 30\n')
    assert auth.http().get("/mcp/config", params={"client": "codex", "token": "till_pat_bad"}).status_code == 401
    assert auth.http().get("/mcp/config", params={"client": "vim", "token": token}).status_code == 400
    assert auth.http().get("/mcp/config", params={"client": "claude"}).status_code == 401
    minted = auth.http().get("/mcp/config", params={"client": "cursor"}, auth=(helpers.OWNER, helpers.PASSWORD))
    assert minted.status_code == 200
    fresh = json.loads(minted.text)["mcpServers"]["till"]["headers"]["Authorization"].removeprefix("Bearer ")
    assert auth.internal().post("/internal/v1/introspect", data={"token": fresh}).json()["active"] is True
