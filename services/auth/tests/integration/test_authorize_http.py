"""Authorization endpoint over HTTP: AZ rows and the page headers (WP-02, WP-09)."""

from __future__ import annotations

import pytest


def _assert_page_headers(r) -> None:
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"


def test_az01_unknown_client_or_unregistered_redirect_shows_an_error_page(auth, Flow, helpers) -> None:
    flow = Flow.start(auth)
    _, challenge = helpers.verifier_pair()
    for params in (flow.authorize_params(challenge, client_id="nope"),
                   flow.authorize_params(challenge, redirect_uri="https://evil.example/cb")):
        r = flow.browser.get("/mcp/oauth/authorize", params=params)
        assert r.status_code == 400
        assert "location" not in r.headers
        assert r.headers["content-type"].startswith("text/html")
        _assert_page_headers(r)


@pytest.mark.parametrize("uri", [
    "https://client.example/cb?x=1", "https://client.example/cb/", "https://client.example/cb/..;/x",
    "https://client.example/cb/../evil", "https://client.example/Cb", "HTTPS://CLIENT.EXAMPLE/cb",
    "https://client.example/cb%2F", "https://client.example/cb#f",
])
def test_az02_altered_redirect_uri_shows_an_error_page(auth, Flow, helpers, uri: str) -> None:
    flow = Flow.start(auth)
    _, challenge = helpers.verifier_pair()
    r = flow.browser.get("/mcp/oauth/authorize", params=flow.authorize_params(challenge, redirect_uri=uri))
    assert r.status_code == 400
    assert "location" not in r.headers


def test_az05_az06_pkce_problems_redirect_with_invalid_request(auth, Flow, helpers) -> None:
    flow = Flow.start(auth)
    _, challenge = helpers.verifier_pair()
    for extra in ({"code_challenge": None}, {"code_challenge_method": "plain"}, {"code_challenge_method": None},
                  {"code_challenge": "a" * 42}, {"code_challenge": "a" * 129}, {"code_challenge": "a" * 42 + "="}):
        r = flow.browser.get("/mcp/oauth/authorize", params=flow.authorize_params(challenge, **extra))
        assert r.status_code == 302, extra
        q = helpers.query_of(r.headers["location"])
        assert r.headers["location"].startswith("https://client.example/cb?")
        assert q["error"] == "invalid_request"
        assert q["state"] == "xyz"
        assert q["iss"] == auth.issuer
        assert "code" not in q


def test_az07_response_type_scope_and_duplicates(auth, Flow, helpers) -> None:
    flow = Flow.start(auth)
    _, challenge = helpers.verifier_pair()
    r = flow.browser.get("/mcp/oauth/authorize", params=flow.authorize_params(challenge, response_type="token"))
    assert helpers.query_of(r.headers["location"])["error"] == "unsupported_response_type"
    r = flow.browser.get("/mcp/oauth/authorize", params=flow.authorize_params(challenge, scope="admin"))
    assert helpers.query_of(r.headers["location"])["error"] == "invalid_scope"
    params = [*list(flow.authorize_params(challenge).items()), ("redirect_uri", flow.redirect_uri)]
    r = flow.browser.get("/mcp/oauth/authorize", params=params)
    assert r.status_code == 400
    assert "location" not in r.headers
    params = [*list(flow.authorize_params(challenge).items()), ("client_id", flow.client_id)]
    assert flow.browser.get("/mcp/oauth/authorize", params=params).status_code == 400


def test_az08_resource_indicators(auth, Flow, helpers) -> None:
    flow = Flow.start(auth)
    _, challenge = helpers.verifier_pair()
    for bad in ("https://evil.example/mcp", auth.issuer + "/mcp#x", "mcp"):
        r = flow.browser.get("/mcp/oauth/authorize", params=flow.authorize_params(challenge, resource=bad))
        assert helpers.query_of(r.headers["location"])["error"] == "invalid_target", bad
    import jwt

    upper = auth.issuer.replace("http://127.0.0.1", "HTTP://127.0.0.1") + "/mcp"
    for good in (upper, auth.issuer + "/mcp/"):
        body = flow.tokens(resource=good)
        assert jwt.decode(body["access_token"], options={"verify_signature": False})["aud"] == auth.issuer + "/mcp"


def test_az09_state_is_byte_identical_and_iss_is_added_on_approve_and_deny(auth, Flow, helpers) -> None:
    flow = Flow.start(auth)
    _, challenge = helpers.verifier_pair()
    raw_state = "a%26b%20%E2%9C%93"
    query = "&".join(f"{k}={v}" for k, v in flow.authorize_params(challenge, state=None).items())
    page = flow.browser.get("/mcp/oauth/authorize?" + query.replace("/", "%2F").replace(":", "%3A")
                            + "&state=" + raw_state)
    assert page.status_code == 200
    _assert_page_headers(page)
    for decision in ("approve", "deny"):
        r = flow.browser.post("/mcp/oauth/authorize/decision", data={
            "csrf": helpers.hidden(page.text, "csrf"), "request": helpers.hidden(page.text, "request"),
            "decision": decision})
        location = r.headers["location"]
        assert "state=" + raw_state in location
        q = helpers.query_of(location)
        assert q["iss"] == auth.issuer
        if decision == "approve":
            assert "code" in q
        else:
            assert q["error"] == "access_denied"
            assert "code" not in q


def test_no_session_goes_to_login_and_comes_back(auth, Flow, helpers) -> None:
    flow = Flow.start(auth, login=False)
    _, challenge = helpers.verifier_pair()
    r = flow.browser.get("/mcp/oauth/authorize", params=flow.authorize_params(challenge))
    assert r.status_code == 302
    assert r.headers["location"].startswith("/login?next=%2Fmcp%2Foauth%2Fauthorize%3F")
    page = flow.browser.get(r.headers["location"])
    nxt = helpers.hidden(page.text, "next")
    r = flow.browser.post("/login", data={"email": helpers.OWNER, "password": helpers.PASSWORD,
                                          "csrf": helpers.hidden(page.text, "csrf"), "next": nxt})
    assert r.status_code == 303
    assert r.headers["location"] == nxt
    assert flow.browser.get(nxt).status_code == 200


def test_az10_wp04_consent_for_a_second_client_named_claude_is_shown(auth, Flow, helpers) -> None:
    first = Flow.start(auth, client_name="Claude")
    _code, _ = first.code()
    # remembered consent for C does not let C2 through
    c2 = Flow.start(auth, client_name="Claude", redirect_uri="https://attacker.example/cb")
    _, challenge = helpers.verifier_pair()
    page = c2.browser.get("/mcp/oauth/authorize", params=c2.authorize_params(challenge))
    assert page.status_code == 200
    assert "Claude" in page.text
    assert c2.client_id in page.text
    assert "attacker.example" in page.text
    assert "See your products, variants and stock" in page.text


def test_remembered_consent_only_for_same_client_and_scope_set(auth, Flow, helpers) -> None:
    flow = Flow.start(auth)
    _, challenge = helpers.verifier_pair()
    page = flow.browser.get("/mcp/oauth/authorize", params=flow.authorize_params(challenge, scope="products:read"))
    r = flow.browser.post("/mcp/oauth/authorize/decision", data={
        "csrf": helpers.hidden(page.text, "csrf"), "request": helpers.hidden(page.text, "request"),
        "decision": "approve", "remember": "1"})
    assert "code" in helpers.query_of(r.headers["location"])
    again = flow.browser.get("/mcp/oauth/authorize", params=flow.authorize_params(challenge, scope="products:read"))
    assert again.status_code == 302
    assert "code" in helpers.query_of(again.headers["location"])
    wider = flow.browser.get("/mcp/oauth/authorize",
                             params=flow.authorize_params(challenge, scope="products:read orders:read"))
    assert wider.status_code == 200          # a new scope set asks again


def test_rg10_loopback_client_gets_a_warning_and_is_never_remembered(auth, Flow, helpers) -> None:
    flow = Flow.start(auth, redirect_uri="http://127.0.0.1/cb", client_name="Claude Code")
    _, challenge = helpers.verifier_pair()
    params = flow.authorize_params(challenge, redirect_uri="http://127.0.0.1:41234/cb")
    page = flow.browser.get("/mcp/oauth/authorize", params=params)
    assert page.status_code == 200
    assert 'id="local-warning"' in page.text
    assert 'name="remember"' not in page.text
    r = flow.browser.post("/mcp/oauth/authorize/decision", data={
        "csrf": helpers.hidden(page.text, "csrf"), "request": helpers.hidden(page.text, "request"),
        "decision": "approve", "remember": "1"})
    assert r.headers["location"].startswith("http://127.0.0.1:41234/cb?code=")
    assert flow.browser.get("/mcp/oauth/authorize", params=params).status_code == 200


def test_wp03_client_name_is_escaped(auth, Flow, helpers) -> None:
    flow = Flow.start(auth, client_name='"><script>alert(1)</script><img src=x onerror=alert(1)>')
    _, challenge = helpers.verifier_pair()
    page = flow.browser.get("/mcp/oauth/authorize", params=flow.authorize_params(challenge))
    assert "<script>alert(1)" not in page.text
    assert "<img src=x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    r = auth.http().post("/mcp/oauth/register", json={"redirect_uris": ["https://c.example/cb"],
                                                      "client_uri": "javascript:alert(1)"})
    assert r.status_code == 400


def test_wp01_consent_post_needs_this_sessions_csrf_and_get_is_405(auth, Flow, helpers) -> None:
    flow = Flow.start(auth)
    other = Flow.start(auth)
    _, challenge = helpers.verifier_pair()
    page = flow.browser.get("/mcp/oauth/authorize", params=flow.authorize_params(challenge))
    other_page = other.browser.get("/mcp/oauth/authorize", params=other.authorize_params(challenge))
    request = helpers.hidden(page.text, "request")
    for csrf in (None, helpers.hidden(other_page.text, "csrf")):
        data = {"request": request, "decision": "approve"}
        if csrf:
            data["csrf"] = csrf
        r = flow.browser.post("/mcp/oauth/authorize/decision", data=data)
        assert r.status_code == 403
        assert "location" not in r.headers
    assert flow.browser.get("/mcp/oauth/authorize/decision").status_code == 405
