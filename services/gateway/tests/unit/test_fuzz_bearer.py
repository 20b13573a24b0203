"""Fuzzing bearer handling at the gateway (GW-01, JW-01..JW-11): the ``Authorization`` header
parser and token verification.  Any header, query and token is either a token, "no token",
``BadBearer`` (400) or ``InvalidToken`` (401) — never another exception (which would be a 500)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm
from tests.support import fuzz_settings

from till_common.errors import InvalidToken
from till_common.jwt import AccessTokenVerifier, JwksCache
from till_common.protocol.internal import Introspection
from till_gateway import auth
from till_gateway.auth import Authenticator, BadBearer
from till_gateway.revocations import RevocationState

pytestmark = pytest.mark.fuzz

ISSUER = "https://gw.example"
KEY = ec.generate_private_key(ec.SECP256R1())
JWKS = json.dumps({"keys": [{**json.loads(ECAlgorithm.to_jwk(KEY.public_key())), "kid": "k1", "use": "sig",
                             "alg": "ES256"}]}).encode()

header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)
schemes = st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR", "Basic", "Bearer:", "Token", "", "DPoP"])
spaces = st.sampled_from(["", " ", "  ", "\t", " \t "])
tokens = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@fuzz_settings(300)
@given(st.lists(header_text, max_size=3), st.binary(max_size=80))
def test_any_authorization_headers_and_query_are_a_token_none_or_bad_request(headers: list[str],
                                                                              query: bytes) -> None:
    try:
        token = auth.bearer_token(headers, query)
    except BadBearer:
        assert len(headers) > 1 or b"access_token" in query
        return
    assert len(headers) <= 1
    if token is not None:
        assert token == token.strip()
        assert headers[0].strip().lower().startswith("bearer ")


@fuzz_settings(300)
@given(spaces, schemes, spaces, tokens, spaces)
def test_authorization_variants(lead: str, scheme: str, gap: str, token: str, trail: str) -> None:
    value = f"{lead}{scheme}{gap or ' '}{token}{trail}"
    got = auth.bearer_token([value], b"")
    if scheme.lower() == "bearer" and gap in ("", " "):
        assert got == token                     # the scheme is case-insensitive (RFC 7235 §2.1)
    elif scheme.lower() != "bearer":
        assert got is None                      # another scheme is no bearer token: 401, not 500
    with pytest.raises(BadBearer):
        auth.bearer_token([value, value], b"")
    query = b"access_token=" + token.encode()
    assert auth.bearer_token([], query) is None       # query alone is no token (MCP: header only)
    if got is not None:
        with pytest.raises(BadBearer):
            auth.bearer_token([value], query)


def authenticator() -> Authenticator:
    async def fetch() -> bytes:
        return JWKS

    async def introspect(_: str) -> Introspection:
        return Introspection(active=False)

    verifier = AccessTokenVerifier(JwksCache(fetch, min_refetch_interval=0), issuer=ISSUER,
                                   audiences=[ISSUER + "/mcp"])
    return Authenticator(verifier, introspect, RevocationState())


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=3), max_leaves=8)
headers = st.fixed_dictionaries({}, optional={
    "alg": st.sampled_from(["ES256", "none", "HS256", "RS256", "es256"]) | json_values,
    "typ": st.sampled_from(["at+jwt", "JWT", "application/at+jwt"]) | json_values,
    "kid": st.sampled_from(["k1", "k2", ""]) | json_values,
    "jku": st.just("https://evil.example/jwks"), "crit": st.just(["x"]),
})


def nested(depth: int) -> bytes:
    return b'{"alg":"ES256","typ":"at+jwt","kid":"k1","x":' + b"[" * depth + b"]" * depth + b"}"


segments = (st.builds(lambda h: b64(json.dumps(h).encode()), headers) | st.binary(max_size=40).map(b64)
            | st.integers(min_value=900, max_value=2000).map(lambda d: b64(nested(d))) | st.text(max_size=12))


@fuzz_settings(150)
@given(segments, segments, st.text(max_size=90) | st.binary(max_size=64).map(b64))
def test_forged_tokens_are_invalid_token_and_nothing_else(header: str, payload: str, signature: str) -> None:
    token = f"{header}.{payload}.{signature}"
    with pytest.raises(InvalidToken):
        asyncio.run(authenticator().authenticate(token))


@fuzz_settings(200)
@given(st.text(max_size=200))
def test_random_strings_and_pat_lookalikes_are_invalid_token(value: str) -> None:
    for token in (value, "till_pat_" + value):
        with pytest.raises(InvalidToken):
            asyncio.run(authenticator().authenticate(token))


def good_claims(**change: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "1", "aud": ISSUER + "/mcp", "client_id": "c", "scope": "products:read",
              "store_id": 1, "jti": "j", "iat": now, "exp": now + 600, "role": "owner"}
    claims.update(change)
    return {k: v for k, v in claims.items() if v is not None}


@fuzz_settings(200)
@given(st.sampled_from(["iss", "sub", "aud", "client_id", "scope", "store_id", "jti", "iat", "exp", "role", "nbf"]),
       json_values)
def test_signed_tokens_with_any_claim_value_verify_or_are_invalid_token(claim: str, value: Any) -> None:
    """Even a token we signed ourselves with a wrong-typed claim is a 401, never a crash."""
    payload = json.dumps(good_claims(**{claim: value})).encode()
    token = jwt.api_jws.encode(payload, KEY, algorithm="ES256", headers={"kid": "k1", "typ": "at+jwt"})
    try:
        cred = asyncio.run(authenticator().authenticate(token))
    except InvalidToken:
        return
    assert cred.user_id == 1


def test_deeply_nested_header_or_payload_is_invalid_token() -> None:
    """The JSON of a JWT header is parsed before any signature check: nesting must not escape."""
    good = b64(json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": "k1"}).encode())
    for token in (f"{b64(nested(3000))}.e30.sig", f"{good}.{b64(b'[' * 3000 + b']' * 3000)}.sig"):
        with pytest.raises(InvalidToken):
            asyncio.run(authenticator().authenticate(token))
