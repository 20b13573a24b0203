"""Discovery (seed 001 /mcp/info, catalogue, RFC 9728) and the reverse proxy to auth."""

from __future__ import annotations

import httpx
from gw_upstream import Gateways
from tests.support import Service


def test_info_catalogue_docs_and_protected_resource_metadata(gateway: Service, gateways: Gateways) -> None:
    info = httpx.get(gateway.url + "/mcp/info").json()
    assert info["name"] == "till" and info["serverUrl"] == gateways.public_url
    assert info["endpoints"] == {"jsonrpc": "/mcp", "sse": "/mcp/sse", "token": "/mcp/token",
                                 "config": "/mcp/config"}
    assert info["capabilities"]["resources"] == {"subscribe": False, "listChanged": False}
    assert [t["name"] for t in httpx.get(gateway.url + "/mcp/tools").json()["tools"]][:2] == \
        ["get_product", "create_product"]
    assert httpx.get(gateway.url + "/mcp/resources").json()["resources"][0]["uri"] == "store://settings"
    docs = httpx.get(gateway.url + "/mcp/docs")
    assert docs.headers["content-type"].startswith("text/markdown") and "## `get_product`" in docs.text
    for suffix in ("", "/mcp", "/mcp/sse"):
        prm = httpx.get(gateway.url + "/.well-known/oauth-protected-resource" + suffix).json()
        assert prm["resource"] == gateways.public_url + suffix
        assert prm["authorization_servers"] == [gateways.public_url]
        assert prm["bearer_methods_supported"] == ["header"] and len(prm["scopes_supported"]) == 20


def test_auth_paths_are_proxied_with_cookies_and_trusted_forwarding_headers(gateway: Service,
                                                                            gateways: Gateways) -> None:
    r = httpx.post(gateway.url + "/mcp/oauth/token?x=1", content=b"grant_type=refresh_token",
                   headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": "sid=abc",
                            "Authorization": "Basic Y2xpZW50OnNlY3JldA==", "X-Forwarded-For": "6.6.6.6",
                            "X-Till-Gateway": "forged"})
    echo = r.json()
    assert (echo["method"], echo["path"], echo["query"], echo["body"]) == \
        ("POST", "/mcp/oauth/token", "x=1", "grant_type=refresh_token")
    assert echo["cookie"] == "sid=abc"
    headers = {k.lower(): v for k, v in echo["headers"].items()}
    assert headers["authorization"] == "Basic Y2xpZW50OnNlY3JldA=="
    # one value, set by the gateway from the peer uvicorn reports (uvicorn trusts X-Forwarded-For from
    # loopback by default, so from this test the peer is the claimed 6.6.6.6; see the report)
    assert headers["x-forwarded-for"] in ("127.0.0.1", "6.6.6.6")
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-till-gateway"] == "internal-" + "i" * 40
    assert r.headers.get_list("set-cookie") == ["a=1; Path=/; HttpOnly", "b=2; Path=/"]
    login = httpx.post(gateway.url + "/login", data={"email": "a"})
    assert (login.status_code, login.headers["location"]) == (302, "/settings/connector")
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/jwks.json", "/mcp/config",
                 "/settings/connector", "/mcp/oauth/register/abc", "/logout"):
        assert httpx.get(gateway.url + path).status_code == 200, path


def test_auth_down_gives_json_503(gateways: Gateways) -> None:
    gw = gateways.start(port=gateways.first_port)  # type: ignore[attr-defined]
    gateways.upstream.stop()
    r = httpx.get(gw.url + "/login")
    assert r.status_code in (502, 503) and r.json()["error"] == "temporarily_unavailable"
