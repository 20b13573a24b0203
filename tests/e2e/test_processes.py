"""The three services as real processes: health, readiness, metrics, request ids, shutdown, bad config."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
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


@pytest.fixture
def stack(spawn: Callable[..., Service], tmp_path: Path, redis_url: str, redis_namespace: str) -> dict[str, Service]:
    env = clean_environ(TILL_AUTH_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/auth.db",
                        TILL_TOOLS_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/tools.db")
    subprocess.run([sys.executable, "-m", "till_cli.main", "migrate"], env=env, check=True, cwd=tmp_path,
                   capture_output=True, timeout=120)
    auth = spawn("auth", env)
    tools = spawn("tools", env)
    gw_env = {**env, "TILL_AUTH_URL": auth.url, "TILL_TOOLS_URL": tools.url, "TILL_REDIS_URL": redis_url,
              "TILL_REDIS_NAMESPACE": redis_namespace}
    gateway = spawn("gateway", gw_env)
    return {"auth": auth, "tools": tools, "gateway": gateway}


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
    assert checks == {"auth": "ok", "tools": "ok", "redis": "ok", "revocations": "ok"}


def test_gateway_not_ready_when_an_upstream_is_down(stack: dict[str, Service]) -> None:
    stack["tools"].stop()
    status, _, body = get(stack["gateway"].url + "/readyz")
    assert status == 503
    assert json.loads(body)["checks"]["tools"].startswith("failed")
    assert get(stack["gateway"].url + "/healthz")[0] == 200     # alive, just not ready


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


def test_sigterm_stops_each_service_cleanly(stack: dict[str, Service]) -> None:
    for svc in stack.values():
        # uvicorn re-raises the signal after a graceful shutdown, so the status is -SIGTERM
        assert svc.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        events = [json.loads(line)["event"] for line in svc.output().splitlines() if line.startswith("{")]
        assert "Application shutdown complete." in events, events


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


def test_port_in_use_is_one_line(stack: dict[str, Service], tmp_path: Path) -> None:
    port = stack["tools"].url.rsplit(":", 1)[1]
    proc = subprocess.run([sys.executable, "-m", "till_tools", "--port", port], env=clean_environ(),
                          capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"till-tools: error: cannot listen on 127.0.0.1:{port}")


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
