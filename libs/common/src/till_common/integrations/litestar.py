"""The thin litestar edge shared by the three apps: request ids, metrics, health, problem details.

This is the only module of libs/common that imports litestar.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.exceptions import HTTPException
from litestar.handlers import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from till_common.errors import RateLimited, TillError
from till_common.logging import REQUEST_ID_HEADER, accept_request_id, get_logger, request_id_var

log = get_logger("till.http")
ReadinessCheck = Callable[[], Awaitable[None]]

_REQUEST_ID_BYTES = REQUEST_ID_HEADER.lower().encode()


class Metrics:
    """Per-app Prometheus registry; labels are route templates and statuses, never ids (SC-02)."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("till_http_requests_total", "HTTP requests", ["service", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("till_http_request_seconds", "HTTP request latency", ["service", "route"],
                                 registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.service = service
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        """One request: the labelled children are looked up once per (route, status), not per request."""
        pair = self._children.get((route, status))
        if pair is None:
            pair = self._children[(route, status)] = (self.requests.labels(self.service, route, str(status)),
                                                      self.latency.labels(self.service, route))
        pair[0].inc()
        pair[1].observe(seconds)


_ROUTES: dict[BaseRouteHandler, str] = {}   # strong keys: an id is never reused for another handler


def _route_of(scope: Scope) -> str:
    handler: Any = scope.get("route_handler")     # absent when no route matched
    if not isinstance(handler, BaseRouteHandler):
        return "unmatched"
    # handlers live as long as the app: their route template is worked out once
    route = _ROUTES.get(handler)
    if route is None:
        paths = sorted(handler.paths)
        route = _ROUTES[handler] = paths[0] if paths else "unmatched"
    return route


def observability_middleware(metrics: Metrics) -> Callable[[ASGIApp], ASGIApp]:
    """Pure ASGI: request id in and out, one counter and one histogram per request."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":  # type: ignore[comparison-overlap]  # lifespan too
                await app(scope, receive, send)
                return
            incoming = None
            for k, v in scope["headers"]:
                if k == _REQUEST_ID_BYTES:
                    incoming = v.decode("latin-1")
                    break
            rid = accept_request_id(incoming)
            token = request_id_var.set(rid)
            status = 500
            started = time.perf_counter()

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*message.get("headers", []),
                                          (_REQUEST_ID_BYTES, rid.encode())]
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                metrics.observe(_route_of(scope), status, time.perf_counter() - started)
                request_id_var.reset(token)

        return middleware

    return factory


def health_handlers(metrics: Metrics, checks: Mapping[str, ReadinessCheck],
                    is_draining: Callable[[], bool] = lambda: False, timeout: float = 2.0) -> list[Any]:
    @get("/healthz", include_in_schema=False, sync_to_thread=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", include_in_schema=False)
    async def readyz() -> Response[dict[str, Any]]:
        results: dict[str, str] = {}

        async def run(name: str, check: ReadinessCheck) -> None:
            try:
                await asyncio.wait_for(check(), timeout)
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"failed: {type(exc).__name__}"

        await asyncio.gather(*(run(n, c) for n, c in checks.items()))
        ready = all(v == "ok" for v in results.values()) and not is_draining()
        if is_draining():
            results["draining"] = "shutting down"
        return Response({"status": "ready" if ready else "not ready", "checks": results},
                        status_code=200 if ready else 503)

    @get("/metrics", include_in_schema=False, sync_to_thread=False)
    def metrics_endpoint() -> Response[bytes]:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return [healthz, readyz, metrics_endpoint]


def problem(status: int, title: str, detail: str = "", **extra: Any) -> Response[bytes]:
    """RFC 9457 problem details, the error format of every non-protocol route."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    rid = request_id_var.get()
    if rid:
        body["request_id"] = rid
    body.update(extra)
    headers = {"Cache-Control": "no-store"}
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/problem+json",
                    headers=headers)


def till_error_handler(_: Request[Any, Any, Any], exc: TillError) -> Response[bytes]:
    if exc.status >= 500:
        log.error("request failed", error=exc.code, debug=exc.debug)
    elif exc.debug:
        log.info("request refused", error=exc.code, debug=exc.debug)
    response = problem(exc.status, exc.code, exc.description)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def http_exception_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    response = problem(exc.status_code, exc.detail or "error")
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def internal_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # The client gets a correlation id only; the log keeps the exception.
    log.exception("unhandled error", error=type(exc).__name__)
    return problem(500, "server_error", "internal error; quote the request_id when reporting it")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    TillError: till_error_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}
