"""DirectApp answers its raw MCP endpoints before litestar's router (D801): the same answers,
request ids, metrics and error bodies as the same endpoint mounted in litestar."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar.handlers import asgi
from litestar.testing import TestClient
from litestar.types import Receive, Scope, Send
from prometheus_client import generate_latest

from till_common.errors import RateLimited
from till_common.integrations.direct import DirectApp
from till_common.integrations.litestar import EXCEPTION_HANDLERS, Metrics, observability_middleware, observed
from till_gateway.transports.common import respond

SEEN: list[str] = []


async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    SEEN.append(scope["path"])
    query = scope.get("query_string", b"")
    if query == b"limit":
        raise RateLimited("slow down", retry_after=7)
    if query == b"boom":
        raise RuntimeError("secret internals")
    if query == b"late":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("after the start")
    await respond(send, 201, b'{"ok":true}', [(b"content-type", b"application/json")])


def build() -> tuple[DirectApp, Metrics]:
    metrics = Metrics("unit")
    app = DirectApp(direct={"/raw": observed(metrics, "/raw", endpoint)},
                     route_handlers=[asgi("/raw", copy_scope=False, name="raw")(endpoint)],
                     middleware=[observability_middleware(metrics)], exception_handlers=EXCEPTION_HANDLERS,
                     openapi_config=None, debug=False, logging_config=None)
    return app, metrics


def comparable(r: Any) -> tuple[int, Any, dict[str, str]]:
    body = r.json() if r.content else None
    if isinstance(body, dict):
        body.pop("request_id", None)
    keep = ("content-type", "cache-control", "retry-after")
    return r.status_code, body, {k: r.headers[k] for k in keep if k in r.headers}


@pytest.mark.parametrize("query", ["", "limit", "boom"])
def test_the_direct_path_answers_as_litestar_does(query: str) -> None:
    app, metrics = build()
    SEEN.clear()
    with TestClient(app, raise_server_exceptions=False) as client:
        direct = client.post(f"/raw?{query}", headers={"x-request-id": "direct-id-0001"})
        routed = client.post(f"/raw/?{query}", headers={"x-request-id": "routed-id-0001"})
    assert SEEN == ["/raw", "/raw"]                    # litestar normalised /raw/ to the same endpoint
    assert comparable(direct) == comparable(routed)
    assert direct.headers["x-request-id"] == "direct-id-0001"
    assert routed.headers["x-request-id"] == "routed-id-0001"
    if query:
        assert msgspec.json.decode(direct.content)["request_id"] == "direct-id-0001"
        assert "secret internals" not in direct.text
    status = str(direct.status_code)
    text = generate_latest(metrics.registry).decode()
    assert f'till_http_requests_total{{route="/raw",service="unit",status="{status}"}} 2.0' in text


def test_an_exception_after_the_response_started_propagates_on_both_paths() -> None:
    app, _ = build()
    with TestClient(app) as client:
        for path in ("/raw?late", "/raw/?late"):
            with pytest.raises(Exception, match=r"after the start|after response started"):
                client.post(path)


def test_an_invalid_host_is_left_to_litestar() -> None:
    app, _ = build()
    SEEN.clear()
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/raw", headers={"host": "bad host\\name"})
    assert r.status_code == 400
    assert SEEN == []
