"""The one renderer of OAuth errors (RFC 6749 §5.2 JSON) and of the HTML error page."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response

from till_auth.oauth.authorize import PageError
from till_auth.oauth.errors import (
    InvalidBearer,
    InvalidClient,
    InvalidRequest,
    OAuthError,
    ServerError,
    TooManyRequests,
)
from till_auth.web.html import render
from till_common.errors import BadRequest
from till_common.integrations.litestar import internal_error_handler
from till_common.logging import get_logger, request_id_var

log = get_logger("till.auth")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    """Every token-endpoint-style response: JSON and never cached (RFC 6749 §5.1)."""
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json",
                    headers={**NO_STORE, **(headers or {})})


def oauth_error(exc: OAuthError) -> Response[bytes]:
    headers: dict[str, str] = {}
    if isinstance(exc, InvalidClient) and exc.basic:
        headers["WWW-Authenticate"] = 'Basic realm="till", charset="UTF-8"'
    elif isinstance(exc, InvalidBearer):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    elif isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    body: dict[str, str] = exc.body()
    if exc.status >= 500:
        log.error("oauth request failed", error=exc.error, debug=exc.debug)
        body["request_id"] = request_id_var.get()       # the correlation id to quote (SC-06)
    elif exc.debug:
        log.info("oauth request refused", error=exc.error, debug=exc.debug)
    return oauth_json(body, exc.status, headers)


def oauth_error_handler(_: Request[Any, Any, Any], exc: OAuthError) -> Response[bytes]:
    return oauth_error(exc)


#: Endpoints whose clients read RFC 6749 §5.2 / RFC 7591 §3.2.2 JSON errors (authorize is a page).
_OAUTH_JSON_PREFIXES = ("/mcp/oauth/register", "/mcp/oauth/token", "/mcp/oauth/revoke", "/mcp/token")


#: HTML pages: their errors are the error page (authorize's before its redirect URI is established).
_PAGE_PREFIXES = ("/mcp/oauth/authorize", "/login", "/logout", "/settings")


def malformed(path: str, detail: str) -> Exception:
    """The error a malformed request on ``path`` gets, in that route's own format: OAuth JSON
    ``invalid_request``, the HTML error page, or problem details (admin, internal, the rest)."""
    if path.startswith(_OAUTH_JSON_PREFIXES):
        return InvalidRequest(detail)
    if path.startswith(_PAGE_PREFIXES):
        return PageError("Invalid request", detail[:1].upper() + detail[1:] + ".")
    return BadRequest(detail)


def unexpected_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """An unexpected failure (SC-06): OAuth JSON ``server_error`` on the OAuth endpoints, problem
    details elsewhere; the client gets the request id, the log gets the exception."""
    if not request.url.path.startswith(_OAUTH_JSON_PREFIXES):
        return internal_error_handler(request, exc)
    log.exception("unhandled error", error=type(exc).__name__)
    return oauth_error(ServerError("internal error; quote the request_id when reporting it"))


def page_error(exc: PageError, status: int = 400) -> Response[bytes]:
    return render("error.html", status=status, title=exc.title, detail=exc.detail)


def page_error_handler(_: Request[Any, Any, Any], exc: PageError) -> Response[bytes]:
    return page_error(exc)
