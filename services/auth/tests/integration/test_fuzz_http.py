"""Fuzzing the authorization server over real HTTP (TK-05, TK-06, RG-03, TK-13, AZ-01..AZ-08, DS-05):
random form bodies at /token and /revoke, random JSON at /register and random queries at /authorize
get an RFC 6749/7591 error in JSON (or the HTML error page, or a redirect) — never a 5xx — and
the service is still healthy afterwards."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.support import fuzz_settings

pytestmark = pytest.mark.fuzz

OAUTH_ERRORS = {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                "unsupported_grant_type", "invalid_scope", "invalid_target", "unsupported_token_type",
                "slow_down", "invalid_redirect_uri", "invalid_client_metadata", "temporarily_unavailable"}
REDIRECT = "https://client.example/cb"


@pytest.fixture
def server(helpers, tmp_path, sqlite_template) -> Iterator[Any]:
    """One auth service for all examples; throttles raised so that fuzzing reaches the parsers."""
    port = helpers.free_port()
    db = tmp_path / "auth.db"
    shutil.copyfile(sqlite_template, db)
    srv = helpers.serve(helpers.make_settings(f"sqlite+aiosqlite:///{db}", port, registrations_per_minute=100_000,
                                              token_failures_per_minute=100_000,
                                              client_token_failures_per_minute=100_000), port)
    http = srv.http()
    r = http.post("/mcp/oauth/register", json={"client_name": "fuzz", "redirect_uris": [REDIRECT],
                                                "token_endpoint_auth_method": "none"})
    assert r.status_code == 201
    srv.fuzz_client = r.json()["client_id"]
    browser = srv.http()
    page = browser.get("/login").text
    r = browser.post("/login", data={"email": helpers.OWNER, "password": helpers.PASSWORD,
                                     "csrf": helpers.hidden(page, "csrf"), "next": "/settings/connector"})
    assert r.status_code == 303
    srv.fuzz_browser = browser
    srv.fuzz_http = srv.http()          # one keep-alive connection for the anonymous requests
    yield srv
    assert http.get("/healthz").status_code == 200          # still healthy after everything
    srv.stop()


def oauth_error(r: httpx.Response, *statuses: int) -> None:
    assert r.status_code in statuses, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json"), r.headers
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["error"] in OAUTH_ERRORS, body
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in body.get("error_description", ""))


text = st.text(max_size=60)
latin1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60)
token_fields = st.sampled_from(["grant_type", "code", "refresh_token", "client_id", "client_secret",
                                "code_verifier", "redirect_uri", "resource", "scope", "token", "token_type_hint"])
grant_types = st.sampled_from(["authorization_code", "refresh_token", "password", "client_credentials",
                               "implicit", "urn:ietf:params:oauth:grant-type:device_code", ""])
forms = st.lists(st.tuples(token_fields | text, grant_types | text | st.just("FUZZ_CLIENT")), max_size=8)
authorizations = st.none() | st.builds(lambda v: "Basic " + v, latin1) | st.builds(lambda v: "Bearer " + v, latin1) \
    | latin1
content_types = st.sampled_from([
    "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8", "application/json",
    "text/plain", "multipart/form-data", ""])


def _headers(authorization: str | None, ctype: str | None = None) -> dict[str, bytes]:
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.strip().encode("latin-1")  # HTTP trims it anyway
    if ctype is not None:
        headers["Content-Type"] = ctype.encode()
    return headers


def _body(srv: Any, pairs: list[tuple[str, str]]) -> str:
    return urlencode([(k, srv.fuzz_client if v == "FUZZ_CLIENT" else v) for k, v in pairs])


@fuzz_settings(100)
@given(st.sampled_from(["/mcp/oauth/token", "/mcp/oauth/revoke"]), forms, authorizations)
def test_token_and_revoke_forms_answer_oauth_json_never_5xx(server, path: str, pairs: list[tuple[str, str]],
                                                            authorization: str | None) -> None:
    r = server.fuzz_http.post(path, content=_body(server, pairs),
                           headers=_headers(authorization, "application/x-www-form-urlencoded"))
    if r.status_code == 200:
        assert path.endswith("/revoke")            # RFC 7009 §2.2: unknown tokens are fine
        assert r.headers["cache-control"] == "no-store"
        return
    oauth_error(r, 400, 401)
    sent = (authorization or "").strip()               # what _headers sends
    if r.status_code == 401 and sent.partition(" ")[0].lower() == "basic":
        assert r.headers["www-authenticate"].startswith("Basic")


@fuzz_settings(40)
@given(st.sampled_from(["/mcp/oauth/token", "/mcp/oauth/revoke"]), st.binary(max_size=200), content_types)
def test_token_and_revoke_raw_bodies_answer_oauth_json_never_5xx(server, path: str, body: bytes,
                                                                 ctype: str) -> None:
    r = server.fuzz_http.post(path, content=body, headers=_headers(None, ctype))
    if r.status_code == 200:
        assert path.endswith("/revoke")
        return
    oauth_error(r, 400, 401)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3), max_leaves=10)
registrations = st.fixed_dictionaries({}, optional={
    "redirect_uris": st.lists(st.sampled_from([REDIRECT, "http://127.0.0.1/cb", "http://evil.example/cb",
                                               "javascript:alert(1)", "https://c.example/cb#f"]) | text, max_size=3)
    | json_values,
    "token_endpoint_auth_method": st.sampled_from(["none", "client_secret_basic", "client_secret_post"]) | json_values,
    "grant_types": json_values, "response_types": json_values, "client_name": json_values,
    "client_uri": json_values, "scope": st.sampled_from(["products:read", "nope"]) | json_values,
    "contacts": json_values, "client_id": json_values, "logo_uri": json_values,
})


@fuzz_settings(80)
@given(registrations | json_values, st.booleans())
def test_registration_json_answers_201_or_rfc7591_error_never_5xx(server, body: Any, raw: bool) -> None:
    payload = json.dumps(body).encode()
    if raw:
        payload = payload[: len(payload) // 2]          # truncated JSON as well
    r = server.fuzz_http.post("/mcp/oauth/register", content=payload, headers={"Content-Type": "application/json"})
    if r.status_code == 201:
        created = r.json()
        assert created["client_id"] != (body.get("client_id") if isinstance(body, dict) else None)
        return
    oauth_error(r, 400)
    assert r.json()["error"] in ("invalid_redirect_uri", "invalid_client_metadata")


authorize_fields = st.sampled_from(["response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
                                    "code_challenge_method", "resource", "prompt"])
authorize_values = st.sampled_from(["code", "token", "S256", "plain", REDIRECT, "http://127.0.0.1:9/cb",
                                    "https://evil.example/cb", "FUZZ_CLIENT", "products:read", "admin",
                                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", ""]) | text


@fuzz_settings(100)
@given(st.lists(st.tuples(authorize_fields | text, authorize_values), max_size=10), st.booleans())
def test_authorize_queries_answer_page_redirect_or_error_page_never_5xx(server, pairs: list[tuple[str, str]],
                                                                        logged_in: bool) -> None:
    client = server.fuzz_browser if logged_in else server.fuzz_http
    query = _body(server, pairs)
    r = client.get("/mcp/oauth/authorize?" + query)
    assert r.status_code in (200, 302, 400), (r.status_code, r.text[:300])
    if r.status_code == 302:
        location = r.headers["location"]
        # only to the login page or to the registered redirect URI (never an attacker's, AZ-01)
        assert location.startswith("/login?next=") or location.startswith((REDIRECT + "?", "http://127.0.0.1:"))
        if not location.startswith("/login"):
            assert urlsplit(location).hostname in ("client.example", "127.0.0.1")
    else:
        assert r.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
