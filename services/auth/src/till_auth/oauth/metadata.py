"""RFC 8414 authorization server metadata; every URL absolute on the issuer (SPEC §2, §9)."""

from __future__ import annotations

from typing import Any

from till_common.permissions import ALL_SCOPES

AUTH_METHODS = ("none", "client_secret_post", "client_secret_basic")
GRANT_TYPES = ("authorization_code", "refresh_token")

AUTHORIZE_PATH = "/mcp/oauth/authorize"
TOKEN_PATH = "/mcp/oauth/token"  # noqa: S105 - a path, not a secret
REGISTER_PATH = "/mcp/oauth/register"
REVOKE_PATH = "/mcp/oauth/revoke"
JWKS_PATH = "/.well-known/jwks.json"


def server_metadata(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": issuer + AUTHORIZE_PATH,
        "token_endpoint": issuer + TOKEN_PATH,
        "registration_endpoint": issuer + REGISTER_PATH,
        "revocation_endpoint": issuer + REVOKE_PATH,
        "jwks_uri": issuer + JWKS_PATH,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "scopes_supported": list(ALL_SCOPES),
        "client_id_metadata_document_supported": True,
        "authorization_response_iss_parameter_supported": True,
        "service_documentation": issuer + "/mcp/docs",
    }
