"""The whole authorization-code flow over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import httpx
import jwt

from till_common.jwt import AccessTokenVerifier, JwksCache
from till_common.permissions import ALL_SCOPES


def test_metadata_is_rfc8414_on_the_issuer(auth_any) -> None:
    srv = auth_any
    r = srv.http().get("/.well-known/oauth-authorization-server")
    assert r.status_code == 200
    m = r.json()
    issuer = srv.issuer
    assert m["issuer"] == issuer
    assert not issuer.endswith("/")
    assert m["authorization_endpoint"] == issuer + "/mcp/oauth/authorize"
    assert m["token_endpoint"] == issuer + "/mcp/oauth/token"
    assert m["registration_endpoint"] == issuer + "/mcp/oauth/register"
    assert m["revocation_endpoint"] == issuer + "/mcp/oauth/revoke"
    assert m["jwks_uri"] == issuer + "/.well-known/jwks.json"
    assert m["code_challenge_methods_supported"] == ["S256"]
    assert m["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert m["response_types_supported"] == ["code"]
    assert set(m["token_endpoint_auth_methods_supported"]) == {"none", "client_secret_post", "client_secret_basic"}
    assert m["scopes_supported"] == list(ALL_SCOPES)
    assert m["client_id_metadata_document_supported"] is True
    assert m["authorization_response_iss_parameter_supported"] is True


def test_jw09_jwks_has_public_ec_members_only_and_unique_kids(auth_any) -> None:
    keys = auth_any.http().get("/.well-known/jwks.json").json()["keys"]
    assert keys
    assert len({k["kid"] for k in keys}) == len(keys)
    for k in keys:
        assert set(k) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
        assert (k["kty"], k["crv"], k["use"], k["alg"]) == ("EC", "P-256", "sig", "ES256")


def test_full_flow_issues_an_access_token_the_gateway_verifier_accepts(auth_any, Flow) -> None:
    srv = auth_any
    flow = Flow.start(srv)
    body = flow.tokens()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"].split() == list(ALL_SCOPES)
    assert body["refresh_token"]

    async def verify() -> object:
        async def fetch() -> bytes:
            async with httpx.AsyncClient() as c:
                return (await c.get(srv.url + "/.well-known/jwks.json")).content

        verifier = AccessTokenVerifier(JwksCache(fetch), issuer=srv.issuer,
                                       audiences=[srv.issuer, srv.issuer + "/mcp", srv.issuer + "/mcp/sse"])
        return await verifier.verify(body["access_token"])

    claims = asyncio.run(verify())
    assert claims.sub == "1"
    assert claims.store_id == 1
    assert claims.role == "owner"
    assert claims.aud == srv.issuer + "/mcp"  # type: ignore[attr-defined]
    assert claims.client_id == flow.client_id  # type: ignore[attr-defined]
    assert claims.exp - claims.iat == 3600  # type: ignore[attr-defined]
    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert header["kid"]
    assert claims.gid  # type: ignore[attr-defined]
    json.dumps(body)
