"""The shared ASGI middleware: request ids and per-route metrics (labels are templates, never ids)."""

from __future__ import annotations

from litestar import Litestar, get
from litestar.testing import TestClient
from prometheus_client import generate_latest

from till_common.integrations.litestar import Metrics, observability_middleware


def test_requests_are_counted_per_route_template_and_status() -> None:
    @get(["/items/{item_id:int}", "/items"], sync_to_thread=False)
    def item() -> dict[str, int]:
        return {"id": 1}

    metrics = Metrics("unit")
    app = Litestar([item], middleware=[observability_middleware(metrics)], openapi_config=None)
    with TestClient(app) as client:
        for n in (1, 2, 3):
            r = client.get(f"/items/{n}")
            assert r.status_code == 200
            assert r.headers["x-request-id"]
    text = generate_latest(metrics.registry).decode()
    assert 'till_http_requests_total{route="/items",service="unit",status="200"} 3.0' in text
    assert 'till_http_request_seconds_count{route="/items",service="unit"} 3.0' in text
    assert "/items/1" not in text
    assert "item_id" not in text     # the first of the handler's sorted paths names it
