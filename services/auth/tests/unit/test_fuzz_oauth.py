"""Fuzzing the authorization server's parsers without I/O: redirect URI validation and matching
(RG-01, RG-02, AZ-02), the authorization request (AZ-05..AZ-09), client credentials (TK-04) and
registration metadata (RG-03, RG-04).  Every input is accepted or refused with the protocol's own
error (PageError → HTML 400, OAuthError → RFC 6749 JSON / redirect) — never anything else."""

from __future__ import annotations

import base64
import json
import string
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from tests.support import fuzz_settings

from till_auth.oauth import authorize as az
from till_auth.oauth import client_auth, redirects, registration
from till_auth.oauth.errors import InvalidClient, InvalidRedirectUri, InvalidRequest, OAuthError

pytestmark = pytest.mark.fuzz

ISSUER = "https://gw.example"
URL_CHARS = string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%\\ \t\n\x00é"

hosts = st.sampled_from(["client.example", "c.example", "claude.ai", "a-b.example", "xn--bcher-kva.example"])
loopback_hosts = st.sampled_from(sorted(redirects.LOOPBACK_HOSTS))
ports = st.none() | st.integers(min_value=1, max_value=65535)
paths = st.lists(st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=8), max_size=3).map(
    lambda segs: "/" + "/".join(segs))
queries = st.none() | st.text(string.ascii_letters + string.digits + "=&", min_size=1, max_size=10)


def _url(scheme: str, host: str, port: int | None, path: str, query: str | None) -> str:
    return f"{scheme}://{host}{f':{port}' if port else ''}{path}{f'?{query}' if query else ''}"


https_uris = st.builds(_url, st.just("https"), hosts, ports, paths, queries)
loopback_uris = st.builds(_url, st.just("http"), loopback_hosts, ports, paths, queries)
native_uris = st.builds(lambda s, p: f"{s}:/{p}", st.sampled_from(["cursor", "com.example.app", "vscode"]),
                        paths.filter(lambda p: p != "/"))
good_uris = https_uris | loopback_uris | native_uris
any_uris = st.text(URL_CHARS, max_size=60) | good_uris


def attempt(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The result, or the protocol error raised (anything else propagates and fails the test)."""
    try:
        return fn(*args, **kwargs)
    except (OAuthError, az.PageError) as exc:
        return exc


def _establish(items: list[tuple[str, str]], registered: list[str]) -> tuple[az.RawRequest, str]:
    raw = az.RawRequest.from_pairs(items)
    return raw, az.establish_redirect(raw, registered)


def _accepted(uri: str) -> bool:
    try:
        redirects.validate(uri)
    except InvalidRedirectUri:
        return False
    return True


# --- redirect URIs ---------------------------------------------------------------------------------

@fuzz_settings(400)
@given(any_uris)
def test_validation_accepts_only_safe_uris_and_refuses_with_invalid_redirect_uri(uri: str) -> None:
    if not _accepted(uri):
        return
    parts = urlsplit(uri)
    assert "#" not in uri
    assert "*" not in uri
    assert "@" not in parts.netloc
    assert all(0x21 <= ord(c) <= 0x7E for c in uri)
    assert parts.scheme == parts.scheme.lower()
    assert parts.scheme not in ("javascript", "data", "file")
    if parts.scheme == "http":
        assert redirects.is_loopback(uri)
    if parts.scheme in ("http", "https"):
        assert parts.hostname
        assert parts.netloc.split("@")[-1] == parts.netloc.lower()


@fuzz_settings(200)
@given(good_uris)
def test_generated_good_uris_are_accepted(uri: str) -> None:
    assert _accepted(uri)


@fuzz_settings(300)
@given(good_uris, st.sampled_from(["#", "#f", "*", "/*"]), st.integers(min_value=0, max_value=80))
def test_fragments_and_wildcards_are_always_refused(uri: str, bad: str, at: int) -> None:
    at = min(at, len(uri))
    for variant in (uri + bad, uri[:at] + bad + uri[at:]):
        assert not _accepted(variant)


@fuzz_settings(200)
@given(hosts, ports, paths, queries)
def test_http_is_refused_off_loopback(host: str, port: int | None, path: str, query: str | None) -> None:
    for h in (host, f"localhost.{host}", f"127.0.0.1.{host}", f"{host}.localhost"):
        assert not _accepted(_url("http", h, port, path, query))


@fuzz_settings(300)
@given(good_uris, st.sampled_from(["/", "x", "?x=1", "&y=2", "/..", "%2F", "/."]), st.booleans())
def test_matching_is_exact(registered: str, extra: str, upper: bool) -> None:
    requested = (registered.upper() if upper else registered + extra)
    assume(requested != registered)
    assert not redirects.matches(requested, registered)
    assert redirects.find(requested, [registered]) is None
    assert redirects.matches(registered, registered)


@fuzz_settings(200)
@given(loopback_uris, ports)
def test_loopback_matches_on_any_port_and_only_there(registered: str, port: int | None) -> None:
    parts = urlsplit(registered)
    host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    if parts.netloc.startswith("[") and "]:" in parts.netloc:
        host = parts.netloc.split("]:")[0] + "]"
    moved = _url("http", host, port, parts.path, parts.query or None)
    assert redirects.matches(moved, registered)
    assert not redirects.matches(moved.replace("http://", "https://", 1), registered)


@fuzz_settings(200)
@given(https_uris, st.integers(min_value=1, max_value=65535))
def test_web_uris_never_match_on_another_port(registered: str, port: int) -> None:
    parts = urlsplit(registered)
    assume(parts.port != port)
    moved = registered.replace(parts.netloc, f"{parts.hostname}:{port}", 1)
    assert not redirects.matches(moved, registered)


@fuzz_settings(300)
@given(any_uris, st.lists(any_uris, max_size=3))
def test_matching_never_raises(requested: str, registered: list[str]) -> None:
    found = redirects.find(requested, registered)
    assert found is None or found == requested


# --- the authorization request ---------------------------------------------------------------------

PARAMS = [*az.KNOWN, "x", "request", "prompt"]
pairs = st.lists(st.tuples(st.sampled_from(PARAMS) | st.text(max_size=6), st.text(max_size=50)), max_size=12)
challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
valid = {"response_type": "code", "client_id": "c1", "code_challenge": challenge, "code_challenge_method": "S256",
         "state": "s", "redirect_uri": "https://client.example/cb"}


@fuzz_settings(400)
@given(pairs, st.booleans())
def test_any_authorization_query_is_a_page_error_an_oauth_error_or_a_request(extra: list[tuple[str, str]],
                                                                               base: bool) -> None:
    items = [*valid.items(), *extra] if base else extra
    registered = ["https://client.example/cb", "http://127.0.0.1/cb"]
    established = attempt(lambda: _establish(items, registered))
    if isinstance(established, az.PageError):
        assert established.title
        assert established.detail
        return
    raw, uri = established
    assert uri in registered or redirects.is_loopback(uri)
    state = raw.params.get("state")
    req = attempt(az.validate, raw, uri, ISSUER)
    if isinstance(req, OAuthError):
        location = az.error_redirect(uri, req, state, ISSUER)
        q = parse_qs(urlsplit(location).query, keep_blank_values=True)
        assert location.startswith(uri)
        assert q["error"] == [req.error]
        assert q["iss"] == [ISSUER]
        if state is not None:
            assert q["state"] == [state]        # byte-identical (AZ-09)
        return
    assert req.code_challenge
    assert req.redirect_uri == uri
    location = az.success_redirect(uri, "the-code", state, ISSUER)
    assert parse_qs(urlsplit(location).query)["code"] == ["the-code"]


@fuzz_settings(200)
@given(st.text(max_size=80))
def test_state_round_trips_byte_identically(state: str) -> None:
    assume(state != "")
    for location in (az.success_redirect("https://c.example/cb?x=1", "code", state, ISSUER),
                     az.error_redirect("https://c.example/cb", InvalidRequest("x\r\ny"), state, ISSUER)):
        assert parse_qs(urlsplit(location).query, keep_blank_values=True)["state"] == [state]
        assert all(0x21 <= ord(c) <= 0x7E for c in location)


# --- client authentication (RFC 6749 §2.3) -------------------------------------------------------

def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


authorization = (st.none() | st.text(max_size=40) | st.builds(basic, st.text(max_size=12), st.text(max_size=12))
                 | st.builds(lambda s: "Basic " + s, st.text(max_size=20)))


@fuzz_settings(400)
@given(authorization, st.none() | st.text(max_size=12), st.none() | st.text(max_size=12))
def test_client_credentials_parse_or_fail_as_invalid_client_or_invalid_request(
        header: str | None, client_id: str | None, secret: str | None) -> None:
    creds = attempt(client_auth.parse, header, client_id, secret)
    if isinstance(creds, OAuthError):
        assert isinstance(creds, InvalidClient | InvalidRequest)
        assert creds.status == (401 if isinstance(creds, InvalidClient) else 400)
        return
    assert creds.client_id
    assert creds.method in ("none", "client_secret_post", "client_secret_basic")
    for method, hashed in (("none", None), ("client_secret_basic", client_auth.hash_secret("s")), (None, None)):
        refused = attempt(client_auth.authenticate, creds, registered_method=method, secret_hash=hashed)
        if refused is not None:
            assert isinstance(refused, InvalidClient)
            assert refused.basic == creds.basic


@pytest.mark.parametrize("header", ["Basic \x80", "Basic é==", "basic \u00ff\u00fe", "Basic  ", "Basic ===="])
def test_tk04_non_ascii_or_empty_basic_credentials_are_invalid_client(header: str) -> None:
    """Found by fuzzing: a latin-1 byte in the Basic credentials raised ValueError (a 500)."""
    with pytest.raises(InvalidClient) as exc:
        client_auth.parse(header, None, None)
    assert exc.value.basic


# --- registration (RFC 7591) ----------------------------------------------------------------------

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                       max_size=3), max_leaves=10)
metadata = st.fixed_dictionaries({"redirect_uris": st.lists(good_uris | any_uris, max_size=3) | json_values}, optional={
    "token_endpoint_auth_method": st.sampled_from(["none", "client_secret_basic", "client_secret_post",
                                                   "private_key_jwt"]) | json_values,
    "grant_types": st.lists(st.sampled_from(["authorization_code", "refresh_token", "implicit", "password"]),
                            max_size=3) | json_values,
    "response_types": st.sampled_from([["code"], ["token"], []]) | json_values,
    "client_name": st.text(max_size=30) | json_values,
    "client_uri": st.sampled_from(["https://c.example", "javascript:alert(1)"]) | json_values,
    "scope": st.sampled_from(["products:read", "admin", "products:read orders:write", ""]) | json_values,
    "contacts": json_values, "client_id": json_values, "skip_consent": json_values,
})


@fuzz_settings(200)
@given(metadata)
def test_registration_metadata_is_accepted_or_refused_in_rfc7591_terms(body: dict[str, Any]) -> None:
    meta = attempt(registration.validate, body)
    if isinstance(meta, OAuthError):
        assert meta.error in ("invalid_redirect_uri", "invalid_client_metadata")
        assert meta.status == 400
        return
    assert meta.redirect_uris
    assert all(_accepted(u) for u in meta.redirect_uris)
    assert meta.response_types == ["code"]


@fuzz_settings(300)
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_registration_bodies_parse_or_fail_as_invalid_client_metadata(raw: bytes) -> None:
    body = attempt(registration.parse_json, raw)
    if isinstance(body, OAuthError):
        assert body.error == "invalid_client_metadata"
        return
    assert isinstance(body, dict)
    meta = attempt(registration.validate, body)
    assert not isinstance(meta, OAuthError) or meta.status == 400
