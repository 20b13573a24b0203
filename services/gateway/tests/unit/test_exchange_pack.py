"""Server→client messages during a call (exchange.py) and the conformance fixture pack, without HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import msgspec
import pytest

from till_common.errors import ConfigError
from till_common.settings import load_settings
from till_gateway import jsonrpc
from till_gateway.conformance_pack import PROMPTS, TOOLS, ConformancePack
from till_gateway.dispatch import CAPABILITIES, Call, Dispatcher
from till_gateway.exchange import Exchange, ServerRequestError, ServerRequests, progress_token
from till_gateway.sessions import SessionHub
from till_gateway.settings import GatewaySettings

SECRET = "s" * 40


class Sink:
    """An outbound channel that records what the server sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def __call__(self, data: bytes) -> None:
        self.sent.append(json.loads(data))


async def _store_lists(method: str, params: msgspec.Raw) -> msgspec.Raw:
    """A tools service with one store entry per list (and a second page for tools/list with no cursor)."""
    given = msgspec.json.decode(params)
    entries = {"tools/list": ("tools", {"name": "list_products"}), "prompts/list": ("prompts", {"name": "p"}),
               "resources/list": ("resources", {"uri": "store://settings"}),
               "resources/templates/list": ("resourceTemplates", {"uriTemplate": "store://products/{id}"})}
    if method in entries:
        key, entry = entries[method]
        page: dict[str, Any] = {key: [entry]}
        if method == "tools/list" and not given.get("cursor"):
            page["nextCursor"] = "2"
        return msgspec.Raw(msgspec.json.encode(page))
    return msgspec.Raw(msgspec.json.encode({"forwarded": method}))


async def run(body: dict[str, Any], exchange: Exchange | None = None, pack: bool = True,
              answer: Any = None) -> Any:
    msg = jsonrpc.parse(msgspec.json.encode(body)).messages[0]
    dispatcher = Dispatcher(pack=ConformancePack(step_delay=0) if pack else None)
    call = Call(forward=_store_lists, version="2025-11-25", exchange=exchange or Exchange(), answer=answer)
    out = await dispatcher.handle(msg, call)
    return None if out is None else msgspec.json.decode(out)


def _tool(name: str, arguments: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments or {}}
    if meta:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


# --- exchange -------------------------------------------------------------------------------------

async def test_progress_needs_a_token_and_logging_checks_the_level() -> None:
    sink = Sink()
    ex = Exchange(outbound=sink)
    assert not await ex.progress(None, 1)
    assert await ex.progress("t", 5, 10, "half")
    assert await ex.log("warning", {"k": 1}, logger="bulk")
    with pytest.raises(ValueError, match="unknown log level"):
        await ex.log("loud", "x")
    assert sink.sent == [
        {"jsonrpc": "2.0", "method": "notifications/progress",
         "params": {"progressToken": "t", "progress": 5, "total": 10, "message": "half"}},
        {"jsonrpc": "2.0", "method": "notifications/message",
         "params": {"level": "warning", "data": {"k": 1}, "logger": "bulk"}}]
    assert ex.sent == 2
    assert not await Exchange().log("info", "nowhere to send")       # JSON-only: nothing goes out


@pytest.mark.parametrize(("params", "token"), [
    ({"_meta": {"progressToken": "a"}}, "a"), ({"_meta": {"progressToken": 7}}, 7),
    ({"_meta": {"progressToken": True}}, None), ({"_meta": {"progressToken": 1.5}}, None),
    ({"_meta": "x"}, None), ({}, None)])
def test_progress_token_is_a_string_or_an_integer(params: dict[str, Any], token: object) -> None:
    assert progress_token(params) == token


async def test_server_request_is_answered_by_the_same_principal_only() -> None:
    sink = Sink()
    requests = ServerRequests("r1")
    ex = Exchange(outbound=sink, requests=requests, owner="alice")
    task = asyncio.create_task(ex.request("sampling/createMessage", {"maxTokens": 1}))
    while not sink.sent:
        await asyncio.sleep(0)
    rid = sink.sent[0]["id"]
    assert sink.sent[0]["method"] == "sampling/createMessage"
    assert ServerRequests.replica_of(rid) == "r1"
    assert not requests.resolve(rid, "mallory", msgspec.Raw(b'{"x":1}'), None)     # someone else's answer
    assert requests.resolve(rid, "alice", msgspec.Raw(b'{"ok":true}'), None)
    assert await task == {"ok": True}
    assert len(requests) == 0
    assert not requests.resolve(rid, "alice", msgspec.Raw(b"{}"), None)            # answered once only


async def test_server_request_errors_timeouts_and_transports_without_requests() -> None:
    sink = Sink()
    requests = ServerRequests("r1")
    ex = Exchange(outbound=sink, requests=requests, owner="o", request_timeout=0.05)
    with pytest.raises(ServerRequestError, match="did not answer"):
        await ex.request("elicitation/create", {})
    assert len(requests) == 0                                  # a timed-out request is forgotten
    task = asyncio.create_task(ex.request("elicitation/create", {}))
    while len(sink.sent) < 2:
        await asyncio.sleep(0)
    requests.resolve(sink.sent[1]["id"], "o", None, msgspec.Raw(b'{"code":-1,"message":"user said no"}'))
    with pytest.raises(ServerRequestError, match="user said no"):
        await task
    with pytest.raises(ServerRequestError, match="cannot send"):
        await Exchange(outbound=sink).request("sampling/createMessage", {})


@pytest.mark.parametrize("rid", [1, "x", "s.", "s..y", "s.a.b.c", None])
def test_ids_that_are_not_ours_name_no_replica(rid: object) -> None:
    assert ServerRequests.replica_of(rid) is None


async def test_hub_routes_answers_locally_and_ignores_foreign_ids() -> None:
    hub = SessionHub(None, "ns", 60, replica_id="me")
    sink = Sink()
    ex = Exchange(outbound=sink, requests=hub.server_requests, owner="fp")
    task = asyncio.create_task(ex.request("elicitation/create", {}))
    while not sink.sent:
        await asyncio.sleep(0)
    assert not await hub.answer("s.other.x", "fp", msgspec.Raw(b"{}"), None)     # no Redis: nowhere to route
    assert await hub.answer(sink.sent[0]["id"], "fp", msgspec.Raw(b'{"action":"decline"}'), None)
    assert await task == {"action": "decline"}


async def test_answers_published_by_another_replica_reach_the_waiter() -> None:
    from till_gateway.sessions import _answer_bytes

    hub = SessionHub(None, "ns", 60, replica_id="me")
    sink = Sink()
    task = asyncio.create_task(Exchange(outbound=sink, requests=hub.server_requests, owner="fp")
                               .request("sampling/createMessage", {}))
    while not sink.sent:
        await asyncio.sleep(0)
    hub.receive(_answer_bytes(sink.sent[0]["id"], "fp", None, msgspec.Raw(b'{"code":-32600,"message":"nope"}')))
    with pytest.raises(ServerRequestError, match="nope"):
        await task


async def test_dispatcher_hands_client_responses_to_the_router() -> None:
    got: list[jsonrpc.ClientResponse] = []

    async def answer(resp: jsonrpc.ClientResponse) -> None:
        got.append(resp)

    assert await run({"jsonrpc": "2.0", "id": "s.a.b", "result": {"v": 1}}, answer=answer) is None
    assert await run({"jsonrpc": "2.0", "id": "s.a.c", "error": {"code": 1, "message": "m"}}, answer=answer) is None
    assert [(r.id, bytes(r.result) if r.result else None, r.error is not None) for r in got] == [
        ("s.a.b", b'{"v":1}', False), ("s.a.c", None, True)]


# --- the pack -------------------------------------------------------------------------------------

async def test_pack_is_off_by_default_and_refused_off_loopback() -> None:
    assert Dispatcher().capabilities == Dispatcher(pack=ConformancePack()).capabilities == CAPABILITIES
    missing = await run(_tool("test_simple_text"), pack=False)
    assert missing == {"jsonrpc": "2.0", "id": 1, "result": {"forwarded": "tools/call"}}   # the store decides
    complete = {"jsonrpc": "2.0", "id": 2, "method": "completion/complete", "params": {
        "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"}, "argument": {"name": "arg1", "value": ""}}}
    assert (await run(complete, pack=False))["result"] == {"forwarded": "completion/complete"}
    base = {"TILL_INTERNAL_TOKEN": SECRET, "TILL_CONFORMANCE_FIXTURES": "true"}
    assert load_settings(GatewaySettings, base).conformance_fixtures
    assert not load_settings(GatewaySettings, {"TILL_INTERNAL_TOKEN": SECRET}).conformance_fixtures
    with pytest.raises(ConfigError, match="loopback"):
        load_settings(GatewaySettings, {**base, "TILL_PUBLIC_URL": "https://shop.example.com"})


async def test_pack_joins_the_last_page_of_each_list() -> None:
    first = (await run({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))["result"]
    assert [t["name"] for t in first["tools"]] == ["list_products"]           # not the last page yet
    last = (await run({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"cursor": "2"}}))["result"]
    assert [t["name"] for t in last["tools"]] == ["list_products", *(t["name"] for t in TOOLS)]
    prompts = (await run({"jsonrpc": "2.0", "id": 1, "method": "prompts/list"}))["result"]["prompts"]
    assert [p["name"] for p in prompts] == ["p", *(p["name"] for p in PROMPTS)]
    res = (await run({"jsonrpc": "2.0", "id": 1, "method": "resources/list"}))["result"]["resources"]
    assert res[0]["uri"] == "store://settings" and "test://static-text" in {r["uri"] for r in res}
    tpl = (await run({"jsonrpc": "2.0", "id": 1, "method": "resources/templates/list"}))["result"]
    assert [t["uriTemplate"] for t in tpl["resourceTemplates"]] == ["store://products/{id}",
                                                                    "test://template/{id}/data"]
    # other names still go to the store
    assert (await run(_tool("list_products")))["result"] == {"forwarded": "tools/call"}


async def test_pack_content_tools() -> None:
    image = (await run(_tool("test_image_content")))["result"]["content"][0]
    assert image["mimeType"] == "image/png" and base64.b64decode(image["data"]).startswith(b"\x89PNG")
    audio = (await run(_tool("test_audio_content")))["result"]["content"][0]
    assert audio["mimeType"] == "audio/wav" and base64.b64decode(audio["data"])[:4] == b"RIFF"
    mixed = (await run(_tool("test_multiple_content_types")))["result"]["content"]
    assert [c["type"] for c in mixed] == ["text", "image", "resource"]
    error = (await run(_tool("test_error_handling")))["result"]
    assert error["isError"] is True and error["content"][0]["text"]
    bad = await run(_tool("test_sampling", {"prompt": 5}))
    assert bad["error"]["code"] == -32602 and bad["error"]["data"] == {"path": "params.arguments.prompt"}


async def test_pack_progress_logging_and_elicitation_through_the_exchange() -> None:
    sink = Sink()
    requests = ServerRequests("r")
    ex = Exchange(outbound=sink, requests=requests, owner="o")
    await run(_tool("test_tool_with_progress", progressToken="pt"), ex)
    assert [n["params"]["progress"] for n in sink.sent] == [0, 50, 100]
    sink.sent.clear()
    await run(_tool("test_tool_with_logging"), ex)
    assert [n["params"]["data"] for n in sink.sent] == [
        "Tool execution started", "Tool processing data", "Tool execution completed"]
    sink.sent.clear()

    async def answer_when_asked() -> None:
        while not sink.sent:
            await asyncio.sleep(0)
        requests.resolve(sink.sent[0]["id"], "o", msgspec.Raw(b'{"action":"accept","content":{"name":"J"}}'), None)

    helper = asyncio.create_task(answer_when_asked())
    out = await run(_tool("test_elicitation_sep1034_defaults"), ex)
    await helper
    schema = sink.sent[0]["params"]["requestedSchema"]["properties"]
    assert {k: v["default"] for k, v in schema.items()} == {
        "name": "John Doe", "age": 30, "score": 95.5, "status": "active", "verified": True}
    assert out["result"]["content"][0]["text"] == 'Elicitation completed: action=accept, content={"name": "J"}'


async def test_pack_prompts_resources_and_completion() -> None:
    args = await run({"jsonrpc": "2.0", "id": 1, "method": "prompts/get", "params": {
        "name": "test_prompt_with_arguments", "arguments": {"arg1": "a1", "arg2": "b2"}}})
    assert args["result"]["messages"][0]["content"]["text"] == "Prompt with arguments: arg1='a1', arg2='b2'"
    missing = await run({"jsonrpc": "2.0", "id": 1, "method": "prompts/get",
                         "params": {"name": "test_prompt_with_arguments", "arguments": {"arg1": "a"}}})
    assert missing["error"]["code"] == -32602
    tpl = await run({"jsonrpc": "2.0", "id": 1, "method": "resources/read",
                     "params": {"uri": "test://template/123/data"}})
    assert json.loads(tpl["result"]["contents"][0]["text"]) == {"id": "123", "templateTest": True,
                                                                "data": "Data for ID: 123"}
    blob = await run({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "test://static-binary"}})
    assert blob["result"]["contents"][0]["blob"]
    nope = await run({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "test://nope"}})
    assert nope["error"]["code"] == -32002
    done = await run({"jsonrpc": "2.0", "id": 1, "method": "completion/complete", "params": {
        "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
        "argument": {"name": "arg1", "value": "par"}}})
    assert done["result"] == {"completion": {"values": ["paris", "park", "party"], "total": 3, "hasMore": False}}
    store = await run({"jsonrpc": "2.0", "id": 1, "method": "completion/complete", "params": {
        "ref": {"type": "ref/prompt", "name": "update_product_price"}, "argument": {"name": "product", "value": "C"}}})
    assert store["result"] == {"forwarded": "completion/complete"}           # the store's prompts: tools answers
    bad = await run({"jsonrpc": "2.0", "id": 1, "method": "completion/complete", "params": {
        "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"}, "argument": {"name": 5}}})
    assert bad["error"]["code"] == -32602
