"""Plain test helpers shared by every test tree: import them from ``tests.support``.

Fixtures live in the root ``conftest.py``; helpers live here so that no test imports a module
named ``conftest`` (nested conftests shadow that name).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import hypothesis
import pytest

REQUIRE = os.environ.get("TILL_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} (TILL_REQUIRE_SERVICES=1: CI must run these tests)")
    pytest.skip(reason)


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with closing(socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=1)):
            return True
    except OSError:
        return False


def docker_running() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- PostgreSQL --------------------------------------------------------------------------------

PG_SERVER = os.environ.get("TILL_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432")


async def _pg_admin(server: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server.replace("postgresql+asyncpg", "postgresql") + "/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class PostgresServer:
    """Creates throwaway databases and drops them when the run ends."""

    server: str
    created: list[str] = field(default_factory=list)

    def database(self, label: str = "t") -> str:
        name = f"till_{label}_{secrets.token_hex(4)}"
        asyncio.run(_pg_admin(self.server, f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return f"{self.server}/{name}"

    def drop_all(self) -> None:
        for name in self.created:
            asyncio.run(_pg_admin(self.server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --- processes ----------------------------------------------------------------------------------

SECRETS = {
    "TILL_INTERNAL_TOKEN": "internal-" + "i" * 40,
    "TILL_ADMIN_TOKEN": "admin-" + "a" * 40,
    "TILL_KEY_ENCRYPTION_KEY": "kek-" + "k" * 40,
    "TILL_DEMO_PASSWORD": "demo-password-for-tests",
}


def clean_environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILL_") or k.startswith("TILL_TEST_")}
    env.update(SECRETS)
    env.update(extra)
    return env


@dataclass
class Service:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} not healthy after {timeout}s")


# --- a legacy SSE (2024-11-05) client -------------------------------------------------------------

@dataclass
class Stream:
    """One open ``GET /mcp/sse``: its endpoint, its events in a queue, its heartbeats apart."""

    endpoint: str = ""
    events: asyncio.Queue[tuple[str, str]] = field(default_factory=asyncio.Queue)
    heartbeats: list[float] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    _event: str = ""

    @property
    def session_id(self) -> str:
        return self.endpoint.split("sessionId=")[1]

    def feed(self, line: str) -> None:
        """One line of the stream; an event is queued on its ``data:`` line (ours are one line each)."""
        if line.startswith(": heartbeat "):
            self.heartbeats.append(time.monotonic())
        elif line.startswith("event: "):
            self._event = line[7:]
        elif line.startswith("data: "):
            self.events.put_nowait((self._event, line[6:]))

    async def next_event(self, timeout: float = 10) -> tuple[str, str]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def next(self, timeout: float = 10) -> dict[str, Any]:
        """The next JSON-RPC message on the stream (an ``event: message``)."""
        kind, data = await self.next_event(timeout)
        assert kind == "message", (kind, data)
        message: dict[str, Any] = json.loads(data)
        return message



@contextlib.asynccontextmanager
async def serving(app: Any, **config: Any) -> AsyncIterator[str]:
    """``app`` on uvicorn in this event loop, on a free loopback port, until the block ends; yields its URL.
    ``config`` goes to ``uvicorn.Config`` (lifespan off and warnings-only logs unless given)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, **{"host": "127.0.0.1", "port": port, "log_level": "warning",
                                                   "lifespan": "off", **config}))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)

@contextlib.asynccontextmanager
async def open_stream(url: str, token: str) -> AsyncIterator[Stream]:
    """Open ``url + /mcp/sse`` with a bearer token and wait for its endpoint event (SPEC §9: first).
    ``stream.ended`` is set when the server ends the stream or the connection drops."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=60)) as http, \
            http.stream("GET", url + "/mcp/sse", headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status_code == 200, await resp.aread()
        assert resp.headers["content-type"].startswith("text/event-stream")
        stream = Stream()

        async def read() -> None:
            try:
                async for line in resp.aiter_lines():
                    stream.feed(line)
            except httpx.HTTPError:
                pass
            finally:
                stream.ended.set()

        reader = asyncio.create_task(read())
        kind, data = await stream.next_event()
        assert kind == "endpoint", "the endpoint event comes first"
        assert data.startswith("/mcp/sse/message?sessionId="), data
        stream.endpoint = data
        try:
            yield stream
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


# --- fuzzing ------------------------------------------------------------------------------------

#: how much longer the fuzz tests run under `make fuzz` (the hypothesis profile "fuzz")
FUZZ_FACTOR = 25


def fuzz_examples(n: int) -> int:
    """``n`` examples in a normal run (the whole fuzz set stays well under a minute in
    `make test`); ``n * FUZZ_FACTOR`` under the hypothesis profile "fuzz" (`make fuzz`)."""
    return n * FUZZ_FACTOR if hypothesis.settings.get_current_profile_name() == "fuzz" else n


def fuzz_settings(n: int) -> hypothesis.settings:
    """``@fuzz_settings(200)``: the budget of :func:`fuzz_examples`, no deadline (the machine is
    shared and loaded; speed belongs in bench/), and room for one server shared by all examples."""
    return hypothesis.settings(max_examples=fuzz_examples(n), deadline=None,
                               suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture,
                                                      hypothesis.HealthCheck.too_slow])


# --- a real browser -------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's chromium driven by Playwright (which never downloads a browser here)."""
    if not os.path.exists(CHROMIUM):
        unavailable("chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


# --- a private Redis (fault tests restart or kill it; never the shared 6379) ---------------------

@dataclass
class PrivateRedis:
    """A ``redis-server`` of one test on its own free loopback port, without persistence, so that a
    restart loses every key (FT-03).  Stopped by its PID only."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            unavailable("redis-server is not installed (apt-get install -y redis-server)")
        assert exe is not None
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "no"],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited with {self.proc.returncode}")
            try:
                with closing(socket.create_connection(("127.0.0.1", self.port), timeout=1)) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"redis-server on port {self.port} not answering after {timeout}s")

    def kill(self) -> None:
        """SIGKILL: every key is lost (no persistence), every client connection drops."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.kill()
        time.sleep(down_for)
        self.start()


@contextlib.contextmanager
def private_redis(workdir: Path, port: int | None = None) -> Iterator[PrivateRedis]:
    """Start a throwaway redis-server (see :class:`PrivateRedis`); killed on exit."""
    server = PrivateRedis(port or free_port(), workdir)
    server.start()
    try:
        yield server
    finally:
        server.kill()
