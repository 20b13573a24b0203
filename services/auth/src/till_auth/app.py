"""The auth service's app factory: routes are thin, the OAuth logic lives in ``oauth/``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

from till_auth import maintenance
from till_auth.admin import SECURITY_COMPONENTS, AdminController, StrictStructSchemaPlugin
from till_auth.oauth.authorize import PageError
from till_auth.oauth.errors import OAuthError
from till_auth.registry import Registry
from till_auth.settings import AuthSettings
from till_auth.web import common, internal, oauth, pages, pat, registration
from till_auth.web.errors import oauth_error_handler, page_error_handler, unexpected_error_handler
from till_common.integrations.litestar import (
    EXCEPTION_HANDLERS,
    Metrics,
    health_handlers,
    observability_middleware,
)

MAX_BODY = 1024 * 1024      # DS-01


def create_app(settings: AuthSettings, registry: Registry | None = None, *, background: bool = True) -> Litestar:
    reg = registry or Registry.build(settings)
    metrics = Metrics("auth")

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        task = asyncio.create_task(maintenance.run_forever(reg)) if background else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await reg.close()

    checks = {"database": reg.check_database}
    if reg.redis is not None:
        checks["redis"] = reg.check_redis
    app = Litestar(
        route_handlers=[*health_handlers(metrics, checks), *oauth.HANDLERS, *registration.HANDLERS, *pages.HANDLERS,
                        *pat.HANDLERS, *internal.HANDLERS, AdminController],
        middleware=[observability_middleware(metrics)],
        before_request=common.refuse_nul,
        exception_handlers={**EXCEPTION_HANDLERS, OAuthError: oauth_error_handler, PageError: page_error_handler,
                            Exception: unexpected_error_handler},
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="Till auth admin API", version="1", path="/admin/v1/schema",
                                     components=SECURITY_COMPONENTS),
        state=State({"registry": reg}),
        plugins=[StrictStructSchemaPlugin()],
        request_max_body_size=MAX_BODY,
        debug=False,
        logging_config=None,   # till_common.logging owns the format (JSON)
    )
    return app
