"""``DirectApp`` (D865): exact paths answered before litestar's router, everything else through it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar import get
from litestar.testing import TestClient

from till_common.integrations.direct import DirectApp, valid_host

HOSTS = [b"example.com", b"127.0.0.1:8000", b"[::1]:443", b"shop.example.com.", b"user@host", b"x%41",
         b"", b"bad host", b"evil\r\nx", b"a/b", b"a?b", b"a#b", b"\xff", b'"quoted"', b"tab\t"]


def litestar_accepts(host: bytes) -> bool:
    try:
        from litestar._asgi.utils import is_valid_host
    except ImportError:   # pragma: no cover - a litestar without it: nothing to compare with
        pytest.skip("litestar no longer has _asgi.utils.is_valid_host")
    return is_valid_host(host)


def scope_with(host: bytes) -> dict[str, Any]:
    return {"headers": [(b"accept", b"*/*"), (b"host", host)]}


@pytest.mark.parametrize("host", HOSTS)
def test_the_host_check_is_litestars(host: bytes) -> None:
    assert valid_host(scope_with(host)) is litestar_accepts(host)


@given(st.binary(max_size=40))
def test_the_host_check_agrees_with_litestar_on_any_bytes(host: bytes) -> None:
    assert valid_host(scope_with(host)) is litestar_accepts(host)


def test_no_host_header_is_accepted() -> None:
    assert valid_host({"headers": []})


def build(seen: list[str]) -> DirectApp:
    async def raw(scope: Any, receive: Any, send: Any) -> None:
        seen.append("direct" if "route_handler" not in scope else "litestar")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"raw"})

    async def falls_back(scope: Any, receive: Any, send: Any) -> None:
        seen.append("fallback")
        await app.routed(scope, receive, send)

    @get("/raw", sync_to_thread=False)
    def routed_raw() -> str:
        seen.append("route")
        return "routed"

    @get("/back", sync_to_thread=False)
    def routed_back() -> str:
        seen.append("route")
        return "routed"

    app = DirectApp(direct={"/raw": raw, "/back": falls_back}, route_handlers=[routed_raw, routed_back],
                    openapi_config=None, logging_config=None)
    return app


def test_an_exact_path_skips_the_router() -> None:
    seen: list[str] = []
    with TestClient(build(seen)) as client:
        assert client.get("/raw").text == "raw"
        assert client.get("/raw/").text == "routed"       # not exact: litestar's route
    assert seen == ["direct", "route"]


def test_a_bad_host_gets_litestars_answer() -> None:
    seen: list[str] = []
    with TestClient(build(seen)) as client:
        r = client.get("/raw", headers={"host": "bad host"})
    assert r.status_code == 400
    assert seen == []


def test_a_root_path_goes_through_litestar() -> None:
    seen: list[str] = []
    with TestClient(build(seen), root_path="/prefix") as client:
        assert client.get("/prefix/raw").text == "routed"
    assert seen == ["route"]


def test_an_endpoint_can_fall_back_to_litestar() -> None:
    seen: list[str] = []
    with TestClient(build(seen)) as client:
        assert client.get("/back").text == "routed"
    assert seen == ["fallback", "route"]
