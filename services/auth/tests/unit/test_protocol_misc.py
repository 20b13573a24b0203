"""Errors, scopes, token stamping, metadata, sealing: small pure pieces."""

from __future__ import annotations

import pytest

from till_auth.oauth import access_token, scopes
from till_auth.oauth.errors import InvalidClient, InvalidGrant, InvalidScope, OAuthError
from till_auth.oauth.metadata import server_metadata
from till_common.sealing import Sealer, SealError, Signer


def test_error_classes_carry_code_and_status_and_safe_descriptions() -> None:
    assert (InvalidClient().error, InvalidClient().status) == ("invalid_client", 401)
    assert InvalidGrant("a\r\nb\tc\"d\\e").body() == {"error": "invalid_grant", "error_description": "a  b c d e"}
    assert issubclass(InvalidScope, OAuthError)


def test_scope_requests_are_narrowed_to_the_role_and_unknown_ones_refused() -> None:
    assert scopes.for_role("support", None).split() == ["products:read", "orders:read", "orders:write",
                                                        "customers:read", "customers:write"]
    assert scopes.for_role("analyst", "products:read products:write") == "products:read"
    with pytest.raises(InvalidScope):
        scopes.for_role("owner", "products:read admin")


def test_tk11_refresh_may_narrow_but_never_widen() -> None:
    assert scopes.narrow("products:read orders:read", "orders:read") == "orders:read"
    assert scopes.narrow("products:read orders:read", None) == "products:read orders:read"
    with pytest.raises(InvalidScope):
        scopes.narrow("products:read", "products:read products:write")


def test_issued_before_includes_the_same_second() -> None:
    assert access_token.stamp(100, None) == 100
    assert access_token.stamp(100, 100) == 101
    assert access_token.stamp(100, 99) == 100
    assert access_token.stamp(100, 101) == 102


def test_metadata_urls_are_absolute_on_the_issuer() -> None:
    m = server_metadata("https://gw.example")
    for key, value in m.items():
        if key.endswith(("endpoint", "_uri")):
            assert value.startswith("https://gw.example/"), key


def test_sealed_values_open_only_with_the_same_key_and_row() -> None:
    a = Sealer("k" * 40, "p")
    sealed = a.seal(b"secret", b"row1")
    assert a.open(sealed, b"row1") == b"secret"
    with pytest.raises(SealError):
        a.open(sealed, b"row2")
    with pytest.raises(SealError):
        Sealer("x" * 40, "p").open(sealed, b"row1")
    with pytest.raises(SealError):
        Sealer("k" * 40, "other purpose").open(sealed, b"row1")
    s = Signer("k" * 40, "csrf")
    assert s.verify("session:1", s.sign("session:1"))
    assert not s.verify("session:2", s.sign("session:1"))
    assert not s.verify("session:1", None)


def test_offline_access_is_tolerated_and_dropped() -> None:
    assert scopes.for_role("owner", "products:read offline_access") == "products:read"
    assert scopes.requested("offline_access") is None        # nothing else: the role's full set
    with pytest.raises(InvalidScope):
        scopes.requested("openid")
