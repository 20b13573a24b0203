"""``make bench`` / ``python -m bench``: SPEC §8, every figure a ratio against a same-run baseline.

Loopback only, bounded (each wait has a deadline; the whole run is meant to stay under five
minutes on two cores).  Two topologies start side by side before any measurement:

* the ``till dev`` stack (SQLite, no Redis, one gateway) for section 1 — with the echo and MCP SDK
  baselines and a static nginx that shows the load generator's own ceiling;
* the compose topology (deploy.cluster: Redis, PostgreSQL, two gateways, nginx) for sections 2-5.

Prints a table and writes bench/results/latest.json; ``--profile`` also records py-spy flamegraphs
of the gateway and tools under the section 1 JWT load into bench/results/.  Exits 0 whatever the
numbers are (a missed target is reported, not fatal); non-zero when the set-up itself fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import e2e, oauth, profile, revocation, sse
from bench.fastmcp_server import unavailable as fastmcp_unavailable
from bench.loadgen import LoadGen, Target
from bench.report import RESULTS, Report, Row
from bench.servers import Servers, prepare_sdk_db, start_static_nginx
from bench.stack import DevStack, cluster, cluster_pid
from deploy.cluster import Cluster, find_nginx

OWNER = "owner@demo.store"


def raise_fd_limit() -> int:
    """Sessions of section 2 need an fd each, in this process and in the gateway (inherited)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=3.0, help="seconds per row per round")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    p.add_argument("--sessions", type=int, default=10_000, help="idle legacy-SSE sessions to hold (section 2)")
    p.add_argument("--rt-sessions", type=int, default=16, help="closed-loop sessions of the round trip (3)")
    p.add_argument("--rt-rate", type=float, default=2000.0, help="offered round trips/s of the open loop (3); 0: none")
    p.add_argument("--rt-open-sessions", type=int, default=64, help="sessions of the open loop (3)")
    p.add_argument("--revocations", type=int, default=50)
    p.add_argument("--flows", type=int, default=20, help="OAuth flows (5); their tokens feed section 4")
    p.add_argument("--profile", action="store_true",
                   help="py-spy the gateway and tools under section 1 load, both gateways under section 3's")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    p.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--only", default="12345", help="sections to run, e.g. 15")
    return p.parse_args(argv)


def _interrupt(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    fds = raise_fd_limit()
    report = Report()
    report.meta.update({"args": vars(args), "fd_limit": fds})
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="till-bench-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        gen = LoadGen(work, args.connections, args.loadgen)
        report.meta["loadgen"] = gen.description
        if gen.caveat:
            report.note(gen.caveat)
        print(f"till bench: {gen.description}; fd limit {fds}; load average {report.meta['load_average']}",
              flush=True)

        # the cluster (PostgreSQL migrate + seed) starts in a thread while the dev stack starts here
        box: dict[str, Any] = {}
        need_cluster = any(s in args.only for s in "2345")

        def start_cluster() -> None:
            try:
                cm = cluster(work / "cluster", args.redis_url, args.postgres)
                box["cm"] = cm
                box["cluster"] = cm.__enter__()
            except BaseException as exc:  # reported after join
                box["error"] = exc

        starter = threading.Thread(target=start_cluster, name="cluster-start", daemon=True)
        if need_cluster:
            starter.start()
            stack.callback(lambda: _exit_cluster(box))

        servers = Servers()
        stack.callback(servers.stop)
        results: dict[str, Any] = {}
        if "1" in args.only:
            dev = DevStack(work / "dev")
            stack.callback(dev.stop)
            sdk_db = work / "sdk.db"
            prepare_sdk_db(sdk_db)
            sdk_token = "bench-sdk-token-" + "x" * 16
            echo_url = servers.start("echo", "echo")
            sdk_url = servers.start("sdk", "sdk", "--db", str(sdk_db), "--token", sdk_token)
            fastmcp_missing = fastmcp_unavailable() or ""
            fastmcp_db = work / "fastmcp.db"
            prepare_sdk_db(fastmcp_db)
            fastmcp_url = None if fastmcp_missing else servers.start("fastmcp", "fastmcp", "--db", str(fastmcp_db),
                                                                      "--token", sdk_token)
            nginx = find_nginx()
            ceiling = start_static_nginx(nginx, work / "nginx-static", servers) if nginx else None
            dev.start()
            print(f"dev stack ready after {time.monotonic() - started:.0f} s", flush=True)
            inputs = dataclasses.replace(setup_section1(dev, echo_url, sdk_url, sdk_token),
                                         fastmcp_url=fastmcp_url, fastmcp_missing=fastmcp_missing)
            watch = {"gateway": dev.pid("gateway"), "tools": dev.pid("tools"), "auth": dev.pid("auth"),
                     "echo": servers.pid("echo"), "sdk": servers.pid("sdk"),
                     **({"fastmcp": servers.pid("fastmcp")} if fastmcp_url else {})}
            if need_cluster:
                starter.join(timeout=240)     # do not measure while the cluster is still starting
            results["1"] = e2e.run(gen, inputs, watch, report, rounds=args.rounds, duration=args.duration,
                                   ceiling_url=ceiling)
            if args.profile:
                profile.run(gen, e2e.targets(inputs)[1], watch, report, RESULTS, seconds=4.0)
            dev.stop()
            servers.stop()
        if need_cluster:
            starter.join(timeout=240)
            if "error" in box:
                raise SystemExit(f"cluster did not start: {box['error']}")
            if "cluster" not in box:
                raise SystemExit("cluster did not start within 240 s")
            c: Cluster = box["cluster"]
            print(f"cluster ready after {time.monotonic() - started:.0f} s", flush=True)
            run_cluster_sections(c, args, report)
    print()
    print(report.table())
    for n in report.notes:
        print(f"note: {n}")
    path = report.write()
    print(f"\nwritten {path} in {time.monotonic() - started:.0f} s", flush=True)
    return 0


def _exit_cluster(box: dict[str, Any]) -> None:
    cm = box.get("cm")
    if cm is not None and "cluster" in box:
        cm.__exit__(None, None, None)


def setup_section1(dev: DevStack, echo_url: str, sdk_url: str, sdk_token: str) -> e2e.Section1Inputs:
    import jwt

    from bench.tokens import mint_pats

    flow = asyncio.run(oauth.flow(dev.url, OWNER, dev.config.demo_password))
    claims = jwt.decode(flow.access_token, options={"verify_signature": False})
    pat = mint_pats(dev.settings, OWNER, 1)[0].token
    listing = e2e.check(Target("list", f"{dev.url}/mcp", e2e.mcp_call(1, "list_products", {"limit": 1}),
                                   e2e.mcp_headers(flow.access_token)), e2e.tool_ok)
    item = listing["result"]["structuredContent"]["items"][0]
    principal = {"user_id": int(claims["sub"]), "store_id": claims["store_id"], "role": claims["role"],
                 "scopes": claims["scope"].split(), "client_id": None, "token_id": "bench-internal"}
    return e2e.Section1Inputs(gateway_url=dev.url, tools_url=dev.tools_url, echo_url=echo_url, sdk_url=sdk_url,
                              sdk_token=sdk_token, jwt=flow.access_token, pat=pat,
                              internal_token=dev.settings["TILL_INTERNAL_TOKEN"], principal=principal,
                              product_id=item["id"], sku=item["skus"][0])


def run_cluster_sections(c: Cluster, args: argparse.Namespace, report: Report) -> None:
    from bench.tokens import mint_pats

    password = c.config.demo_password
    a_url, b_url = c.gateway_urls[0], c.gateway_urls[1]
    flows: list[oauth.FlowResult] = []
    if "5" in args.only or "4" in args.only:
        n = args.flows if "5" in args.only else max(1, args.revocations // 2)
        base = oauth.baseline_latency(c.url)
        flows = asyncio.run(oauth.flows(c.url, OWNER, password, n))
        if "5" in args.only:
            s = oauth.summary(flows)
            report.add(Row("5", f"OAuth flow p50 ({len(flows)} flows, via nginx)", s["p50_ms"], "ms",
                           baseline=f"1 proxied GET ({base:.2f} ms)", ratio=s["p50_ms"] / base,
                           note=f"register {s['register_p50_ms']:.1f} ms, authorize (login+consent) "
                                f"{s['authorize_p50_ms']:.1f} ms, token {s['token_p50_ms']:.1f} ms (p50 each)",
                           detail=s))
    pats = mint_pats(service_env(c), OWNER, max(1, args.revocations - len(flows))) if "4" in args.only else []
    pids = {"gateway-1": cluster_pid(c, "gateway-1"), "gateway-2": cluster_pid(c, "gateway-2")}
    token = pats[0].token if pats else mint_pats(service_env(c), OWNER, 1)[0].token
    # 3 before 2: closing 10,000 streams keeps replica A busy for a while afterwards
    if "3" in args.only:
        sse.round_trips(a_url, b_url, token, args.rt_sessions, args.rounds, args.duration, pids, report,
                        open_sessions=args.rt_open_sessions, open_rate=args.rt_rate,
                        profile_dir=RESULTS if args.profile else None)
    if "2" in args.only:
        sse.idle_sessions(a_url, token, args.sessions, pids["gateway-1"], report)
    if "4" in args.only:
        tokens = [revocation.Revocable(f.access_token, revocation.jti(f.access_token), "jwt") for f in flows]
        tokens += [revocation.Revocable(p.token, p.token_id, "pat") for p in pats[1:]]
        revocation.run(c.auth_url, c.settings["TILL_ADMIN_TOKEN"], c.gateway_urls,
                       tokens[: args.revocations], report)


def service_env(c: Cluster) -> dict[str, str]:
    return dict(c.settings)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        shutil.rmtree(RESULTS / ".tmp", ignore_errors=True)
