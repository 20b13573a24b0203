"""The legacy SSE test client of tests.support, which the gateway, e2e and fault tests share."""

from __future__ import annotations

import json

import pytest

from tests.support import Stream


async def test_stream_queues_each_event_with_its_kind_and_counts_heartbeats_apart() -> None:
    stream = Stream()
    for line in ["event: endpoint", "data: /mcp/sse/message?sessionId=abc", "",
                 ": heartbeat 1700000000", "",
                 "event: message", 'data: {"jsonrpc": "2.0", "id": 7, "result": {}}', ""]:
        stream.feed(line)
    assert await stream.next_event() == ("endpoint", "/mcp/sse/message?sessionId=abc")
    assert await stream.next() == {"jsonrpc": "2.0", "id": 7, "result": {}}
    assert len(stream.heartbeats) == 1
    assert stream.events.empty()


async def test_stream_session_id_is_the_endpoint_query_value() -> None:
    stream = Stream(endpoint="/mcp/sse/message?sessionId=" + "x" * 43)
    assert stream.session_id == "x" * 43


async def test_stream_next_refuses_an_event_that_is_not_a_message() -> None:
    stream = Stream()
    stream.feed("event: endpoint")
    stream.feed("data: " + json.dumps("/mcp/sse/message?sessionId=abc"))
    with pytest.raises(AssertionError, match="endpoint"):
        await stream.next(timeout=1)
