"""Start the compose topology as local processes: migrate, auth, tools, N gateways, nginx in front.

Each process gets ONLY the ``TILL_*`` names its service reads (``CATALOGUE[...].services``), as the
containers do, so a setting that only works because a neighbour's variable leaked in shows up
here first. The load balancer is Debian's nginx running in the foreground on a config rendered
from deploy/nginx/till.conf.template, the template the compose load balancer uses.

Every process is started by this module, remembered by its Popen, and stopped by its PID only.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from deploy.cluster import nginx
from till_common.settings import CATALOGUE

#: The one-shot migration reads the settings of both database owners (`till migrate`).
MIGRATE_READS = ("auth", "tools")
SECRET_NAMES = ("TILL_INTERNAL_TOKEN", "TILL_ADMIN_TOKEN", "TILL_KEY_ENCRYPTION_KEY")
DEMO_PASSWORD = "till-demo-password"  # noqa: S105 - the documented local demo login (till dev's)
START_TIMEOUT = 60.0
MIGRATE_TIMEOUT = 300.0


class ClusterUnavailable(RuntimeError):
    """Something the cluster needs (nginx, Redis, PostgreSQL) is not on this machine."""


class ClusterError(RuntimeError):
    """A process of the cluster failed to start; the message carries the tail of its log."""


def find_nginx() -> str | None:
    """Debian installs nginx in /usr/sbin, which is not on every user's PATH."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def free_port(host: str = "127.0.0.1") -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def reads(service: str) -> frozenset[str]:
    """The TILL_* names a service (or `migrate`) reads, from the settings catalogue."""
    services = MIGRATE_READS if service == "migrate" else (service,)
    return frozenset(name for name, s in CATALOGUE.items() if set(services) & set(s.services))


def service_environ(service: str, values: Mapping[str, str],
                    base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` without any TILL_* name, plus those of ``values`` that ``service`` reads."""
    unknown = sorted(set(values) - CATALOGUE.keys())
    if unknown:
        raise ValueError(f"not in the settings catalogue: {', '.join(unknown)}")
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("TILL_")}
    wanted = reads(service)
    env.update({k: v for k, v in values.items() if k in wanted})
    return env


def request_count(base_url: str, route: str) -> int:
    """Requests a replica has answered on ``route`` (its /metrics, summed over statuses)."""
    with urllib.request.urlopen(base_url + "/metrics", timeout=5) as r:  # noqa: S310 - loopback
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("till_http_requests_total{") and f'route="{route}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


@dataclass
class Process:
    name: str
    url: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@dataclass(frozen=True)
class ClusterConfig:
    redis_url: str
    redis_namespace: str
    auth_database_url: str
    tools_database_url: str
    workdir: Path
    replicas: int = 2
    host: str = "127.0.0.1"
    lb_port: int | None = None
    seed_demo: bool = True
    demo_password: str = DEMO_PASSWORD
    #: Secrets and any further TILL_* settings; missing secrets are generated for the run.
    settings: Mapping[str, str] = field(default_factory=dict)
    #: Delete the namespace's Redis keys when the cluster stops.
    clean_redis: bool = True


class Cluster:
    """``with Cluster(config) as c: c.url`` — everything started is stopped on exit, by PID."""

    def __init__(self, config: ClusterConfig) -> None:
        if config.replicas < 1:
            raise ValueError("replicas must be at least 1")
        self.config = config
        self.processes: list[Process] = []
        host = config.host
        self.lb_port = config.lb_port or free_port(host)
        self.url = f"http://{host}:{self.lb_port}"
        self.auth_url = f"http://{host}:{free_port(host)}"
        self.tools_url = f"http://{host}:{free_port(host)}"
        self.gateway_urls = [f"http://{host}:{free_port(host)}" for _ in range(config.replicas)]
        values = {name: secrets.token_urlsafe(32) for name in SECRET_NAMES}
        values.update({
            "TILL_PUBLIC_URL": self.url,
            "TILL_AUTH_URL": self.auth_url,
            "TILL_TOOLS_URL": self.tools_url,
            "TILL_REDIS_URL": config.redis_url,
            "TILL_REDIS_NAMESPACE": config.redis_namespace,
            "TILL_AUTH_DATABASE_URL": config.auth_database_url,
            "TILL_TOOLS_DATABASE_URL": config.tools_database_url,
            "TILL_DEMO_PASSWORD": config.demo_password,
        })
        values.update(config.settings)
        self.settings: dict[str, str] = values

    # --- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        nginx_bin = find_nginx()
        if nginx_bin is None:
            raise ClusterUnavailable("nginx is not installed (Debian: apt-get install -y nginx)")
        self.config.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.migrate()
            # all at once (imports dominate start-up); a gateway is ready once auth and tools are
            services = [self._spawn_service("auth", "till_auth", self.auth_url),
                        self._spawn_service("tools", "till_tools", self.tools_url)]
            services += [self._spawn_service(f"gateway-{i + 1}", "till_gateway", url, reads_as="gateway")
                         for i, url in enumerate(self.gateway_urls)]
            self._wait_ready(services)
            self._spawn_nginx(nginx_bin)
            self._wait_ready(self.processes[-1:], path="/healthz")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Front first, so no request reaches a replica that is going away; then the rest."""
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
        if self.config.clean_redis:
            self._clean_redis()

    # --- steps ----------------------------------------------------------------------------------

    def migrate(self) -> None:
        log = self.config.workdir / "migrate.log"
        argv = [sys.executable, "-m", "till_cli.main", "migrate", *(["--seed-demo"] if self.config.seed_demo else [])]
        with log.open("wb") as out:
            done = subprocess.run(argv, env=service_environ("migrate", self.settings),  # noqa: S603
                                  stdout=out, stderr=subprocess.STDOUT, timeout=MIGRATE_TIMEOUT,
                                  cwd=self.config.workdir, check=False)
        if done.returncode != 0:
            raise ClusterError(f"`till migrate` exited with {done.returncode}:\n{log.read_text(errors='replace')}")

    def _spawn_service(self, name: str, module: str, url: str, reads_as: str | None = None) -> Process:
        port = url.rsplit(":", 1)[1]
        argv = [sys.executable, "-m", module, "--host", self.config.host, "--port", port]
        return self._spawn(name, url, argv, service_environ(reads_as or name, self.settings))

    def _spawn_nginx(self, nginx_bin: str) -> None:
        prefix = self.config.workdir / "nginx"
        gateways = [u.removeprefix("http://") for u in self.gateway_urls]
        conf = nginx.write_config(prefix, f"{self.config.host}:{self.lb_port}", gateways)
        argv = [nginx_bin, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "logs" / "error.log")]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TILL_")}
        self._spawn("lb", self.url, argv, env)

    def _spawn(self, name: str, url: str, argv: list[str], env: dict[str, str]) -> Process:
        log = self.config.workdir / f"{name}.log"
        with log.open("wb") as out:
            # own session: a terminal's Ctrl-C reaches the runner only, which stops them in order
            popen = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                     cwd=self.config.workdir, start_new_session=True)
        proc = Process(name, url, popen, log)
        self.processes.append(proc)
        return proc

    def _wait_ready(self, procs: Iterable[Process], path: str = "/readyz") -> None:
        deadline = time.monotonic() + START_TIMEOUT
        for proc in procs:
            while True:
                if proc.popen.poll() is not None:
                    raise ClusterError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
                if time.monotonic() > deadline:
                    raise ClusterError(f"{proc.name} not ready at {proc.url}{path} within "
                                       f"{START_TIMEOUT:.0f} s:\n{proc.tail()}")
                try:
                    with urllib.request.urlopen(proc.url + path, timeout=2) as r:  # noqa: S310 - loopback
                        if r.status == 200:
                            break
                except (OSError, urllib.error.HTTPError):
                    pass
                time.sleep(0.1)

    def _clean_redis(self) -> None:
        import redis

        try:
            client = redis.Redis.from_url(self.config.redis_url)
        except ValueError:
            return
        try:
            keys = list(client.scan_iter(match=f"{self.config.redis_namespace}:*", count=1000))
            if keys:
                client.delete(*keys)
        except redis.RedisError:
            pass
        finally:
            client.close()

    # --- for tests and the banner ---------------------------------------------------------------

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail()}" for p in self.processes)


_DB_NAME = re.compile(r"^[a-z0-9_]+$")


async def create_databases(server: str, names: Iterable[str]) -> None:
    """``CREATE DATABASE`` on ``server`` (``postgresql://user@host:port``) for each name."""
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(server + "/postgres")
    try:
        for name in names:
            if not _DB_NAME.match(name):
                raise ValueError(f"bad database name {name!r}")
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_databases(server: str, names: Iterable[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(server + "/postgres")
    try:
        for name in names:
            if _DB_NAME.match(name):
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
