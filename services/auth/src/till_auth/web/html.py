"""Server-rendered pages: jinja2 with autoescape, and the headers every HTML response carries."""

from __future__ import annotations

import secrets
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from litestar import Response

_env = Environment(loader=PackageLoader("till_auth.web", "templates"), autoescape=select_autoescape(default=True),
                   auto_reload=False)

# No form-action: browsers apply it to the redirect after the consent POST, which must reach
# the client's own redirect URI.
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; img-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")

#: WP-02 / WP-09: never framed, never cached, never leaking a code through Referer.
PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
}


def render(template: str, *, status: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> Response[bytes]:
    nonce = secrets.token_urlsafe(16)
    html = _env.get_template(template).render(nonce=nonce, **context)
    return Response(html.encode(), status_code=status, media_type="text/html; charset=utf-8",
                    headers={**PAGE_HEADERS, "Content-Security-Policy": _CSP.format(nonce=nonce),
                             **(headers or {})})
