"""Shared fixtures: real Redis, real PostgreSQL, real processes on free loopback ports.

A service that is not reachable is replaced by a testcontainer where a container engine runs;
otherwise the test is skipped with the reason — except when TILL_REQUIRE_SERVICES=1 (CI),
where a missing service fails the run instead of letting it pass with tests skipped.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest_plugins = ["tests.security_report"]

ROOT = Path(__file__).resolve().parent
REQUIRE = os.environ.get("TILL_REQUIRE_SERVICES") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for marker in ("unit", "integration", "e2e"):
            if marker in parts:
                item.add_marker(getattr(pytest.mark, marker))


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


# --- Redis -------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """Database 15 of the machine's Redis.  Runs may overlap: isolate with ``redis_namespace``."""
    url = os.environ.get("TILL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    if reachable(url):
        yield url
    elif docker_running():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7") as r:
            yield f"redis://{r.get_container_host_ip()}:{r.get_exposed_port(6379)}/0"
    else:
        unavailable("no Redis on 127.0.0.1:6379 and no container engine for testcontainers")


@pytest.fixture
def redis_namespace(redis_url: str) -> Iterator[str]:
    """A namespace (TILL_REDIS_NAMESPACE) of this test alone; its keys are deleted afterwards."""
    import redis

    ns = f"till-test-{secrets.token_hex(6)}"
    yield ns
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{ns}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


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


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    if reachable(PG_SERVER):
        server = PostgresServer(PG_SERVER)
        yield server
        server.drop_all()
    elif docker_running():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="asyncpg") as pg:
            url = pg.get_connection_url().rsplit("/", 1)[0]
            server = PostgresServer(url)
            yield server
    else:
        unavailable("no PostgreSQL on 127.0.0.1:5432 and no container engine for testcontainers")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind the services support."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.database()


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
            with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 - loopback test URL
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} not healthy after {timeout}s")


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Start ``python -m till_<name> --port <free>`` and wait for /healthz; stopped at teardown."""
    started: list[Service] = []

    def start(name: str, env: dict[str, str], port: int | None = None, wait: bool = True) -> Service:
        port = port or free_port()
        log = tmp_path / f"{name}-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", f"till_{name}", "--port", str(port)],
                                    env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
        svc = Service(name, f"http://127.0.0.1:{port}", proc, log)
        started.append(svc)
        if wait:
            try:
                wait_http(svc.url + "/healthz", proc)
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"{exc}\n{svc.output()}") from None
        return svc

    yield start
    for svc in reversed(started):
        svc.stop()
