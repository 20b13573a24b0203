"""The one error hierarchy.  Each wire format renders these in exactly one place.

``description`` is safe to show a client; ``debug`` goes only to the log.
"""

from __future__ import annotations


class TillError(Exception):
    """Base of every error Till raises on purpose."""

    status: int = 500
    code: str = "server_error"

    def __init__(self, description: str = "", *, debug: str = "") -> None:
        super().__init__(description or self.__class__.__doc__ or self.code)
        self.description = description or (self.__class__.__doc__ or self.code).strip().splitlines()[0]
        self.debug = debug


class ConfigError(TillError):
    """A setting is missing or invalid; the process stops with this one line."""

    code = "config_error"


class BadRequest(TillError):
    """The request is malformed."""

    status = 400
    code = "bad_request"


class Unauthorized(TillError):
    """Missing or invalid credentials."""

    status = 401
    code = "unauthorized"


class Forbidden(TillError):
    """The credentials do not allow this."""

    status = 403
    code = "forbidden"


class NotFound(TillError):
    """No such resource."""

    status = 404
    code = "not_found"


class Conflict(TillError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"


class PayloadTooLarge(TillError):
    """The request body exceeds the limit."""

    status = 413
    code = "payload_too_large"


class RateLimited(TillError):
    """Too many requests."""

    status = 429
    code = "rate_limited"

    def __init__(self, description: str = "", *, retry_after: int = 1, debug: str = "") -> None:
        super().__init__(description, debug=debug)
        self.retry_after = retry_after


class Unavailable(TillError):
    """A dependency is unavailable; try again."""

    status = 503
    code = "temporarily_unavailable"


class UpstreamError(TillError):
    """An internal service failed or timed out."""

    status = 502
    code = "upstream_error"


class InvalidToken(Unauthorized):
    """RFC 6750 §3.1: the access token is expired, revoked, malformed or invalid."""

    code = "invalid_token"
