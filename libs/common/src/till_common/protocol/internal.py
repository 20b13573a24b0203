"""Internal HTTP contracts between gateway, auth and tools (SPEC §2, §4, §6).

All internal routes take ``Authorization: Bearer TILL_INTERNAL_TOKEN`` and ``X-Request-Id``.

Tools service (gateway → tools)::

    POST /internal/v1/rpc      body ToolsRpcRequest   → 200 ToolsRpcResponse
    POST /internal/v1/rpc/batch  body ToolsRpcBatch   → 200 application/x-ndjson, one ToolsRpcBatchLine
                                                        per request, in completion order (D881)
    GET  /internal/v1/catalogue                       → 200 Catalogue (public definitions, no store data)
    GET  /internal/v1/audit?store_id=&after=&limit=   → 200 audit page

``ToolsRpcRequest.method`` is one of :data:`FORWARDED_METHODS`; ``params`` are the MCP params
unchanged and ``result`` is the MCP result object the gateway returns verbatim.  A failure is
``error`` in JSON-RPC shape; :data:`INSUFFICIENT_SCOPE` asks the gateway for an HTTP 403
challenge carrying ``error.data["scope"]``.

Auth service (gateway → auth)::

    GET  /.well-known/jwks.json
    POST /internal/v1/introspect        form token=…      → 200 Introspection (RFC 7662 shape)
    GET  /internal/v1/revocations?after=<cursor>          → 200 RevocationPage

Revocations are also published as one :class:`RevocationEvent` JSON per message on the Redis
channel :data:`REVOCATION_CHANNEL`.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

from till_common.principal import Principal

REVOCATION_CHANNEL: Final = "till:revocations"


def revocation_channel(namespace: str = "till") -> str:
    """SPEC §4's channel under the default namespace; TILL_REDIS_NAMESPACE changes the prefix."""
    return f"{namespace}:revocations"

FORWARDED_METHODS: Final = frozenset({
    "tools/list", "tools/call", "resources/list", "resources/templates/list", "resources/read",
    "prompts/list", "prompts/get", "completion/complete",
})

# JSON-RPC error codes used across services (SPEC §3).
PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
RESOURCE_NOT_FOUND: Final = -32002   # MCP 2025-11-25 server/resources "Error Handling"
#: tools → gateway only: the token lacks the scope; the gateway answers HTTP 403 insufficient_scope.
INSUFFICIENT_SCOPE: Final = -32043


class RpcError(msgspec.Struct, omit_defaults=True):
    code: int
    message: str
    data: Any = None


class ToolsRpcRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    principal: Principal
    method: str
    params: dict[str, Any] = {}


class ToolsRpcResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    result: dict[str, Any] | None = None
    error: RpcError | None = None


#: The most requests one ``POST /internal/v1/rpc/batch`` may carry.
BATCH_MAX_ITEMS: Final = 64

#: The batch route's body: 1 to :data:`BATCH_MAX_ITEMS` requests, each run as if sent alone.
ToolsRpcBatch = Annotated[list[ToolsRpcRequest], msgspec.Meta(min_length=1, max_length=BATCH_MAX_ITEMS)]


class ToolsRpcBatchLine(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One line of the batch route's answer: the ToolsRpcResponse of request ``i`` (its index in the body)."""

    i: int
    result: dict[str, Any] | None = None
    error: RpcError | None = None


RevocationKind = Literal["token", "grant", "client", "user", "store"]


class RevocationEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One revocation.

    ``token``: ``value`` is a JWT ``jti`` or a PAT id; dead whatever its age.
    ``grant``: ``value`` is a refresh family id (JWT claim ``gid``); every token of it is dead.
    ``client`` / ``user`` / ``store``: every credential of that client id / user id (``sub``) /
    store id whose ``iat`` ≤ ``before`` is dead ("issued before" includes the same second,
    SPEC §4).  Auth stamps tokens issued in that same second with ``iat = before + 1``.
    """

    seq: int
    kind: RevocationKind
    value: str
    before: int            # unix seconds
    at: str                # ISO 8601, for humans


class RevocationPage(msgspec.Struct, kw_only=True):
    events: list[RevocationEvent]
    cursor: int            # pass as ?after= next time; seq of the last event (or the one given)


class Introspection(msgspec.Struct, kw_only=True, omit_defaults=True):
    """RFC 7662 §2.2 response; Till adds ``role``, ``store_id``, ``gid``, ``token_kind``."""

    active: bool
    scope: str | None = None
    client_id: str | None = None
    sub: str | None = None
    exp: int | None = None
    iat: int | None = None
    jti: str | None = None
    store_id: int | None = None
    role: str | None = None
    gid: str | None = None
    token_type: str | None = None
    token_kind: Literal["pat", "access_token"] | None = None
