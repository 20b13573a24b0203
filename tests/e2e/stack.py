"""Till's production topology for end-to-end and interop tests, with no environment variables.

``start_stack`` runs ``deploy.cluster`` (the compose topology as local processes: migrate
--seed-demo on PostgreSQL, auth, tools, two gateway replicas sharing Redis, nginx round robin in
front; every port a free 127.0.0.1 one) and mints personal tokens for the demo merchants through
auth's own domain functions.  The root conftest's session fixture ``till_stack`` wraps it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from deploy.cluster import Cluster, ClusterConfig, service_environ

#: The demo merchants the fixtures hold a personal token for (SPEC §1 demo data).
MERCHANTS = ("owner@demo.store", "analyst@demo.store", "support@demo.store", "owner@other.store")

#: Settings of the test stack beyond the cluster's own.  The whole matrix registers OAuth clients
#: and calls tools from one loopback address on a handful of tokens within a minute or two; the
#: production limits (20 registrations per minute per IP, 600 calls per minute per token) are tested
#: by the services' own tests, here they would only make the matrix flaky.
STACK_SETTINGS = {
    "TILL_REGISTRATIONS_PER_MINUTE": "1000",
    "TILL_RATE_LIMIT_PER_MINUTE": "100000",
    "TILL_LOG_LEVEL": "warning",
}


@dataclass
class Stack:
    cluster: Cluster
    # kept out of repr: pytest prints fixture values in failure reports, and tokens stay out of logs
    tokens: dict[str, str] = field(default_factory=dict, repr=False)      # email → personal token
    token_ids: dict[str, str] = field(default_factory=dict, repr=False)   # email → its id (pat_…)

    @property
    def url(self) -> str:
        """The load balancer: the public origin, ``TILL_PUBLIC_URL``."""
        return self.cluster.url

    @property
    def mcp_url(self) -> str:
        return self.cluster.url + "/mcp"

    @property
    def sse_url(self) -> str:
        return self.cluster.url + "/mcp/sse"

    @property
    def demo_password(self) -> str:
        return self.cluster.config.demo_password

    @property
    def admin_token(self) -> str:
        return self.cluster.settings["TILL_ADMIN_TOKEN"]

    @property
    def tools_database_url(self) -> str:
        """asyncpg DSN (``postgresql://``) of the tools database, for checking answers with SQL."""
        return self.cluster.config.tools_database_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    @property
    def auth_database_url(self) -> str:
        return self.cluster.config.auth_database_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    def auth_environ(self) -> dict[str, str]:
        """The environment auth (and ``till`` commands acting as auth) runs with."""
        return service_environ("auth", self.cluster.settings)

    def mint(self, email: str, scope: str | None = None) -> tuple[str, str]:
        """A fresh personal token for ``email`` (the role's scopes, or exactly ``scope``): (token, id)."""
        return asyncio.run(mint_pat(self.auth_environ(), email, scope))

    async def amint(self, email: str, scope: str | None = None) -> tuple[str, str]:
        """``mint`` from async code (a test already running an event loop)."""
        return await mint_pat(self.auth_environ(), email, scope)


async def mint_pat(environ: dict[str, str], email: str, scope: str | None = None) -> tuple[str, str]:
    """What ``till tokens mint`` does, with an optional narrower scope (auth's domain functions)."""
    import time

    from till_auth.oauth.scopes import for_role
    from till_auth.registry import Registry
    from till_auth.settings import AuthSettings
    from till_auth.store import pats, users
    from till_common.settings import load_settings

    reg = Registry.build(load_settings(AuthSettings, environ))
    try:
        async with reg.transaction() as tx:
            user = await users.by_email(tx.db, email)
            member = await users.membership(tx.db, user.id) if user is not None else None
            if user is None or member is None:
                raise LookupError(f"no merchant with email {email!r}")
            minted = await pats.mint(tx.db, user_id=user.id, store_id=member.store_id,
                                     scope=scope if scope is not None else for_role(member.role, None),
                                     now=int(time.time()))
        return minted.token, minted.row.id
    finally:
        await reg.close()


async def _mint_all(environ: dict[str, str]) -> dict[str, tuple[str, str]]:
    return {email: await mint_pat(environ, email) for email in MERCHANTS}


@contextmanager
def start_stack(*, redis_url: str, auth_database_url: str, tools_database_url: str, workdir: Path,
                replicas: int = 2, settings: dict[str, str] | None = None) -> Iterator[Stack]:
    config = ClusterConfig(
        redis_url=redis_url,
        redis_namespace=f"till-e2e-{secrets.token_hex(6)}",
        auth_database_url=auth_database_url,
        tools_database_url=tools_database_url,
        workdir=workdir,
        replicas=replicas,
        settings={**STACK_SETTINGS, **(settings or {})},
    )
    with Cluster(config) as cluster:
        stack = Stack(cluster)
        minted = asyncio.run(_mint_all(stack.auth_environ()))
        stack.tokens = {email: token for email, (token, _) in minted.items()}
        stack.token_ids = {email: token_id for email, (_, token_id) in minted.items()}
        yield stack

