"""RFC 7636 PKCE, S256 only (OAuth 2.1 §4.1.1); compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from till_auth.oauth.errors import InvalidGrant, InvalidRequest

# RFC 7636 §4.1: code-verifier = 43*128unreserved
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# an S256 challenge is BASE64URL(SHA256(verifier)) without padding: exactly 43 characters
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def check_challenge(challenge: str | None, method: str | None) -> str:
    """Authorization request side (RFC 7636 §4.3); missing method means ``plain``, refused."""
    if not challenge:
        raise InvalidRequest("code_challenge is required (PKCE S256)")
    if method != "S256":
        raise InvalidRequest("code_challenge_method must be S256")
    if not _CHALLENGE.fullmatch(challenge):
        raise InvalidRequest("code_challenge must be 43 base64url characters (S256)")
    return challenge


def verify(verifier: str | None, challenge: str) -> None:
    """Token request side (RFC 7636 §4.6); grammar first so a hash-matching bad verifier fails too."""
    if not verifier:
        raise InvalidGrant("code_verifier is required")
    if not _VERIFIER.fullmatch(verifier):
        raise InvalidGrant("code_verifier is malformed")
    if not hmac.compare_digest(s256(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge")
