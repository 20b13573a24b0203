"""Fuzzing the JSON-RPC envelope parser (GW-06/GW-07): any bytes and any JSON value become either a
well-formed message or the right JSON-RPC error, never an exception, and every answer renders."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.support import fuzz_settings

from till_gateway import jsonrpc
from till_gateway.jsonrpc import ClientResponse, Invalid, Notification, Request

pytestmark = pytest.mark.fuzz

ERROR_CODES = {-32700, -32600, -32602}

json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64) | st.floats(allow_nan=False,
                                                                                   allow_infinity=False) | st.text()
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
ids = st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20)
methods = st.sampled_from(["ping", "initialize", "tools/list", "tools/call", "notifications/initialized"]) | st.text()

#: envelopes that are often valid and often broken in exactly one member
envelopes = st.fixed_dictionaries({}, optional={
    "jsonrpc": st.sampled_from(["2.0", "1.0", "2", 2.0]) | json_values,
    "id": ids | json_values,
    "method": methods | json_values,
    "params": st.dictionaries(st.text(max_size=8), json_values, max_size=3) | json_values,
    "result": json_values,
    "error": json_values,
})


def _valid_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)


def render(msg: jsonrpc.Message) -> bytes | None:
    """What the transports send back for one message (the upstream call replaced by a result)."""
    if isinstance(msg, Invalid):
        return jsonrpc.encode_error(msg.id, msg.error)
    if isinstance(msg, Request):
        jsonrpc.encode_error(msg.id, jsonrpc.MethodNotFound(f"no method {msg.method[:40]!r}"))
        return jsonrpc.encode_result(msg.id, msg.params)
    return None


def check(parsed: jsonrpc.Parsed) -> list[dict[str, Any]]:
    assert parsed.messages
    out = []
    for msg in parsed.messages:
        assert isinstance(msg, Request | Notification | ClientResponse | Invalid)
        if isinstance(msg, Invalid):
            assert msg.error.code in ERROR_CODES
            assert msg.id is None or _valid_id(msg.id)
        if isinstance(msg, Request | Notification):
            assert isinstance(msg.method, str)
            assert isinstance(msgspec.json.decode(msg.params), dict)
        wire = render(msg)
        if wire is not None:
            body = json.loads(wire)
            assert body["jsonrpc"] == "2.0"
            assert ("result" in body) != ("error" in body)
            out.append(body)
    return out


@fuzz_settings(300)
@given(st.binary(max_size=512))
def test_random_bytes_parse_or_give_a_jsonrpc_error(body: bytes) -> None:
    check(jsonrpc.parse(body))


@fuzz_settings(200)
@given(json_values)
def test_random_json_values_parse_or_give_a_jsonrpc_error(value: Any) -> None:
    body = json.dumps(value).encode()
    parsed = jsonrpc.parse(body)
    check(parsed)
    if not isinstance(value, list):
        msg = parsed.messages[0]
        if not isinstance(value, dict):
            # JSON, but not an object: invalid request, never a parse error
            assert isinstance(msg, Invalid)
            assert msg.error.code == -32600
    elif value:
        assert parsed.batch
        assert len(parsed.messages) == len(value)
    else:
        assert parsed.messages[0].error.code == -32600  # type: ignore[union-attr]


@fuzz_settings(200)
@given(envelopes)
def test_envelopes_classify_exactly_as_jsonrpc_says(env: dict[str, Any]) -> None:
    body = json.dumps(env).encode()
    (msg,) = jsonrpc.parse(body).messages
    check(jsonrpc.Parsed([msg], batch=False))
    well_formed = (env.get("jsonrpc") == "2.0" and isinstance(env.get("method"), str)
                   and ("id" not in env or _valid_id(env["id"]))
                   and ("params" not in env or isinstance(env["params"], dict)))
    if well_formed:
        assert isinstance(msg, Request if "id" in env else Notification)
        assert msg.method == env["method"]
        assert msgspec.json.decode(msg.params) == env.get("params", {})
        if isinstance(msg, Request):
            assert msg.id == env["id"]
            assert json.loads(render(msg) or b"")["id"] == env["id"]      # id echoed byte-for-byte
    elif not isinstance(msg, ClientResponse):
        assert isinstance(msg, Invalid)
        assert msg.error.code in (-32600, -32602)
        if isinstance(env.get("id"), int | str) and not isinstance(env.get("id"), bool) and msg.id is not None:
            assert msg.id == env["id"]


@fuzz_settings(60)
@given(st.lists(envelopes, min_size=1, max_size=5))
def test_batches_answer_each_member(batch: list[dict[str, Any]]) -> None:
    parsed = jsonrpc.parse(json.dumps(batch).encode())
    assert parsed.batch
    assert len(parsed.messages) == len(batch)
    check(parsed)


@fuzz_settings(100)
@given(envelopes, st.integers(min_value=1, max_value=60))
def test_truncated_and_padded_bodies_never_raise(env: dict[str, Any], cut: int) -> None:
    body = json.dumps(env).encode()
    for variant in (body[:-cut], b" \t\r\n" + body + b"\n", body + b"x", b"\xef\xbb\xbf" + body,
                    body.replace(b'"', b"'")):
        check(jsonrpc.parse(variant))


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_nesting_is_an_error_not_a_crash(depth: int) -> None:
    for body in (b'{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":' + b"[" * depth + b"]" * depth + b"}}",
                 b"[" * depth + b"]" * depth):
        check(jsonrpc.parse(body))
