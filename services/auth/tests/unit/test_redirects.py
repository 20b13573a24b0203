"""Redirect URI rules (RG-01, RG-02, AZ-02) without I/O."""

from __future__ import annotations

import pytest

from till_auth.oauth import redirects
from till_auth.oauth.errors import InvalidRedirectUri

REJECTED = [
    "http://evil.example/cb", "https://*.c.example/cb", "https://c.example/cb#f", "/cb", "javascript:alert(1)",
    "JavaScript:alert(1)", "\tjavascript:alert(1)", "data:text/html,x", "file:///etc/passwd",
    "http://localhost.evil.example/cb", "http://127.0.0.1.nip.io/cb", "https://u@c.example/cb",
    "https://c.example/cb/../evil", "https:///cb", "", " https://c.example/cb", "https://C.EXAMPLE/cb",
    "vbscript:x", "https://c.example/a b",
]
ACCEPTED = [
    "https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback", "http://127.0.0.1/cb",
    "http://[::1]:8080/cb", "http://localhost:33418/cb", "cursor://anysphere.cursor-retrieval/oauth/callback",
    "http://localhost:33418/oauth/callback", "https://c.example/cb?x=1",
]


@pytest.mark.parametrize("uri", REJECTED)
def test_rg01_dangerous_redirect_uris_are_refused(uri: str) -> None:
    with pytest.raises(InvalidRedirectUri):
        redirects.validate(uri)


@pytest.mark.parametrize("uri", ACCEPTED)
def test_rg02_web_loopback_and_private_scheme_redirects_are_accepted(uri: str) -> None:
    assert redirects.validate(uri) == uri


@pytest.mark.parametrize("requested", [
    "https://client.example/cb?x=1", "https://client.example/cb/", "https://client.example/cb/..;/x",
    "https://client.example/cb/../evil", "https://client.example/Cb", "HTTPS://CLIENT.EXAMPLE/cb",
    "https://client.example/cb%2F", "https://client.example/cb#f", "https://client.example:443/cb",
])
def test_az02_altered_registered_uri_does_not_match(requested: str) -> None:
    assert not redirects.matches(requested, "https://client.example/cb")


def test_loopback_port_may_vary_but_host_and_path_may_not() -> None:
    assert redirects.matches("http://127.0.0.1:5173/cb", "http://127.0.0.1/cb")
    assert redirects.matches("http://localhost:1/oauth/callback", "http://localhost:33418/oauth/callback")
    assert redirects.matches("http://[::1]:9/cb", "http://[::1]:8080/cb")
    assert not redirects.matches("http://localhost:5173/cb", "http://127.0.0.1/cb")
    assert not redirects.matches("http://127.0.0.1:5173/cb2", "http://127.0.0.1/cb")
    assert not redirects.matches("http://127.0.0.1:5173/cb?x", "http://127.0.0.1/cb")
    assert not redirects.matches("http://u@127.0.0.1:5173/cb", "http://127.0.0.1/cb")
    assert not redirects.matches("https://127.0.0.1:5173/cb", "http://127.0.0.1/cb")


def test_redirect_may_be_omitted_only_with_one_registered() -> None:
    assert redirects.find(None, ["https://a.example/cb"]) == "https://a.example/cb"
    assert redirects.find(None, ["https://a.example/cb", "https://b.example/cb"]) is None


def test_kind_and_host_feed_the_consent_page() -> None:
    assert redirects.kind("https://claude.ai/x") == "web"
    assert redirects.kind("http://127.0.0.1:9/cb") == "loopback"
    assert redirects.kind("cursor://x/cb") == "native"
    assert redirects.host_of("https://claude.ai/api/mcp/auth_callback") == "claude.ai"
