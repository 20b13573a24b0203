"""Authorization request validation order (AZ-01, AZ-05..AZ-09) without I/O."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from till_auth.oauth import authorize as az
from till_auth.oauth.errors import AccessDenied, InvalidRequest, InvalidScope, InvalidTarget, UnsupportedResponseType

GW = "https://gw.example"
CB = "https://client.example/cb"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def raw(**params: str) -> az.RawRequest:
    base = {"response_type": "code", "client_id": "c1", "redirect_uri": CB, "code_challenge": CHALLENGE,
            "code_challenge_method": "S256", "state": "s"}
    base.update(params)
    return az.RawRequest.from_pairs((k, v) for k, v in base.items() if v is not None)


def test_az01_unknown_client_or_unregistered_redirect_is_a_page_error() -> None:
    with pytest.raises(az.PageError):
        az.establish_redirect(raw(), None)
    with pytest.raises(az.PageError):
        az.establish_redirect(raw(redirect_uri="https://evil.example/cb"), [CB])


@pytest.mark.parametrize("name", ["redirect_uri", "client_id", "state", "code_challenge"])
def test_az07_duplicate_parameter_is_a_page_error(name: str) -> None:
    with pytest.raises(az.PageError):
        az.RawRequest.from_pairs([("client_id", "c1"), (name, "a"), (name, "b")])


@pytest.mark.parametrize(("params", "error"), [
    ({"response_type": "token"}, UnsupportedResponseType),
    ({"response_type": "code id_token"}, UnsupportedResponseType),
    ({"response_type": ""}, InvalidRequest), ({"scope": "admin"}, InvalidScope),
    ({"code_challenge": ""}, InvalidRequest), ({"code_challenge_method": "plain"}, InvalidRequest),
    ({"resource": "https://evil.example/mcp"}, InvalidTarget), ({"resource": GW + "/mcp#x"}, InvalidTarget),
    ({"resource": "mcp"}, InvalidTarget), ({"resource": GW + "/mcpx"}, InvalidTarget),
])
def test_errors_after_the_redirect_is_established_are_redirected(params: dict[str, str], error: type) -> None:
    with pytest.raises(error):
        az.validate(raw(**params), CB, GW)


@pytest.mark.parametrize("resource", [None, "HTTPS://GW.EXAMPLE/mcp", GW + "/mcp/", GW + "/mcp"])
def test_az08_canonical_resources_resolve_to_the_mcp_audience(resource: str | None) -> None:
    assert az.validate(raw(resource=resource), CB, GW).resource == GW + "/mcp"   # type: ignore[arg-type]


def test_az08_the_three_names_of_the_server_are_accepted() -> None:
    assert az.validate(raw(resource=GW), CB, GW).resource == GW
    assert az.validate(raw(resource=GW + "/mcp/sse/"), CB, GW).resource == GW + "/mcp/sse"


def test_az09_state_comes_back_byte_identical_with_iss() -> None:
    state = dict(parse_qsl("state=a%26b%20%E2%9C%93"))["state"]
    ok = az.success_redirect(CB, "CODE", state, GW)
    assert ok == CB + "?code=CODE&state=a%26b%20%E2%9C%93&iss=https%3A%2F%2Fgw.example"
    denied = az.error_redirect(CB, AccessDenied("denied"), state, GW)
    assert "state=a%26b%20%E2%9C%93" in denied
    assert "error=access_denied" in denied
    assert "code=" not in denied
    assert az.success_redirect(CB + "?x=1", "C", None, GW).startswith(CB + "?x=1&code=C&iss=")
