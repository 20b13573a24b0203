"""The compose topology as real local processes (deploy/cluster): nginx, rendered from the compose
load balancer's template, round robin over two gateway replicas sharing Redis, in front of auth
and tools on PostgreSQL. Needs Redis, PostgreSQL and Debian's nginx."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from deploy.cluster import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(240)]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def raw_get(base: str, path: str) -> int:
    """A request line exactly as given (no client-side normalisation of ``..`` or ``%2e``)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def served(replica: str) -> dict[str, int]:
    """Requests a replica has answered, per route, not counting the /metrics scrapes themselves."""
    with urllib.request.urlopen(replica + "/metrics", timeout=5) as r:
        text = r.read().decode()
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("till_http_requests_total{"):
            labels = line[line.index("{") + 1:line.index("}")]
            route = dict(p.split("=", 1) for p in labels.split(","))["route"].strip('"')
            if route != "/metrics":
                counts[route] = counts.get(route, 0) + int(float(line.rsplit(" ", 1)[1]))
    return counts


def total(counts: dict[str, int]) -> int:
    return sum(counts.values())


def test_health_and_readiness_through_the_balancer(cluster: Cluster) -> None:
    status, headers, body = get(cluster.url + "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert headers["server"] == "nginx", "served through the balancer"
    status, _, body = get(cluster.url + "/readyz")
    assert status == 200, body
    assert json.loads(body)["checks"] == {"auth": "ok", "tools": "ok", "redis": "ok", "revocations": "ok",
                                         "jwks": "ok"}


def test_consecutive_requests_are_spread_over_both_replicas(cluster: Cluster) -> None:
    assert len(cluster.gateway_urls) == 2
    before = [served(r).get("/healthz", 0) for r in cluster.gateway_urls]
    n = 20
    for _ in range(n):
        assert get(cluster.url + "/healthz")[0] == 200
    after = [served(r).get("/healthz", 0) for r in cluster.gateway_urls]
    deltas = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(deltas) == n, deltas
    # round robin with one nginx worker alternates; no stickiness to one replica
    assert min(deltas) >= n // 4, deltas


def test_request_ids_pass_through_or_are_made_by_the_balancer(cluster: Cluster) -> None:
    _, headers, _ = get(cluster.url + "/healthz", {"X-Request-Id": "deploy-test-42"})
    assert headers["x-request-id"] == "deploy-test-42"
    _, headers, _ = get(cluster.url + "/healthz")
    assert len(headers["x-request-id"]) == 32, "nginx's $request_id when the client sends none"


@pytest.mark.parametrize("path", [
    "/admin/v1/clients", "/admin/v1/keys/rotate", "/internal/v1/revocations", "/internal/v1/rpc", "/metrics",
    "/", "/docs", "/mcp/../admin/v1/clients", "/mcp/%2e%2e/internal/v1/revocations", "/settings/../metrics",
])
def test_admin_internal_and_metrics_are_not_reachable_through_the_balancer(cluster: Cluster, path: str) -> None:
    before = [total(served(r)) for r in cluster.gateway_urls]
    assert raw_get(cluster.url, path) == 404
    after = [total(served(r)) for r in cluster.gateway_urls]
    assert after == before, "refused by the balancer, never forwarded to a replica"


def test_each_process_was_given_only_its_own_settings(cluster: Cluster) -> None:
    # the runner filters by the catalogue; a service refuses an unknown TILL_* name at start-up,
    # and the gateway must never hold the admin token or the key-encryption key
    gateway = next(p for p in cluster.processes if p.name == "gateway-1")
    environ = Path(f"/proc/{gateway.popen.pid}/environ")
    if not environ.exists():
        pytest.skip("no /proc on this system")
    names = {item.split(b"=", 1)[0].decode() for item in environ.read_bytes().split(b"\0") if item}
    till = {n for n in names if n.startswith("TILL_")}
    assert "TILL_INTERNAL_TOKEN" in till
    assert not till & {"TILL_ADMIN_TOKEN", "TILL_KEY_ENCRYPTION_KEY", "TILL_AUTH_DATABASE_URL"}


def port_open(url: str) -> bool:
    parts = urlsplit(url)
    with closing(socket.socket()) as s:
        s.settimeout(1)
        return s.connect_ex((parts.hostname or "127.0.0.1", parts.port or 0)) == 0


def test_a_replica_going_away_is_absorbed_and_teardown_stops_everything(cluster: Cluster) -> None:
    """Last in this module: it takes the module's cluster apart. The balancer routes around a
    stopped replica, and stop() ends every process the cluster started and frees every port."""
    procs = list(cluster.processes)
    assert [p.name for p in procs] == ["auth", "tools", "gateway-1", "gateway-2", "lb"]
    next(p for p in procs if p.name == "gateway-1").stop()
    for _ in range(6):
        assert get(cluster.url + "/healthz")[0] == 200
    urls = [cluster.url, cluster.auth_url, cluster.tools_url, *cluster.gateway_urls]
    cluster.stop()
    assert cluster.processes == []
    assert all(p.popen.poll() is not None for p in procs)
    deadline = time.monotonic() + 5
    while any(port_open(u) for u in urls) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [u for u in urls if port_open(u)]
