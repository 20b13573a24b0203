"""JSON-RPC framing (JSON-RPC 2.0 §4-§6; security cases GW-06, GW-07)."""

from __future__ import annotations

import msgspec
import pytest

from till_gateway import jsonrpc
from till_gateway.jsonrpc import ClientResponse, Invalid, Notification, Request


def one(body: bytes) -> jsonrpc.Message:
    parsed = jsonrpc.parse(body)
    assert not parsed.batch
    return parsed.messages[0]


def test_request_keeps_params_raw_and_echoes_id() -> None:
    msg = one(b'{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x","arguments":{"k":[1]}}}')
    assert isinstance(msg, Request)
    assert msg.id == "a"
    assert bytes(msg.params) == b'{"name":"x","arguments":{"k":[1]}}'


def test_missing_params_become_an_empty_object() -> None:
    msg = one(b'{"jsonrpc":"2.0","id":3,"method":"ping"}')
    assert isinstance(msg, Request)
    assert bytes(msg.params) == b"{}"


def test_notification_and_client_response_are_classified() -> None:
    assert isinstance(one(b'{"jsonrpc":"2.0","method":"notifications/initialized"}'), Notification)
    assert isinstance(one(b'{"jsonrpc":"2.0","id":1,"result":{}}'), ClientResponse)


@pytest.mark.parametrize(("body", "code", "rid"), [
    (b'{"jsonrpc":"2.0",', -32700, None),
    (b"not json", -32700, None),
    (b'{"jsonrpc":"1.0","id":1,"method":"ping"}', -32600, 1),
    (b'{"jsonrpc":"2.0","id":1,"method":123}', -32600, 1),
    (b'{"jsonrpc":"2.0","id":1e400,"method":"ping"}', -32600, None),
    (b'{"jsonrpc":"2.0","id":{},"method":"ping"}', -32600, None),
    (b'{"jsonrpc":"2.0","id":1.5,"method":"ping"}', -32600, None),
    (b'{"jsonrpc":"2.0","id":true,"method":"ping"}', -32600, None),
    (b'{"jsonrpc":"2.0","id":null,"method":"ping"}', -32600, None),
    (b'{"jsonrpc":"2.0","id":2,"method":"ping","params":[1]}', -32602, 2),
    (b'5', -32600, None),
    (b'{"jsonrpc":"2.0","id":1}', -32600, 1),
])
def test_gw06_malformed_messages_get_the_right_error(body: bytes, code: int, rid: object) -> None:
    msg = one(body)
    assert isinstance(msg, Invalid)
    assert (msg.error.code, msg.id) == (code, rid)
    wire = msgspec.json.decode(jsonrpc.encode_error(msg.id, msg.error))
    assert wire["id"] == rid and wire["error"]["code"] == code and wire["jsonrpc"] == "2.0"


def test_gw06_hundred_thousand_deep_nesting_is_a_parse_error_not_a_crash() -> None:
    for body in (b"[" * 100_000 + b"]" * 100_000,
                 b'{"jsonrpc":"2.0","id":1,"method":"x","params":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_001):
        parsed = jsonrpc.parse(body)
        assert isinstance(parsed.messages[0], Invalid)
        assert parsed.messages[0].error.code in (-32700, -32600)


def test_gw06_a_100kb_string_id_is_echoed() -> None:
    rid = "x" * 100_000
    msg = one(msgspec.json.encode({"jsonrpc": "2.0", "id": rid, "method": "ping"}))
    assert isinstance(msg, Request) and msg.id == rid


def test_gw07_empty_batch_is_invalid_request() -> None:
    parsed = jsonrpc.parse(b" [ ] ")
    assert not parsed.batch
    assert isinstance(parsed.messages[0], Invalid) and parsed.messages[0].error.code == -32600


def test_batch_items_are_classified_one_by_one() -> None:
    parsed = jsonrpc.parse(b'[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"n"},7]')
    assert parsed.batch
    kinds = [type(m) for m in parsed.messages]
    assert kinds == [Request, Notification, Invalid]


def test_internal_error_carries_only_a_correlation_id() -> None:
    wire = msgspec.json.decode(jsonrpc.encode_error(9, jsonrpc.InternalError("rid-1")))
    assert wire == {"jsonrpc": "2.0", "id": 9,
                    "error": {"code": -32603, "message": "internal error", "data": {"correlation_id": "rid-1"}}}


def test_result_is_spliced_verbatim() -> None:
    assert jsonrpc.encode_result(1, msgspec.Raw(b'{"a": 1}')) == b'{"jsonrpc":"2.0","id":1,"result":{"a": 1}}'
