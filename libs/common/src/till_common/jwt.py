"""Access-token verification (RFC 9068 profile, RFC 8725 hygiene), ES256 only (SPEC §4).

Signature checking is pyjwt's; this module adds what pyjwt leaves to the caller: the header
allow-list (no ``jku``/``x5u``/``jwk``/``x5c``/``crit``), ``typ: at+jwt``, duplicate-member
rejection, exact ``iss``, ``aud`` against the resource's names, and the time checks against an
injectable clock so clock skew can be tested without touching the OS.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import jwt
import msgspec
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from jwt.algorithms import ECAlgorithm

from till_common.errors import InvalidToken, TillError, Unavailable

ALGORITHM = "ES256"
_FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "crit"})
_TYP = frozenset({"at+jwt", "application/at+jwt"})


class AccessClaims(msgspec.Struct, frozen=True, kw_only=True):
    iss: str
    sub: str
    aud: str | list[str]
    client_id: str
    scope: str
    store_id: int
    jti: str
    iat: int
    exp: int
    role: str
    gid: str | None = None       # refresh family ("grant") id
    nbf: int | None = None


_claims_decoder = msgspec.json.Decoder(AccessClaims)


def canonical_resource(url: str) -> str:
    """MCP "Canonical Server URI": lowercase scheme and host, no trailing slash, no fragment."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    path = (slash + path).rstrip("/")
    return f"{scheme.lower()}://{host.lower()}{path}"


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise InvalidToken("token has a duplicate member", debug=f"duplicate {key!r}")
        obj[key] = value
    return obj


def _strict_json(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(segment), object_pairs_hook=_no_duplicates)
    except InvalidToken:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: a deeply nested header is read before any signature check (found by fuzzing)
        raise InvalidToken("malformed token", debug=type(exc).__name__) from None
    if not isinstance(value, dict):
        raise InvalidToken("malformed token")
    return value


class JwksCache:
    """Public keys by ``kid``; refetches on an unknown ``kid`` at most once per interval.

    A failed fetch does not spend that budget: an unknown ``kid`` is retried after
    ``retry_interval`` and, until then, is "cannot verify now" (:class:`Unavailable`, 503), not
    "invalid token" (401) — a gateway whose last fetch hit a restarting auth must not refuse
    every valid token for the next interval (found by FT-11).
    """

    def __init__(self, fetch: Callable[[], Awaitable[bytes]], *, min_refetch_interval: float = 10.0,
                 retry_interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._interval = min_refetch_interval
        self._retry = retry_interval
        self._clock = clock
        self._keys: dict[str, EllipticCurvePublicKey] = {}
        self._last_attempt = float("-inf")
        self._failed = False
        self._lock = asyncio.Lock()

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    @property
    def failed(self) -> bool:
        """The last fetch failed (the cached keys, if any, are still used)."""
        return self._failed

    def load(self, jwks: bytes) -> None:
        keys: dict[str, EllipticCurvePublicKey] = {}
        for jwk in json.loads(jwks).get("keys", []):
            if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or "d" in jwk or not jwk.get("kid"):
                continue
            if jwk.get("use", "sig") != "sig" or jwk.get("alg", ALGORITHM) != ALGORITHM:
                continue
            key = ECAlgorithm.from_jwk(jwk)
            if isinstance(key, EllipticCurvePublicKey):
                keys[jwk["kid"]] = key
        self._keys = keys

    async def refresh(self) -> None:
        """Fetch and load; on any failure the cached keys stay and :class:`Unavailable` is raised."""
        self._last_attempt = self._clock()
        self._failed = True
        try:
            body = await self._fetch()
            self.load(body)
        except Unavailable:
            raise
        except (TillError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise Unavailable("signing keys unavailable", debug=f"{type(exc).__name__}: {exc}") from None
        self._failed = False

    async def get(self, kid: str) -> EllipticCurvePublicKey | None:
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            key = self._keys.get(kid)
            if key is None:
                since = self._clock() - self._last_attempt
                if since >= (self._retry if self._failed else self._interval):
                    await self.refresh()
                    key = self._keys.get(kid)
                elif self._failed:
                    raise Unavailable("signing keys unavailable; retry", debug=f"kid={kid!r}")
        return key


class AccessTokenVerifier:
    """Verifies a Till access token for one resource server (one server, several names)."""

    def __init__(self, jwks: JwksCache, *, issuer: str, audiences: Iterable[str], leeway: int = 60,
                 clock: Callable[[], float] = time.time) -> None:
        self.jwks = jwks
        self.issuer = issuer
        self.audiences = frozenset(canonical_resource(a) for a in audiences)
        self.leeway = leeway
        self.clock = clock

    async def verify(self, token: str) -> AccessClaims:
        parts = token.split(".")
        if len(parts) != 3 or not all(parts[:2]):
            raise InvalidToken("malformed token")
        header = _strict_json(parts[0])
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("unsupported token algorithm", debug=f"alg={header.get('alg')!r}")
        if str(header.get("typ", "")).lower() not in _TYP:
            raise InvalidToken("token is not an access token (typ must be at+jwt)")
        if _FORBIDDEN_HEADERS & header.keys():
            raise InvalidToken("token header carries a forbidden member")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token has no key id")
        key = await self.jwks.get(kid)
        if key is None:
            raise InvalidToken("token signed by an unknown key", debug=f"kid={kid!r}")
        _strict_json(parts[1])        # duplicate members are an attack, not a formatting choice
        try:
            payload = jwt.api_jws.decode_complete(token, key, algorithms=[ALGORITHM])["payload"]
        except jwt.PyJWTError as exc:
            raise InvalidToken("token signature is invalid", debug=str(exc)) from None
        try:
            claims = _claims_decoder.decode(payload)
        except msgspec.ValidationError as exc:
            raise InvalidToken("token claims are incomplete", debug=str(exc)) from None
        self._check(claims)
        return claims

    def _check(self, c: AccessClaims) -> None:
        if c.iss != self.issuer:
            raise InvalidToken("token issuer is not this server", debug=f"iss={c.iss!r}")
        auds = [c.aud] if isinstance(c.aud, str) else c.aud
        if not any(canonical_resource(a) in self.audiences and a == canonical_resource(a) for a in auds):
            raise InvalidToken("token audience is not this server", debug=f"aud={c.aud!r}")
        now = self.clock()
        if c.exp + self.leeway < now:
            raise InvalidToken("token expired")
        if c.iat - self.leeway > now or (c.nbf is not None and c.nbf - self.leeway > now):
            ahead = max(c.iat, c.nbf or 0) - now
            # the operator's clue (FT-10): by how much the issuer's clock runs ahead of this one
            raise InvalidToken("token not yet valid (check the clocks)",
                               debug=f"issued {ahead:.0f} s ahead of this server's clock (leeway "
                                     f"{self.leeway} s): the issuer's clock and this one differ")
