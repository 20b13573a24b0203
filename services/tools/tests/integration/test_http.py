"""The internal HTTP API over real HTTP: a real till-tools process on a free loopback port (TL-03)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from till_common.permissions import ROLE_PERMISSIONS

TOKEN = "internal-" + "i" * 40


@pytest.fixture
def tools_url(spawn: Callable[..., Any], sqlite_store_url: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILL_") or k.startswith("TILL_TEST_")}
    env.update(TILL_INTERNAL_TOKEN=TOKEN, TILL_TOOLS_DATABASE_URL=sqlite_store_url)
    svc = spawn("tools", env)
    url: str = svc.url
    return url


def principal(role: str = "owner", store_id: int = 1, user_id: int = 1) -> dict[str, Any]:
    return {"user_id": user_id, "store_id": store_id, "role": role, "scopes": sorted(ROLE_PERMISSIONS[role]),
            "client_id": None, "token_id": "pat-1", "request_id": "http-req-1"}


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


REFUSED: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer till_pat_" + "x" * 43},                       # a merchant's token (P)
    {"Authorization": "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.sig"},    # a client's JWT (T)
    {"Authorization": "Bearer admin-" + "a" * 40},                          # the admin token
    {"Authorization": "Bearer internal-" + "j" * 40},                       # wrong internal token, same length
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": TOKEN},
    {"Authorization": f"Bearer {TOKEN}x"},                                  # the token as a prefix
    {"Authorization": f"Bearer {TOKEN[:-1]}"},                              # one character short
]


def test_tl03_internal_routes_refuse_anything_but_the_internal_token(tools_url: str) -> None:
    body = {"principal": principal(), "method": "tools/list", "params": {}}
    with httpx.Client(base_url=tools_url, timeout=10) as client:
        for headers in REFUSED:
            for method, path, kwargs in (("POST", "/internal/v1/rpc", {"json": body}),
                                         ("GET", "/internal/v1/catalogue", {}),
                                         ("GET", "/internal/v1/audit?store_id=1", {})):
                r = client.request(method, path, headers=headers, **kwargs)
                assert r.status_code == 401, (headers, path, r.text)
                assert r.headers["content-type"].startswith("application/problem+json")
                assert r.json()["status"] == 401


def test_rpc_catalogue_and_audit_over_http(tools_url: str) -> None:
    with httpx.Client(base_url=tools_url, headers=auth(), timeout=10) as client:
        listed = client.post("/internal/v1/rpc", json={"principal": principal("analyst", user_id=3),
                                                      "method": "tools/list", "params": {}})
        assert listed.status_code == 200
        names = {t["name"] for t in listed.json()["result"]["tools"]}
        assert "get_top_products" in names
        assert "update_product" not in names

        r = client.post("/internal/v1/rpc", json={"principal": principal(), "method": "tools/call",
                                                  "params": {"name": "update_product",
                                                             "arguments": {"name": "Classic T-Shirt",
                                                                           "price": "29.99"}}})
        result = r.json()["result"]
        assert result["isError"] is False
        assert {v["price"]["amount"] for v in result["structuredContent"]["variants"]} == {"29.99"}

        bad = client.post("/internal/v1/rpc", json={"principal": principal(), "method": "tools/call",
                                                    "params": {"name": "update_product",
                                                               "arguments": {"name": "Classic T-Shirt",
                                                                             "price": 29.99}}})
        assert bad.status_code == 200
        assert bad.json() == {"error": {"code": -32602, "message": bad.json()["error"]["message"],
                                        "data": {"path": "$.price", "input": True}}}

        unknown = client.post("/internal/v1/rpc", json={"principal": principal(), "method": "sampling/create",
                                                        "params": {}})
        assert unknown.json()["error"]["code"] == -32601

        garbage = client.post("/internal/v1/rpc", content=b'{"principal": 1}')
        assert garbage.status_code == 400
        assert garbage.headers["content-type"].startswith("application/problem+json")

        cat = client.get("/internal/v1/catalogue").json()
        assert set(cat) == {"tools", "resources", "resourceTemplates", "prompts"}
        assert len(cat["tools"]) == 55
        for tool in cat["tools"]:
            assert set(tool) == {"name", "title", "description", "inputSchema", "outputSchema", "annotations",
                                 "_meta"}
            assert tool["inputSchema"]["type"] == "object"
            assert tool["outputSchema"]["type"] == "object"
            assert tool["annotations"]["openWorldHint"] is False

        page = client.get("/internal/v1/audit", params={"store_id": 1, "limit": 2}).json()
        assert [row["tool"] for row in page["items"]] == ["update_product", "update_product"]
        assert [row["outcome"] for row in page["items"]] == ["success", "refused"]
        assert page["items"][0]["request_id"] == "http-req-1"
        assert page["next"] is None
        assert client.get("/internal/v1/audit", params={"store_id": 1, "limit": 0}).status_code == 400
        assert client.get("/internal/v1/audit", params={"store_id": "x"}).status_code == 400
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
