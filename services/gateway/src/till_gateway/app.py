"""The gateway's app factory: the public origin (SPEC §2)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.handlers import asgi
from litestar.types import ASGIApp

from till_common.integrations.direct import DirectApp
from till_common.integrations.litestar import (
    EXCEPTION_HANDLERS,
    Metrics,
    ReadinessCheck,
    health_handlers,
    observability_middleware,
    observed,
)
from till_common.logging import get_logger
from till_gateway.registry import Registry
from till_gateway.settings import GatewaySettings
from till_gateway.transports import sse, streamable
from till_gateway.transports.discovery import discovery_handlers
from till_gateway.transports.proxy import EXACT_PATHS, PREFIX_PATHS

log = get_logger("till.gateway")


def _chain_sigterm(drain: Any) -> Any:
    """Run ``drain`` on SIGTERM before uvicorn's own handler: uvicorn waits for open responses,
    and an SSE stream never ends by itself, so streams must be closed first (SPEC §9)."""
    previous = signal.getsignal(signal.SIGTERM)
    loop = asyncio.get_running_loop()

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(drain()))
        if callable(previous):
            previous(signum, frame)

    with contextlib.suppress(ValueError):         # not the main thread (tests running in-process)
        signal.signal(signal.SIGTERM, handler)
    return previous


def create_app(settings: GatewaySettings, registry: Registry | None = None) -> Litestar:
    reg = registry or Registry.build(settings)
    metrics = Metrics("gateway")

    async def drain() -> None:
        if not reg.hub.draining:
            log.info("draining: closing SSE streams", sessions=len(reg.hub.local))
            await reg.hub.drain()

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        reg.background.start()
        _chain_sigterm(drain)
        try:
            yield
        finally:
            await drain()
            await reg.background.stop()
            await reg.close()

    checks: dict[str, ReadinessCheck] = {"auth": reg.check_auth, "tools": reg.check_tools,
                                         "revocations": reg.check_revocations, "jwks": reg.check_jwks}
    if reg.redis is not None:
        checks["redis"] = reg.check_redis

    gate = reg.gate
    mcp: dict[str, tuple[str, ASGIApp]] = {
        "/mcp": ("mcp", streamable.make_endpoint(gate)),
        "/mcp/sse": ("mcp-sse", sse.make_stream_endpoint(gate)),
        sse.MESSAGE_PATH: ("mcp-sse-message", sse.make_message_endpoint(gate)),
    }
    handlers: list[Any] = [
        *(asgi(path, copy_scope=False, name=name)(endpoint) for path, (name, endpoint) in mcp.items()),
        *discovery_handlers(reg.resource, reg.tools_api, reg.dispatcher.info),
    ]
    for path in EXACT_PATHS:
        handlers.append(asgi(path, copy_scope=False, name=f"proxy{path}")(reg.proxy))
    for path in PREFIX_PATHS:
        handlers.append(asgi(path, is_mount=True, copy_scope=False, name=f"proxy{path}/*")(reg.proxy))
    return DirectApp(
        direct={path: observed(metrics, path, endpoint) for path, (_, endpoint) in mcp.items()},
        route_handlers=[*health_handlers(metrics, checks, is_draining=lambda: reg.hub.draining), *handlers],
        middleware=[observability_middleware(metrics)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        openapi_config=None,
        state=State({"registry": reg}),
        debug=False,
        logging_config=None,   # till_common.logging owns the format (JSON)
    )
