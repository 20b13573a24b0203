"""A merchant in several stores picks the store on the consent and connector pages; tokens follow it."""

from __future__ import annotations

import sqlite3
from typing import Any

import jwt
import pytest

from till_common.demo import OTHER_STORE_ID

pytestmark = pytest.mark.timeout(120)


def join_other_store(srv: Any, email: str = "owner@demo.store", role: str = "analyst") -> None:
    path = srv.settings.auth_database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO memberships (user_id, store_id, role) SELECT id, ?, ? FROM users WHERE email = ?",
                   (OTHER_STORE_ID, role, email))


def claims(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = jwt.decode(body["access_token"], options={"verify_signature": False})
    return out


def test_one_store_shows_no_switcher(auth: Any, Flow: Any, helpers: Any) -> None:
    flow = Flow.start(auth)
    page = flow.browser.get("/settings/connector").text
    assert 'id="store-switch"' not in page
    assert claims(flow.tokens())["store_id"] == 1


def test_consent_names_the_chosen_store_and_the_token_is_bound_to_it(auth: Any, Flow: Any, helpers: Any) -> None:
    join_other_store(auth)
    flow = Flow.start(auth)
    _, challenge = helpers.verifier_pair()
    consent = flow.browser.get("/mcp/oauth/authorize", params=flow.authorize_params(challenge))
    assert consent.status_code == 200
    assert 'id="store-switch"' in consent.text
    assert "Demo Store (owner)" in consent.text
    assert "Other Store (analyst)" in consent.text
    # switch to Other Store from the consent page: back to the same authorize request
    switched = flow.browser.post("/settings/store", data={"csrf": helpers.hidden(consent.text, "csrf"),
                                                          "store_id": str(OTHER_STORE_ID),
                                                          "next": helpers.hidden(consent.text, "next")})
    assert switched.status_code == 303
    assert switched.headers["location"].startswith("/mcp/oauth/authorize?")
    page = flow.browser.get(switched.headers["location"]).text
    assert '<span id="store-name">Other Store</span>' in page
    assert "products:write" not in page              # an analyst there: read scopes only
    # approving grants the analyst's scope in Other Store
    body = flow.tokens()
    got = claims(body)
    assert got["store_id"] == OTHER_STORE_ID
    assert got["role"] == "analyst"
    assert "products:write" not in got["scope"].split()


def test_a_consent_form_for_the_other_store_is_refused_after_a_switch_elsewhere(auth: Any, Flow: Any,
                                                                                helpers: Any) -> None:
    join_other_store(auth)
    flow = Flow.start(auth)
    _, challenge = helpers.verifier_pair()
    consent = flow.browser.get("/mcp/oauth/authorize", params=flow.authorize_params(challenge)).text
    assert helpers.hidden(consent, "store_id") == "1"
    # another tab switches to Other Store; the first tab's form still names Demo Store
    flow.browser.post("/settings/store", data={"csrf": helpers.hidden(consent, "csrf"),
                                               "store_id": str(OTHER_STORE_ID), "next": "/settings/connector"})
    r = flow.browser.post("/mcp/oauth/authorize/decision", data={
        "csrf": helpers.hidden(consent, "csrf"), "request": helpers.hidden(consent, "request"),
        "store_id": helpers.hidden(consent, "store_id"), "decision": "approve"})
    assert r.status_code == 409
    assert "code=" not in r.headers.get("location", "")


def test_switching_to_a_store_one_is_not_in_is_refused(auth: Any, Flow: Any, helpers: Any) -> None:
    flow = Flow.start(auth)
    page = flow.browser.get("/settings/connector").text
    for store_id in (str(OTHER_STORE_ID), "999", "x", "-1"):
        r = flow.browser.post("/settings/store", data={"csrf": helpers.hidden(page, "csrf"), "store_id": store_id,
                                                       "next": "/settings/connector"})
        assert r.status_code == 403, store_id
    no_csrf = flow.browser.post("/settings/store", data={"store_id": "1", "next": "/settings/connector"})
    assert no_csrf.status_code == 403


def test_the_connector_page_mints_a_token_for_the_chosen_store(auth: Any, Flow: Any, helpers: Any) -> None:
    join_other_store(auth)
    flow = Flow.start(auth)
    page = flow.browser.get("/settings/connector").text
    r = flow.browser.post("/settings/store", data={"csrf": helpers.hidden(page, "csrf"),
                                                   "store_id": str(OTHER_STORE_ID), "next": "https://evil.example/"})
    assert r.headers["location"] == "/settings/connector"           # no open redirect
    page = flow.browser.get("/settings/connector").text
    assert "Connect AI assistants to Other Store" in page
    posted = flow.browser.post("/settings/connector/token", data={"csrf": helpers.hidden(page, "csrf")})
    assert posted.status_code == 303                                # post/redirect/get (D113)
    shown = flow.browser.get(posted.headers["location"]).text
    token = shown.split('id="token">', 1)[1].split("<", 1)[0]
    seen = auth.internal().post("/internal/v1/introspect", data={"token": token}).json()
    assert seen["active"] is True
    assert seen["store_id"] == OTHER_STORE_ID
    assert seen["role"] == "analyst"


def test_remembered_consent_is_not_reused_when_the_merchant_has_several_stores(auth: Any, Flow: Any,
                                                                              helpers: Any) -> None:
    flow = Flow.start(auth)
    _, challenge = helpers.verifier_pair()
    first = flow.browser.get("/mcp/oauth/authorize", params=flow.authorize_params(challenge)).text
    r = flow.browser.post("/mcp/oauth/authorize/decision", data={
        "csrf": helpers.hidden(first, "csrf"), "request": helpers.hidden(first, "request"), "remember": "1",
        "decision": "approve"})
    assert "code" in helpers.query_of(r.headers["location"])
    again = flow.browser.get("/mcp/oauth/authorize", params=flow.authorize_params(challenge))
    assert again.status_code == 302                    # one store: the remembered consent skips the page
    join_other_store(auth)
    asked = flow.browser.get("/mcp/oauth/authorize", params=flow.authorize_params(challenge))
    assert asked.status_code == 200                    # several stores: always asked which one
    assert 'id="store-switch"' in asked.text


def test_basic_auth_mints_a_token_for_the_store_it_names(auth: Any, helpers: Any) -> None:
    creds = (helpers.OWNER, helpers.PASSWORD)
    api = auth.http()
    assert api.post("/mcp/token", params={"store_id": str(OTHER_STORE_ID)}, auth=creds).status_code == 403
    join_other_store(auth)
    introspect = auth.internal().post
    default = api.post("/mcp/token", auth=creds).json()["token"]
    assert introspect("/internal/v1/introspect", data={"token": default}).json()["store_id"] == 1
    other = api.post("/mcp/token", params={"store_id": str(OTHER_STORE_ID)}, auth=creds)
    assert other.status_code == 200
    seen = introspect("/internal/v1/introspect", data={"token": other.json()["token"]}).json()
    assert (seen["store_id"], seen["role"]) == (OTHER_STORE_ID, "analyst")
    for bad in ("x", "0", "-1", "1.5", "\uff19", str(2**64)):
        r = api.post("/mcp/token", params={"store_id": bad}, auth=creds)
        assert r.status_code == 400, bad
        assert r.headers["content-type"].startswith("application/problem+json")
    refused = api.post("/mcp/token", params={"store_id": "999"}, auth=creds)
    assert refused.status_code == 403
    assert refused.json()["status"] == 403


def test_a_session_mints_for_a_named_store_only_if_a_member(auth: Any, Flow: Any, helpers: Any) -> None:
    flow = Flow.start(auth)
    page = flow.browser.get("/settings/connector").text
    csrf = {"X-CSRF-Token": helpers.hidden(page, "csrf")}
    assert flow.browser.post("/mcp/token", params={"store_id": str(OTHER_STORE_ID)}, headers=csrf).status_code == 403
    join_other_store(auth)
    minted = flow.browser.post("/mcp/token", params={"store_id": str(OTHER_STORE_ID)}, headers=csrf)
    assert minted.status_code == 200
    seen = auth.internal().post("/internal/v1/introspect", data={"token": minted.json()["token"]}).json()
    assert seen["store_id"] == OTHER_STORE_ID
    snippet = flow.browser.get("/mcp/config", params={"client": "claude", "store_id": str(OTHER_STORE_ID),
                                                       "csrf": helpers.hidden(page, "csrf")})
    assert snippet.status_code == 200
