"""The three services as real processes: health, readiness, metrics, request ids, shutdown, bad config."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Service, clean_environ, free_port, wait_http


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    """One stack for the module (start-up dominates these tests): the tests that stop services run
    last, in file order — tools first (readiness), then everything (SIGTERM)."""
    import redis

    tmp_path = tmp_path_factory.mktemp("processes")
    namespace = f"till-test-{secrets.token_hex(6)}"
    env = clean_environ(TILL_AUTH_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/auth.db",
                        TILL_TOOLS_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/tools.db")
    subprocess.run([sys.executable, "-m", "till_cli.main", "migrate"], env=env, check=True, cwd=tmp_path,
                   capture_output=True, timeout=120)
    ports = {name: free_port() for name in ("auth", "tools", "gateway")}
    gw_env = {**env, "TILL_AUTH_URL": f"http://127.0.0.1:{ports['auth']}",
              "TILL_TOOLS_URL": f"http://127.0.0.1:{ports['tools']}", "TILL_REDIS_URL": redis_url,
              "TILL_REDIS_NAMESPACE": namespace}
    started: dict[str, Service] = {}
    try:
        # auth and tools at once (imports dominate start-up), then the gateway, whose revocation
        # feed reads auth at start-up
        for group in (("auth", "tools"), ("gateway",)):
            for name in group:
                log = tmp_path / f"{name}.log"
                with log.open("wb") as out:
                    proc = subprocess.Popen([sys.executable, "-m", f"till_{name}", "--port", str(ports[name])],
                                            env=gw_env if name == "gateway" else env, stdout=out,
                                            stderr=subprocess.STDOUT, cwd=tmp_path)
                started[name] = Service(name, f"http://127.0.0.1:{ports[name]}", proc, log)
            for name in group:
                svc = started[name]
                try:
                    wait_http(svc.url + "/healthz", svc.proc, timeout=60)
                except (RuntimeError, TimeoutError) as exc:
                    raise RuntimeError(f"{exc}\n{svc.output()}") from None
        yield started
    finally:
        for svc in reversed(started.values()):
            svc.stop()
        client = redis.Redis.from_url(redis_url)
        try:
            keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def test_every_service_reports_health_readiness_and_metrics(stack: dict[str, Service]) -> None:
    for name, svc in stack.items():
        status, _, body = get(svc.url + "/healthz")
        assert (status, json.loads(body)) == (200, {"status": "ok"}), name
        status, _, body = get(svc.url + "/readyz")
        assert status == 200, (name, body)
        status, headers, body = get(svc.url + "/metrics")
        assert status == 200
        assert headers["content-type"].startswith("text/plain")
        assert b'till_http_requests_total{route="/healthz"' in body
    checks = json.loads(get(stack["gateway"].url + "/readyz")[2])["checks"]
    assert checks == {"auth": "ok", "tools": "ok", "redis": "ok", "revocations": "ok", "jwks": "ok"}


def test_request_id_is_echoed_and_errors_are_problem_details(stack: dict[str, Service]) -> None:
    for svc in stack.values():
        status, headers, _ = get(svc.url + "/healthz", {"X-Request-Id": "req-abc-123"})
        assert status == 200
        assert headers["x-request-id"] == "req-abc-123"
        status, headers, _ = get(svc.url + "/healthz", {"X-Request-Id": "bad id!"})
        assert headers["x-request-id"] != "bad id!"
        status, headers, body = get(svc.url + "/nowhere")
        assert status == 404
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(body)["status"] == 404


def test_port_in_use_is_one_line(stack: dict[str, Service], tmp_path: Path) -> None:
    port = stack["tools"].url.rsplit(":", 1)[1]
    proc = subprocess.run([sys.executable, "-m", "till_tools", "--port", port], env=clean_environ(),
                          capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"till-tools: error: cannot listen on 127.0.0.1:{port}")


@pytest.mark.parametrize(("env", "message"), [
    ({"TILL_INTERNAL_TOKEN": ""}, "till-tools: error: TILL_INTERNAL_TOKEN is required but not set"),
    ({"TILL_TOLS_URL": "x"}, "till-tools: error: unknown setting TILL_TOLS_URL"),
    ({"TILL_TOOLS_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/x"},
     "till-tools: error: cannot reach the database TILL_TOOLS_DATABASE_URL="),
    ({"TILL_TOOLS_DATABASE_URL": "mysql://x"}, "till-tools: error: TILL_TOOLS_DATABASE_URL uses 'mysql'"),
])
def test_bad_configuration_is_one_line_and_nonzero(tmp_path: Path, env: dict[str, str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "till_tools", "--port", str(free_port())],
                          env=clean_environ(**env), capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(message), proc.stderr
    assert proc.stderr.count("\n") == 1


def test_till_dev_runs_the_stack_and_stops_on_sigterm(tmp_path: Path) -> None:
    ports = {k: free_port() for k in ("gateway", "auth", "tools")}
    args = [sys.executable, "-m", "till_cli.main", "dev"] + [
        a for k, p in ports.items() for a in (f"--{k}-port", str(p))]
    env = clean_environ()
    for k in ("TILL_INTERNAL_TOKEN", "TILL_ADMIN_TOKEN", "TILL_KEY_ENCRYPTION_KEY"):
        env.pop(k)                       # till dev generates them into var/dev.env
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        for port in ports.values():
            wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=60)
        deadline = time.monotonic() + 10
        while "Till is running" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        text = log.read_text()
        assert f"http://127.0.0.1:{ports['gateway']}/mcp" in text
        assert "owner@demo.store" in text
        assert (tmp_path / "var" / "dev.env").stat().st_mode & 0o777 == 0o600
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    for port in ports.values():
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)


def test_gateway_not_ready_when_an_upstream_is_down(stack: dict[str, Service]) -> None:
    """Second to last: stops the module's tools service."""
    stack["tools"].stop()
    status, _, body = get(stack["gateway"].url + "/readyz")
    assert status == 503
    assert json.loads(body)["checks"]["tools"].startswith("failed")
    assert get(stack["gateway"].url + "/healthz")[0] == 200     # alive, just not ready


def test_sigterm_stops_each_service_cleanly(stack: dict[str, Service]) -> None:
    """Last: stops the module's stack (tools already stopped by SIGTERM in the test before)."""
    for svc in stack.values():
        # uvicorn re-raises the signal after a graceful shutdown, so the status is -SIGTERM
        assert svc.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        events = [json.loads(line)["event"] for line in svc.output().splitlines() if line.startswith("{")]
        assert "Application shutdown complete." in events, events
