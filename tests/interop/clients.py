"""The client matrix: which real MCP clients, over which transport, with which credentials.

A ``ServerUnderTest`` says where the server is and what to call; a ``Cell`` names one
combination (client, transport, auth, protocol revision); ``run_cell`` drives the real client
and returns a ``ClientResult`` (the same shape the Node scripts print: ok, steps, error).

Clients:
- ``python_sdk``: the official Python SDK (``mcp``), ``streamable_http_client`` / ``sse_client``;
  revision ``legacy`` = the initialize handshake (2025-11-25), ``auto`` = the SDK's default, which
  first probes ``server/discover`` at 2026-07-28 and falls back to the handshake.
- ``ts_sdk``: the official TypeScript SDK Client (node/ts_sdk_client.mjs); always 2025-11-25.
- ``mcp_remote``: mcp-remote over stdio as Claude Desktop runs it (node/mcp_remote_client.mjs);
  the stdio driver picks the revision, so every handshake revision is a cell.
- ``inspector_cli``: the MCP Inspector's CLI mode (node/inspector_client.mjs); headers only, no OAuth.

Auth ``token`` sends ``Authorization: Bearer <token>``; ``oauth`` runs the client's own OAuth flow
with ``oauth_forms.ScriptedBrowser`` standing in for the merchant's browser.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.interop.node_env import NODE_DIR, NodeEnv

ROOT = Path(__file__).resolve().parents[2]
HANDSHAKE_REVISIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
CELL_TIMEOUT = float(os.environ.get("TILL_INTEROP_CELL_TIMEOUT", "60"))


@dataclass(frozen=True)
class OAuthLogin:
    """A merchant who can log in on the server's authorization pages (SPEC §5 form fields)."""

    email: str
    password: str


@dataclass(frozen=True)
class ServerUnderTest:
    name: str                                  # "till" or "reference": where the report goes
    mcp_url: str                               # Streamable HTTP endpoint
    sse_url: str | None                        # legacy SSE endpoint; None: the server has none
    token: str | None = field(default=None, repr=False)          # a bearer token the server accepts
    oauth: OAuthLogin | None = field(default=None, repr=False)   # None: the server has no authorization server
    tool_name: str = "echo"
    tool_arguments: dict[str, Any] = field(default_factory=lambda: {"text": "hello from the matrix"})

    @property
    def is_till(self) -> bool:
        return self.name == "till"

    def url(self, transport: str) -> str:
        if transport == "sse":
            if self.sse_url is None:
                raise ValueError(f"{self.name} has no legacy SSE endpoint")
            return self.sse_url
        return self.mcp_url

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> ServerUnderTest | None:
        """Till's running stack, described by TILL_INTEROP_* variables; None when not configured.

        TILL_INTEROP_MCP_URL (required), TILL_INTEROP_SSE_URL (default <mcp>/sse), TILL_INTEROP_TOKEN,
        TILL_INTEROP_EMAIL + TILL_INTEROP_PASSWORD (OAuth cells), TILL_INTEROP_TOOL +
        TILL_INTEROP_TOOL_ARGS (JSON; default list_products {}).
        """
        env = os.environ if environ is None else environ
        mcp_url = env.get("TILL_INTEROP_MCP_URL")
        if not mcp_url:
            return None
        email, password = env.get("TILL_INTEROP_EMAIL"), env.get("TILL_INTEROP_PASSWORD")
        return cls(
            name="till",
            mcp_url=mcp_url.rstrip("/"),
            sse_url=env.get("TILL_INTEROP_SSE_URL", mcp_url.rstrip("/") + "/sse"),
            token=env.get("TILL_INTEROP_TOKEN") or None,
            oauth=OAuthLogin(email, password) if email and password else None,
            tool_name=env.get("TILL_INTEROP_TOOL", "list_products"),
            tool_arguments=json.loads(env.get("TILL_INTEROP_TOOL_ARGS", "{}")),
        )


@dataclass(frozen=True)
class Cell:
    client: str
    transport: str       # "http" (Streamable HTTP) or "sse" (legacy HTTP+SSE)
    auth: str            # "token" or "oauth"
    revision: str        # a protocol revision, or what the client picks ("latest", "legacy", "auto")

    @property
    def id(self) -> str:
        return f"{self.client}-{self.transport}-{self.auth}-{self.revision}"


@dataclass
class ClientResult:
    ok: bool
    steps: list[dict[str, Any]]
    error: str | None
    seconds: float = 0.0

    def note(self) -> str:
        """What the report shows beside a pass: the revision the handshake settled on."""
        first = self.steps[0] if self.steps else {}
        version = (first.get("detail") or {}).get("protocolVersion") if first.get("name") == "initialize" else None
        return f"negotiated {version}" if version else ""

    def summary(self) -> str:
        done = ", ".join(f"{s['name']}{'' if s.get('ok') else ' FAILED'}" for s in self.steps)
        return f"ok={self.ok} steps=[{done}] error={self.error}"


# --- the matrix ---------------------------------------------------------------------------------

REVISIONS: dict[str, tuple[str, ...]] = {
    "python_sdk": ("legacy", "auto"),
    "ts_sdk": ("latest",),
    "mcp_remote": HANDSHAKE_REVISIONS,
    "inspector_cli": ("latest",),
}
NO_OAUTH = {"inspector_cli": "the Inspector's CLI mode has no OAuth flow (headers only)"}


def matrix() -> list[Cell]:
    return [Cell(client, transport, auth, revision)
            for client, revisions in REVISIONS.items()
            for transport in ("http", "sse")
            for auth in ("token", "oauth")
            for revision in revisions]


def why_not(cell: Cell, server: ServerUnderTest) -> str | None:
    """The reason a cell cannot run against this server, or None."""
    if cell.transport == "sse" and server.sse_url is None:
        return f"{server.name} has no legacy SSE endpoint"
    if cell.auth == "oauth":
        if cell.client in NO_OAUTH:
            return NO_OAUTH[cell.client]
        if server.oauth is None:
            return f"{server.name}: no authorization server / merchant login configured"
    if cell.auth == "token" and not server.token:
        return f"{server.name}: no bearer token configured"
    return None


# --- Node clients -------------------------------------------------------------------------------

def _authorize_cmd() -> list[str]:
    return [sys.executable, "-m", "tests.interop.oauth_forms"]


def _oauth_env(server: ServerUnderTest) -> dict[str, str]:
    assert server.oauth is not None
    return {"TILL_INTEROP_EMAIL": server.oauth.email, "TILL_INTEROP_PASSWORD": server.oauth.password,
            "PYTHONPATH": str(ROOT)}


def run_node_script(node: NodeEnv, script: str, args: list[str], *, env: dict[str, str] | None = None,
                    timeout: float = CELL_TIMEOUT) -> ClientResult:
    """Run one client script; its last stdout line is the result.  Hard-killed past ``timeout``."""
    started = time.monotonic()
    cmd = [str(node.node), str(NODE_DIR / script), *args, "--timeout", str(int(timeout - 5))]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=node.environ(**(env or {})), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return ClientResult(False, [], f"{script} killed after {timeout:.0f}s", time.monotonic() - started)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return ClientResult(False, [], f"{script} exited {proc.returncode} without a result: "
                                       f"{proc.stderr.strip()[-800:]}", time.monotonic() - started)
    data = json.loads(lines[-1])
    return ClientResult(bool(data["ok"]), data["steps"], data["error"], time.monotonic() - started)


def _common_args(server: ServerUnderTest, cell: Cell) -> list[str]:
    args = ["--url", server.url(cell.transport), "--transport", cell.transport,
            "--tool", server.tool_name, "--args", json.dumps(server.tool_arguments)]
    if cell.auth == "token" and server.token:
        args += ["--token", server.token]
    return args


def run_ts_sdk(node: NodeEnv, server: ServerUnderTest, cell: Cell, tmp: Path) -> ClientResult:
    args = _common_args(server, cell)
    env = None
    if cell.auth == "oauth":
        args += ["--oauth", "--authorize-cmd", " ".join(_authorize_cmd())]
        env = _oauth_env(server)
    return run_node_script(node, "ts_sdk_client.mjs", args, env=env)


def run_mcp_remote(node: NodeEnv, server: ServerUnderTest, cell: Cell, tmp: Path) -> ClientResult:
    config = tmp / f"mcp-auth-{cell.id}"
    config.mkdir(parents=True, exist_ok=True)
    env = {"MCP_REMOTE_CONFIG_DIR": str(config)}        # never the developer's ~/.mcp-auth
    if cell.auth == "oauth":
        # mcp-remote opens the authorization URL with `open` → xdg-open → $BROWSER; ours fills the
        # forms and GETs the final redirect, which lands on mcp-remote's loopback callback server.
        browser = tmp / "browser.sh"
        command = " ".join(_authorize_cmd())
        browser.write_text(f'#!/bin/sh\nexec {command} --deliver "$1" >>"{tmp}/browser.log" 2>&1\n')
        browser.chmod(0o755)
        env |= {"BROWSER": str(browser), "DISPLAY": "", **_oauth_env(server)}
    result = run_node_script(node, "mcp_remote_client.mjs", [*_common_args(server, cell), "--protocol", cell.revision],
                             env=env)
    if cell.auth == "oauth":
        # evidence that the session ran on an OAuth token: mcp-remote keeps what it obtained here
        tokens = list(config.glob("mcp-remote-*/*_tokens.json"))
        result.steps.append({"name": "oauth", "ok": bool(tokens), "detail": {"token_files": len(tokens)}})
        result.ok = result.ok and bool(tokens)
    return result


def run_inspector(node: NodeEnv, server: ServerUnderTest, cell: Cell, tmp: Path) -> ClientResult:
    return run_node_script(node, "inspector_client.mjs", _common_args(server, cell))


# --- Python SDK ---------------------------------------------------------------------------------

class _MemoryTokens:
    """mcp.client.auth.TokenStorage kept in memory: each OAuth cell registers and logs in afresh."""

    def __init__(self) -> None:
        self.tokens: Any = None
        self.client_info: Any = None

    async def get_tokens(self) -> Any:
        return self.tokens

    async def set_tokens(self, tokens: Any) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> Any:
        return self.client_info

    async def set_client_info(self, client_info: Any) -> None:
        self.client_info = client_info


def _python_oauth(server: ServerUnderTest, url: str) -> tuple[Any, _MemoryTokens]:
    from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
    from mcp.shared.auth import OAuthClientMetadata

    from tests.interop.oauth_forms import ScriptedBrowser

    assert server.oauth is not None
    redirect_uri = "http://127.0.0.1:53683/callback"
    login = server.oauth
    answers: list[AuthorizationCodeResult] = []
    storage = _MemoryTokens()

    async def redirect_handler(authorization_url: str) -> None:
        async with ScriptedBrowser(login.email, login.password, redirect_uri=redirect_uri) as browser:
            got = await browser.authorize(authorization_url)
        answers.append(AuthorizationCodeResult(code=got.code, state=got.state, iss=got.iss))

    async def callback_handler() -> AuthorizationCodeResult:
        return answers.pop()

    metadata = OAuthClientMetadata.model_validate({
        "client_name": "till-interop python-sdk", "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
    return OAuthClientProvider(url, metadata, storage, redirect_handler, callback_handler), storage


async def run_python_sdk(server: ServerUnderTest, cell: Cell, tmp: Path, timeout: float = CELL_TIMEOUT) -> ClientResult:
    import anyio

    started = time.monotonic()
    steps: list[dict[str, Any]] = []
    try:
        with anyio.fail_after(timeout):
            await _python_sdk_steps(server, cell, steps)
        return ClientResult(all(s["ok"] for s in steps), steps, None, time.monotonic() - started)
    except Exception as exc:  # every failure of a client is a result, not a crash
        message = _describe(exc)
        if steps and steps[-1]["ok"]:
            steps.append({"name": "(unfinished)", "ok": False, "error": message})
        return ClientResult(False, steps, message, time.monotonic() - started)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


async def _python_sdk_steps(server: ServerUnderTest, cell: Cell, steps: list[dict[str, Any]]) -> None:
    import httpx2
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    url = server.url(cell.transport)
    headers = {"Authorization": f"Bearer {server.token}"} if cell.auth == "token" and server.token else {}
    auth, storage = _python_oauth(server, url) if cell.auth == "oauth" else (None, None)
    async with AsyncExitStack() as stack:
        if cell.transport == "sse":
            transport: Any = sse_client(url, headers=headers, auth=auth, timeout=15, sse_read_timeout=60)
        else:
            http = await stack.enter_async_context(
                httpx2.AsyncClient(headers=headers, auth=auth, timeout=httpx2.Timeout(15, read=60)))
            transport = streamable_http_client(url, http_client=http)
        await _python_sdk_session(server, cell, transport, steps)
    if storage is not None:
        # evidence that the session ran on an OAuth token, not on something else
        got = storage.tokens is not None
        steps.insert(1, {"name": "oauth", "ok": got, "detail": {"registered": storage.client_info is not None}})


async def _python_sdk_session(server: ServerUnderTest, cell: Cell, transport: Any, steps: list[dict[str, Any]]) -> None:
    from mcp.client import Client
    from mcp.shared.exceptions import MCPDeprecationWarning

    async def step(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.monotonic()
        try:
            detail = await fn()
        except Exception as exc:
            steps.append({"name": name, "ok": False, "ms": int((time.monotonic() - t0) * 1000),
                          "error": _describe(exc)})
            raise
        steps.append({"name": name, "ok": True, "ms": int((time.monotonic() - t0) * 1000), "detail": detail})
        return detail

    client = Client(transport, mode=cell.revision, read_timeout_seconds=30)
    t0 = time.monotonic()
    try:
        await client.__aenter__()
    except Exception as exc:
        steps.append({"name": "initialize", "ok": False, "ms": int((time.monotonic() - t0) * 1000),
                      "error": _describe(exc)})
        raise
    steps.append({"name": "initialize", "ok": True, "ms": int((time.monotonic() - t0) * 1000),
                  "detail": {"protocolVersion": client.protocol_version}})
    try:
        async def tools() -> Any:
            listed = await client.list_tools()
            return {"count": len(listed.tools), "names": [t.name for t in listed.tools][:50]}

        async def call() -> Any:
            result = await client.call_tool(server.tool_name, server.tool_arguments)
            text = "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")  # type: ignore[union-attr]
            if result.is_error:
                raise RuntimeError(f"tool returned isError: {text[:500]}")
            return {"text": text[:500], "structured": result.structured_content}

        async def resources() -> Any:
            return {"count": len((await client.list_resources()).resources)}

        async def prompts() -> Any:
            return {"count": len((await client.list_prompts()).prompts)}

        async def ping() -> Any:
            with warnings.catch_warnings():
                # the SDK flags ping as gone in 2026-07-28; on a handshake-era session it is still MCP
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await client.send_ping()
            return {}

        await step("tools/list", tools)
        await step("tools/call", call)
        await step("resources/list", resources)
        await step("prompts/list", prompts)
        if client.protocol_version in HANDSHAKE_REVISIONS:      # ping is gone from 2026-07-28 on
            await step("ping", ping)
    finally:
        await client.__aexit__(None, None, None)


# --- one entry point per (client, transport) -----------------------------------------------------

NodeRunner = Callable[[NodeEnv, ServerUnderTest, Cell, Path], ClientResult]
NODE_RUNNERS: dict[str, NodeRunner] = {"ts_sdk": run_ts_sdk, "mcp_remote": run_mcp_remote,
                                       "inspector_cli": run_inspector}

RUNNERS: dict[tuple[str, str], Callable[..., Any]] = {
    ("python_sdk", "http"): run_python_sdk, ("python_sdk", "sse"): run_python_sdk,
    **{(client, transport): runner for client, runner in NODE_RUNNERS.items() for transport in ("http", "sse")},
}


async def run_cell(cell: Cell, server: ServerUnderTest, node: NodeEnv | None, tmp: Path) -> ClientResult:
    """Drive one cell's real client; Node clients run in a worker thread so the loop stays free."""
    if cell.client == "python_sdk":
        return await run_python_sdk(server, cell, tmp)
    if node is None:
        raise RuntimeError("Node clients need a NodeEnv")
    import anyio

    runner = NODE_RUNNERS[cell.client]
    return await anyio.to_thread.run_sync(runner, node, server, cell, tmp)
