"""Section 1: ``tools/call`` end to end through one gateway replica, against same-run baselines.

Rows (each a closed-loop wrk run, interleaved rounds, medians of per-round ratios):

* ``echo``       litestar + msgspec echo of the same body: the Python-web-app floor;
* ``till jwt``   gateway /mcp → tools ``get_product`` with an OAuth access token (JWT);
* ``till pat``   the same with a personal token (introspected once, then cached ≤ 60 s);
* ``mcp sdk``    the official SDK, stateless JSON, the same tool in-process;
* ``tools read`` / ``tools write``  tools' internal API alone (``get_product``; ``update_inventory``),
  both with their audit row, bearer TILL_INTERNAL_TOKEN.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.loadgen import LoadGen, Sample, Target, interleave
from bench.report import Report, Row, med, median_ratio

MCP_VERSION = "2025-06-18"


def mcp_call(request_id: int, name: str, arguments: dict[str, Any]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                       "params": {"name": name, "arguments": arguments}}, separators=(",", ":")).encode()


def mcp_headers(token: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": MCP_VERSION, "Authorization": f"Bearer {token}"}


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        conn.request("POST", parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def check(target: Target, ok: Callable[[Any], bool], wait: float = 30) -> Any:
    """One request to ``target`` (retried while the server starts); its JSON must satisfy ``ok``."""
    deadline = time.monotonic() + wait
    while True:
        try:
            status, raw = post(target.url, target.body, target.headers)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    doc = json.loads(raw) if raw else None
    if status != 200 or not ok(doc):
        raise RuntimeError(f"{target.name}: {target.url} answered {status}: {raw[:300]!r}")
    return doc


def tool_ok(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("result"), dict) and doc["result"].get("isError") is False


@dataclass(frozen=True)
class Section1Inputs:
    gateway_url: str
    tools_url: str
    echo_url: str
    sdk_url: str
    sdk_token: str
    jwt: str
    pat: str
    internal_token: str
    principal: dict[str, Any]
    product_id: int
    sku: str
    fastmcp_url: str | None = None       # None: fastmcp_missing says why there is no such row
    fastmcp_missing: str = ""


def targets(i: Section1Inputs) -> list[Target]:
    read = mcp_call(1, "get_product", {"id": i.product_id})
    internal = {"Content-Type": "application/json", "Authorization": f"Bearer {i.internal_token}"}

    def rpc(name: str, arguments: dict[str, Any]) -> bytes:
        return json.dumps({"principal": i.principal, "method": "tools/call",
                           "params": {"name": name, "arguments": arguments}}, separators=(",", ":")).encode()

    return [
        Target("echo", f"{i.echo_url}/echo", read, mcp_headers("x" * len(i.jwt))),
        Target("till jwt", f"{i.gateway_url}/mcp", read, mcp_headers(i.jwt)),
        Target("till pat", f"{i.gateway_url}/mcp", read, mcp_headers(i.pat)),
        Target("mcp sdk", f"{i.sdk_url}/mcp", mcp_call(1, "get_product", {"id": 1}),
               mcp_headers(i.sdk_token)),
        *([Target("fastmcp", f"{i.fastmcp_url}/mcp", mcp_call(1, "get_product", {"id": 1}),
                  mcp_headers(i.sdk_token))] if i.fastmcp_url else []),
        Target("tools read", f"{i.tools_url}/internal/v1/rpc", rpc("get_product", {"id": i.product_id}),
               internal),
        Target("tools write", f"{i.tools_url}/internal/v1/rpc", rpc("update_inventory", {"sku": i.sku, "set_to": 100}),
               internal),
    ]


def fastmcp_rows(samples: dict[str, list[Sample]], inputs: Section1Inputs, report: Report,
                 row: Callable[..., tuple[float, float]]) -> None:
    """The third baseline: fastmcp serving the SDK baseline's tool and data (bench/fastmcp_server.py)."""
    if "fastmcp" not in samples:
        report.add(Row("1", "e2e JWT vs fastmcp", 0.0, "x", note=f"not measured: {inputs.fastmcp_missing}"))
        return
    row("fastmcp", "fastmcp stateless JSON, same tool", note="baseline (c)")
    x = median_ratio(samples["till jwt"], samples["fastmcp"])
    report.add(Row("1", "e2e JWT vs fastmcp", x, "x", ratio=x,
                   baseline=f"fastmcp ({med([s.rps for s in samples['fastmcp']]):,.0f}/s)"))


def verify(ts: list[Target]) -> None:
    for t in ts:
        if t.name == "echo":
            check(t, lambda d: isinstance(d, dict) and d.get("method") == "tools/call")
        elif t.name.startswith("tools "):
            check(t, lambda d: isinstance(d, dict) and isinstance(d.get("result"), dict)
                  and d["result"].get("isError") is False)
        else:
            check(t, tool_ok)


def run(gen: LoadGen, inputs: Section1Inputs, watch: dict[str, int], report: Report, *, rounds: int,
        duration: float, ceiling_url: str | None) -> dict[str, list[Sample]]:
    ts = targets(inputs)
    verify(ts)
    if ceiling_url is not None:
        c = gen.run(Target("nginx static", ceiling_url + "/", b""), duration)
        report.add(Row("0", "load generator ceiling (nginx static 200)", c.rps, "/s",
                       note=f"wrk used {c.loadgen_cpu:.2f} cores; every row below is far under this ceiling"
                       if c.loadgen_cpu < 1.5 else f"loadgen used {c.loadgen_cpu:.2f} cores",
                       detail={"sample": c.as_dict()}))
    print(f"section 1: {rounds} rounds x {duration:g} s per row, interleaved", flush=True)
    samples = interleave(gen, ts, rounds, duration, watch)
    base = samples["echo"]
    echo_rps = med([s.rps for s in base])

    def row(name: str, label: str, target: str = "", goal: Callable[[float, float], bool] | None = None,
            baseline: str = "echo", note: str = "") -> tuple[float, float]:
        ss = samples[name]
        rps = med([s.rps for s in ss])
        ratio = median_ratio(ss, samples[baseline])
        cpu = {k: round(med([s.server_cpu.get(k, 0.0) for s in ss]), 2) for k in watch}
        busy = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if v >= 0.05)
        report.add(Row("1", label, rps, "/s", baseline=f"{baseline} ({med([s.rps for s in samples[baseline]]):,.0f}/s)",
                       ratio=ratio, target=target, met=None if goal is None else goal(rps, ratio),
                       note=(note + "; " if note else "") + f"p50 {med([s.p50_ms for s in ss]):.2f} ms, "
                       f"p99 {med([s.p99_ms for s in ss]):.2f} ms, errors {sum(s.errors for s in ss)}; "
                       f"cores: loadgen {med([s.loadgen_cpu for s in ss]):.2f}, {busy}",
                       detail={"samples": [s.as_dict() for s in ss]}))
        return rps, ratio

    row("echo", "echo (litestar+msgspec, baseline)", note="the same request body, echoed")
    row("till jwt", "tools/call e2e, JWT (gateway→tools)", "≥ 0.40x echo", lambda r, x: x >= 0.40)
    row("till pat", "tools/call e2e, PAT (gateway→tools)", "≥ 0.40x echo", lambda r, x: x >= 0.40)
    row("mcp sdk", "MCP SDK 2.3 stateless JSON, same tool", note="baseline (b): Till should be ≥ 3x this")
    sdk = samples["mcp sdk"]
    for name in ("till jwt", "till pat"):
        x = median_ratio(samples[name], sdk)
        report.add(Row("1", f"tools/call e2e {name.split()[1].upper()} vs MCP SDK", x, "x",
                       baseline=f"mcp sdk ({med([s.rps for s in sdk]):,.0f}/s)", ratio=x,
                       target="≥ 3x", met=x >= 3.0))
    fastmcp_rows(samples, inputs, report, row)
    row("tools read", "tools internal API, read + audit row", "≥ 1,500/s", lambda r, x: r >= 1500)
    row("tools write", "tools internal API, write + audit row", "≥ 500/s", lambda r, x: r >= 500)
    report.meta["echo_rps"] = echo_rps
    return samples
