"""The auth service's app factory: routes are thin, the OAuth logic lives in ``oauth/``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

from till_auth.registry import Registry
from till_auth.settings import AuthSettings
from till_common.integrations.litestar import (
    EXCEPTION_HANDLERS,
    Metrics,
    health_handlers,
    observability_middleware,
)


def create_app(settings: AuthSettings, registry: Registry | None = None) -> Litestar:
    reg = registry or Registry.build(settings)
    metrics = Metrics("auth")

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await reg.close()

    checks = {"database": reg.check_database}
    if reg.redis is not None:
        checks["redis"] = reg.check_redis
    app = Litestar(
        route_handlers=[*health_handlers(metrics, checks)],
        middleware=[observability_middleware(metrics)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="Till auth admin API", version="1", path="/admin/v1/schema"),
        state=State({"registry": reg}),
        debug=False,
        logging_config=None,   # till_common.logging owns the format (JSON)
    )
    return app
