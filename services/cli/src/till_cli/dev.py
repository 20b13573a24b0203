"""``till dev``: migrate, seed and run all three services in one terminal; Ctrl-C stops all.

Embedded defaults: SQLite under ./var/, in-process session store, no Redis.  The secrets a
production deployment sets by hand are generated once into ./var/dev.env and reused, so a
second run keeps the same signing keys, tokens and sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from till_common.errors import ConfigError
from till_common.serve import check_port_free

DEV_ENV = Path("var/dev.env")
DEFAULT_DEMO_PASSWORD = "till-demo-password"  # noqa: S105 - the documented local demo login
SERVICES = (("auth", "till_auth", 8001), ("tools", "till_tools", 8002), ("gateway", "till_gateway", 8000))


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("dev", help="run the whole stack locally on embedded defaults")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--gateway-port", type=int, default=8000)
    p.add_argument("--auth-port", type=int, default=8001)
    p.add_argument("--tools-port", type=int, default=8002)
    p.add_argument("--no-seed", action="store_true", help="do not load the demo store")
    p.set_defaults(run=run)


def dev_secrets() -> dict[str, str]:
    """Generated once, kept in var/dev.env (mode 600); the environment wins over the file."""
    values: dict[str, str] = {}
    if DEV_ENV.exists():
        for line in DEV_ENV.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.startswith("TILL_"):
                values[key.strip()] = value.strip()
    changed = False
    for key in ("TILL_INTERNAL_TOKEN", "TILL_ADMIN_TOKEN", "TILL_KEY_ENCRYPTION_KEY"):
        if key not in values:
            values[key] = secrets.token_urlsafe(32)
            changed = True
    if changed:
        DEV_ENV.parent.mkdir(parents=True, exist_ok=True)
        DEV_ENV.write_text("".join(f"{k}={v}\n" for k, v in sorted(values.items())))
        DEV_ENV.chmod(0o600)
    return values


def dev_environ(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in dev_secrets().items():
        env.setdefault(key, value)
    host = args.host
    env.setdefault("TILL_PUBLIC_URL", f"http://{host}:{args.gateway_port}")
    env.setdefault("TILL_AUTH_URL", f"http://{host}:{args.auth_port}")
    env.setdefault("TILL_TOOLS_URL", f"http://{host}:{args.tools_port}")
    env.setdefault("TILL_DEMO_PASSWORD", DEFAULT_DEMO_PASSWORD)
    return env


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the stack like Ctrl-C does


def wait_healthy(url: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"{url} exited with status {proc.returncode} during start-up (see its log above)")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as r:  # noqa: S310 - our own loopback URL
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise ConfigError(f"{url} did not become healthy within 30 s")


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run(args: argparse.Namespace) -> int:
    from till_cli.migrate import prepare

    env = dev_environ(args)
    ports = {"auth": args.auth_port, "tools": args.tools_port, "gateway": args.gateway_port}
    for name, port in ports.items():
        try:
            check_port_free(args.host, port)
        except ConfigError as exc:
            raise ConfigError(f"{exc.description} (needed by {name}; stop what holds it or pass "
                              f"--{name}-port)") from None
    asyncio.run(prepare(env, seed=not args.no_seed))
    procs: list[subprocess.Popen[bytes]] = []
    signal.signal(signal.SIGTERM, _terminate)
    # Children ignore Ctrl-C's SIGINT (own process group); we stop them with SIGTERM, in order.
    try:
        for name, module, _ in SERVICES:
            procs.append(subprocess.Popen(  # noqa: S603 - our own interpreter and modules
                [sys.executable, "-m", module, "--host", args.host, "--port", str(ports[name])],
                env=env, start_new_session=True))
        deadline = time.monotonic() + 30
        for (name, _, _), proc in zip(SERVICES, procs, strict=True):
            wait_healthy(f"http://{args.host}:{ports[name]}", proc, deadline)
        print_banner(env, args)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        failed = [n for (n, _, _), p in zip(SERVICES, procs, strict=True) if p.poll() is not None]
        print(f"till dev: {', '.join(failed)} stopped; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ntill dev: stopping", file=sys.stderr)
        return 0
    finally:
        stop_all(procs)


def print_banner(env: dict[str, str], args: argparse.Namespace) -> None:
    from till_common import demo

    public = env["TILL_PUBLIC_URL"]
    token = mint_dev_token(env)
    lines = [
        "",
        "Till is running.",
        f"  MCP (Streamable HTTP): {public}/mcp",
        f"  MCP (legacy SSE):      {public}/mcp/sse",
        f"  Merchant pages:        {public}/settings/connector",
        f"  Demo logins (password: {env['TILL_DEMO_PASSWORD']}):",
        *[f"    {email:<22} {role} of {dict((s, n) for s, n, _ in demo.STORES)[store]}"
          for _, email, store, role in demo.USERS],
        f"  MCP token (owner@demo.store): {token}" if token else
        "  MCP token: personal tokens are not available in this build",
        "Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)


def mint_dev_token(env: dict[str, str]) -> str | None:
    """A ready personal token for the demo owner, when the auth service provides minting."""
    try:
        from till_auth import bootstrap
    except ImportError:
        return None
    mint = getattr(bootstrap, "mint_dev_token", None)
    if mint is None:
        return None
    from till_auth.settings import AuthSettings
    from till_common.settings import load_settings

    token: str = asyncio.run(mint(load_settings(AuthSettings, env)))
    return token
