"""PKCE S256 (AZ-05, AZ-06, TK-03) without I/O."""

from __future__ import annotations

import pytest

from till_auth.oauth import pkce
from till_auth.oauth.errors import InvalidGrant, InvalidRequest

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"   # RFC 7636 Appendix B


def test_rfc7636_appendix_b_vector() -> None:
    assert pkce.s256(VERIFIER) == CHALLENGE
    pkce.verify(VERIFIER, CHALLENGE)


@pytest.mark.parametrize(("challenge", "method"), [
    (None, "S256"), ("", "S256"), (CHALLENGE, "plain"), (CHALLENGE, None), ("a" * 42, "S256"), ("a" * 129, "S256"),
    (CHALLENGE[:-1] + "=", "S256"), (CHALLENGE[:-1] + "+", "S256"), (CHALLENGE[:-1] + "/", "S256"),
])
def test_az05_az06_bad_challenges_are_invalid_request(challenge: str | None, method: str | None) -> None:
    with pytest.raises(InvalidRequest):
        pkce.check_challenge(challenge, method)


@pytest.mark.parametrize("verifier", [None, "", "a", "b" * 42, "c" * 129, "x" * 42 + " y", "A" * 43])
def test_tk03_bad_verifiers_are_invalid_grant(verifier: str | None) -> None:
    with pytest.raises(InvalidGrant):
        pkce.verify(verifier, CHALLENGE)


def test_tk03_grammar_is_checked_even_when_the_hash_matches() -> None:
    for bad in ("a", "x" * 42, "y" * 129, "z" * 42 + " "):
        with pytest.raises(InvalidGrant):
            pkce.verify(bad, pkce.s256(bad))
