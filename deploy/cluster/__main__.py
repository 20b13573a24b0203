"""``make cluster`` / ``python -m deploy.cluster``: the compose topology as local processes.

Uses this machine's Redis (its own database index and a fresh namespace) and PostgreSQL (two
databases created for the run and dropped afterwards), migrates and seeds the demo store, starts
auth, tools, the gateway replicas and nginx, prints the URL and waits; Ctrl-C or SIGTERM stops
everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
import sys
import time
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from deploy.cluster.runner import (
    Cluster,
    ClusterConfig,
    ClusterError,
    ClusterUnavailable,
    create_databases,
    drop_databases,
)


def _terminate(signum: int, _frame: object) -> None:
    """The first Ctrl-C or SIGTERM stops the cluster; repeats must not cut the clean-up short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m deploy.cluster", description=__doc__.split("\n\n")[0])
    p.add_argument("--replicas", type=int, default=2, help="gateway replicas behind nginx (default 2)")
    p.add_argument("--port", type=int, default=None, help="the load balancer's port (default: a free one)")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/14",
                   help="Redis to use; database 14 by default, keys under a namespace of this run")
    p.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432",
                   help="PostgreSQL server on which the run's two databases are created")
    p.add_argument("--workdir", type=Path, default=None, help="logs and nginx files (default var/cluster/<run>)")
    p.add_argument("--no-seed", action="store_true", help="do not load the demo store")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    run = secrets.token_hex(4)
    workdir = (args.workdir or Path("var/cluster") / run).resolve()
    dbs = [f"till_cluster_{run}_auth", f"till_cluster_{run}_tools"]
    server = args.postgres.rstrip("/")
    async_server = server.replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        asyncio.run(create_databases(server, dbs))
    except (OSError, ValueError, asyncpg.PostgresError) as exc:
        print(f"cluster: cannot create databases on {server}: {exc}", file=sys.stderr)
        return 2
    config = ClusterConfig(redis_url=args.redis_url, redis_namespace=f"till-cluster-{run}",
                           auth_database_url=f"{async_server}/{dbs[0]}",
                           tools_database_url=f"{async_server}/{dbs[1]}",
                           workdir=workdir, replicas=args.replicas, lb_port=args.port,
                           seed_demo=not args.no_seed)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    cluster = Cluster(config)
    try:
        cluster.start()
        print_banner(cluster)
        while all(p.popen.poll() is None for p in cluster.processes):
            time.sleep(0.5)
        dead = [p.name for p in cluster.processes if p.popen.poll() is not None]
        print(f"cluster: {', '.join(dead)} stopped; stopping the others\n{cluster.logs()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ncluster: stopping", file=sys.stderr)
        return 0
    except (ClusterError, ClusterUnavailable) as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cluster.stop()
        asyncio.run(drop_databases(server, dbs))


def print_banner(cluster: Cluster) -> None:
    env_file = cluster.config.workdir / "cluster.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in sorted(cluster.settings.items())))
    env_file.chmod(0o600)
    lines = [
        "",
        f"Till cluster is running: nginx round robin over {len(cluster.gateway_urls)} gateway replicas.",
        f"  URL (load balancer):  {cluster.url}",
        f"  MCP:                  {cluster.url}/mcp   (legacy SSE: {cluster.url}/mcp/sse)",
        f"  gateway replicas:     {', '.join(cluster.gateway_urls)}",
        f"  auth (admin API):     {cluster.auth_url}/admin/v1/…  (bearer TILL_ADMIN_TOKEN)",
        f"  tools (internal):     {cluster.tools_url}",
        f"  settings and secrets: {env_file}",
        f"  logs:                 {cluster.config.workdir}",
    ]
    if cluster.config.seed_demo:
        lines.append(f"  demo logins:          owner@demo.store … password {cluster.config.demo_password}")
    lines += ["Press Ctrl-C to stop.", ""]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
