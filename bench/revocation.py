"""Section 4: from the admin API call until every gateway replica refuses the token.

For each token (JWTs from section 5's flows, revoked by ``jti``; personal tokens by id): both
replicas first accept it (so each has it verified and cached — the hard case), then the clock
starts, ``POST /admin/v1/revocations {"token_id"}`` goes to auth and, at the same moment, one
poller per replica sends ``ping`` with the token in a closed loop until it gets 401.  The figure
is the slower replica's time.  Baseline, same run: the admin call's own latency.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass

import jwt
import uvloop

from bench.report import Report, Row
from bench.sse import Poster, _split, ping, post_request

PING_HEADERS = "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\n"
DEADLINE = 20.0


@dataclass(frozen=True)
class Revocable:
    token: str
    token_id: str
    kind: str        # "jwt" | "pat"


def jti(token: str) -> str:
    value: str = jwt.decode(token, options={"verify_signature": False})["jti"]
    return value


async def _connect(url: str) -> Poster:
    host, port = _split(url)
    _, proto = await asyncio.get_running_loop().create_connection(Poster, host, port)
    return proto


async def _one(auth: Poster, auth_url: str, admin_token: str, replicas: list[tuple[str, Poster]],
               item: Revocable) -> tuple[float, float, list[float]]:
    for url, conn in replicas:
        status, body = await asyncio.wait_for(conn.send(post_request(url, "/mcp", item.token, ping(1), PING_HEADERS)),
                                              10)
        if status != 200:
            raise RuntimeError(f"{url} refused a fresh {item.kind} before revocation: {status} {body[:200]!r}")
    t0 = time.perf_counter()

    async def poll(url: str, conn: Poster) -> float:
        req = post_request(url, "/mcp", item.token, ping(2), PING_HEADERS)
        while time.perf_counter() - t0 < DEADLINE:
            status, _ = await asyncio.wait_for(conn.send(req), 10)
            if status == 401:
                return time.perf_counter() - t0
        return float("nan")

    async def admin() -> float:
        body = json.dumps({"token_id": item.token_id}).encode()
        status, raw = await asyncio.wait_for(auth.send(post_request(auth_url, "/admin/v1/revocations", admin_token,
                                                                    body)), 10)
        if status != 200 or json.loads(raw).get("revoked") != 1:
            raise RuntimeError(f"admin revocation answered {status}: {raw[:200]!r}")
        return time.perf_counter() - t0

    admin_s, *refused = await asyncio.gather(admin(), *(poll(u, c) for u, c in replicas))
    return max(refused), admin_s, refused


def run(auth_url: str, admin_token: str, gateway_urls: list[str], items: list[Revocable], report: Report) -> None:
    async def main() -> list[tuple[float, float, list[float]]]:
        auth = await _connect(auth_url)
        replicas = [(u, await _connect(u)) for u in gateway_urls]
        out = [await _one(auth, auth_url, admin_token, replicas, it) for it in items]
        auth.close()
        for _, c in replicas:
            c.close()
        return out

    kinds = {k: sum(1 for i in items if i.kind == k) for k in ("jwt", "pat")}
    print(f"section 4: {len(items)} revocations ({kinds['jwt']} JWT by jti, {kinds['pat']} PAT by id), "
          f"{len(gateway_urls)} replicas", flush=True)
    res = uvloop.run(main())
    every = sorted(r[0] * 1e3 for r in res)
    admin = sorted(r[1] * 1e3 for r in res)
    n = len(every)
    p50, p99 = statistics.median(every), every[min(n - 1, int(0.99 * n))]
    admin_p50 = statistics.median(admin)
    missed = sum(1 for v in every if v != v)
    report.add(Row("4", f"revocation → every replica refuses, p50 (n={n})", p50, "ms",
                   baseline=f"admin call itself ({admin_p50:.2f} ms)", ratio=p50 / admin_p50, target="< 1 s",
                   met=p50 < 1000, detail={"every_ms": every, "admin_ms": admin, "kinds": kinds}))
    report.add(Row("4", "revocation → every replica refuses, p99", p99, "ms", target="< 1 s",
                   met=p99 < 1000 and missed == 0,
                   note=f"max {every[-1]:.2f} ms; not refused within {DEADLINE:.0f} s: {missed}"))
