"""Section 5 (and the JWTs of sections 1 and 4): the OAuth flow a client walks, timed end to end.

register (RFC 7591) → authorize with login and consent (the scripted browser of the interop
harness, which only knows what SPEC §5 fixes about the forms) → token (authorization_code with
PKCE S256 and ``resource``).  Each flow uses its own client and its own cookie jar, so every
flow logs in (one argon2id verification) as a first-time user would.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from tests.interop.oauth_forms import ScriptedBrowser

REDIRECT = "http://127.0.0.1:9/callback"    # never contacted: the browser stops at the redirect


@dataclass(frozen=True)
class FlowResult:
    access_token: str
    seconds: float
    steps: dict[str, float]   # register / authorize / token, seconds


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def flow(base_url: str, email: str, password: str) -> FlowResult:
    """One full flow against ``base_url`` (the public origin); returns the access token and timings."""
    async with httpx.AsyncClient(timeout=30, follow_redirects=False) as client:
        t0 = time.perf_counter()
        r = await client.post(base_url + "/mcp/oauth/register", json={
            "client_name": "till-bench", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]})
        r.raise_for_status()
        client_id = r.json()["client_id"]
        t1 = time.perf_counter()
        verifier, challenge = pkce()
        state = secrets.token_urlsafe(12)
        url = base_url + "/mcp/oauth/authorize?" + urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "state": state,
            "code_challenge": challenge, "code_challenge_method": "S256", "resource": base_url + "/mcp"})
        async with ScriptedBrowser(email, password, redirect_uri=REDIRECT, client=client) as browser:
            result = await browser.authorize(url)
        if result.state != state:
            raise RuntimeError("authorization answered another state")
        t2 = time.perf_counter()
        r = await client.post(base_url + "/mcp/oauth/token", data={
            "grant_type": "authorization_code", "code": result.code, "redirect_uri": REDIRECT,
            "client_id": client_id, "code_verifier": verifier, "resource": base_url + "/mcp"})
        r.raise_for_status()
        token: str = r.json()["access_token"]
        t3 = time.perf_counter()
        client.cookies.clear()
    return FlowResult(token, t3 - t0, {"register": t1 - t0, "authorize": t2 - t1, "token": t3 - t2})


async def flows(base_url: str, email: str, password: str, n: int) -> list[FlowResult]:
    """``n`` flows one after another (a login is argon2id: concurrency would only measure the CPU)."""
    return [await flow(base_url, email, password) for _ in range(n)]


def summary(results: list[FlowResult]) -> dict[str, float]:
    times = sorted(r.seconds for r in results)
    out = {"flows": float(len(results)), "p50_ms": statistics.median(times) * 1e3,
           "max_ms": times[-1] * 1e3}
    for step in ("register", "authorize", "token"):
        out[f"{step}_p50_ms"] = statistics.median(r.steps[step] for r in results) * 1e3
    return out


def baseline_latency(base_url: str, n: int = 20) -> float:
    """p50 ms of one GET of the AS metadata through the same front (nginx → gateway → auth): the
    cost of one proxied request, which the flow's ~8 requests plus one argon2id login build on."""
    times = []
    with httpx.Client(timeout=10) as client:
        client.get(base_url + "/.well-known/oauth-authorization-server").raise_for_status()
        for _ in range(n):
            t0 = time.perf_counter()
            client.get(base_url + "/.well-known/oauth-authorization-server").raise_for_status()
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3
