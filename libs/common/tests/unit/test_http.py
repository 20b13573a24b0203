"""The internal HTTP client against real servers on 127.0.0.1 (free ports): a scripted asyncio server
whose requests are parsed by httptools, and uvicorn itself.  Every test runs on asyncio's loop and on
uvloop (the services' loop, whose transports differ; conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import httptools
import msgspec
import pytest

from tests.support import free_port, serving
from till_common import http
from till_common.errors import Unavailable, UpstreamError
from till_common.http import InternalClient
from till_common.logging import request_id_var

TOKEN = "internal-token-for-tests-xxxxxxxx"


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int


def ok(body: bytes = b'{"ok":true}', *extra: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in extra)
    return (f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{head}content-length: {len(body)}\r\n\r\n"
            .encode() + body)


def chunked(*pieces: bytes) -> bytes:
    out = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    for p in pieces:
        out += b"%x\r\n%s\r\n" % (len(p), p)
    return out + b"0\r\n\r\n"


# A handler answers one request: bytes to write (None: write nothing), and whether to close afterwards.
Handler = Callable[[Seen], Awaitable[tuple[bytes | None, bool]]]


@dataclass
class Scripted:
    handler: Handler
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    server: asyncio.Server | None = None
    url: str = ""
    transports: list[asyncio.Transport] = field(default_factory=list)


class _ServerConn(asyncio.Protocol):
    def __init__(self, owner: Scripted) -> None:
        self.owner = owner
        self.parser = httptools.HttpRequestParser(self)
        self.headers: dict[str, str] = {}
        self.body = b""
        self.url = b""
        self.transport: asyncio.Transport | None = None
        owner.connections += 1
        self.number = owner.connections

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.owner.transports.append(self.transport)
        self.owner.open_now += 1
        self.owner.most_open = max(self.owner.most_open, self.owner.open_now)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.open_now -= 1

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        seen = Seen(self.parser.get_method().decode(), self.url.decode(), self.headers, self.body, self.number)
        self.headers, self.body, self.url = {}, b"", b""
        self.owner.seen.append(seen)
        asyncio.get_running_loop().create_task(self.answer(seen))

    async def answer(self, seen: Seen) -> None:
        out, close = await self.owner.handler(seen)
        assert self.transport is not None
        if out is not None and not self.transport.is_closing():
            self.transport.write(out)
        if close:
            self.transport.close()


@contextlib.asynccontextmanager
async def scripted(handler: Handler) -> AsyncIterator[Scripted]:
    s = Scripted(handler)
    s.server = await asyncio.get_running_loop().create_server(lambda: _ServerConn(s), "127.0.0.1", 0)
    s.url = f"http://127.0.0.1:{s.server.sockets[0].getsockname()[1]}"
    try:
        yield s
    finally:
        s.server.close()
        for t in s.transports:
            t.close()
        await s.server.wait_closed()
        await asyncio.sleep(0)


async def answer_ok(_: Seen) -> tuple[bytes | None, bool]:
    return ok(), False


async def test_sequential_posts_reuse_one_connection_and_send_only_the_internal_headers() -> None:
    async with scripted(answer_ok) as srv:
        client = InternalClient(srv.url, TOKEN)
        token = request_id_var.set("req-abc123")
        try:
            for n in range(3):
                status, body = await client.post("/internal/v1/rpc", b'{"n":%d}' % n)
                assert (status, body) == (200, b'{"ok":true}')
        finally:
            request_id_var.reset(token)
        await client.close()
    assert srv.connections == 1
    assert [s.body for s in srv.seen] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    first = srv.seen[0]
    assert (first.method, first.target) == ("POST", "/internal/v1/rpc")
    assert first.headers == {"host": srv.url.removeprefix("http://"), "authorization": f"Bearer {TOKEN}",
                             "x-request-id": "req-abc123", "content-type": "application/json",
                             "content-length": "7"}


async def test_no_request_id_header_without_a_request_id() -> None:
    async with scripted(answer_ok) as srv:
        client = InternalClient(srv.url, TOKEN)
        await client.post("/x", b"{}")
        await client.close()
    assert "x-request-id" not in srv.seen[0].headers


async def test_chunked_bodies_are_joined_and_the_connection_is_reused() -> None:
    async def handler(_: Seen) -> tuple[bytes | None, bool]:
        return chunked(b'{"a":', b'[1,2,', b'3]}'), False

    async with scripted(handler) as srv:
        client = InternalClient(srv.url, TOKEN)
        for _ in range(2):
            assert await client.post("/x", b"{}") == (200, b'{"a":[1,2,3]}')
        await client.close()
    assert srv.connections == 1


async def test_connection_close_answer_is_not_reused() -> None:
    async def handler(_: Seen) -> tuple[bytes | None, bool]:
        return ok(b"{}", "connection: close"), True

    async with scripted(handler) as srv:
        client = InternalClient(srv.url, TOKEN)
        for _ in range(3):
            assert await client.post("/x", b"{}") == (200, b"{}")
        await client.close()
    assert srv.connections == 3
    assert len(srv.seen) == 3


async def test_a_connection_the_server_closed_while_idle_is_replaced_without_losing_a_request() -> None:
    async def handler(_: Seen) -> tuple[bytes | None, bool]:
        return ok(), True          # answers keep-alive, then closes anyway (an idle timeout)

    async with scripted(handler) as srv:
        client = InternalClient(srv.url, TOKEN)
        for _ in range(3):
            assert (await client.post("/x", b"{}"))[0] == 200
            await asyncio.sleep(0.05)     # the close reaches the client before the next request
        await client.close()
    assert len(srv.seen) == 3
    assert srv.connections == 3


async def test_an_idle_connection_older_than_the_limit_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "IDLE_MAX", 0.05)
    async with scripted(answer_ok) as srv:
        client = InternalClient(srv.url, TOKEN)
        await client.post("/x", b"{}")
        await client.post("/x", b"{}")
        assert srv.connections == 1
        await asyncio.sleep(0.1)
        await client.post("/x", b"{}")
        await client.close()
    assert srv.connections == 2


async def test_no_answer_in_time_is_a_timeout_and_the_connection_is_not_reused() -> None:
    async def handler(seen: Seen) -> tuple[bytes | None, bool]:
        if seen.body == b"slow":
            await asyncio.sleep(0.6)
            return ok(b'"late"'), False
        return ok(), False

    async with scripted(handler) as srv:
        client = InternalClient(srv.url, TOKEN, timeout=0.2)
        with pytest.raises(UpstreamError, match="upstream timed out"):
            await client.post("/x", b"slow")
        # the late answer must never be read as the next request's answer
        assert await client.post("/x", b"{}") == (200, b'{"ok":true}')
        await client.close()
    assert srv.connections == 2


async def test_a_refused_connection_is_unavailable() -> None:
    client = InternalClient(f"http://127.0.0.1:{free_port()}", TOKEN, timeout=2)
    with pytest.raises(Unavailable, match="upstream unavailable"):
        await client.post("/x", b"{}")
    with pytest.raises(Unavailable):
        await client.request("GET", "/healthz")
    await client.close()


async def test_a_reset_after_the_request_was_written_is_unavailable_and_never_resent() -> None:
    async def handler(_: Seen) -> tuple[bytes | None, bool]:
        return None, True            # reads the request, closes without answering

    async with scripted(handler) as srv:
        client = InternalClient(srv.url, TOKEN)
        with pytest.raises(Unavailable):
            await client.post("/internal/v1/rpc", b'{"method":"tools/call"}')
        await asyncio.sleep(0.05)
        await client.close()
    assert len(srv.seen) == 1


async def test_a_reused_connection_reset_mid_answer_is_not_resent() -> None:
    async def handler(seen: Seen) -> tuple[bytes | None, bool]:
        if seen.body == b"second":
            return ok()[:20], True     # half an answer, then the connection goes
        return ok(), False

    async with scripted(handler) as srv:
        client = InternalClient(srv.url, TOKEN)
        await client.post("/x", b"first")
        with pytest.raises(Unavailable):
            await client.post("/x", b"second")
        await client.close()
    assert [s.body for s in srv.seen] == [b"first", b"second"]


@pytest.mark.parametrize(("answer", "then_close"), [
    pytest.param(b"SMTP ready\r\n\r\n", False, id="an_unreadable_answer"),
    pytest.param(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{}", True,
                 id="delimited_only_by_close"),
])
async def test_an_answer_it_cannot_trust_is_unavailable(answer: bytes, then_close: bool) -> None:
    async def handler(_: Seen) -> tuple[bytes | None, bool]:
        return answer, then_close

    async with scripted(handler) as srv:
        client = InternalClient(srv.url, TOKEN)
        with pytest.raises(Unavailable):
            await client.post("/x", b"{}")
        await client.close()


async def test_callers_over_the_limit_wait_for_a_connection() -> None:
    gate = asyncio.Event()

    async def handler(_: Seen) -> tuple[bytes | None, bool]:
        await gate.wait()
        return ok(), False

    async with scripted(handler) as srv:
        client = InternalClient(srv.url, TOKEN, limit=2)
        calls = [asyncio.create_task(client.post("/x", b"%d" % n)) for n in range(5)]
        await asyncio.sleep(0.1)
        assert len(srv.seen) == 2            # three callers wait for a slot
        gate.set()
        results = await asyncio.gather(*calls)
        await client.close()
    assert [r[0] for r in results] == [200] * 5
    assert srv.connections == 2
    assert srv.most_open == 2
    assert sorted(s.body for s in srv.seen) == [b"0", b"1", b"2", b"3", b"4"]


async def test_waiting_for_a_connection_is_bounded_by_the_timeout() -> None:
    gate = asyncio.Event()

    async def handler(_: Seen) -> tuple[bytes | None, bool]:
        await gate.wait()
        return ok(), False

    async with scripted(handler) as srv:
        client = InternalClient(srv.url, TOKEN, limit=1, timeout=0.2)
        first = asyncio.create_task(client.post("/x", b"1"))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(client.post("/x", b"2"))
        await asyncio.sleep(0.05)
        assert (srv.connections, len(srv.seen)) == (1, 1)     # the second caller waits, no second connection
        for call in (first, second):                           # 0.2 s in all, waiting included
            with pytest.raises(UpstreamError, match="upstream timed out"):
                await call
        gate.set()
        assert await client.post("/x", b"3") == (200, b'{"ok":true}')    # the slots were given back
        await client.close()
    assert (srv.seen[0].body, srv.seen[-1].body) == (b"1", b"3")


async def test_a_cancelled_call_gives_its_slot_back() -> None:
    gate = asyncio.Event()

    async def handler(seen: Seen) -> tuple[bytes | None, bool]:
        if seen.body == b"hang":
            await gate.wait()
        return ok(), False

    async with scripted(handler) as srv:
        client = InternalClient(srv.url, TOKEN, limit=1)
        task = asyncio.create_task(client.post("/x", b"hang"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.wait_for(client.post("/x", b"next"), 2) == (200, b'{"ok":true}')
        gate.set()
        await client.close()


async def test_request_sends_query_form_and_extra_headers() -> None:
    async with scripted(answer_ok) as srv:
        client = InternalClient(srv.url + "/prefix", TOKEN)
        assert await client.request("GET", "/feed", params={"after": "7", "q": "a b"}) == (200, b'{"ok":true}')
        await client.request("POST", "/introspect", data={"token": "t&k=1"})
        await client.request("DELETE", "/thing", headers={"X-Extra": "1"})
        await client.close()
    get, form, delete = srv.seen
    assert (get.method, get.target, get.body) == ("GET", "/prefix/feed?after=7&q=a+b", b"")
    assert "content-length" not in get.headers
    assert form.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form.body == b"token=t%26k%3D1"
    assert delete.headers["x-extra"] == "1"
    assert delete.headers["content-length"] == "0"


async def test_json_decodes_and_refuses_error_statuses() -> None:
    async def handler(seen: Seen) -> tuple[bytes | None, bool]:
        if seen.target == "/bad":
            return b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\noops", False
        return ok(seen.body), False

    async with scripted(handler) as srv:
        client = InternalClient(srv.url, TOKEN)
        assert await client.json("POST", "/echo", payload={"a": [1, 2]}) == {"a": [1, 2]}
        with pytest.raises(UpstreamError, match="upstream answered 500"):
            await client.json("GET", "/bad")
        await client.close()


async def test_control_characters_never_reach_the_wire() -> None:
    async with scripted(answer_ok) as srv:
        client = InternalClient(srv.url, TOKEN)
        with pytest.raises(ValueError, match="control character"):
            await client.request("GET", "/x", headers={"X-A": "1\r\nX-Injected: 1"})
        with pytest.raises(ValueError, match="control character"):
            await client.request("GET", "/x\r\nX-Injected: 1")
        with pytest.raises(ValueError, match="no spaces"):
            await client.request("GET", "/x y")
        await client.close()
    assert srv.seen == []


LINES_GATE: list[asyncio.Event] = []


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    out = msgspec.json.encode({"path": scope["path"], "len": len(body)})
    if scope["path"] == "/lines":         # ndjson, chunked; the rest only once the test opens the gate
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/x-ndjson")]})
        await send({"type": "http.response.body", "body": b'{"i":0}\n{"i":', "more_body": True})
        await LINES_GATE[0].wait()
        await send({"type": "http.response.body", "body": b'1}\n\n{"i":2}', "more_body": False})
        return
    if scope["path"] == "/stream":        # no content-length: uvicorn answers chunked
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": out[:5], "more_body": True})
        await send({"type": "http.response.body", "body": out[5:], "more_body": False})
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})


async def test_against_uvicorn_with_its_idle_timeout() -> None:
    async with serving(echo_app, timeout_keep_alive=0.1) as url:
        client = InternalClient(url, TOKEN)
        body = b"x" * 100_000
        for path in ("/a", "/stream", "/b"):
            status, raw = await client.post(path, body)
            assert status == 200
            assert msgspec.json.decode(raw) == {"path": path, "len": len(body)}
        calls = await asyncio.gather(*(client.post(f"/c{n}", b"{}") for n in range(20)))
        assert {c[0] for c in calls} == {200}
        await asyncio.sleep(0.3)             # uvicorn has closed every idle connection by now
        assert await client.post("/after", b"{}") == (200, b'{"path":"/after","len":2}')
        await client.close()


async def test_post_lines_hands_each_line_over_as_it_arrives_then_reuses_the_connection() -> None:
    LINES_GATE[:] = [asyncio.Event()]
    async with serving(echo_app, timeout_keep_alive=5) as url:
        client = InternalClient(url, TOKEN)
        lines: list[bytes] = []
        call = asyncio.create_task(client.post_lines("/lines", b"[]", lines.append))
        for _ in range(200):
            if lines:
                break
            await asyncio.sleep(0.01)
        assert lines == [b'{"i":0}']              # the first line, before the answer has ended
        assert not call.done()
        LINES_GATE[0].set()
        assert await call == (200, b"")
        assert lines == [b'{"i":0}', b'{"i":1}', b'{"i":2}']   # empty lines skipped, last one unterminated
        assert await client.post("/after", b"{}") == (200, b'{"path":"/after","len":2}')
        await client.close()


async def test_post_lines_returns_another_status_with_its_body_and_no_lines() -> None:
    async def handler(_: Seen) -> tuple[bytes | None, bool]:
        body = b'{"a":1}\n{"b":2}\n'
        return (b"HTTP/1.1 404 Not Found\r\ncontent-length: %d\r\n\r\n" % len(body)) + body, False

    async with scripted(handler) as srv:
        client = InternalClient(srv.url, TOKEN)
        lines: list[bytes] = []
        assert await client.post_lines("/x", b"[]", lines.append) == (404, b'{"a":1}\n{"b":2}\n')
        assert lines == []
        await client.close()


@pytest.mark.parametrize("close", [False, True])
async def test_post_lines_failing_mid_answer_raises_after_the_lines_already_passed(close: bool) -> None:
    async def handler(_: Seen) -> tuple[bytes | None, bool]:
        head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        return head + b"%x\r\n%s\r\n" % (len(b'{"i":0}\n{"i"'), b'{"i":0}\n{"i"'), close

    async with scripted(handler) as srv:
        client = InternalClient(srv.url, TOKEN, timeout=0.3)
        lines: list[bytes] = []
        with pytest.raises(Unavailable if close else UpstreamError):
            await client.post_lines("/x", b"[]", lines.append)
        assert lines == [b'{"i":0}']              # the torn second line is never handed over
        await asyncio.sleep(0.1)
        await client.close()
    assert len(srv.seen) == 1                     # the batch was not resent
