"""Till as real processes for the fault tests (security-cases.md §11, SC-06).

Each test gets its own copies of one migrated and seeded pair of PostgreSQL databases
(``CREATE DATABASE … TEMPLATE``: seeding once per run, not per test), its own Redis namespace and
free ports.  Services run as ``python -m till_<name>`` processes with only the ``TILL_*`` names
they read (deploy.cluster.service_environ), so a fault test can SIGSTOP or SIGKILL one of them.
The gateway can instead run inside the test process (:class:`InProcessGateway`) when the test
must inject a clock into it (FT-08, FT-10): uvicorn on a real port, in a thread of its own.

Every process is started here, remembered by its Popen and stopped by its PID only.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from deploy.cluster import service_environ
from tests.support import PG_SERVER, Service, free_port, wait_http

INTERNAL_TOKEN = "internal-" + "f" * 40
SECRETS = {"TILL_INTERNAL_TOKEN": INTERNAL_TOKEN, "TILL_ADMIN_TOKEN": "admin-" + "f" * 40,
           "TILL_KEY_ENCRYPTION_KEY": "kek-" + "f" * 40, "TILL_DEMO_PASSWORD": "demo-password-for-faults"}
OWNER = "owner@demo.store"
PG_DSN = PG_SERVER.replace("postgresql+asyncpg://", "postgresql://", 1)


def dsn(url: str) -> str:
    """asyncpg's DSN for a SQLAlchemy ``postgresql+asyncpg://`` URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def pg_admin(*statements: str) -> None:
    conn = await asyncpg.connect(PG_DSN + "/postgres")
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class Templates:
    """Names of the migrated, seeded databases every fault stack is copied from."""

    auth: str
    tools: str

    @classmethod
    def create(cls, workdir: Path) -> Templates:
        tmpl = cls(f"till_ftauth_{secrets.token_hex(4)}", f"till_fttools_{secrets.token_hex(4)}")
        asyncio.run(pg_admin(f'CREATE DATABASE "{tmpl.auth}"', f'CREATE DATABASE "{tmpl.tools}"'))
        values = {**SECRETS, "TILL_AUTH_DATABASE_URL": f"{PG_SERVER}/{tmpl.auth}",
                  "TILL_TOOLS_DATABASE_URL": f"{PG_SERVER}/{tmpl.tools}"}
        done = subprocess.run([sys.executable, "-m", "till_cli.main", "migrate", "--seed-demo"],
                              env=service_environ("migrate", values), cwd=workdir, capture_output=True,
                              text=True, timeout=300, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"till migrate --seed-demo failed:\n{done.stdout}\n{done.stderr}")
        return tmpl

    def drop(self) -> None:
        asyncio.run(pg_admin(*(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in (self.auth, self.tools))))


@dataclass
class FaultStack:
    """auth + tools (+ gateway) of one test on copies of the templates."""

    workdir: Path
    values: dict[str, str]
    databases: list[str]
    services: dict[str, Service] = field(default_factory=dict)

    # --- settings and URLs ------------------------------------------------------------------------
    @property
    def auth_database_url(self) -> str:
        return self.values["TILL_AUTH_DATABASE_URL"]

    @property
    def tools_database_url(self) -> str:
        return self.values["TILL_TOOLS_DATABASE_URL"]

    @property
    def public_url(self) -> str:
        return self.values["TILL_PUBLIC_URL"]

    def environ(self, service: str) -> dict[str, str]:
        return service_environ(service, self.values)

    # --- processes --------------------------------------------------------------------------------
    def start_all(self, *names: str) -> list[Service]:
        """Several services at once (imports dominate start-up), then wait for each."""
        started = [self.start(name, wait=False) for name in names]
        for svc in started:
            self._wait(svc)
        return started

    def _wait(self, svc: Service) -> None:
        # the gateway as a balancer sees it: ready (auth, tools, Redis, revocation feed, JWKS)
        path = "/readyz" if svc.name == "gateway" else "/healthz"
        try:
            wait_http(svc.url + path, svc.proc, timeout=60)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n{svc.output()}") from None

    def start(self, name: str, port: int | None = None, *, wait: bool = True, **extra: str) -> Service:
        """``python -m till_<name>`` on ``port`` (default: the one in its URL setting)."""
        key = {"auth": "TILL_AUTH_URL", "tools": "TILL_TOOLS_URL", "gateway": "TILL_PUBLIC_URL"}[name]
        port = port or int(self.values[key].rsplit(":", 1)[1])
        env = service_environ(name, {**self.values, **extra})
        log = self.workdir / f"{name}-{port}-{len(self.services)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", f"till_{name}", "--port", str(port)],
                                    env=env, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)
        svc = Service(name, f"http://127.0.0.1:{port}", proc, log)
        self.services[f"{name}-{port}-{proc.pid}"] = svc
        if wait:
            self._wait(svc)
        return svc

    def stop_all(self) -> None:
        for svc in reversed(list(self.services.values())):
            if svc.proc.poll() is None:
                # a SIGSTOPped process must be continued before SIGTERM can end it
                svc.proc.send_signal(signal.SIGCONT)
            svc.stop()

    # --- credentials --------------------------------------------------------------------------------
    def pat(self, email: str = OWNER) -> tuple[str, str]:
        from tests.e2e.stack import mint_pat

        return asyncio.run(mint_pat(self.environ("auth"), email))

    def jwt(self, email: str = OWNER, *, ttl: int = 3600) -> tuple[str, str]:
        """An access token as auth's token endpoint signs it (auth's key ring and minting, same
        database and key-encryption key), without the OAuth round trip: (token, kid)."""
        return self.jwts(1, email, ttl=ttl)[0]

    def jwts(self, n: int, email: str = OWNER, *, ttl: int = 3600, kid: str | None = None) -> list[tuple[str, str]]:
        """``n`` distinct tokens; with ``kid``, signed by that stored key whatever its state (as
        whoever holds a retired private key could)."""
        return asyncio.run(mint_jwts(self.environ("auth"), email, n, audience=self.public_url + "/mcp", ttl=ttl,
                                     kid=kid))

    # --- the tools database ---------------------------------------------------------------------------
    async def tools_db(self) -> asyncpg.Connection:
        return await asyncpg.connect(dsn(self.tools_database_url))

    async def audit_count(self, store_id: int = 1) -> int:
        """How many audit rows the store has (every call writes one)."""
        conn = await self.tools_db()
        try:
            return int(await conn.fetchval("SELECT count(*) FROM audit_entries WHERE store_id = $1", store_id))
        finally:
            await conn.close()

    def audit_verify(self, store_id: int = 1) -> str:
        """What ``till audit verify --store-id`` checks and prints (its own function, no subprocess):
        the hash chain of the store's audit rows; raises naming the first bad row."""
        from till_cli.audit import verify

        (verdict,) = asyncio.run(verify(self.tools_database_url, store_id))
        assert verdict.ok, f"audit chain of store {store_id} broken at row {verdict.bad_row_id}: {verdict.reason}"
        return f"store {verdict.store_id}: ok ({verdict.rows} rows)"


async def mint_jwts(environ: dict[str, str], email: str, n: int, *, audience: str, ttl: int,
                    kid: str | None = None) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from till_auth.oauth import access_token
    from till_auth.oauth.scopes import for_role
    from till_auth.registry import Registry
    from till_auth.settings import AuthSettings
    from till_auth.store import users
    from till_auth.store.models import SigningKey
    from till_common.settings import load_settings

    reg = Registry.build(load_settings(AuthSettings, environ))
    try:
        if kid is None:
            active = await reg.keys.signing_key()
            kid, private = active.kid, active.private
        else:
            async with reg.sessions() as db:
                row = await db.scalar(select(SigningKey).where(SigningKey.kid == kid))
            assert row is not None, kid
            private = reg.keys.open(row)
        async with reg.sessions() as db:
            user = await users.by_email(db, email)
            member = await users.membership(db, user.id) if user is not None else None
        if user is None or member is None:
            raise LookupError(f"no merchant with email {email!r}")
        out = []
        for _ in range(n):
            issued = access_token.mint(key=private, kid=kid, issuer=environ["TILL_PUBLIC_URL"], sub=user.id,
                                       audience=audience, client_id="fault-tests",
                                       scope=for_role(member.role, None), store_id=member.store_id,
                                       role=member.role, gid="g_faults", iat=int(time.time()), ttl=ttl)
            out.append((issued.token, kid))
        return out
    finally:
        await reg.close()


@contextmanager
def fault_stack(templates: Templates, workdir: Path, redis_url: str, namespace: str,
                **settings: str) -> Iterator[FaultStack]:
    """Copies of the seeded databases and the settings of a stack; processes start on demand."""
    auth_db, tools_db = f"till_fta_{secrets.token_hex(4)}", f"till_ftt_{secrets.token_hex(4)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{auth_db}" TEMPLATE "{templates.auth}"',
                         f'CREATE DATABASE "{tools_db}" TEMPLATE "{templates.tools}"'))
    values = {**SECRETS,
              "TILL_PUBLIC_URL": f"http://127.0.0.1:{free_port()}",
              "TILL_AUTH_URL": f"http://127.0.0.1:{free_port()}",
              "TILL_TOOLS_URL": f"http://127.0.0.1:{free_port()}",
              "TILL_REDIS_URL": redis_url, "TILL_REDIS_NAMESPACE": namespace,
              "TILL_AUTH_DATABASE_URL": f"{PG_SERVER}/{auth_db}",
              "TILL_TOOLS_DATABASE_URL": f"{PG_SERVER}/{tools_db}",
              "TILL_RATE_LIMIT_PER_MINUTE": "1000000", "TILL_LOG_LEVEL": "info", **settings}
    stack = FaultStack(workdir, values, [auth_db, tools_db])
    try:
        yield stack
    finally:
        stack.stop_all()
        asyncio.run(pg_admin(*(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in stack.databases)))


# --- the gateway inside the test process ------------------------------------------------------------

class Clock:
    """Wall clock plus an offset the test moves: the gateway's idea of "now"."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset


class InProcessGateway:
    """The gateway app built here (``create_app(settings, registry)``) so that a test can inject
    its clock, served by uvicorn on a real port from a thread with its own event loop."""

    def __init__(self, environ: Mapping[str, str], *, port: int, clock: Clock | None = None,
                 configure: Callable[[Any], None] | None = None) -> None:
        from till_common.settings import load_settings
        from till_gateway.app import create_app
        from till_gateway.registry import Registry
        from till_gateway.settings import GatewaySettings

        self.settings = load_settings(GatewaySettings, environ)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.clock = clock
        self._create_app = create_app
        self._build = Registry.build
        self._configure = configure
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self.registry: Any = None
        self.error: BaseException | None = None

    def __enter__(self) -> InProcessGateway:
        import uvicorn

        ready = threading.Event()

        def run() -> None:
            async def serve() -> None:
                # the registry opens aiohttp sessions and Redis pools: build it on the loop that uses it
                reg = self._build(self.settings)
                if self.clock is not None:
                    reg.authenticator.clock = self.clock
                    reg.authenticator.verifier.clock = self.clock
                if self._configure is not None:
                    self._configure(reg)
                self.registry = reg
                config = uvicorn.Config(self._create_app(self.settings, reg), host="127.0.0.1", port=self.port,
                                        log_config=None, access_log=False, lifespan="on")
                self._server = uvicorn.Server(config)
                ready.set()
                await self._server.serve()

            try:
                asyncio.run(serve())
            except BaseException as exc:  # surfaced by __enter__/__exit__
                self.error = exc
                ready.set()

        self._thread = threading.Thread(target=run, name=f"gateway-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(30)
        wait_http(self.url + "/healthz", timeout=30)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)


# --- MCP calls ---------------------------------------------------------------------------------------

def tools_call(url: str, token: str, name: str, arguments: dict[str, Any], *, request_id: str | None = None,
               timeout: float = 30, call_id: int = 1) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "MCP-Protocol-Version": "2025-06-18"}
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    return httpx.post(url + "/mcp", headers=headers, timeout=timeout, json={
        "jsonrpc": "2.0", "id": call_id, "method": "tools/call", "params": {"name": name, "arguments": arguments}})


def product_args(title: str, sku: str, key: str | None = None) -> dict[str, Any]:
    args: dict[str, Any] = {"title": title, "variants": [{"sku": sku, "price": "12.50", "stock": 3}]}
    if key is not None:
        args["idempotency_key"] = key
    return args
