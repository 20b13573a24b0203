"""Fixtures of the client matrix, and the compatibility report written from its outcomes.

- ``node_env``: tests/interop/node/node_modules installed from the lockfile (``npm ci`` when
  missing) and a Node to run it; skipped with the reason when npm is missing, failed under
  TILL_REQUIRE_SERVICES=1.
- ``reference_server``: the MCP Python SDK reference server as a real process on a free port.
- ``till_server``: Till's running stack from TILL_INTEROP_* variables (clients.ServerUnderTest), else
  the session's ``till_stack`` (root conftest): the whole matrix runs against Till by default.

With TILL_COMPAT_REPORT=1 the matrix's outcomes are written at the end of the session: Till's to
docs/compatibility.md, the reference server's to var/compat-reference.md.  Never by hand.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.interop import compat_report
from tests.interop.clients import Cell, OAuthLogin, ServerUnderTest
from tests.interop.node_env import INSTALL_TIMEOUT, NodeEnv, NodeUnavailable, ensure
from tests.support import free_port, unavailable, wait_http

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def node_env() -> NodeEnv:
    try:
        return ensure()
    except NodeUnavailable as exc:
        unavailable(str(exc))
        raise  # unreachable: unavailable() skips or fails


def _start_reference(tmp: Path, extra: list[str]) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = tmp / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.interop.reference_server", "--port", str(port), *extra],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", proc, timeout=30)
    except (RuntimeError, TimeoutError) as exc:
        proc.kill()
        proc.wait(10)
        raise RuntimeError(f"{exc}\n{log.read_text(errors='replace')}") from None
    return proc, base, log


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="session")
def reference_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerUnderTest]:
    """The SDK server behind a static bearer check: the token cells."""
    token = "ref_" + secrets.token_urlsafe(24)
    proc, base, _ = _start_reference(tmp_path_factory.mktemp("reference"), ["--token", token])
    yield ServerUnderTest(name="reference", mcp_url=base + "/mcp", sse_url=base + "/mcp/sse", token=token)
    _stop(proc)


@pytest.fixture(scope="session")
def reference_oauth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerUnderTest]:
    """The SDK server with its own OAuth AS and reference_oauth's login/consent pages: the OAuth cells.

    Apart from the token server because mcp-remote starts OAuth on any 401 (SPEC §9): a wrong
    token there must fail, not open a browser.
    """
    token = "ref_" + secrets.token_urlsafe(24)
    login = OAuthLogin("owner@reference.test", "pw-" + secrets.token_urlsafe(12))
    proc, base, _ = _start_reference(tmp_path_factory.mktemp("reference-oauth"),
                                     ["--token", token, "--oauth-login", f"{login.email}:{login.password}"])
    yield ServerUnderTest(name="reference", mcp_url=base + "/mcp", sse_url=base + "/mcp/sse", token=token,
                          oauth=login)
    _stop(proc)


@pytest.fixture(scope="session")
def till_server(request: pytest.FixtureRequest) -> ServerUnderTest:
    """Till: the running stack TILL_INTEROP_MCP_URL names, else the session's own ``till_stack``
    (nginx over two gateway replicas, tests/e2e/stack.py) with owner@demo.store's token and login."""
    report: compat_report.CompatReport = request.config.pluginmanager.get_plugin("till-compat-report")
    server = ServerUnderTest.from_environ()
    if server is not None:
        report.targets["till"] = f"the deployment at `{server.mcp_url}` (TILL_INTEROP_MCP_URL)."
        return server
    stack = request.getfixturevalue("till_stack")
    report.targets["till"] = ("the `till_stack` test fixture (tests/e2e/stack.py): the production topology "
                              "as local processes, nginx round robin over two gateway replicas sharing "
                              "Redis, auth and tools on PostgreSQL, the demo store seeded. Token cells use "
                              "a personal token of owner@demo.store; OAuth cells register, log in on "
                              "Till's /login and approve on its consent page.")
    owner = "owner@demo.store"
    return ServerUnderTest(name="till", mcp_url=stack.mcp_url, sse_url=stack.sse_url, token=stack.tokens[owner],
                           oauth=OAuthLogin(owner, stack.demo_password), tool_name="list_products",
                           tool_arguments={})


@pytest.fixture(scope="module")
def till_conformance_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                            ) -> Iterator[ServerUnderTest]:
    """Till for the conformance suite: TILL_INTEROP_MCP_URL's deployment (it must run with
    TILL_CONFORMANCE_FIXTURES=true), else a stack of its own like ``till_stack`` — two gateway
    replicas behind nginx — whose gateways serve the suite's fixture pack (conformance_pack.py)."""
    server = ServerUnderTest.from_environ()
    if server is not None:
        yield server
        return
    from deploy.cluster import find_nginx
    from tests.e2e.stack import start_stack

    if find_nginx() is None:
        unavailable("nginx is not installed (apt-get install -y nginx): the stack's load balancer")
    redis_url: str = request.getfixturevalue("redis_url")
    postgres = request.getfixturevalue("postgres")
    with start_stack(redis_url=redis_url, auth_database_url=postgres.database("conf_auth"),
                     tools_database_url=postgres.database("conf_tools"),
                     workdir=tmp_path_factory.mktemp("till-conformance-stack"),
                     settings={"TILL_CONFORMANCE_FIXTURES": "true"}) as stack:
        owner = "owner@demo.store"
        yield ServerUnderTest(name="till", mcp_url=stack.mcp_url, sse_url=stack.sse_url,
                              token=stack.tokens[owner], oauth=OAuthLogin(owner, stack.demo_password),
                              tool_name="list_products", tool_arguments={})


@pytest.fixture
def record_cell(record_property: Callable[[str, object], None]) -> compat_report.CellRecorder:
    """Tags the test with its server and cell so the report can place its outcome."""

    def record(server: ServerUnderTest, cell: Cell, note: str = "") -> None:
        record_property("compat_server", server.name)
        record_property("compat_cell", cell.id)
        if note:
            record_property("compat_note", note)

    return record


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The first test that needs Node pays for `npm ci` (bounded by TILL_INTEROP_NPM_TIMEOUT); every
    # client and suite run below it has its own subprocess timeout, so this is only the backstop.
    slow = {"test_reference_matrix.py", "test_till_matrix.py", "test_conformance.py", "test_node_env.py"}
    here = Path(__file__).resolve().parent
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if path.parent == here and path.name in slow:
            item.add_marker(pytest.mark.timeout(INSTALL_TIMEOUT + 180))


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(compat_report.CompatReport(), "till-compat-report")
