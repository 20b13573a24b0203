"""Gateway fixtures: the in-test upstream and gateway processes in front of it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).parent))

from gw_root import Service, clean_environ, free_port
from gw_upstream import Upstream


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream().start()
    yield up
    up.stop()


@dataclass
class Gateways:
    upstream: Upstream
    public_url: str
    start: Callable[..., Service]

    def token(self, **kw: object) -> str:
        return self.upstream.mint(self.public_url, **kw)  # type: ignore[arg-type]


def gateway_env(up: Upstream, public_url: str, **extra: str) -> dict[str, str]:
    return clean_environ(TILL_AUTH_URL=up.url, TILL_TOOLS_URL=up.url, TILL_PUBLIC_URL=public_url,
                         TILL_HEARTBEAT_INTERVAL="1", TILL_SESSION_TTL="6", TILL_UPSTREAM_TIMEOUT="3",
                         TILL_LOG_LEVEL="warning", **extra)


@pytest.fixture
def gateways(spawn: Callable[..., Service], upstream: Upstream, redis_url: str,
             redis_namespace: str) -> Gateways:
    """Gateway replicas sharing the real Redis under this test's namespace; the first is "public"."""
    first_port = free_port()
    public = f"http://127.0.0.1:{first_port}"

    def start(port: int | None = None, redis: bool = True, **extra: str) -> Service:
        env = gateway_env(upstream, public)
        if redis:
            env.update(TILL_REDIS_URL=redis_url, TILL_REDIS_NAMESPACE=redis_namespace)
        env.update(extra)
        return spawn("gateway", env, port=port)

    gws = Gateways(upstream, public, start)
    gws.first_port = first_port  # type: ignore[attr-defined]
    return gws


@pytest.fixture
def gateway(gateways: Gateways) -> Service:
    return gateways.start(port=gateways.first_port)  # type: ignore[attr-defined]
