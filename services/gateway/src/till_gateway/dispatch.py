"""What the gateway answers itself and what it forwards to tools (MCP basic/lifecycle, server/*).

Framework-free: the transports give a parsed message and a :class:`Call`, and get back the
encoded response bytes (or ``None`` for notifications and client responses).  The only
exception that escapes is :class:`InsufficientScope`, which is an HTTP answer (403), not a
JSON-RPC one; anything unexpected becomes ``-32603`` with the correlation id (SC-06).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import msgspec
from msgspec import Raw

from till_common.logging import get_logger, request_id_var
from till_common.protocol.internal import FORWARDED_METHODS, INVALID_PARAMS
from till_gateway import jsonrpc, versions
from till_gateway.exchange import Exchange
from till_gateway.jsonrpc import (
    ClientResponse,
    Invalid,
    InvalidParams,
    JsonRpcError,
    Message,
    MethodNotFound,
    Notification,
    Request,
)

if TYPE_CHECKING:
    from till_gateway.conformance_pack import ConformancePack

log = get_logger("till.gateway.dispatch")

#: Forward one MCP method with its raw params to tools; returns the raw result or raises.
Forward = Callable[[str, Raw], Awaitable[Raw]]
#: Route a client's answer to a server request (exchange.py) to whoever waits for it.
Answer = Callable[[ClientResponse], Awaitable[None]]

CAPABILITIES: Final[dict[str, Any]] = {
    "tools": {"listChanged": False},
    "resources": {"subscribe": False, "listChanged": False},
    "prompts": {"listChanged": False},
    "logging": {},
    "completions": {},
}
LOG_LEVELS: Final = frozenset({"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"})
INSTRUCTIONS: Final = (
    "Till runs an online store. Use the list_/get_ tools to read, the others to change things; "
    "write tools accept dry_run to preview and idempotency_key to retry safely. Money is a decimal "
    "string with a currency."
)
#: From this revision on, a tool's input validation failure is a tool execution error
#: (``isError: true``) the model can read and correct, no longer a protocol error (SEP-1303).
INPUT_ERRORS_AS_RESULTS: Final = "2025-11-25"
_decoder: Final = msgspec.json.Decoder()
_encoder: Final = msgspec.json.Encoder()


def input_error_result(exc: JsonRpcError) -> dict[str, Any] | None:
    """The ``CallToolResult`` for an upstream -32602 that tools marked as bad tool input, else ``None``.

    Unknown tools and malformed ``tools/call`` params stay protocol errors (MCP 2025-11-25, "Error
    Handling"); bad argument values become results so clients show them to the model.
    """
    data = exc.data
    if exc.code != INVALID_PARAMS or not isinstance(data, dict) or data.get("input") is not True:
        return None
    return {"content": [{"type": "text", "text": exc.message}], "isError": True}


class InsufficientScope(Exception):
    """The token lacks ``scope`` for this call: HTTP 403 with an RFC 6750 §3.1 challenge."""

    def __init__(self, scope: str) -> None:
        super().__init__(scope)
        self.scope = scope


@dataclass(slots=True)
class Call:
    """One HTTP exchange's view: version in force, whether it is a 2026 request, the forwarder."""

    forward: Forward
    version: str
    modern: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)   # lowercase names, for the 2026 ladder
    exchange: Exchange = field(default_factory=Exchange)       # server→client messages during the call
    answer: Answer | None = None                               # where client responses go


@dataclass(frozen=True)
class ServerInfo:
    name: str = "till"
    version: str = "0.1.0"
    title: str = "Till"


class Dispatcher:
    def __init__(self, info: ServerInfo | None = None, instructions: str = INSTRUCTIONS,
                 pack: ConformancePack | None = None) -> None:
        self.info = info or ServerInfo()
        self.instructions = instructions
        self.pack = pack
        self.capabilities: dict[str, Any] = dict(CAPABILITIES)

    async def handle(self, message: Message, call: Call) -> bytes | None:
        """The encoded response to ``message``, or ``None`` when none is due (JSON-RPC 2.0 §4.1)."""
        if isinstance(message, ClientResponse):
            if call.answer is not None:
                await call.answer(message)
            return None
        if isinstance(message, Notification):
            return None
        if isinstance(message, Invalid):
            return jsonrpc.encode_error(message.id, message.error)
        try:
            if call.modern:
                return await self._modern(message, call)
            return await self._handshake_era(message, call)
        except JsonRpcError as exc:
            return jsonrpc.encode_error(message.id, exc)
        except InsufficientScope:
            raise
        except Exception as exc:
            # SC-06: the log keeps the exception; the client gets the JSON-RPC error and an id to quote
            log.exception("request failed", method=message.method, error=type(exc).__name__)
            return jsonrpc.encode_error(message.id, jsonrpc.InternalError(request_id_var.get()))

    def _server_info(self, version: str) -> dict[str, str]:
        info = {"name": self.info.name, "version": self.info.version}
        if version >= "2025-06-18":
            info["title"] = self.info.title
        return info

    def initialize_result(self, requested: object) -> dict[str, Any]:
        version = versions.negotiate(requested)
        return {"protocolVersion": version, "capabilities": self.capabilities,
                "serverInfo": self._server_info(version), "instructions": self.instructions}

    async def _handshake_era(self, req: Request, call: Call) -> bytes:
        method = req.method
        if self.pack is not None:
            fixture = await self.pack.handle(method, req.params, call.forward, call.exchange)
            if fixture is not None:
                return jsonrpc.encode_result_obj(req.id, fixture)
        if method in FORWARDED_METHODS:
            return jsonrpc.encode_result(req.id, await self._forward(method, req.params, call))
        if method == "ping":
            return jsonrpc.encode_result(req.id, jsonrpc.EMPTY_OBJECT)
        if method == "initialize":
            params = jsonrpc.decode_params(req.params)
            return jsonrpc.encode_result_obj(req.id, self.initialize_result(params.get("protocolVersion")))
        if method == "logging/setLevel":
            level = jsonrpc.decode_params(req.params).get("level")
            if level not in LOG_LEVELS:
                raise InvalidParams("unknown log level", {"path": "params.level"})
            return jsonrpc.encode_result(req.id, jsonrpc.EMPTY_OBJECT)
        raise MethodNotFound(f"method not found: {method[:100]}")

    @staticmethod
    async def _forward(method: str, params: Raw, call: Call) -> Raw:
        if method != "tools/call" or (not call.modern and call.version < INPUT_ERRORS_AS_RESULTS):
            return await call.forward(method, params)
        try:
            return await call.forward(method, params)
        except JsonRpcError as exc:
            result = input_error_result(exc)
            if result is None:
                raise
            return Raw(_encoder.encode(result))

    def discover_result(self) -> dict[str, Any]:
        return {"supportedVersions": list(versions.SUPPORTED_VERSIONS), "capabilities": self.capabilities,
                "serverInfo": self._server_info(versions.MODERN_VERSIONS[-1]),
                "instructions": self.instructions, "resultType": "complete", "ttlMs": 0,
                "cacheScope": "private"}

    async def _modern(self, req: Request, call: Call) -> bytes:
        params = jsonrpc.decode_params(req.params)
        versions.check_envelope(req.method, params, call.headers)
        if req.method == "server/discover":
            return jsonrpc.encode_result_obj(req.id, self.discover_result())
        fixture = None
        if self.pack is not None:
            fixture = await self.pack.handle(req.method, req.params, call.forward, call.exchange)
        if fixture is not None:
            result: Any = fixture
        elif req.method not in FORWARDED_METHODS:
            raise MethodNotFound(f"method not found: {req.method[:100]}")
        else:
            result = _decoder.decode(await self._forward(req.method, req.params, call))
        if not isinstance(result, dict):
            raise jsonrpc.InternalError(request_id_var.get(), "tools answered a non-object result")
        result.setdefault("resultType", "complete")
        if req.method in versions.CACHEABLE_METHODS:
            result.setdefault("ttlMs", 0)
            result.setdefault("cacheScope", "private")
        return jsonrpc.encode_result(req.id, Raw(_encoder.encode(result)))


def modern_status(body: bytes) -> int:
    """HTTP status of a single 2026-07-28 response (errors map per the SDK table)."""
    if b'"error"' not in body[:80]:
        return 200
    try:
        code = _decoder.decode(body)["error"]["code"]
    except (msgspec.DecodeError, KeyError, TypeError):
        return 200
    return versions.MODERN_ERROR_STATUS.get(code, 200)

