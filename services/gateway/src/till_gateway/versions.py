"""MCP protocol revisions and their negotiation (MCP basic/lifecycle, basic/transports).

Handshake era (``initialize``): 2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25.
Stateless era: 2026-07-28 — no handshake; every request carries ``params._meta`` with
``io.modelcontextprotocol/protocolVersion`` and ``io.modelcontextprotocol/clientCapabilities``,
mirrored in the ``MCP-Protocol-Version``, ``Mcp-Method`` and ``Mcp-Name`` headers; ``server/discover``
advertises versions and capabilities; results carry ``resultType``.  The rules here follow the
official Python SDK 2.x (``mcp.shared.inbound``), see docs/decisions.md D301.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from till_gateway.jsonrpc import CodedError, InvalidParams, JsonRpcError

HANDSHAKE_VERSIONS: Final = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSIONS: Final = ("2026-07-28",)
SUPPORTED_VERSIONS: Final = (*HANDSHAKE_VERSIONS, *MODERN_VERSIONS)
LATEST_HANDSHAKE: Final = HANDSHAKE_VERSIONS[-1]
LEGACY_SSE_VERSION: Final = "2024-11-05"
#: MCP 2025-06-18 basic/transports: no header and no other way to tell → assume 2025-03-26.
DEFAULT_HTTP_VERSION: Final = "2025-03-26"
#: JSON-RPC batches existed only in 2025-03-26 (added there, removed by 2025-06-18).
BATCH_VERSIONS: Final = frozenset({"2025-03-26"})
MAX_BATCH: Final = 50

PROTOCOL_VERSION_META: Final = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_META: Final = "io.modelcontextprotocol/clientCapabilities"
HEADER_MISMATCH: Final = -32020
UNSUPPORTED_PROTOCOL_VERSION: Final = -32022
#: Methods whose ``Mcp-Name`` header mirrors a params field (2026-07-28 basic/transports).
NAME_BEARING: Final = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
#: Methods the 2026-07-28 revision removed.
REMOVED_IN_MODERN: Final = frozenset({"initialize", "ping", "logging/setLevel"})


def negotiate(requested: object) -> str:
    """``initialize``: echo a supported handshake version, else answer the newest (lifecycle §2.1)."""
    if isinstance(requested, str) and requested in HANDSHAKE_VERSIONS:
        return requested
    return LATEST_HANDSHAKE


def is_modern(header_version: str | None, params_meta_has_version: bool) -> bool:
    """A 2026 request names a modern version in its header, or (header missing) in its ``_meta``."""
    if header_version is not None:
        return header_version in MODERN_VERSIONS
    return params_meta_has_version


def check_envelope(method: str, params: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    """Run the 2026-07-28 per-request ladder; return the request's version or raise its error.

    ``headers`` are lowercase names.  Order as in the SDK: envelope keys (-32602), header
    agreement (-32020), supported version (-32022 with ``data.supported``).
    """
    meta = params.get("_meta")
    if not isinstance(meta, dict):
        raise InvalidParams(f"params._meta must be an object carrying {PROTOCOL_VERSION_META!r} "
                            f"and {CLIENT_CAPABILITIES_META!r}")
    missing = [k for k in (PROTOCOL_VERSION_META, CLIENT_CAPABILITIES_META) if k not in meta]
    if missing:
        raise InvalidParams(f"params._meta is missing {', '.join(missing)}")
    version = meta[PROTOCOL_VERSION_META]
    if headers.get("mcp-protocol-version") != version:
        raise CodedError(HEADER_MISMATCH, "MCP-Protocol-Version header does not match params._meta")
    if headers.get("mcp-method") != method:
        raise CodedError(HEADER_MISMATCH, "Mcp-Method header does not match the request's method")
    name_key = NAME_BEARING.get(method)
    # Values outside printable ASCII arrive base64-wrapped (=?base64?…?=); compare decoded.
    if name_key is not None and params.get(name_key) is not None \
            and decode_header_value(headers.get("mcp-name")) != params.get(name_key):
        raise CodedError(HEADER_MISMATCH, f"Mcp-Name header does not match params.{name_key}")
    if not isinstance(version, str) or version not in MODERN_VERSIONS:
        raise unsupported(version)
    return version


def unsupported(requested: object) -> JsonRpcError:
    return CodedError(UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version",
                      {"supported": list(SUPPORTED_VERSIONS), "requested": requested})


def decode_header_value(value: str | None) -> str | None:
    """Inverse of the ``=?base64?<b64>?=`` wrapping used for non-ASCII header values."""
    import base64
    import binascii

    if value is None or not (value.startswith("=?base64?") and value.endswith("?=")):
        return value
    payload = value[len("=?base64?"):-2]
    try:
        return base64.b64decode(payload, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


#: HTTP status for a JSON-RPC error on a 2026-07-28 request (SDK ERROR_CODE_HTTP_STATUS).
MODERN_ERROR_STATUS: Final = {-32700: 400, -32600: 400, -32602: 400, HEADER_MISMATCH: 400,
                              -32021: 400, UNSUPPORTED_PROTOCOL_VERSION: 400, -32601: 404}

#: 2026-07-28 results of these methods carry ``ttlMs`` and ``cacheScope`` (SEP-2549).
CACHEABLE_METHODS: Final = frozenset({"prompts/list", "resources/list", "resources/read",
                                      "resources/templates/list", "server/discover", "tools/list"})
