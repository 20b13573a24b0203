"""The tools service's app factory: internal routes for the gateway only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State

from till_common.integrations.litestar import (
    EXCEPTION_HANDLERS,
    Metrics,
    health_handlers,
    observability_middleware,
)
from till_tools.registry import Registry
from till_tools.settings import ToolsSettings


def create_app(settings: ToolsSettings, registry: Registry | None = None) -> Litestar:
    reg = registry or Registry.build(settings)
    metrics = Metrics("tools")

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await reg.close()

    return Litestar(
        route_handlers=[*health_handlers(metrics, {"database": reg.check_database})],
        middleware=[observability_middleware(metrics)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        openapi_config=None,
        state=State({"registry": reg}),
        debug=False,
        logging_config=None,   # till_common.logging owns the format (JSON)
    )
