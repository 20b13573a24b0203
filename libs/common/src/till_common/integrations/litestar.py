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


def _incoming_request_id(scope: Scope) -> str | None:
    for k, v in scope["headers"]:
        if k == _REQUEST_ID_BYTES:
            return v.decode("latin-1")
    return None


async def _observe(metrics: Metrics, app: ASGIApp, scope: Scope, receive: Receive, send: Send,
                   route: str | None) -> None:
    """Request id in and out, one counter and one histogram.  ``route`` None: a litestar route (its
    template is read from the scope afterwards, litestar answers exceptions); a route name: a raw
    endpoint outside litestar, whose exceptions are answered here as EXCEPTION_HANDLERS would."""
    rid = accept_request_id(_incoming_request_id(scope))
    token = request_id_var.set(rid)
    status = 500
    started = time.perf_counter()
    response_started = False

    async def send_wrapper(message: Message) -> None:
        nonlocal status, response_started
        if message["type"] == "http.response.start":
            status = message["status"]
            response_started = True
            message["headers"] = [*message.get("headers", []), (_REQUEST_ID_BYTES, rid.encode())]
        await send(message)

    try:
        if route is None:
            await app(scope, receive, send_wrapper)
            return
        try:
            await app(scope, receive, send_wrapper)
        except Exception as exc:
            if response_started:
                raise
            code, body, headers = error_answer(exc)
            await send_wrapper({"type": "http.response.start", "status": code,
                                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send_wrapper({"type": "http.response.body", "body": body, "more_body": False})
    finally:
        metrics.observe(_route_of(scope) if route is None else route, status, time.perf_counter() - started)
        request_id_var.reset(token)


def observability_middleware(metrics: Metrics) -> Callable[[ASGIApp], ASGIApp]:
    """Pure ASGI: request id in and out, one counter and one histogram per request."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":  # type: ignore[comparison-overlap]  # lifespan too
                await app(scope, receive, send)
                return
            await _observe(metrics, app, scope, receive, send, None)

        return middleware

    return factory


def observed(metrics: Metrics, route: str, endpoint: ASGIApp) -> ASGIApp:
    """A raw ASGI endpoint served before litestar's router, with what a litestar route gets here:
    the request id in and out, the request counted under ``route``, an exception answered as
    :data:`EXCEPTION_HANDLERS` answer it (after the response started, it propagates, as in litestar)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await _observe(metrics, endpoint, scope, receive, send, route)

    return app


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


def _problem_body(status: int, title: str, detail: str = "", **extra: Any) -> bytes:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    rid = request_id_var.get()
    if rid:
        body["request_id"] = rid
    body.update(extra)
    return msgspec.json.encode(body)


def problem(status: int, title: str, detail: str = "", **extra: Any) -> Response[bytes]:
    """RFC 9457 problem details, the error format of every non-protocol route."""
    return Response(_problem_body(status, title, detail, **extra), status_code=status,
                    media_type="application/problem+json", headers={"Cache-Control": "no-store"})


Answer = tuple[int, bytes, dict[str, str]]     # status, problem body, extra headers


def _till_answer(exc: TillError) -> Answer:
    if exc.status >= 500:
        log.error("request failed", error=exc.code, debug=exc.debug)
    elif exc.debug:
        log.info("request refused", error=exc.code, debug=exc.debug)
    extra = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else {}
    return exc.status, _problem_body(exc.status, exc.code, exc.description), extra


def _http_answer(exc: HTTPException) -> Answer:
    return exc.status_code, _problem_body(exc.status_code, exc.detail or "error"), dict(exc.headers or {})


def _internal_answer(exc: Exception) -> Answer:
    # The client gets a correlation id only; the log keeps the exception (call inside the except block).
    log.exception("unhandled error", error=type(exc).__name__)
    return 500, _problem_body(500, "server_error", "internal error; quote the request_id when reporting it"), {}


def _response(answer: Answer) -> Response[bytes]:
    status, body, extra = answer
    return Response(body, status_code=status, media_type="application/problem+json",
                    headers={"Cache-Control": "no-store", **extra})


def till_error_handler(_: Request[Any, Any, Any], exc: TillError) -> Response[bytes]:
    return _response(_till_answer(exc))


def http_exception_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    return _response(_http_answer(exc))


def internal_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    return _response(_internal_answer(exc))


def error_answer(exc: Exception) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """What :data:`EXCEPTION_HANDLERS` answer ``exc``, as raw ASGI parts (headers without
    content-length), for endpoints served outside litestar.  Call it inside the ``except`` block."""
    if isinstance(exc, TillError):
        status, body, extra = _till_answer(exc)
    elif isinstance(exc, HTTPException):
        status, body, extra = _http_answer(exc)
    else:
        status, body, extra = _internal_answer(exc)
    headers = [(b"content-type", b"application/problem+json"), (b"cache-control", b"no-store")]
    headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())
    return status, body, headers


EXCEPTION_HANDLERS: dict[Any, Any] = {
    TillError: till_error_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}
