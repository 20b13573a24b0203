"""The services' uvicorn protocol (``serve.http_protocol``) on a real server: one write per response
must not change what a client sees (D820)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

import pytest
import uvicorn

from tests.support import free_port
from till_common.serve import http_protocol

RELEASE = threading.Event()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await receive()
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"data: first\n\n", "more_body": True})
        released = await asyncio.to_thread(RELEASE.wait, 10)
        await send({"type": "http.response.body", "body": b"data: %s\n\n" % str(released).encode()})
        return
    body = scope["path"].encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, loop="uvloop", http=http_protocol(),
                            lifespan="off", log_config=None, access_log=False)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield port
    srv.should_exit = True
    thread.join(10)


def connect(port: int) -> tuple[socket.socket, BinaryIO]:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s, s.makefile("rb")


def response(f: BinaryIO) -> tuple[dict[str, str], bytes]:
    status = f.readline()
    assert status.startswith(b"HTTP/1.1 200"), status
    headers: dict[str, str] = {}
    while (line := f.readline()) not in (b"\r\n", b""):
        k, v = line.decode().split(":", 1)
        headers[k.strip().lower()] = v.strip()
    return headers, f.read(int(headers["content-length"]))


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


def test_keep_alive_serves_requests_one_after_another_on_one_connection(server: int) -> None:
    s, f = connect(server)
    with s:
        for path in ("/a", "/bb", "/ccc"):
            s.sendall(get(path))
            headers, body = response(f)
            assert body == path.encode()
            assert "connection" not in headers


def test_pipelined_requests_are_answered_in_order(server: int) -> None:
    s, f = connect(server)
    with s:
        s.sendall(get("/one") + get("/two") + get("/three"))
        assert [response(f)[1] for _ in range(3)] == [b"/one", b"/two", b"/three"]


def test_connection_close_gets_its_response_then_eof(server: int) -> None:
    s, f = connect(server)
    with s:
        s.sendall(get("/bye", "Connection: close\r\n"))
        headers, body = response(f)
        assert body == b"/bye"
        assert headers["connection"] == "close"
        assert f.read() == b""


def test_a_streamed_event_arrives_while_the_app_still_holds_the_response(server: int) -> None:
    RELEASE.clear()
    s, f = connect(server)
    with s:
        s.sendall(get("/stream"))
        assert f.readline().startswith(b"HTTP/1.1 200")
        while f.readline() != b"\r\n":
            pass
        # the app is parked until RELEASE: the first event must already be on the wire
        assert f.readline().strip() == b"d"           # chunk size of b"data: first\n\n"
        assert f.readline() == b"data: first\n"
        RELEASE.set()
        rest = b""
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = f.read1(4096)
            assert chunk, rest
            rest += chunk
        assert b"data: True\n\n" in rest
