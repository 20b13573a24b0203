"""Security cases JW-01, JW-03, JW-05..JW-08 against the shared verifier (no network)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm

from till_common.errors import InvalidToken, Unavailable
from till_common.jwt import AccessTokenVerifier, JwksCache, canonical_resource

ISS = "https://till.example"
AUD = f"{ISS}/mcp"
KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def jwks_of(*pairs: tuple[str, Any]) -> bytes:
    keys = []
    for kid, key in pairs:
        jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        keys.append({**jwk, "kid": kid, "use": "sig", "alg": "ES256"})
    return json.dumps({"keys": keys}).encode()


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISS, "sub": "1", "aud": AUD, "client_id": "c1", "scope": "products:read",
            "store_id": 1, "jti": "j1", "iat": now, "exp": now + 3600, "role": "owner"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: Any = KEY, **headers: Any) -> str:
    h = {"kid": "k1", "typ": "at+jwt", **headers}
    h = {k: v for k, v in h.items() if v is not None}
    return jwt.encode(payload, key, algorithm="ES256", headers=h)


class Fetcher:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.calls = 0

    async def __call__(self) -> bytes:
        self.calls += 1
        return self.body


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher(jwks_of(("k1", KEY)))


@pytest.fixture
def verifier(fetcher: Fetcher) -> AccessTokenVerifier:
    return AccessTokenVerifier(JwksCache(fetcher), issuer=ISS, audiences=[ISS, AUD, f"{ISS}/mcp/sse"])


def b64(obj: Any) -> str:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_valid_token_is_accepted(verifier: AccessTokenVerifier) -> None:
    c = await verifier.verify(sign(claims()))
    assert (c.sub, c.store_id, c.scope) == ("1", 1, "products:read")


@pytest.mark.parametrize("alg", ["none", "None", "nOnE"])
async def test_jw01_alg_none_is_refused(verifier: AccessTokenVerifier, alg: str) -> None:
    token = f"{b64({'alg': alg, 'typ': 'at+jwt', 'kid': 'k1'})}.{b64(claims())}."
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_jw01_rs256_from_attacker_key_with_real_kid_is_refused(verifier: AccessTokenVerifier) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "k1", "typ": "at+jwt"})
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


@pytest.mark.parametrize("alg", ["PS256", "ES384", "EdDSA"])
async def test_jw01_other_algorithms_from_attacker_keys_are_refused(verifier: AccessTokenVerifier, alg: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key: Any = {"PS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
                "ES384": lambda: ec.generate_private_key(ec.SECP384R1()),
                "EdDSA": ed25519.Ed25519PrivateKey.generate}[alg]()
    token = jwt.encode(claims(), key, algorithm=alg, headers={"kid": "k1", "typ": "at+jwt"})
    with pytest.raises(InvalidToken, match="algorithm"):
        await verifier.verify(token)


async def test_jw01_es256_signed_by_another_key_is_refused(verifier: AccessTokenVerifier) -> None:
    with pytest.raises(InvalidToken):
        await verifier.verify(sign(claims(), OTHER_KEY))


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk", "x5c"])
async def test_jw03_key_location_headers_are_refused_without_fetching(
        verifier: AccessTokenVerifier, fetcher: Fetcher, header: str) -> None:
    token = sign(claims(), **{header: "https://evil.example/jwks.json"})
    with pytest.raises(InvalidToken):
        await verifier.verify(token)
    assert fetcher.calls == 0


@pytest.mark.parametrize("sig", [b"\x00" * 64, base64.urlsafe_b64decode("MAYCAQACAQA=")])
async def test_jw05_zero_signature_is_refused(verifier: AccessTokenVerifier, sig: bytes) -> None:
    head, body, _ = sign(claims()).split(".")
    with pytest.raises(InvalidToken):
        await verifier.verify(f"{head}.{body}.{b64(sig)}")


async def test_jw05_signature_copied_from_another_token_is_refused(verifier: AccessTokenVerifier) -> None:
    head, _, sig = sign(claims()).split(".")
    with pytest.raises(InvalidToken):
        await verifier.verify(f"{head}.{b64(claims(sub='2', store_id=2))}.{sig}")


@pytest.mark.parametrize("typ", ["JWT", None])
async def test_jw06_wrong_or_absent_typ_is_refused(verifier: AccessTokenVerifier, typ: str | None) -> None:
    with pytest.raises(InvalidToken):
        await verifier.verify(sign(claims(), typ=typ))


async def test_jw06_crit_header_is_refused(verifier: AccessTokenVerifier) -> None:
    with pytest.raises(InvalidToken):
        await verifier.verify(sign(claims(), crit=["x"], x=1))


async def test_jw06_duplicate_claim_members_are_refused(verifier: AccessTokenVerifier) -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    from cryptography.hazmat.primitives.hashes import SHA256

    head = b64({"alg": "ES256", "typ": "at+jwt", "kid": "k1"})
    body_json = json.dumps(claims())[:-1] + ', "exp": 1}'
    body = b64(body_json.encode())
    der = KEY.sign(f"{head}.{body}".encode(), ec.ECDSA(SHA256()))
    r, s = decode_dss_signature(der)
    sig = b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    with pytest.raises(InvalidToken, match="duplicate"):
        await verifier.verify(f"{head}.{body}.{sig}")


@pytest.mark.parametrize("aud", ["https://other.example/mcp", f"{AUD}x", f"{AUD}/../admin",
                                 "https://till.example.evil.example", None])
async def test_jw07_foreign_audience_is_refused(verifier: AccessTokenVerifier, aud: str | None) -> None:
    with pytest.raises(InvalidToken):
        await verifier.verify(sign(claims(aud=aud)))


@pytest.mark.parametrize("iss", [f"{ISS}/", "http://till.example", None])
async def test_jw07_foreign_issuer_is_refused(verifier: AccessTokenVerifier, iss: str | None) -> None:
    with pytest.raises(InvalidToken):
        await verifier.verify(sign(claims(iss=iss)))


@pytest.mark.parametrize(("offset", "ok"), [(-61, False), (-30, True)])
async def test_jw08_expiry_has_sixty_seconds_leeway(verifier: AccessTokenVerifier, offset: int, ok: bool) -> None:
    token = sign(claims(exp=int(time.time()) + offset))
    if ok:
        await verifier.verify(token)
    else:
        with pytest.raises(InvalidToken):
            await verifier.verify(token)


async def test_jw08_missing_exp_and_future_iat_are_refused(verifier: AccessTokenVerifier) -> None:
    with pytest.raises(InvalidToken):
        await verifier.verify(sign(claims(exp=None)))
    with pytest.raises(InvalidToken):
        await verifier.verify(sign(claims(iat=int(time.time()) + 120)))
    with pytest.raises(InvalidToken):
        await verifier.verify(sign(claims(nbf=int(time.time()) + 120)))


async def test_ft10_injected_clock_decides_time_checks(fetcher: Fetcher) -> None:
    skewed = AccessTokenVerifier(JwksCache(fetcher), issuer=ISS, audiences=[AUD],
                                 clock=lambda: time.time() - 45)
    await skewed.verify(sign(claims()))        # FT-10: 45 s behind still accepts a fresh token
    behind = AccessTokenVerifier(JwksCache(fetcher), issuer=ISS, audiences=[AUD],
                                 clock=lambda: time.time() - 120)
    with pytest.raises(InvalidToken, match="not yet valid"):
        await behind.verify(sign(claims()))


async def test_unknown_kid_refetches_at_most_once_per_interval() -> None:
    fetcher = Fetcher(jwks_of(("k1", KEY)))
    now = [1000.0]
    v = AccessTokenVerifier(JwksCache(fetcher, min_refetch_interval=10, clock=lambda: now[0]),
                            issuer=ISS, audiences=[AUD])
    await v.verify(sign(claims()))
    assert fetcher.calls == 1
    with pytest.raises(InvalidToken):
        await v.verify(sign(claims(), OTHER_KEY, kid="k2"))
    assert fetcher.calls == 1                  # fetched just now: an unknown kid cannot force another
    now[0] += 11
    for _ in range(5):
        with pytest.raises(InvalidToken):
            await v.verify(sign(claims(), OTHER_KEY, kid="k2"))
    assert fetcher.calls == 2                  # five unknown-kid tokens, one refetch
    fetcher.body = jwks_of(("k1", KEY), ("k2", OTHER_KEY))
    now[0] += 11
    await v.verify(sign(claims(), OTHER_KEY, kid="k2"))      # rotated-in key found after the interval
    assert fetcher.calls == 3


def test_jwks_with_private_members_is_ignored() -> None:
    jwk = json.loads(ECAlgorithm.to_jwk(KEY))            # includes "d"
    cache = JwksCache(Fetcher(b""))
    cache.load(json.dumps({"keys": [{**jwk, "kid": "p"}]}).encode())
    assert cache.kids == frozenset()


@pytest.mark.parametrize(("given", "canonical"), [
    ("HTTPS://Till.Example/mcp/", "https://till.example/mcp"),
    ("https://till.example", "https://till.example"),
    ("https://till.example/MCP", "https://till.example/MCP"),
])
def test_canonical_resource(given: str, canonical: str) -> None:
    assert canonical_resource(given) == canonical


async def test_ft11_a_failed_jwks_fetch_is_503_for_a_moment_never_401_for_the_whole_interval() -> None:
    """Auth restarting while the gateway fetched: the next valid token is "cannot verify now"
    (Unavailable → 503), and a second later the refetch is allowed and succeeds."""
    now = [1000.0]
    body: list[bytes | None] = [None]

    async def fetch() -> bytes:
        if body[0] is None:
            raise Unavailable("auth is restarting")
        return body[0]

    v = AccessTokenVerifier(JwksCache(fetch, min_refetch_interval=10, retry_interval=1, clock=lambda: now[0]),
                            issuer=ISS, audiences=[AUD])
    with pytest.raises(Unavailable):
        await v.verify(sign(claims()))             # the fetch itself fails
    body[0] = jwks_of(("k1", KEY))                 # auth is back
    now[0] += 0.5
    with pytest.raises(Unavailable):
        await v.verify(sign(claims()))             # inside the retry pause: 503, not 401
    now[0] += 0.6
    await v.verify(sign(claims()))                 # 1.1 s after the failure: refetched, verified
