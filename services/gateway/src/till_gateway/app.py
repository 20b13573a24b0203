"""The gateway's app factory: the public origin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State

from till_common.integrations.litestar import (
    EXCEPTION_HANDLERS,
    Metrics,
    ReadinessCheck,
    health_handlers,
    observability_middleware,
)
from till_gateway.registry import Registry
from till_gateway.settings import GatewaySettings


def create_app(settings: GatewaySettings, registry: Registry | None = None) -> Litestar:
    reg = registry or Registry.build(settings)
    metrics = Metrics("gateway")

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await reg.close()

    checks: dict[str, ReadinessCheck] = {"auth": reg.check_auth, "tools": reg.check_tools}
    if reg.redis is not None:
        checks["redis"] = reg.check_redis
    return Litestar(
        route_handlers=[*health_handlers(metrics, checks)],
        middleware=[observability_middleware(metrics)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        openapi_config=None,
        state=State({"registry": reg}),
        debug=False,
        logging_config=None,   # till_common.logging owns the format (JSON)
    )
