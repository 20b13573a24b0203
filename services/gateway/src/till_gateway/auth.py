"""Bearer tokens at the gateway: RFC 6750 parsing and challenges, RFC 9728 metadata, verification.

Framework-free.  JWTs are verified locally (till_common.jwt); personal tokens (``till_pat_``)
through auth's RFC 7662 introspection, cached ≤ 60 s.  A verified credential is cached by the
SHA-256 of the token until its expiry (one signature check per token, not per request), and
every use re-checks the :class:`RevocationState`, so a revocation applies to cached entries at once.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl

from till_common.errors import InvalidToken, Unavailable
from till_common.jwt import AccessTokenVerifier
from till_common.permissions import ALL_SCOPES, ROLES
from till_common.principal import Principal
from till_common.protocol.internal import Introspection
from till_gateway.revocations import Credential, RevocationState

PAT_PREFIX: Final = "till_pat_"
PAT_CACHE_SECONDS: Final = 60.0
MAX_TOKEN_LENGTH: Final = 8192


class BadBearer(Exception):
    """RFC 6750 §3.1 ``invalid_request``: the token was sent in more than one way (400)."""


def bearer_token(authorization: list[str], query_string: bytes) -> str | None:
    """The token from the ``Authorization`` header only (MCP authorization "Access Token Usage").

    A token in the query string alone counts as no token (401); a token in the header *and* the
    query, or two Authorization headers, is ``invalid_request`` (RFC 6750 §2: one method only).
    """
    in_query = b"access_token=" in query_string and any(
        k == "access_token" for k, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    if len(authorization) > 1:
        raise BadBearer("more than one Authorization header")
    if not authorization:
        return None
    scheme, _, token = authorization[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    if in_query:
        raise BadBearer("token sent both in the header and in the query")
    token = token.strip()
    return token or None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def fingerprint(user_id: int, store_id: int) -> str:
    """Who owns an SSE session: the principal, never the token (a refreshed token still matches)."""
    return hashlib.sha256(f"{user_id}:{store_id}".encode()).hexdigest()


@dataclass(frozen=True)
class ProtectedResource:
    """This server's RFC 9728 identity: one server under three resource names."""

    public_url: str

    def prm_url(self, path: str) -> str:
        """Absolute PRM URL for a request path (RFC 9728 §3.1: inserted after the host)."""
        suffix = "/mcp/sse" if path.startswith("/mcp/sse") else "/mcp"
        return f"{self.public_url}/.well-known/oauth-protected-resource{suffix}"

    def metadata(self, suffix: str) -> dict[str, object]:
        return {"resource": self.public_url + suffix, "authorization_servers": [self.public_url],
                "scopes_supported": list(ALL_SCOPES), "bearer_methods_supported": ["header"],
                "resource_name": "Till"}

    @property
    def audiences(self) -> tuple[str, ...]:
        return (self.public_url, self.public_url + "/mcp", self.public_url + "/mcp/sse")


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def challenge(prm_url: str, *, error: str | None = None, scope: str | None = None,
              description: str | None = None) -> str:
    """The ``WWW-Authenticate`` value (RFC 6750 §3, RFC 9728 §5.1); every 401/403 uses this."""
    parts = []
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{_quote(description)}"')
    parts.append(f'scope="{scope if scope is not None else " ".join(ALL_SCOPES)}"')
    parts.append(f'resource_metadata="{prm_url}"')
    return "Bearer " + ", ".join(parts)


def credential_from_introspection(data: Introspection, now: float) -> Credential:
    if not data.active:
        raise InvalidToken("token is not active")
    if data.sub is None or data.store_id is None or data.role not in ROLES or data.jti is None:
        raise InvalidToken("token introspection is incomplete")
    expires = now + PAT_CACHE_SECONDS if data.exp is None else min(float(data.exp), now + PAT_CACHE_SECONDS)
    try:
        user_id = int(data.sub)
    except ValueError:
        raise InvalidToken("token subject is not a user id") from None
    return Credential(user_id=user_id, store_id=data.store_id, role=data.role,
                      scopes=tuple((data.scope or "").split()), client_id=data.client_id, token_id=data.jti,
                      iat=data.iat or 0, gid=data.gid, expires_at=expires, kind="pat")


class Authenticator:
    """Token → :class:`Credential`, or :class:`InvalidToken` (401) / :class:`Unavailable` (503)."""

    def __init__(self, verifier: AccessTokenVerifier, introspect: Callable[[str], Awaitable[Introspection]],
                 revocations: RevocationState, *, cache_size: int = 10_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.verifier = verifier
        self.introspect = introspect
        self.revocations = revocations
        self.clock = clock
        self._cache: OrderedDict[str, Credential] = OrderedDict()
        self._cache_size = cache_size

    async def authenticate(self, token: str) -> Credential:
        return (await self.authenticate_keyed(token))[0]

    async def authenticate_keyed(self, token: str) -> tuple[Credential, str]:
        """The credential and the token's hash, its cache key (the rate limiter's key too)."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("token too long")
        key = token_hash(token)
        now = self.clock()
        cred = self._cache.get(key)
        if cred is not None and cred.expires_at < now:
            del self._cache[key]
            cred = None
        if cred is None:
            cred = await self._verify(token, now)
            self._cache[key] = cred
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        if self.revocations.is_revoked(cred):
            raise InvalidToken("token has been revoked")
        return cred, key

    async def _verify(self, token: str, now: float) -> Credential:
        if token.startswith(PAT_PREFIX):
            return credential_from_introspection(await self.introspect(token), now)
        claims = await self.verifier.verify(token)
        if claims.role not in ROLES:
            raise InvalidToken("token role is unknown")
        try:
            user_id = int(claims.sub)
        except ValueError:
            raise InvalidToken("token subject is not a user id") from None
        return Credential(user_id=user_id, store_id=claims.store_id, role=claims.role,
                          scopes=tuple(claims.scope.split()), client_id=claims.client_id, token_id=claims.jti,
                          iat=claims.iat, gid=claims.gid, expires_at=float(claims.exp + self.verifier.leeway))

    def forget(self, tokens: Iterable[str]) -> None:
        for token in tokens:
            self._cache.pop(token_hash(token), None)


def principal(cred: Credential, request_id: str) -> Principal:
    return Principal(user_id=cred.user_id, store_id=cred.store_id, role=cred.role,  # type: ignore[arg-type]
                     scopes=cred.scopes, client_id=cred.client_id, token_id=cred.token_id,
                     request_id=request_id)


__all__ = ["Authenticator", "BadBearer", "InvalidToken", "ProtectedResource", "Unavailable", "bearer_token",
           "challenge", "fingerprint", "principal", "token_hash"]
