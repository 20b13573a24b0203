"""Gateway fixtures: the in-test upstream and gateway processes in front of it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).parent))

from gw_upstream import Gateways, Upstream, gateway_env
from tests.support import Service, free_port


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream().start()
    yield up
    up.stop()


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

    return Gateways(upstream, public, start, first_port)


@pytest.fixture
def gateway(gateways: Gateways) -> Service:
    return gateways.start(port=gateways.first_port)
