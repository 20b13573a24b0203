"""The two Till topologies the bench runs, both built on deploy.cluster (one way to start Till).

* :class:`DevStack` — what ``till dev`` runs: SQLite files, no Redis (in-process session store,
  rate limit and revocation state), auth + tools + ONE gateway, no load balancer.  Section 1.
* :func:`cluster` — the compose topology (deploy.cluster): Redis, PostgreSQL, two gateway
  replicas, nginx.  Sections 2-5.

Both raise the per-token rate limit and the registration limit out of the way (the bench sends
thousands of requests per token) and keep every other setting at its default.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

from deploy.cluster import Cluster, ClusterConfig
from deploy.cluster.runner import create_databases, drop_databases

# Only the limits a load test trips on purpose are raised: section 2 opens 10,000 streams as one merchant.
BENCH_SETTINGS = {"TILL_RATE_LIMIT_PER_MINUTE": "100000000", "TILL_REGISTRATIONS_PER_MINUTE": "100000",
                  "TILL_SSE_SESSIONS_PER_PRINCIPAL": "20000"}


class DevStack(Cluster):
    """auth + tools + one gateway on SQLite without Redis, like ``till dev``; ``url`` is the gateway."""

    def __init__(self, workdir: Path) -> None:
        config = ClusterConfig(redis_url="", redis_namespace="", workdir=workdir, replicas=1,
                               auth_database_url=f"sqlite+aiosqlite:///{workdir}/auth.db",
                               tools_database_url=f"sqlite+aiosqlite:///{workdir}/tools.db",
                               settings=BENCH_SETTINGS, clean_redis=False)
        super().__init__(config)
        self.url = self.gateway_urls[0]
        for name in ("TILL_REDIS_URL", "TILL_REDIS_NAMESPACE"):
            self.settings.pop(name, None)
        self.settings["TILL_PUBLIC_URL"] = self.url

    def start(self) -> None:
        self.config.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.migrate()
            services = [self._spawn_service("auth", "till_auth", self.auth_url),
                        self._spawn_service("tools", "till_tools", self.tools_url),
                        self._spawn_service("gateway", "till_gateway", self.url, reads_as="gateway")]
            self._wait_ready(services)
        except BaseException:
            self.stop()
            raise

    def pid(self, name: str) -> int:
        return next(p.popen.pid for p in self.processes if p.name == name)


@contextlib.contextmanager
def cluster(workdir: Path, redis_url: str, postgres: str) -> Iterator[Cluster]:
    """deploy.cluster with two fresh PostgreSQL databases (dropped afterwards) and its own namespace."""
    run = secrets.token_hex(4)
    dbs = [f"till_bench_{run}_auth", f"till_bench_{run}_tools"]
    server = postgres.rstrip("/")
    asyncio.run(create_databases(server, dbs))
    async_server = server.replace("postgresql://", "postgresql+asyncpg://", 1)
    config = ClusterConfig(redis_url=redis_url, redis_namespace=f"till-bench-{run}",
                           auth_database_url=f"{async_server}/{dbs[0]}",
                           tools_database_url=f"{async_server}/{dbs[1]}",
                           workdir=workdir, replicas=2, settings=BENCH_SETTINGS)
    try:
        with Cluster(config) as c:
            yield c
    finally:
        asyncio.run(drop_databases(server, dbs))


def cluster_pid(c: Cluster, name: str) -> int:
    return next(p.popen.pid for p in c.processes if p.name == name)
