"""A NUL byte in any string the auth service reads is refused as invalid input, in the route's own
error format, never a 500 (D861).  PostgreSQL text cannot hold NUL: asyncpg refused it with a
DBAPIError, so a ``%00`` in a client id reached the database and came back as a 500.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.postgres]

NUL = "\x00"


@pytest.fixture
def auth_pg(postgres: Any, helpers: Any) -> Iterator[Any]:
    port = helpers.free_port()
    settings = helpers.make_settings(postgres.database("auth_nul"), port)
    helpers.prepare(settings)
    srv = helpers.serve(settings, port)
    yield srv
    srv.stop()


def problem(r: httpx.Response, status: int = 400) -> None:
    assert r.status_code == status, (r.request.method, r.request.url, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == status


def oauth(r: httpx.Response, error: str = "invalid_request", status: int = 400) -> None:
    assert r.status_code == status, (r.request.method, r.request.url, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"] == error


def page(r: httpx.Response, status: int = 400) -> None:
    assert r.status_code == status, (r.request.method, r.request.url, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html")


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_admin_api_answers_nul_in_a_path_or_body_string_with_problem_details(auth_pg: Any) -> None:
    admin = auth_pg.admin()
    problem(admin.get("/admin/v1/clients/ab%00cd"))
    problem(admin.delete("/admin/v1/clients/ab%00cd"))
    problem(admin.get("/admin/v1/clients?x=%00"))
    for field in ("token_id", "client_id"):
        problem(admin.post("/admin/v1/revocations", json={field: "a" + NUL}))
    # and an ordinary unknown id is still 404
    problem(admin.get("/admin/v1/clients/abcd"), 404)


def test_oauth_endpoints_answer_nul_in_any_field_with_oauth_error_json(auth_pg: Any, Flow: Any) -> None:
    flow = Flow.start(auth_pg)
    api = auth_pg.http()
    reg_token = {"Authorization": "Bearer " + flow.client["registration_access_token"]}
    for method in ("GET", "PUT", "DELETE"):          # RFC 7592 management URI
        oauth(api.request(method, f"/mcp/oauth/register/{flow.client_id}%00", headers=reg_token,
                          **({"json": {}} if method == "PUT" else {})))
    oauth(api.post("/mcp/oauth/register", json={"client_name": "x" + NUL, "redirect_uris": ["https://c.example/cb"]}),
          "invalid_client_metadata")
    oauth(api.post("/mcp/oauth/register", json={"redirect_uris": ["https://c.example/cb"],
                                                "contacts": ["a" + NUL + "@example.com"]}),
          "invalid_client_metadata")

    code, verifier = flow.code()
    exchange = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                "redirect_uri": flow.redirect_uri, "client_id": flow.client_id}
    for field in exchange:
        oauth(api.post("/mcp/oauth/token", data={**exchange, field: exchange[field] + NUL}))
    for extra in ({"refresh_token": "r" + NUL}, {"client_secret": "s" + NUL}, {"resource": "https://x" + NUL},
                  {"scope": "products:read" + NUL}):
        oauth(api.post("/mcp/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "r",
                                                 "client_id": flow.client_id, **extra}))
    oauth(api.post("/mcp/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "r"},
                   headers=basic(flow.client_id + NUL, "secret")), "invalid_client", 401)
    oauth(api.post("/mcp/oauth/token?x=%00", data={"grant_type": "refresh_token", "refresh_token": "r",
                                                   "client_id": flow.client_id}))
    for form in ({"token": "t" + NUL, "client_id": flow.client_id}, {"token": "t", "client_id": flow.client_id + NUL}):
        oauth(api.post("/mcp/oauth/revoke", data=form))
    # the exchange still works afterwards: nothing above consumed the code
    assert api.post("/mcp/oauth/token", data=exchange).status_code == 200


def test_authorize_and_the_pages_answer_nul_with_an_html_error_page(auth_pg: Any, Flow: Any, helpers: Any) -> None:
    flow = Flow.start(auth_pg)
    _, challenge = helpers.verifier_pair()
    params = flow.authorize_params(challenge)
    for field in ("client_id", "redirect_uri", "state"):
        page(flow.browser.get("/mcp/oauth/authorize", params={**params, field: params[field] + NUL}))
    consent = flow.browser.get("/mcp/oauth/authorize", params=params)
    assert consent.status_code == 200
    # the consent form carries the authorization request: a NUL inside it (encoded twice) is refused too
    request = helpers.hidden(consent.text, "request").replace(flow.client_id, flow.client_id + "%00")
    page(flow.browser.post("/mcp/oauth/authorize/decision", data={
        "csrf": helpers.hidden(consent.text, "csrf"), "request": request, "decision": "approve"}))

    browser = auth_pg.http()
    login = browser.get("/login")
    r = browser.post("/login", data={"email": helpers.OWNER + NUL, "password": helpers.PASSWORD,
                                     "csrf": helpers.hidden(login.text, "csrf"), "next": ""})
    assert 400 <= r.status_code < 500, r.text[:300]
    assert r.headers["content-type"].startswith("text/html")
    page(browser.get("/login?next=%2Fsettings%00"))


def test_personal_token_and_internal_endpoints_refuse_nul(auth_pg: Any, helpers: Any) -> None:
    api = auth_pg.http()
    r = api.post("/mcp/token", headers=basic(helpers.OWNER + NUL, helpers.PASSWORD))
    problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Basic ")
    introspected = auth_pg.internal().post("/internal/v1/introspect", data={"token": "till_pat_" + NUL})
    assert introspected.status_code == 400, introspected.text
    problem(auth_pg.internal().get("/internal/v1/revocations?after=%00"))
