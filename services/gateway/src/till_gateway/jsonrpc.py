"""JSON-RPC 2.0 framing (JSON-RPC 2.0 §4-§6, MCP basic/index): parse, classify, render.

Framework-free.  Bodies are decoded with msgspec into :class:`_Envelope` whose ``params`` and
``result`` stay :class:`msgspec.Raw`, so a forwarded call is never decoded and re-encoded: the
params travel to tools as the client's bytes and the tools result comes back spliced in.

msgspec raises ``RecursionError`` on absurdly deep nesting (CVE-2025-53366 class input) and
``ValidationError`` on out-of-range numbers; both become protocol errors, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec
from msgspec import UNSET, Raw, UnsetType

from till_common.protocol.internal import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
)

RequestId = int | str
EMPTY_OBJECT: Final = Raw(b"{}")


class JsonRpcError(Exception):
    """An error with its JSON-RPC wire code (JSON-RPC 2.0 §5.1)."""

    code: int = INTERNAL_ERROR

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class ParseError(JsonRpcError):
    """-32700: the body is not JSON."""

    code = PARSE_ERROR


class InvalidRequest(JsonRpcError):
    """-32600: JSON, but not a valid request object."""

    code = INVALID_REQUEST


class MethodNotFound(JsonRpcError):
    """-32601: no such method."""

    code = METHOD_NOT_FOUND


class InvalidParams(JsonRpcError):
    """-32602: the params are wrong."""

    code = INVALID_PARAMS


class InternalError(JsonRpcError):
    """-32603: the server failed; ``data.correlation_id`` finds it in the logs, nothing else leaks."""

    code = INTERNAL_ERROR

    def __init__(self, correlation_id: str, message: str = "internal error") -> None:
        super().__init__(message, {"correlation_id": correlation_id})


class CodedError(JsonRpcError):
    """An error whose code comes from elsewhere (tools, the 2026 envelope ladder)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message, data)
        self.code = code


# --- inbound ------------------------------------------------------------------------------------

class _Envelope(msgspec.Struct):
    """Lenient on purpose: wrong types are diagnosed by :func:`_classify`, which keeps the id."""

    jsonrpc: Any = UNSET
    id: Any = UNSET
    method: Any = UNSET
    params: Raw = Raw()
    result: Raw = Raw()
    error: Raw = Raw()


@dataclass(frozen=True, slots=True)
class Request:
    id: RequestId
    method: str
    params: Raw          # always a JSON object's bytes ({} when absent)


@dataclass(frozen=True, slots=True)
class Notification:
    method: str
    params: Raw


@dataclass(frozen=True, slots=True)
class ClientResponse:
    """A response the client sends back to a server request (exchange.py routes it to its waiter)."""

    id: Any
    result: Raw | None = None
    error: Raw | None = None


@dataclass(frozen=True, slots=True)
class Invalid:
    """A message that gets an error response without being dispatched."""

    id: RequestId | None
    error: JsonRpcError


Message = Request | Notification | ClientResponse | Invalid


@dataclass(frozen=True, slots=True)
class Parsed:
    messages: list[Message]
    batch: bool


_envelope_decoder: Final = msgspec.json.Decoder(_Envelope)
_batch_decoder: Final = msgspec.json.Decoder(list[Raw])
_any_decoder: Final = msgspec.json.Decoder()


def _valid_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)


def _first_byte(raw: bytes | Raw) -> int:
    head = memoryview(raw)[:64].tobytes().lstrip(b" \t\r\n")
    return head[0] if head else 0


def _classify(env: _Envelope) -> Message:
    rid = env.id if _valid_id(env.id) else None
    if env.jsonrpc != "2.0":
        return Invalid(rid, InvalidRequest('"jsonrpc" must be "2.0"'))
    if env.method is UNSET:
        if env.id is not UNSET and (len(env.result) or len(env.error)):
            return ClientResponse(env.id, env.result if len(env.result) else None,
                                  env.error if len(env.error) else None)
        return Invalid(rid, InvalidRequest("a request needs a string \"method\""))
    if not isinstance(env.method, str):
        return Invalid(rid, InvalidRequest('"method" must be a string'))
    params = env.params if len(env.params) else EMPTY_OBJECT
    if env.id is not UNSET and not _valid_id(env.id):
        # MCP: ids are strings or integers, never null, fractional or structured.
        return Invalid(None, InvalidRequest('"id" must be a string or an integer'))
    if _first_byte(params) != ord("{"):
        error = InvalidParams('"params" must be an object')
        return Invalid(rid, error) if env.id is not UNSET else Invalid(None, error)
    if env.id is UNSET:
        return Notification(env.method, params)
    return Request(env.id, env.method, params)


def _decode_one(raw: bytes | Raw) -> Message:
    try:
        env = _envelope_decoder.decode(raw)
    except msgspec.ValidationError:
        return Invalid(None, InvalidRequest("not a JSON-RPC message object"))
    except (msgspec.DecodeError, RecursionError):
        return Invalid(None, ParseError("invalid JSON"))
    return _classify(env)


def parse(body: bytes) -> Parsed:
    """Split a body into messages; never raises.  ``[]`` is one Invalid (JSON-RPC 2.0 §6)."""
    if _first_byte(body) == ord("["):
        try:
            items = _batch_decoder.decode(body)
        except (msgspec.DecodeError, RecursionError):
            return Parsed([Invalid(None, ParseError("invalid JSON"))], batch=False)
        if not items:
            return Parsed([Invalid(None, InvalidRequest("empty batch"))], batch=False)
        return Parsed([_decode_one(item) for item in items], batch=True)
    return Parsed([_decode_one(body)], batch=False)


def decode_params(params: Raw) -> dict[str, Any]:
    """The params as a dict, for the few methods the gateway answers itself."""
    value = _any_decoder.decode(params)
    if not isinstance(value, dict):
        raise InvalidParams('"params" must be an object')
    return value


# --- outbound -----------------------------------------------------------------------------------

class _ErrorObject(msgspec.Struct, omit_defaults=True):
    code: int
    message: str
    data: Any = None


class _Result(msgspec.Struct, kw_only=True):
    jsonrpc: str = "2.0"
    id: RequestId | None
    result: Raw


class _Error(msgspec.Struct, kw_only=True):
    jsonrpc: str = "2.0"
    id: RequestId | None
    error: _ErrorObject


_encoder: Final = msgspec.json.Encoder()


def encode_result(rid: RequestId, result: Raw | bytes) -> bytes:
    return _encoder.encode(_Result(id=rid, result=result if isinstance(result, Raw) else Raw(result)))


def encode_result_obj(rid: RequestId, result: Any) -> bytes:
    return encode_result(rid, Raw(_encoder.encode(result)))


def encode_error(rid: RequestId | UnsetType | None, error: JsonRpcError) -> bytes:
    obj = _ErrorObject(error.code, error.message, error.data)
    return _encoder.encode(_Error(id=None if isinstance(rid, UnsetType) else rid, error=obj))


def encode_batch(parts: list[bytes]) -> bytes:
    return b"[" + b",".join(parts) + b"]"
