"""RFC 6749 §4.1.1 authorization request validation, in the order the RFCs require; no I/O.

Two kinds of failure (RFC 6749 §4.1.2.1): while the client and its redirect URI are not
established the user sees an error page (:class:`PageError`) and nothing is redirected — an
attacker must not be able to bounce users to a URI of their choice.  Once they are, errors
go back to the client as ``error=…&state=…&iss=…`` (RFC 9207).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from till_auth.oauth import pkce, redirects, resource, scopes
from till_auth.oauth.errors import InvalidRequest, OAuthError, UnsupportedResponseType

#: parameters that must not repeat (RFC 6749 §3.1: "MUST NOT be included more than once")
KNOWN = ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
         "code_challenge_method", "resource")


class PageError(Exception):
    """Shown to the user as an HTML 400 page; never redirected."""

    def __init__(self, title: str, detail: str) -> None:
        super().__init__(detail)
        self.title = title
        self.detail = detail


@dataclass(frozen=True)
class RawRequest:
    params: dict[str, str]

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> RawRequest:
        params: dict[str, str] = {}
        for key, value in pairs:
            if key in KNOWN and key in params:
                raise PageError("Invalid request", f"The parameter {key} was sent more than once.")
            if "\x00" in key or "\x00" in value:     # the consent form's copy is decoded here (D861)
                raise PageError("Invalid request", "The request must not contain a NUL character.")
            params[key] = value
        return cls(params)

    def get(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if value != "" else None


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str            # the one the client sent (or the single registered one)
    redirect_uri_sent: bool      # RFC 6749 §4.1.3: then the token request must repeat it
    state: str | None
    scope: str | None            # as requested (validated), narrowed to the role at approval
    code_challenge: str
    resource: str                # canonical audience


def establish_redirect(raw: RawRequest, registered: list[str] | None) -> str:
    """Step 1: the client exists and the redirect URI is one of its registered ones."""
    if registered is None:
        raise PageError("Unknown application", "The application asking for access is not registered "
                        "with this server. Try connecting again from the application.")
    found = redirects.find(raw.get("redirect_uri"), registered)
    if found is None:
        raise PageError("Invalid redirect", "The redirect address does not match the application's "
                        "registration, so this request was stopped.")
    return found


def validate(raw: RawRequest, redirect_uri: str, public_url: str) -> AuthorizationRequest:
    """Step 2: everything else; raises :class:`OAuthError` to be redirected to the client."""
    response_type = raw.get("response_type")
    if response_type is None:
        raise InvalidRequest("response_type is required")
    if response_type != "code":
        raise UnsupportedResponseType("only response_type=code is supported")
    challenge = pkce.check_challenge(raw.get("code_challenge"), raw.get("code_challenge_method"))
    scope = raw.get("scope")
    scopes.requested(scope)
    audience = resource.resolve(raw.get("resource"), public_url)
    client_id = raw.get("client_id")
    assert client_id is not None  # established in step 1
    return AuthorizationRequest(client_id=client_id, redirect_uri=redirect_uri,
                                redirect_uri_sent=raw.get("redirect_uri") is not None,
                                state=raw.params.get("state"), scope=scope,
                                code_challenge=challenge, resource=audience)


def _q(value: str) -> str:
    # state must come back byte-identical (RFC 6749 §4.1.2): percent-encode every reserved byte
    return quote(value, safe="-._~")


def success_redirect(redirect_uri: str, code: str, state: str | None, issuer: str) -> str:
    parts = [f"code={_q(code)}"]
    if state is not None:
        parts.append(f"state={_q(state)}")
    parts.append(f"iss={_q(issuer)}")
    return redirects.with_params(redirect_uri, "&".join(parts))


def error_redirect(redirect_uri: str, error: OAuthError, state: str | None, issuer: str) -> str:
    parts = [f"error={_q(error.error)}"]
    if error.description:
        parts.append(f"error_description={_q(error.description)}")
    if state is not None:
        parts.append(f"state={_q(state)}")
    parts.append(f"iss={_q(issuer)}")
    return redirects.with_params(redirect_uri, "&".join(parts))
