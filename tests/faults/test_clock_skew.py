"""FT-10 at stack level: the gateway's clock runs behind auth's.

Tokens are signed by the real auth service's keys and verified by a gateway built in the test
process with an injected clock (no setting can skew a production gateway): 45 s behind is inside
the 60 s leeway and fresh tokens work; 120 s behind they are refused 401 with a log line that says
the clocks differ and by how much.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
import structlog

from tests.faults.harness import Clock, FaultStack, InProcessGateway, tools_call

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_ft10_gateway_clock_45s_behind_accepts_120s_behind_refuses_with_a_clear_log_line(
        make_stack: Callable[..., AbstractContextManager[FaultStack]]) -> None:
    with make_stack() as stack:
        stack.start_all("auth", "tools")
        clock = Clock(-45)
        port = int(stack.public_url.rsplit(":", 1)[1])
        with InProcessGateway(stack.environ("gateway"), port=port, clock=clock) as gw:
            rows = asyncio.run(stack.audit_count())
            r = tools_call(gw.url, stack.jwt()[0], "list_products", {"limit": 1})
            assert r.status_code == 200, r.text
            assert r.json()["result"]["isError"] is False

            clock.offset = -120
            with structlog.testing.capture_logs() as logs:
                refused = tools_call(gw.url, stack.jwt()[0], "list_products", {"limit": 1})
            assert refused.status_code == 401, refused.text
            challenge = refused.headers["www-authenticate"]
            assert 'error="invalid_token"' in challenge
            assert "resource_metadata=" in challenge
            assert "check the clocks" in refused.json()["error_description"]
            lines = [e for e in logs if e["event"] == "token refused"]
            assert len(lines) == 1, logs
            assert lines[0]["reason"] == "token not yet valid (check the clocks)"
            ahead = int(lines[0]["debug"].split(" s ahead")[0].removeprefix("issued "))
            assert 118 <= ahead <= 125, lines[0]["debug"]
            assert asyncio.run(stack.audit_count()) == rows + 1         # the refused call never reached the store
        stack.audit_verify()
