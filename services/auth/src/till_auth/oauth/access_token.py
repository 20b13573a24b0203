"""RFC 9068 JWT access tokens, ES256 (SPEC §4); claims match till_common.jwt.AccessClaims."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey


@dataclass(frozen=True)
class Issued:
    token: str
    jti: str
    iat: int
    exp: int


def stamp(now: int, cutoff: int | None) -> int:
    """``iat`` for a token minted now: a cutoff "issued before T" includes T's own second
    (SPEC §4), so a token born in that second is stamped T + 1 and survives."""
    return cutoff + 1 if cutoff is not None and now <= cutoff else now


def mint(*, key: EllipticCurvePrivateKey, kid: str, issuer: str, sub: int, audience: str, client_id: str,
         scope: str, store_id: int, role: str, gid: str, iat: int, ttl: int) -> Issued:
    jti = secrets.token_urlsafe(16)
    claims = {
        "iss": issuer, "sub": str(sub), "aud": audience, "client_id": client_id, "scope": scope,
        "store_id": store_id, "role": role, "gid": gid, "jti": jti, "iat": iat, "exp": iat + ttl,
    }
    token = jwt.encode(claims, key, algorithm="ES256", headers={"typ": "at+jwt", "kid": kid})
    return Issued(token, jti, iat, iat + ttl)
