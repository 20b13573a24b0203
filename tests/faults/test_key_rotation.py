"""FT-11 (issue #4): ``till keys rotate`` under load; then a token signed by the retired key.

Real auth, tools and gateway processes.  A load loop (32 concurrent clients, as many requests per
second as this machine allows; the row's target is 500) calls ``tools/call`` through the gateway
with tokens signed by the old key, runs ``till keys rotate`` in the middle, and goes on with old and
new tokens once the new key signs.  Settings shortened for the test (production in brackets):
``TILL_KEY_ACTIVATION_DELAY`` 10 s (600), ``TILL_JWKS_REFRESH_INTERVAL`` 2 s (300) — the same
order: the gateway refreshes its JWKS well within the activation delay.

Retirement happens ``activation + TTL + 60 s`` after the rotation; instead of waiting that long the
test moves the old key's ``retires_at`` to now in auth's database, which is the state the clock
would bring, and then checks that the gateway forgets the key: a token signed by it is 401.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager

import aiohttp
import asyncpg
import httpx
import pytest

from deploy.cluster.runner import request_count
from tests.faults.harness import FaultStack, dsn, tools_call

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CONCURRENCY = 32
PHASE_SECONDS = 3.0
BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "list_products", "arguments": {"limit": 1}}}).encode()


async def load(url: str, tokens: list[str], stop: Callable[[], bool]) -> Counter[str]:
    """``CONCURRENCY`` clients calling until ``stop()``; outcome per call: HTTP status, or
    ``rpc-error`` for a 200 that is not a successful tool result."""
    outcomes: Counter[str] = Counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as http:
        async def client(i: int) -> None:
            n = i
            while not stop():
                headers = {"Authorization": f"Bearer {tokens[n % len(tokens)]}",
                           "Content-Type": "application/json", "MCP-Protocol-Version": "2025-06-18"}
                n += CONCURRENCY
                async with http.post(url + "/mcp", data=BODY, headers=headers) as r:
                    payload = await r.read()
                    ok = r.status == 200 and b'"isError":false' in payload
                    outcomes["ok" if ok else ("rpc-error" if r.status == 200 else str(r.status))] += 1

        await asyncio.gather(*(client(i) for i in range(CONCURRENCY)))
    return outcomes


def with_kid(token: str, kid: str) -> str:
    """The token with another ``kid`` in its header (the signature no longer matters: the key
    lookup comes first)."""
    header, payload, signature = token.split(".")
    fields = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    fields["kid"] = kid
    return ".".join((base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode(), payload,
                     signature))


def until(seconds: float) -> Callable[[], bool]:
    end = time.monotonic() + seconds
    return lambda: time.monotonic() >= end


def jwks_kids(url: str) -> set[str]:
    return {k["kid"] for k in httpx.get(url + "/.well-known/jwks.json", timeout=10).json()["keys"]}


async def signing_keys(stack: FaultStack) -> dict[str, tuple[int, int | None]]:
    conn = await asyncpg.connect(dsn(stack.auth_database_url))
    try:
        return {r["kid"]: (r["activates_at"], r["retires_at"])
                for r in await conn.fetch("SELECT kid, activates_at, retires_at FROM signing_keys")}
    finally:
        await conn.close()


async def retire_now(stack: FaultStack, kid: str) -> None:
    conn = await asyncpg.connect(dsn(stack.auth_database_url))
    try:
        await conn.execute("UPDATE signing_keys SET retires_at = $1 WHERE kid = $2", int(time.time()), kid)
    finally:
        await conn.close()


async def rotate_under_load(stack: FaultStack, url: str,
                            old: list[str]) -> tuple[Counter[str], dict[str, float], str]:
    """Load with old tokens; ``till keys rotate`` meanwhile; stop once the new key signs."""
    seen: dict[str, float] = {}
    done = False
    traffic = asyncio.create_task(load(url, old, lambda: done))
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "till_cli.main", "keys", "rotate",
                                                env=stack.environ("auth"), cwd=stack.workdir,
                                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out
    assert b"published in JWKS" in out
    new_kid = out.split(b"new key ")[1].split(b" ")[0].decode()
    activates = (await signing_keys(stack))[new_kid][0]
    seen["rotated"] = time.monotonic() - started
    async with httpx.AsyncClient(timeout=10) as http:
        while time.time() < activates + 0.5:
            if "published" not in seen:
                kids = {k["kid"] for k in (await http.get(url + "/.well-known/jwks.json")).json()["keys"]}
                if new_kid in kids:
                    seen["published"] = time.monotonic() - started
            await asyncio.sleep(0.2)
    seen["activated"] = time.monotonic() - started
    done = True
    return await traffic, seen, new_kid


def test_ft11_keys_rotate_under_load_no_401_or_5xx_then_the_retired_key_is_refused(
        make_stack: Callable[..., AbstractContextManager[FaultStack]]) -> None:
    with make_stack(TILL_KEY_ACTIVATION_DELAY="10", TILL_JWKS_REFRESH_INTERVAL="2") as stack:
        # the old key signs these before the services start, so every process sees one key ring
        minted = stack.jwts(200)
        auth, _, gw = stack.start_all("auth", "tools", "gateway")
        old_kid = minted[0][1]
        old = [t for t, _ in minted]
        rows = asyncio.run(stack.audit_count())

        started = time.monotonic()
        before = asyncio.run(load(gw.url, old, until(PHASE_SECONDS)))
        rate = sum(before.values()) / (time.monotonic() - started)
        during, seen, new_kid = asyncio.run(rotate_under_load(stack, gw.url, old))
        assert new_kid != old_kid
        # published before first use: in JWKS (through the gateway's origin) before it signs
        assert "published" in seen, seen
        assert seen["published"] < seen["activated"] - 0.5, seen

        fresh = stack.jwts(200)
        assert {kid for _, kid in fresh} == {new_kid}          # auth now signs with the new key
        mixed = [t for pair in zip(old, (t for t, _ in fresh), strict=True) for t in pair]
        after = asyncio.run(load(gw.url, mixed, until(PHASE_SECONDS)))
        total = before + during + after
        assert set(total) == {"ok"}, (before, during, after)    # zero 401, zero 5xx, zero errors
        assert total["ok"] > 0
        assert asyncio.run(stack.audit_count()) == rows + total["ok"]     # one audit row per call

        # the old key stays published until its last token has expired: activation + TTL + leeway
        keys = asyncio.run(signing_keys(stack))
        assert keys[old_kid][1] == keys[new_kid][0] + 3600 + 60
        assert {old_kid, new_kid} <= jwks_kids(gw.url)

        # an unknown kid cannot make the gateway hammer auth: refetches are rate limited
        bogus = [with_kid(t, f"unknown-{i}") for i, (t, _) in enumerate(stack.jwts(20))]
        fetches, burst = request_count(auth.url, "/.well-known/jwks.json"), time.monotonic()
        for token in bogus:
            assert tools_call(gw.url, token, "list_products", {"limit": 1}).status_code == 401
        extra = request_count(auth.url, "/.well-known/jwks.json") - fetches
        assert extra <= 2 + (time.monotonic() - burst) / 2, extra       # ≤ 1 kid refetch + periodic refreshes

        # retirement (time-travelled): gone from JWKS, then the gateway refuses what that key signs
        asyncio.run(retire_now(stack, old_kid))
        deadline = time.monotonic() + 15
        while old_kid in jwks_kids(auth.url):
            assert time.monotonic() < deadline, "auth kept publishing the retired key"
            time.sleep(0.3)
        retired_token = stack.jwts(1, kid=old_kid)[0][0]
        while (r := tools_call(gw.url, retired_token, "list_products", {"limit": 1})).status_code != 401:
            assert r.status_code == 200
            assert time.monotonic() < deadline + 5, "the gateway still trusts the retired key"
            retired_token = stack.jwts(1, kid=old_kid)[0][0]      # a new one each time: not a cached credential
            time.sleep(0.5)
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        assert tools_call(gw.url, fresh[0][0], "list_products", {"limit": 1}).status_code == 200
        stack.audit_verify()
        print(f"FT-11: {rate:.0f} calls/s before rotation, {CONCURRENCY} clients; totals {dict(total)}; "
              f"rotation timeline (s) {seen}")
