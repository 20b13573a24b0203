"""Fixtures of the deployment tests: the repository root on sys.path (for ``deploy``) and the
local process cluster (``cluster``), which later end-to-end tests through the balancer reuse."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deploy.cluster import Cluster, ClusterConfig, find_nginx  # noqa: E402
from tests.support import PostgresServer, unavailable  # noqa: E402


@pytest.fixture(scope="module")
def cluster(redis_url: str, postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The compose topology as local processes: migrate --seed-demo, auth, tools, two gateway
    replicas and nginx round robin in front; ``cluster.url`` is the balancer. Module-scoped (it
    takes seconds to start): tests must not leave state that another test of the module reads.

    For MCP end-to-end tests through the balancer (legacy SSE on one replica, messages posted to
    the other): ``cluster.url + "/mcp/sse"``, ``cluster.gateway_urls`` for replica-direct calls,
    ``cluster.settings["TILL_DEMO_PASSWORD"]`` for the demo users, ``cluster.auth_url`` and
    ``cluster.settings["TILL_ADMIN_TOKEN"]`` for the admin API.
    """
    if find_nginx() is None:
        unavailable("nginx is not installed (apt-get install -y nginx): the cluster's load balancer")
    config = ClusterConfig(
        redis_url=redis_url,
        redis_namespace=f"till-test-{secrets.token_hex(6)}",
        auth_database_url=postgres.database("cluster_auth"),
        tools_database_url=postgres.database("cluster_tools"),
        workdir=tmp_path_factory.mktemp("cluster"),
    )
    with Cluster(config) as c:
        yield c
