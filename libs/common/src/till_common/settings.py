"""Settings from ``TILL_*`` environment variables (SPEC §1).

Each service declares a frozen Struct of the names it reads; :func:`load_settings` fills it
from the environment once, in the entry point.  Every name any service reads is listed in
:data:`CATALOGUE` (the README's configuration table is generated from it), so a misspelt
``TILL_*`` variable is reported instead of being silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from till_common.errors import ConfigError

PREFIX = "TILL_"


class Setting(msgspec.Struct, frozen=True):
    description: str
    default: str
    services: tuple[str, ...]


_ALL = ("auth", "gateway", "tools")

#: Every TILL_* name a Till process reads: description, default, which services read it.
CATALOGUE: dict[str, Setting] = {
    "TILL_PUBLIC_URL": Setting(
        "Public origin of the gateway; the OAuth issuer. No trailing slash.",
        "http://127.0.0.1:8000", _ALL),
    "TILL_AUTH_URL": Setting("Internal URL of the auth service.", "http://127.0.0.1:8001", ("gateway",)),
    "TILL_TOOLS_URL": Setting("Internal URL of the tools service.", "http://127.0.0.1:8002", ("gateway",)),
    "TILL_REDIS_URL": Setting(
        "Redis for SSE session routing, rate limits and revocation pushes. Unset: in-process "
        "backends, one replica only.", "(unset)", ("auth", "gateway")),
    "TILL_REDIS_NAMESPACE": Setting(
        "Prefix of every Redis key and channel, so deployments (or test runs) can share one Redis.",
        "till", ("auth", "gateway")),
    "TILL_AUTH_DATABASE_URL": Setting(
        "Auth database (`sqlite+aiosqlite:///…` or `postgresql+asyncpg://…`).",
        "sqlite+aiosqlite:///./var/auth.db", ("auth",)),
    "TILL_TOOLS_DATABASE_URL": Setting(
        "Store database (`sqlite+aiosqlite:///…` or `postgresql+asyncpg://…`).",
        "sqlite+aiosqlite:///./var/tools.db", ("tools",)),
    "TILL_INTERNAL_TOKEN": Setting(
        "Shared secret for service-to-service calls (≥ 32 characters). Required.", "(required)", _ALL),
    "TILL_ADMIN_TOKEN": Setting(
        "Bearer token of the admin API on the auth port (≥ 32 characters). Required.",
        "(required)", ("auth",)),
    "TILL_KEY_ENCRYPTION_KEY": Setting(
        "Secret that encrypts the JWT signing keys (auth) and stores' payment API keys (tools) at rest "
        "(≥ 32 characters). Required by auth; tools without it refuses to store a payment API key.",
        "(required)", ("auth", "tools")),
    "TILL_DEMO_PASSWORD": Setting("Password of the seeded demo users.", "(unset: no demo users)", ("auth",)),
    "TILL_ALLOWED_ORIGINS": Setting(
        "Comma-separated Origins allowed on the MCP endpoints, besides the public origin.",
        "https://claude.ai,https://claude.com", ("gateway",)),
    "TILL_RATE_LIMIT_PER_MINUTE": Setting("Requests per minute per token, across replicas.", "600",
                                          ("gateway",)),
    "TILL_LOG_LEVEL": Setting("debug, info, warning or error.", "info", _ALL),
    "TILL_ACCESS_TOKEN_TTL": Setting("Access-token lifetime in seconds.", "3600", ("auth",)),
    "TILL_KEY_ACTIVATION_DELAY": Setting(
        "Seconds a rotated-in key is published in JWKS before it signs.", "600", ("auth",)),
    "TILL_CLIENT_REAP_DAYS": Setting("Days after which a registered client never used is removed.", "30",
                                     ("auth",)),
    "TILL_REGISTRATIONS_PER_MINUTE": Setting("Dynamic client registrations per minute per IP.", "20",
                                             ("auth",)),
    "TILL_TOKEN_FAILURES_PER_MINUTE": Setting(
        "Failed token-endpoint requests per minute per IP before 429 `slow_down`.", "60", ("auth",)),
    "TILL_CLIENT_TOKEN_FAILURES_PER_MINUTE": Setting(
        "Failed token-endpoint requests per minute per known `client_id`, from any IP, before 429 `slow_down`.",
        "300", ("auth",)),
    "TILL_CIMD_ALLOW_PRIVATE": Setting(
        "Allow client-metadata-document URLs on loopback/private addresses (development only).",
        "false", ("auth",)),
    "TILL_SESSION_TTL": Setting("Seconds a legacy SSE session lives without a heartbeat.", "60",
                                ("gateway",)),
    "TILL_HEARTBEAT_INTERVAL": Setting("Seconds between SSE heartbeats.", "15", ("gateway",)),
    "TILL_SSE_SESSIONS_PER_PRINCIPAL": Setting(
        "Open legacy SSE streams allowed per user and store, across replicas; one more → 429.", "100",
        ("gateway",)),
    "TILL_UPSTREAM_TIMEOUT": Setting("Seconds the gateway waits for auth/tools.", "30", ("gateway",)),
    "TILL_TOOLS_BATCH_INFLIGHT": Setting(
        "Requests to tools a gateway keeps in flight before it sends further calls together as one batch; "
        "0 never batches.", "8", ("gateway",)),
    "TILL_CONFORMANCE_FIXTURES": Setting(
        "Serve the MCP conformance suite's fixture tools, prompts and resources (test_*, test://) next to "
        "the store's. Test runs only: refused unless TILL_PUBLIC_URL is a loopback address.",
        "false", ("gateway",)),
    "TILL_JWKS_REFRESH_INTERVAL": Setting(
        "Seconds between the gateway's JWKS refreshes (keep it below TILL_KEY_ACTIVATION_DELAY): a rotated-in "
        "key is known before it signs, a retired key is dropped.", "300", ("gateway",)),
}

S = TypeVar("S", bound=msgspec.Struct)


def env_name(field: str) -> str:
    return PREFIX + field.upper()


def load_settings(cls: type[S], environ: Mapping[str, str]) -> S:
    """Build ``cls`` from ``TILL_*`` variables; a bad value raises one :class:`ConfigError` line."""
    unknown = sorted(k for k in environ if k.startswith(PREFIX) and k not in CATALOGUE
                     and not k.startswith("TILL_TEST_") and k != "TILL_REQUIRE_SERVICES")
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]} (known: see README, Configuration)")
    fields = {f.name: f for f in msgspec.structs.fields(cls)}
    raw: dict[str, Any] = {}
    for name, field in fields.items():
        value = environ.get(env_name(name))
        if value is None or value == "":
            continue
        if _is_tuple(field.type):
            raw[name] = [p.strip() for p in value.split(",") if p.strip()]
        else:
            raw[name] = value
    try:
        settings = msgspec.convert(raw, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(str(exc), raw)) from None
    validate = getattr(settings, "validate", None)
    if callable(validate):
        validate()
    return settings


def _is_tuple(tp: object) -> bool:
    return getattr(tp, "__origin__", None) is tuple or tp is tuple


def _explain(message: str, raw: Mapping[str, Any]) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.port`"; name the variable instead.
    missing = re.match(r"Object missing required field `(\w+)`", message)
    if missing:
        return f"{env_name(missing.group(1))} is required but not set"
    m = re.search(r"at `\$\.(\w+)", message)
    if not m:
        return f"invalid settings: {message}"
    name = m.group(1)
    what = message.split(" - at ")[0]
    value = raw.get(name)
    return f"{env_name(name)}={value!r} is invalid: {what}"


def require_secret(name: str, value: str) -> None:
    if len(value) < 32:
        raise ConfigError(f"{env_name(name)} must be at least 32 characters (generate one with "
                          "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")


def check_url(name: str, value: str, *, schemes: tuple[str, ...] = ("http", "https")) -> None:
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme not in schemes or value.endswith("/"):
        raise ConfigError(f"{env_name(name)}={value!r} must be an absolute {'/'.join(schemes)} URL "
                          "without a trailing slash")
