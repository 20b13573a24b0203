"""Auth-side rows of JW-11 and DS-03, and the internal API's bearer."""

from __future__ import annotations


def test_jw11_refresh_tokens_codes_and_registration_tokens_are_not_bearer_tokens(auth, Flow) -> None:
    flow = Flow.start(auth)
    code, _ = flow.code()
    body = flow.tokens()
    internal = auth.internal()
    for other in (body["refresh_token"], code, flow.client["registration_access_token"], body["access_token"]):
        r = internal.post("/internal/v1/introspect", data={"token": other})
        assert r.json() == {"active": False}


def test_ds03_huge_password_is_refused_without_hashing_and_huge_bodies_are_413(auth, helpers) -> None:
    browser = auth.http()
    page = browser.get("/login")
    r = browser.post("/login", data={"email": helpers.OWNER, "password": "p" * 100_000,
                                     "csrf": helpers.hidden(page.text, "csrf"), "next": ""})
    assert r.status_code == 401
    big = auth.http().post("/mcp/oauth/register", content=b"{" + b" " * (1024 * 1024 + 1) + b"}",
                           headers={"Content-Type": "application/json"})
    assert big.status_code in (400, 413)


def test_internal_api_refuses_wrong_bearers(auth) -> None:
    for header in (None, "Bearer " + "i" * 49, "Bearer " + auth.settings.admin_token, auth.settings.internal_token):
        api = auth.http(headers={"Authorization": header} if header else {})
        assert api.post("/internal/v1/introspect", data={"token": "x"}).status_code == 401
        assert api.get("/internal/v1/revocations").status_code == 401
