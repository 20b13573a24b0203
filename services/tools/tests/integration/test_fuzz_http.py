"""Fuzzing a running tools service over real HTTP (GW-09, TL-02, TL-05, TL-08): the gateway forwards
a client's ``params`` to tools as the client's bytes, so random tool names, arguments and methods
reach this API.  Every answer is a JSON-RPC result or error, never a 5xx and never -32603 (an
internal error) for bad input, and the service still works afterwards."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import fuzz_settings
from till_common.permissions import ROLE_PERMISSIONS

pytestmark = pytest.mark.fuzz

TOKEN = "internal-" + "i" * 40


@pytest.fixture
def tools(spawn: Callable[..., Any], sqlite_store_url: str) -> Iterator[tuple[httpx.Client, list[dict[str, Any]]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILL_") or k.startswith("TILL_TEST_")}
    env.update(TILL_INTERNAL_TOKEN=TOKEN, TILL_TOOLS_DATABASE_URL=sqlite_store_url)
    svc = spawn("tools", env)
    client = httpx.Client(base_url=svc.url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"})
    catalogue = client.get("/internal/v1/catalogue").json()["tools"]
    yield client, catalogue
    again = client.post("/internal/v1/rpc", json={"principal": principal(), "method": "tools/list", "params": {}})
    assert again.status_code == 200
    assert again.json()["result"]["tools"]                  # still serving after the fuzzing
    client.close()


def principal(role: str = "owner") -> dict[str, Any]:
    return {"user_id": 1, "store_id": 1, "role": role, "scopes": sorted(ROLE_PERMISSIONS[role]),
            "client_id": None, "token_id": "pat-fuzz", "request_id": "fuzz"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["29.99", "-5", "1e309", "NaN", "٣", "29,99", "x' OR '1'='1", "%", "_", "\u0000"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)


def check(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    body: dict[str, Any] = r.json()
    if r.status_code == 200:
        assert ("result" in body) != ("error" in body), body
        if "error" in body:
            assert body["error"]["code"] != -32603, body          # bad input is never an internal error
    return body


#: argument names the tools use, plus junk; each tool gets some of its own and some it must refuse
ARGUMENT_NAMES = ["id", "name", "sku", "price", "query", "sort", "limit", "cursor", "status", "code", "percent_off",
                  "quantity", "email", "product_id", "order_id", "customer_id", "store_id", "storeId", "role",
                  "__proto__", "description", "stock", "variants", "days", "title", "slug"]


methods = st.sampled_from(["tools/list", "tools/call", "resources/list", "resources/read", "resources/templates/list",
                           "prompts/list", "prompts/get", "completion/complete"]) | st.text(max_size=12)
any_params = st.dictionaries(st.sampled_from(["name", "uri", "arguments", "cursor", "_meta"]), json_values,
                             max_size=3) | json_values
tool_calls = st.tuples(st.just("call"), st.integers(min_value=0, max_value=10_000),
                       st.dictionaries(st.sampled_from(ARGUMENT_NAMES) | st.text(max_size=8), json_values, max_size=4)
                       | json_values, st.sampled_from(["owner", "analyst", "support"]))
other_calls = st.tuples(st.just("method"), methods, any_params, st.just("owner"))


# one test (one tools process) for tool calls and other methods: the start costs more than the fuzzing
@fuzz_settings(180)
@given(tool_calls | other_calls)
def test_random_tool_calls_and_methods_never_5xx_nor_internal_error(tools, example: tuple[str, Any, Any, str]) -> None:
    client, catalogue = tools
    kind, first, second, role = example
    if kind == "call":
        tool = catalogue[first % len(catalogue)]
        payload = {"principal": principal(role), "method": "tools/call",
                   "params": {"name": tool["name"], "arguments": second}}
    else:
        payload = {"principal": principal(role), "method": first, "params": second}
    check(client.post("/internal/v1/rpc", json=payload))
