"""Shared fixtures: real Redis, real PostgreSQL, real processes on free loopback ports.

A service that is not reachable is replaced by a testcontainer where a container engine runs;
otherwise the test is skipped with the reason — except when TILL_REQUIRE_SERVICES=1 (CI),
where a missing service fails the run instead of letting it pass with tests skipped.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

from tests.support import (  # noqa: F401 - re-exported for older imports
    PG_SERVER,
    PostgresServer,
    Service,
    clean_environ,
    docker_running,
    free_port,
    reachable,
    unavailable,
    wait_http,
)

if TYPE_CHECKING:
    from tests.e2e.stack import Stack

pytest_plugins = ["tests.security_report"]

ROOT = Path(__file__).resolve().parent

# `make fuzz` runs the fuzz-marked tests under this profile (`--hypothesis-profile=fuzz`); the
# fuzz tests size their budgets with tests.support.fuzz_settings, which scales them up under it.
settings.register_profile("fuzz", max_examples=2000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for marker in ("unit", "integration", "e2e"):
            if marker in parts:
                item.add_marker(getattr(pytest.mark, marker))


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


# --- PostgreSQL ---

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


# --- processes ---

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


# --- Till's whole stack --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def till_stack(redis_url: str, postgres: PostgresServer,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Till in its production topology for end-to-end and interop tests (tests/e2e/stack.py):
    deploy.cluster's nginx over two gateway replicas on real Redis and PostgreSQL, the demo store
    seeded, a personal token for each demo merchant.  One per session; tests must not revoke the
    session's tokens (mint their own with ``stack.mint``)."""
    from deploy.cluster import find_nginx
    from tests.e2e.stack import start_stack

    if find_nginx() is None:
        unavailable("nginx is not installed (apt-get install -y nginx): the stack's load balancer")
    with start_stack(redis_url=redis_url, auth_database_url=postgres.database("e2e_auth"),
                     tools_database_url=postgres.database("e2e_tools"),
                     workdir=tmp_path_factory.mktemp("till-stack")) as stack:
        yield stack
