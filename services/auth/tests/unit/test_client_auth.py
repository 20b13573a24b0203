"""Client authentication parsing (TK-04) without I/O."""

from __future__ import annotations

import base64

import pytest

from till_auth.oauth import client_auth
from till_auth.oauth.errors import InvalidClient, InvalidRequest


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_three_methods_are_recognised() -> None:
    assert client_auth.parse(None, "c", None).method == "none"
    assert client_auth.parse(None, "c", "s").method == "client_secret_post"
    creds = client_auth.parse(basic("c%3A1", "s+x"), None, None)
    assert (creds.client_id, creds.secret, creds.method) == ("c:1", "s x", "client_secret_basic")


def test_tk04_two_methods_at_once_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        client_auth.parse(basic("c", "s"), "c", "s")


def test_tk04_unknown_client_and_wrong_secret_are_invalid_client() -> None:
    with pytest.raises(InvalidClient) as unknown:
        client_auth.authenticate(client_auth.parse(basic("c", "s"), None, None), registered_method=None,
                                 secret_hash=None)
    assert unknown.value.basic
    assert unknown.value.status == 401
    good = client_auth.hash_secret("right")
    with pytest.raises(InvalidClient):
        client_auth.authenticate(client_auth.parse(None, "c", "wrong"), registered_method="client_secret_post",
                                 secret_hash=good)
    with pytest.raises(InvalidClient):
        client_auth.authenticate(client_auth.parse(None, "c", None), registered_method="client_secret_basic",
                                 secret_hash=good)
    client_auth.authenticate(client_auth.parse(None, "c", "right"), registered_method="client_secret_basic",
                             secret_hash=good)
    with pytest.raises(InvalidClient):
        client_auth.parse(None, None, None)


@pytest.mark.parametrize("header", ["Basic", "basic", "BASIC ", "Basic    "])
def test_a_basic_scheme_without_credentials_is_a_malformed_basic_attempt(header: str) -> None:
    # found by the token-form fuzz test: a bare "Basic" was read as no client authentication at all,
    # so the 401 carried no Basic challenge (RFC 6749 §5.2)
    with pytest.raises(InvalidClient) as refused:
        client_auth.parse(header.strip(), None, None)
    assert refused.value.basic
