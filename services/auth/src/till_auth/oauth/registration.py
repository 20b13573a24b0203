"""RFC 7591 §2 client metadata validation (and RFC 7592 §2.2 updates); no I/O.

Only the fields below are kept; everything else in the request — including ``client_id``,
``client_secret``, ``registration_access_token`` or made-up flags — is ignored (RFC 7591 §2:
"The authorization server MUST ignore any client metadata sent by the client that it does not
understand"), so a client can never choose its own credentials or skip consent.
"""

from __future__ import annotations

from typing import Any

import msgspec

from till_auth.oauth import redirects
from till_auth.oauth.errors import InvalidClientMetadata, InvalidRedirectUri
from till_auth.oauth.metadata import AUTH_METHODS, GRANT_TYPES
from till_auth.oauth.scopes import requested
from till_common.permissions import format_scope

MAX_REDIRECT_URIS = 20
_TEXT_FIELDS = ("client_name", "software_id", "software_version")
_URL_FIELDS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")


class ClientMetadata(msgspec.Struct, kw_only=True, omit_defaults=True):
    redirect_uris: list[str]
    token_endpoint_auth_method: str
    grant_types: list[str]
    response_types: list[str]
    client_name: str | None = None
    client_uri: str | None = None
    logo_uri: str | None = None
    tos_uri: str | None = None
    policy_uri: str | None = None
    scope: str | None = None
    contacts: list[str] | None = None
    software_id: str | None = None
    software_version: str | None = None

    @property
    def confidential(self) -> bool:
        return self.token_endpoint_auth_method != "none"  # noqa: S105 - a method name


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):      # msgspec gives up on very deep nesting
        raise InvalidClientMetadata("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidClientMetadata("the request body must be a JSON object")
    if _has_nul(body):
        raise InvalidClientMetadata("client metadata must not contain a NUL character")
    return body


def _has_nul(body: dict[str, Any]) -> bool:
    """Any NUL in the metadata's strings or names (PostgreSQL text cannot hold one, D861).
    A loop, not recursion: a body may nest as deep as its 64 KiB allow."""
    pending: list[Any] = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def _str_list(body: dict[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadata(f"{name} must be an array of strings")
    return list(dict.fromkeys(value))


def validate(body: dict[str, Any], *, allow_secret_methods: bool = True) -> ClientMetadata:
    uris = body.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        raise InvalidRedirectUri("redirect_uris is required and must be a non-empty array")
    if len(uris) > MAX_REDIRECT_URIS:
        raise InvalidRedirectUri(f"at most {MAX_REDIRECT_URIS} redirect URIs")
    redirect_uris = [redirects.validate(u) for u in dict.fromkeys(u if isinstance(u, str) else "" for u in uris)]

    method = body.get("token_endpoint_auth_method", "client_secret_basic")   # RFC 7591 §2 default
    if method not in AUTH_METHODS or (method != "none" and not allow_secret_methods):
        raise InvalidClientMetadata(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}"
                                    if allow_secret_methods else "token_endpoint_auth_method must be none")
    grant_types = _str_list(body, "grant_types") or list(GRANT_TYPES)
    bad = [g for g in grant_types if g not in GRANT_TYPES]
    if bad or "authorization_code" not in grant_types:
        raise InvalidClientMetadata("grant_types may contain only authorization_code and refresh_token")
    response_types = _str_list(body, "response_types") or ["code"]
    if response_types != ["code"]:
        raise InvalidClientMetadata('response_types must be ["code"]')

    meta = ClientMetadata(redirect_uris=redirect_uris, token_endpoint_auth_method=method,
                          grant_types=grant_types, response_types=response_types)
    _optional_fields(body, meta)
    return meta


def _optional_fields(body: dict[str, Any], meta: ClientMetadata) -> None:
    for name in _TEXT_FIELDS:
        value = body.get(name)
        if value is not None:
            if not isinstance(value, str) or len(value) > 200:
                raise InvalidClientMetadata(f"{name} must be a string of at most 200 characters")
            setattr(meta, name, value.strip() or None)
    for name in _URL_FIELDS:
        value = body.get(name)
        if value is not None:
            if not isinstance(value, str) or len(value) > 2000 or not value.lower().startswith("https://"):
                raise InvalidClientMetadata(f"{name} must be an https URL")
            setattr(meta, name, value)
    scope = body.get("scope")
    if scope is not None:
        if not isinstance(scope, str):
            raise InvalidClientMetadata("scope must be a string")
        try:
            wanted = requested(scope)
        except Exception:
            raise InvalidClientMetadata("scope contains an unknown value") from None
        meta.scope = format_scope(frozenset(wanted)) if wanted else None
    contacts = _str_list(body, "contacts")
    if contacts is not None:
        meta.contacts = contacts[:10]
