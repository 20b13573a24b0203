"""Version negotiation (MCP lifecycle) and the dispatcher (no HTTP)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from till_gateway import jsonrpc, versions
from till_gateway.dispatch import CAPABILITIES, Call, Dispatcher, InsufficientScope, modern_status

META = {versions.PROTOCOL_VERSION_META: "2026-07-28", versions.CLIENT_CAPABILITIES_META: {}}


@pytest.mark.parametrize("requested", versions.HANDSHAKE_VERSIONS)
def test_initialize_echoes_a_supported_version(requested: str) -> None:
    assert versions.negotiate(requested) == requested


@pytest.mark.parametrize("requested", ["1999-01-01", "2026-07-28", None, 5, ""])
def test_initialize_answers_the_newest_handshake_version_otherwise(requested: object) -> None:
    assert versions.negotiate(requested) == "2025-11-25"


async def _forward_echo(method: str, params: msgspec.Raw) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode({"method": method, "params": msgspec.json.decode(params)}))


async def run(body: dict[str, Any], *, modern: bool = False, headers: dict[str, str] | None = None,
              forward: Any = _forward_echo, version: str = "2025-06-18") -> Any:
    msg = jsonrpc.parse(msgspec.json.encode(body)).messages[0]
    out = await Dispatcher().handle(msg, Call(forward=forward, version=version, modern=modern,
                                              headers=headers or {}))
    return None if out is None else msgspec.json.decode(out)


async def test_initialize_result_has_the_capabilities() -> None:
    out = await run({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                     "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t"}}})
    assert out["result"]["protocolVersion"] == "2025-06-18"
    assert out["result"]["capabilities"] == CAPABILITIES
    assert out["result"]["serverInfo"]["name"] == "till"


async def test_ping_notifications_and_set_level() -> None:
    assert (await run({"jsonrpc": "2.0", "id": 1, "method": "ping"}))["result"] == {}
    assert await run({"jsonrpc": "2.0", "method": "notifications/initialized"}) is None
    assert await run({"jsonrpc": "2.0", "method": "notifications/whatever"}) is None
    ok = await run({"jsonrpc": "2.0", "id": 2, "method": "logging/setLevel", "params": {"level": "info"}})
    assert ok["result"] == {}
    bad = await run({"jsonrpc": "2.0", "id": 3, "method": "logging/setLevel", "params": {"level": "loud"}})
    assert bad["error"]["code"] == -32602


async def test_gw09_unknown_method_is_32601() -> None:
    out = await run({"jsonrpc": "2.0", "id": 1, "method": "tools/destroy"})
    assert out["error"]["code"] == -32601 and out["id"] == 1


async def test_forwarded_method_returns_the_upstream_result_verbatim() -> None:
    out = await run({"jsonrpc": "2.0", "id": "q", "method": "tools/call", "params": {"name": "x"}})
    assert out == {"jsonrpc": "2.0", "id": "q", "result": {"method": "tools/call", "params": {"name": "x"}}}


async def test_upstream_json_rpc_errors_pass_through_and_scope_errors_escape() -> None:
    async def failing(method: str, params: msgspec.Raw) -> msgspec.Raw:
        raise jsonrpc.CodedError(-32602, "bad arguments", {"path": "$.arguments.id"})

    out = await run({"jsonrpc": "2.0", "id": 1, "method": "tools/call"}, forward=failing)
    assert out["error"] == {"code": -32602, "message": "bad arguments", "data": {"path": "$.arguments.id"}}

    async def scope(method: str, params: msgspec.Raw) -> msgspec.Raw:
        raise InsufficientScope("products:write")

    with pytest.raises(InsufficientScope):
        await run({"jsonrpc": "2.0", "id": 1, "method": "tools/call"}, forward=scope)


async def _bad_price(method: str, params: msgspec.Raw) -> msgspec.Raw:
    raise jsonrpc.CodedError(-32602, "invalid arguments: price 'abc' is not a decimal - at `$.price`",
                             {"path": "$.price", "input": True})


async def _unknown_tool(method: str, params: msgspec.Raw) -> msgspec.Raw:
    raise jsonrpc.CodedError(-32602, "unknown tool 'x'", {"path": "$.name"})


@pytest.mark.parametrize("version", ["2025-11-25", "2026-07-28"])
async def test_gw09_bad_tool_input_is_a_tool_error_from_2025_11_25(version: str) -> None:
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "update_product"}}
    out = await run(body, forward=_bad_price, version=version)
    assert out["result"]["isError"] is True
    assert out["result"]["content"][0]["text"].endswith("- at `$.price`")      # the schema path, for the model
    unknown = await run(body, forward=_unknown_tool, version=version)
    assert unknown["error"]["code"] == -32602                                 # unknown tool stays a protocol error


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18"])
async def test_gw09_bad_tool_input_stays_32602_before_2025_11_25(version: str) -> None:
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "update_product"}}
    out = await run(body, forward=_bad_price, version=version)
    assert out["error"]["code"] == -32602 and out["error"]["data"]["path"] == "$.price"


async def test_gw09_bad_tool_input_is_a_tool_error_in_a_modern_request() -> None:
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "update_product", "_meta": META}}
    headers = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "update_product"}
    out = await run(body, forward=_bad_price, modern=True, headers=headers, version="2025-03-26")
    assert out["result"]["isError"] is True and out["result"]["resultType"] == "complete"


async def test_modern_discover_and_forward_add_result_type() -> None:
    headers = {"mcp-protocol-version": "2026-07-28", "mcp-method": "server/discover"}
    out = await run({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": META}},
                    modern=True, headers=headers)
    assert "2026-07-28" in out["result"]["supportedVersions"]
    assert out["result"]["resultType"] == "complete"
    headers = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list"}
    out = await run({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": META}},
                    modern=True, headers=headers)
    assert out["result"]["resultType"] == "complete" and out["result"]["ttlMs"] == 0


@pytest.mark.parametrize(("params", "headers", "code"), [
    ({}, {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list"}, -32602),
    ({"_meta": META}, {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call"}, -32020),
    ({"_meta": META}, {"mcp-method": "tools/list"}, -32020),
    ({"_meta": {**META, versions.PROTOCOL_VERSION_META: "2030-01-01"}},
     {"mcp-protocol-version": "2030-01-01", "mcp-method": "tools/list"}, -32022),
])
async def test_modern_envelope_ladder(params: dict[str, Any], headers: dict[str, str], code: int) -> None:
    out = await run({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params},
                    modern=True, headers=headers)
    assert out["error"]["code"] == code
    assert modern_status(msgspec.json.encode(out)) in (400, 404)


async def test_modern_name_header_must_match() -> None:
    headers = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "other"}
    out = await run({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"_meta": META, "name": "x"}},
                    modern=True, headers=headers)
    assert out["error"]["code"] == -32020
    headers["mcp-name"] = "x"
    out = await run({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"_meta": META, "name": "x"}},
                    modern=True, headers=headers)
    assert "result" in out


async def test_modern_removed_methods_are_not_found() -> None:
    headers = {"mcp-protocol-version": "2026-07-28", "mcp-method": "ping"}
    out = await run({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"_meta": META}},
                    modern=True, headers=headers)
    assert out["error"]["code"] == -32601
