"""Redirect URI rules: registration (RFC 7591 §2, RFC 8252 §7) and exact matching (OAuth 2.1 §4.1.3).

Accepted at registration: ``https`` URLs with a host; ``http`` only on the loopback names
``localhost``, ``127.0.0.1`` and ``[::1]`` (any port); private-use schemes such as
``cursor://…`` for native apps.  Refused: fragments, wildcards, userinfo, dot segments,
whitespace or control characters, relative references and script-capable schemes.

Matching is a plain string comparison; the only freedom is the port of a loopback URI
(RFC 8252 §7.3), and then only when the host is literally the registered one.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from till_auth.oauth.errors import InvalidRedirectUri

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
_BANNED_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "about", "blob", "filesystem",
                             "ftp", "ws", "wss", "mailto", "tel", "view-source", "jar", "chrome"})
_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*")
_SAFE = re.compile(r"[\x21-\x7e]+")          # printable ASCII, no space: no \t, \n, NUL, unicode tricks
MAX_LENGTH = 2000


def _netloc_host_port(netloc: str) -> tuple[str, str]:
    """Split ``host[:port]`` keeping IPv6 brackets; the port part includes its colon."""
    if netloc.startswith("["):
        end = netloc.find("]")
        return (netloc[: end + 1], netloc[end + 1:]) if end > 0 else (netloc, "")
    host, sep, port = netloc.partition(":")
    return host, sep + port


def is_loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and _netloc_host_port(parts.netloc)[0] in LOOPBACK_HOSTS


def kind(uri: str) -> str:
    """``web``, ``loopback`` or ``native`` (private-use scheme), for the consent page."""
    scheme = uri.split(":", 1)[0]
    if scheme == "https":
        return "web"
    return "loopback" if scheme == "http" else "native"


def host_of(uri: str) -> str:
    parts = urlsplit(uri)
    return parts.hostname or parts.netloc or parts.scheme + ":"


def validate(uri: object) -> str:
    if not isinstance(uri, str) or not uri or len(uri) > MAX_LENGTH or not _SAFE.fullmatch(uri):
        raise InvalidRedirectUri("redirect URI must be a non-empty absolute URI without whitespace")
    scheme, colon, rest = uri.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme):
        raise InvalidRedirectUri("redirect URI must be absolute with a lowercase scheme", debug=uri)
    if scheme in _BANNED_SCHEMES:
        raise InvalidRedirectUri(f"the {scheme}: scheme is not allowed for redirect URIs")
    if "#" in uri:
        raise InvalidRedirectUri("redirect URI must not contain a fragment")
    if "*" in uri:
        raise InvalidRedirectUri("redirect URI must not contain wildcards")
    if "\\" in uri:
        raise InvalidRedirectUri("redirect URI must not contain backslashes")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidRedirectUri("redirect URI is malformed") from None
    if "@" in parts.netloc:
        raise InvalidRedirectUri("redirect URI must not contain user information")
    segments = parts.path.split("/")
    if any(s in (".", "..") or s.lower() in ("%2e", "%2e%2e", ".%2e", "%2e.") for s in segments):
        raise InvalidRedirectUri("redirect URI must not contain dot segments")
    if scheme in ("http", "https"):
        host, _ = _netloc_host_port(parts.netloc)
        if not rest.startswith("//") or not host or host != host.lower():
            raise InvalidRedirectUri("redirect URI needs a lowercase host")
        if scheme == "http" and host not in LOOPBACK_HOSTS:
            raise InvalidRedirectUri("http redirect URIs are allowed only on loopback "
                                     "(localhost, 127.0.0.1, [::1]); use https")
    elif not rest.strip("/"):
        raise InvalidRedirectUri("private-use scheme redirect URI needs a path")
    return uri


def matches(requested: str, registered: str) -> bool:
    """Exact match, except that a loopback redirect may use any port (RFC 8252 §7.3)."""
    if requested == registered:
        return True
    if not (is_loopback(registered) and requested.startswith("http://")):
        return False
    req, reg = urlsplit(requested), urlsplit(registered)
    req_host, _ = _netloc_host_port(req.netloc)
    reg_host, _ = _netloc_host_port(reg.netloc)
    if "@" in req.netloc or "#" in requested:
        return False
    return (req_host == reg_host and req.path == reg.path and req.query == reg.query
            and requested == f"http://{req.netloc}{req.path}" + (f"?{req.query}" if req.query else ""))


def find(requested: str | None, registered: list[str]) -> str | None:
    """The redirect URI to use, or None when the request names none of the registered ones."""
    if requested is None:
        # OAuth 2.1 §4.1.1: may be omitted only when exactly one is registered
        return registered[0] if len(registered) == 1 else None
    return requested if any(matches(requested, r) for r in registered) else None


def with_params(uri: str, query: str) -> str:
    return uri + ("&" if "?" in uri else "?") + query
