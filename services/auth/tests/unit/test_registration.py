"""RFC 7591 metadata validation (RG-01..RG-04) without I/O."""

from __future__ import annotations

import pytest

from till_auth.oauth import registration
from till_auth.oauth.errors import InvalidClientMetadata, InvalidRedirectUri

CB = ["https://client.example/cb"]


def test_defaults_follow_rfc7591() -> None:
    meta = registration.validate({"redirect_uris": CB})
    assert meta.token_endpoint_auth_method == "client_secret_basic"
    assert meta.confidential
    assert meta.response_types == ["code"]
    assert meta.grant_types == ["authorization_code", "refresh_token"]


@pytest.mark.parametrize("body", [{}, {"redirect_uris": []}, {"redirect_uris": "https://c.example/cb"},
                                  {"redirect_uris": [1]}])
def test_rg03_missing_redirect_uris(body: dict[str, object]) -> None:
    with pytest.raises(InvalidRedirectUri):
        registration.validate(body)


@pytest.mark.parametrize("extra", [
    {"grant_types": ["implicit"]}, {"grant_types": ["password"]}, {"grant_types": ["refresh_token"]},
    {"response_types": ["token"]}, {"token_endpoint_auth_method": "private_key_jwt"},
    {"scope": "admin"}, {"client_uri": "javascript:alert(1)"}, {"client_name": "x" * 201},
])
def test_rg03_bad_metadata(extra: dict[str, object]) -> None:
    with pytest.raises(InvalidClientMetadata):
        registration.validate({"redirect_uris": CB, **extra})


def test_rg03_malformed_json() -> None:
    with pytest.raises(InvalidClientMetadata):
        registration.parse_json(b"{")
    with pytest.raises(InvalidClientMetadata):
        registration.parse_json(b"[]")


def test_rg04_unknown_and_server_owned_fields_are_ignored() -> None:
    meta = registration.validate({"redirect_uris": CB, "client_id": "mine", "client_secret": "s",
                                  "registration_access_token": "t", "skip_consent": True, "x_admin": True,
                                  "token_endpoint_auth_method": "none"})
    dumped = registration.msgspec.to_builtins(meta)
    assert not {"client_id", "client_secret", "registration_access_token", "skip_consent", "x_admin"} & set(dumped)


def test_cimd_documents_may_not_ask_for_secrets() -> None:
    with pytest.raises(InvalidClientMetadata):
        registration.validate({"redirect_uris": CB, "token_endpoint_auth_method": "client_secret_basic"},
                              allow_secret_methods=False)


@pytest.mark.parametrize("raw", [b'{"client_name": "a\\u0000b"}', b'{"x": [{"y\\u0000": 1}]}',
                                 b'{"a":' + b"[" * 20_000 + b"]" * 20_000 + b"}"])
def test_metadata_with_a_nul_or_nested_past_the_decoder_is_invalid_client_metadata(raw: bytes) -> None:
    """D861: NUL cannot be stored in PostgreSQL text; deep nesting made msgspec raise RecursionError (a 500)."""
    with pytest.raises(InvalidClientMetadata):
        registration.parse_json(raw)


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    assert registration.parse_json(b'{"client_name": "a\\\\u0000"}') == {"client_name": "a\\u0000"}
