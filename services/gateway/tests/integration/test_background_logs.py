"""A gateway started before auth (``till dev``) logs the revocation feed's outage once, not every second."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from gw_upstream import Upstream, gateway_env
from tests.support import Service, free_port

FEED_DOWN = "revocation feed unavailable"


def lines(gw: Service, event: str) -> list[dict[str, Any]]:
    found = []
    for raw in gw.output().splitlines():
        if raw.startswith("{"):
            entry = json.loads(raw)
            if entry.get("event") == event:
                found.append(entry)
    return found


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_feed_outage_at_start_is_one_warning_then_debug_until_one_recovery_line(
        spawn: Callable[..., Service], upstream: Upstream) -> None:
    auth_port = free_port()                      # nothing listens here yet: auth is "still starting"
    public = f"http://127.0.0.1:{free_port()}"
    env = gateway_env(upstream, public, TILL_AUTH_URL=f"http://127.0.0.1:{auth_port}", TILL_LOG_LEVEL="debug")
    gw = spawn("gateway", env)
    # the feed is retried every second while unread: let it fail several times
    wait_until(lambda: len(lines(gw, FEED_DOWN)) >= 4, f"the feed was not retried:\n{gw.output()}")
    down = lines(gw, FEED_DOWN)
    assert [e["level"] for e in down].count("warning") == 1, down
    assert all(e["level"] == "debug" for e in down[1:]), down
    ready = httpx.get(gw.url + "/readyz", timeout=5)
    assert ready.status_code == 503, ready.text       # still not ready meanwhile
    assert ready.json()["checks"]["revocations"].startswith("failed"), ready.text

    auth = Upstream().start(port=auth_port)            # auth is up
    try:
        wait_until(lambda: httpx.get(gw.url + "/readyz", timeout=5).status_code == 200,
                   f"not ready after auth came up:\n{gw.output()}")
        wait_until(lambda: bool(lines(gw, "revocation feed recovered")), "no recovery line")
        time.sleep(1.5)                                # a further poll (10 s) would log nothing anyway
        recovered = lines(gw, "revocation feed recovered")
        assert len(recovered) == 1, recovered
        assert recovered[0]["level"] == "info"
        assert recovered[0]["failures"] >= 4
        assert [e["level"] for e in lines(gw, FEED_DOWN)].count("warning") == 1
    finally:
        auth.stop()
