"""OAuth error codes as classes (RFC 6749 §4.1.2.1, §5.2; RFC 7591 §3.2.2; RFC 7009; RFC 8707; RFC 6750).

Each class carries its wire code and HTTP status.  ``description`` reaches the client (one line,
no CR/LF/TAB, RFC 6749 §5.2 allows only %x20-21 / %x23-5B / %x5D-7E), ``debug`` only the log.
"""

from __future__ import annotations

import re

from till_common.errors import TillError

_UNSAFE = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


class OAuthError(TillError):
    """Base of the OAuth wire errors."""

    error = "invalid_request"
    status = 400

    def __init__(self, description: str = "", *, debug: str = "") -> None:
        super().__init__(_UNSAFE.sub(" ", description), debug=debug)
        self.code = self.error

    def body(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class InvalidRequest(OAuthError):
    """RFC 6749 §5.2: a parameter is missing, repeated, malformed or unsupported."""

    error = "invalid_request"


class InvalidClient(OAuthError):
    """RFC 6749 §5.2: client authentication failed; 401 so that clients register again (SPEC §9)."""

    error = "invalid_client"
    status = 401

    def __init__(self, description: str = "", *, basic: bool = False, debug: str = "") -> None:
        super().__init__(description, debug=debug)
        self.basic = basic


class InvalidGrant(OAuthError):
    """RFC 6749 §5.2: the code or refresh token is invalid, expired, revoked or not this client's."""

    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    """RFC 6749 §5.2: this client may not use this grant type."""

    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    """RFC 6749 §5.2: the grant type is not supported."""

    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    """RFC 6749 §5.2: the scope is unknown or wider than granted."""

    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the resource is not one this server issues tokens for."""

    error = "invalid_target"


class UnsupportedResponseType(OAuthError):
    """RFC 6749 §4.1.2.1: only ``code`` is supported."""

    error = "unsupported_response_type"


class AccessDenied(OAuthError):
    """RFC 6749 §4.1.2.1: the resource owner denied the request."""

    error = "access_denied"
    status = 403


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1: the server cannot revoke this token type."""

    error = "unsupported_token_type"


class InvalidRedirectUri(OAuthError):
    """RFC 7591 §3.2.2: a redirect URI is not acceptable."""

    error = "invalid_redirect_uri"


class InvalidClientMetadata(OAuthError):
    """RFC 7591 §3.2.2: a metadata field is invalid."""

    error = "invalid_client_metadata"


class InvalidBearer(OAuthError):
    """RFC 6750 §3.1 (used by RFC 7592): the registration access token is missing or wrong."""

    error = "invalid_token"
    status = 401


class TooManyRequests(OAuthError):
    """Rate limited; the body stays in OAuth shape."""

    error = "slow_down"
    status = 429

    def __init__(self, description: str = "", *, retry_after: int = 60, debug: str = "") -> None:
        super().__init__(description, debug=debug)
        self.retry_after = retry_after


class ServerError(OAuthError):
    """RFC 6749 §5.2 extension: an unexpected condition; details only in the log."""

    error = "server_error"
    status = 500


class TemporarilyUnavailable(OAuthError):
    """RFC 6749 §4.1.2.1: try again later."""

    error = "temporarily_unavailable"
    status = 503
