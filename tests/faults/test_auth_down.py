"""FT-08: the auth service is down for five minutes while MCP calls go on.

Real auth and tools processes; auth is frozen (SIGSTOP: it accepts connections and never
answers) and then killed (SIGKILL: connections refused).  The gateway runs in the test process
with an injected clock, so "five minutes" and the 60 s personal-token cache are crossed by moving
that clock instead of waiting: nothing else in the gateway reads the wall clock for these
decisions.  Its upstream timeout is 2 s (instead of 30 s), so a frozen auth costs 2 s per call.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx
import pytest

from tests.faults.harness import Clock, FaultStack, InProcessGateway, tools_call

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def call(url: str, token: str) -> httpx.Response:
    return tools_call(url, token, "list_products", {"limit": 1}, timeout=15)


def assert_served(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json()["result"]["isError"] is False, response.text


def assert_unavailable(response: httpx.Response) -> None:
    """503 with Retry-After in JSON — never 200 on an unverified token, never 401 for a good one."""
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    assert response.json()["error"] == "temporarily_unavailable"
    assert "www-authenticate" not in response.headers


def test_ft08_auth_down_five_minutes_jwts_go_on_pats_cached_then_503_proxy_json(
        make_stack: Callable[..., AbstractContextManager[FaultStack]]) -> None:
    with make_stack(TILL_UPSTREAM_TIMEOUT="2") as stack:
        auth, _ = stack.start_all("auth", "tools")
        clock = Clock()
        port = int(stack.public_url.rsplit(":", 1)[1])
        with InProcessGateway(stack.environ("gateway"), port=port, clock=clock) as gw:
            jwt, _ = stack.jwt()
            pat, _ = stack.pat()
            rows = asyncio.run(stack.audit_count())
            served = 0
            for token in (jwt, pat):         # JWKS fetched, the PAT's introspection cached
                assert_served(call(gw.url, token))
                served += 1
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                auth.proc.send_signal(sig)
                if sig == signal.SIGKILL:
                    auth.proc.wait(10)
                clock.offset += 30           # inside the PAT's 60 s cache
                assert_served(call(gw.url, pat))
                assert_served(call(gw.url, jwt))
                fresh, _ = stack.jwt()       # signed now, by auth's key: verified on the cached JWKS
                assert_served(call(gw.url, fresh))
                served += 3
                for minutes in (1, 5):        # the cache has run out, and auth stays down 5 minutes
                    clock.offset += 60 * minutes
                    started = time.monotonic()
                    assert_unavailable(call(gw.url, pat))
                    assert time.monotonic() - started < 10          # bounded by the upstream timeout
                    assert_served(call(gw.url, jwt))
                    assert_served(call(gw.url, stack.jwt()[0]))
                    served += 2
                for method, path in (("GET", "/.well-known/oauth-authorization-server"),
                                     ("POST", "/mcp/oauth/token"), ("GET", "/login")):
                    r = httpx.request(method, gw.url + path, timeout=15,
                                      data={"grant_type": "refresh_token"} if method == "POST" else None)
                    assert r.status_code in (502, 503), (path, r.status_code, r.text)
                    assert r.headers["content-type"] == "application/json"
                    assert r.json()["error"] == "temporarily_unavailable"
                # back up: the same personal token is served again, nothing was revoked by the outage
                if sig == signal.SIGSTOP:
                    auth.proc.send_signal(signal.SIGCONT)
                else:
                    auth = stack.start("auth")
                deadline = time.monotonic() + 20
                while (r := call(gw.url, pat)).status_code == 503 and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert_served(r)
                served += 1
                assert httpx.get(gw.url + "/.well-known/oauth-authorization-server", timeout=15).status_code == 200
            # every served call left its audit row; the refused ones reached no store
            assert asyncio.run(stack.audit_count()) == rows + served
        stack.audit_verify()
