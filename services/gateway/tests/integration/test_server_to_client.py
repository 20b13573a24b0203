"""Server→client traffic during a call over real HTTP, with the conformance fixture pack on.

A POST whose Accept allows ``text/event-stream`` gets progress and log notifications as a stream
ending with the response; a server request (sampling, elicitation) is answered by a second POST,
which may reach another replica (routed through Redis to the one waiting).  JSON-only clients and
calls that send nothing mid-call keep getting plain JSON.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
from gw_upstream import Gateways
from tests.support import Service

BOTH = "application/json, text/event-stream"


def _headers(token: str, accept: str = BOTH) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": accept,
            "MCP-Protocol-Version": "2025-11-25"}


def _events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line[len("data: "):]) for line in lines if line.startswith("data: ")]


def _call(name: str, arguments: dict[str, Any] | None = None, meta: dict[str, Any] | None = None,
          rid: int = 7) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments or {}}
    if meta:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}


def _fixture_gateway(gateways: Gateways, port: int | None = None) -> Service:
    return gateways.start(port=port, TILL_CONFORMANCE_FIXTURES="true")


def test_progress_and_logging_stream_then_the_response(gateways: Gateways) -> None:
    gw = _fixture_gateway(gateways, gateways.first_port)
    tok = gateways.token()
    with httpx.stream("POST", gw.url + "/mcp", headers=_headers(tok), timeout=10,
                      json=_call("test_tool_with_progress", meta={"progressToken": "p-1"})) as r:
        assert r.headers["content-type"] == "text/event-stream"
        events = _events(list(r.iter_lines()))
    progress = [e["params"] for e in events if e.get("method") == "notifications/progress"]
    assert [(p["progressToken"], p["progress"], p["total"]) for p in progress] == [("p-1", 0, 100), ("p-1", 50, 100),
                                                                                   ("p-1", 100, 100)]
    assert events[-1]["id"] == 7 and events[-1]["result"]["content"][0]["type"] == "text"

    with httpx.stream("POST", gw.url + "/mcp", headers=_headers(tok), json=_call("test_tool_with_logging"),
                      timeout=10) as r:
        events = _events(list(r.iter_lines()))
    logs = [e["params"] for e in events if e.get("method") == "notifications/message"]
    assert [(m["level"], m["data"]) for m in logs] == [
        ("info", "Tool execution started"), ("info", "Tool processing data"), ("info", "Tool execution completed")]
    assert events[-1]["id"] == 7 and "result" in events[-1]


def test_json_only_clients_and_quiet_calls_still_get_json(gateways: Gateways) -> None:
    gw = _fixture_gateway(gateways, gateways.first_port)
    tok = gateways.token()
    # no progress token → nothing to send mid-call → plain JSON even though SSE is acceptable
    quiet = httpx.post(gw.url + "/mcp", headers=_headers(tok), json=_call("test_tool_with_progress"), timeout=10)
    assert quiet.headers["content-type"] == "application/json"
    assert quiet.json()["result"]["content"]
    # a JSON-only client never gets a stream: the log notifications are dropped, the result comes back
    only_json = httpx.post(gw.url + "/mcp", headers=_headers(tok, "application/json"),
                           json=_call("test_tool_with_logging"), timeout=10)
    assert only_json.headers["content-type"] == "application/json"
    assert only_json.json()["result"]["content"][0]["text"]
    # sampling without a stream to carry the request: a tool error the model can read, not a hang
    no_stream = httpx.post(gw.url + "/mcp", headers=_headers(tok, "application/json"),
                           json=_call("test_sampling", {"prompt": "hi"}), timeout=10).json()["result"]
    assert no_stream["isError"] is True and "cannot send sampling/createMessage" in no_stream["content"][0]["text"]


def _answer_server_request(gw_url: str, answer_url: str, token: str, body: dict[str, Any],
                           reply: dict[str, Any]) -> tuple[list[dict[str, Any]], list[int]]:
    """POST ``body`` to ``gw_url``; answer the server request it streams by a POST to ``answer_url``."""
    statuses: list[int] = []
    events: list[dict[str, Any]] = []
    with httpx.stream("POST", gw_url + "/mcp", headers=_headers(token), json=body, timeout=15) as r:
        assert r.headers["content-type"] == "text/event-stream"
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[len("data: "):])
            events.append(event)
            if "method" in event and "id" in event:       # a server request: answer it from elsewhere
                def post_answer(rid: Any = event["id"]) -> None:
                    a = httpx.post(answer_url + "/mcp", headers=_headers(token),
                                   json={"jsonrpc": "2.0", "id": rid, **reply}, timeout=10)
                    statuses.append(a.status_code)
                t = threading.Thread(target=post_answer)
                t.start()
                t.join()
    return events, statuses


def test_sampling_answer_reaches_the_waiting_replica_through_redis(gateways: Gateways) -> None:
    a = _fixture_gateway(gateways, gateways.first_port)
    b = _fixture_gateway(gateways)
    tok = gateways.token()
    reply = {"result": {"role": "assistant", "content": {"type": "text", "text": "sampled words"},
                        "model": "m", "stopReason": "endTurn"}}
    events, statuses = _answer_server_request(a.url, b.url, tok, _call("test_sampling", {"prompt": "say hi"}), reply)
    request = events[0]
    assert request["method"] == "sampling/createMessage"
    assert request["params"]["messages"][0]["content"]["text"] == "say hi"
    assert statuses == [202]
    assert events[-1]["result"]["content"][0]["text"] == "LLM response: sampled words"


def test_elicitation_answer_from_another_principal_is_ignored(gateways: Gateways) -> None:
    gw = _fixture_gateway(gateways, gateways.first_port)
    owner, intruder = gateways.token(), gateways.token(sub="99", store_id=99)
    result: dict[str, Any] = {}

    def call() -> None:
        with httpx.stream("POST", gw.url + "/mcp", headers=_headers(owner), timeout=15,
                          json=_call("test_elicitation", {"message": "who?"})) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[len("data: "):])
                    if "method" in event and "id" in event:
                        result["rid"] = event["id"]
                        for tok, name in ((intruder, "intruder"), (owner, "owner")):
                            httpx.post(gw.url + "/mcp", headers=_headers(tok), timeout=10, json={
                                "jsonrpc": "2.0", "id": event["id"],
                                "result": {"action": "accept", "content": {"username": name}}})
                    else:
                        result["final"] = event

    call()
    assert str(result["rid"]).startswith("s.")
    assert '"username": "owner"' in result["final"]["result"]["content"][0]["text"]
