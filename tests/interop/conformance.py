"""The MCP conformance suite (@modelcontextprotocol/conformance 0.1.x) against a server, parsed.

``conformance server --url URL -o DIR`` connects as a client, runs each server scenario and writes
``DIR/server-<scenario>-<timestamp>/checks.json`` (a list of checks with status SUCCESS, FAILURE,
WARNING or INFO).  A scenario passes when none of its checks failed, as the suite's own summary
counts it.

The suite's server mode has no option for credentials.  A server that requires a bearer token is
tested through ``BearerProxy``: a loopback reverse proxy that adds ``Authorization`` and rewrites
its own Host/Origin to the upstream's (so the dns-rebinding scenario's deliberate evil Host and
Origin still reach the server unchanged).

The baseline (conformance-baseline.json) lists expected failures, each with its reason:
``{"server": {"<scenario>": "<why>"}}``.  A failure not in it is a regression; an entry that
passes is stale.  Both fail the Till run.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.interop.node_env import NodeEnv

BASELINE = Path(__file__).resolve().parent / "conformance-baseline.json"
SUITE_TIMEOUT = 300.0
_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length", "authorization"}


@dataclass
class ScenarioResult:
    scenario: str
    passed: bool
    failures: list[str] = field(default_factory=list)      # "<check id>: <message>"
    warnings: list[str] = field(default_factory=list)
    checks: int = 0


@dataclass
class SuiteRun:
    results: dict[str, ScenarioResult]
    returncode: int
    output: str

    def failed(self) -> list[str]:
        return sorted(s for s, r in self.results.items() if not r.passed)

    def passed(self) -> list[str]:
        return sorted(s for s, r in self.results.items() if r.passed)


def parse_results(out_dir: Path) -> dict[str, ScenarioResult]:
    results: dict[str, ScenarioResult] = {}
    for checks_file in sorted(out_dir.glob("*/checks.json")):
        m = _DIR.match(checks_file.parent.name)
        if not m:
            continue
        checks: list[dict[str, Any]] = json.loads(checks_file.read_text())
        result = ScenarioResult(m.group("scenario"), passed=True, checks=len(checks))
        for check in checks:
            label = f"{check.get('id')}: {check.get('errorMessage') or check.get('description', '')}"
            if check.get("status") == "FAILURE":
                result.passed = False
                result.failures.append(label)
            elif check.get("status") == "WARNING":
                result.warnings.append(label)
        results[result.scenario] = result
    return results


def load_baseline(path: Path = BASELINE) -> dict[str, str]:
    data = json.loads(path.read_text())
    server: dict[str, str] = data.get("server", {})
    for scenario, reason in server.items():
        if not reason or not reason.strip():
            raise ValueError(f"baseline entry {scenario!r} has no reason")
    return server


@dataclass
class BaselineVerdict:
    unexpected: dict[str, list[str]]     # scenario -> its failures, not in the baseline
    stale: list[str]                     # in the baseline, but passed
    expected: list[str]                  # failed, as the baseline says

    @property
    def ok(self) -> bool:
        return not self.unexpected and not self.stale


def compare(results: dict[str, ScenarioResult], baseline: dict[str, str]) -> BaselineVerdict:
    unexpected = {s: r.failures for s, r in results.items() if not r.passed and s not in baseline}
    stale = sorted(s for s in baseline if s in results and results[s].passed)
    expected = sorted(s for s, r in results.items() if not r.passed and s in baseline)
    return BaselineVerdict(unexpected, stale, expected)


@asynccontextmanager
async def bearer_proxy(upstream_url: str, token: str) -> AsyncIterator[str]:
    """A loopback proxy adding ``Authorization: Bearer <token>``; yields the proxied MCP URL."""
    import aiohttp
    from aiohttp import web

    up = urlsplit(upstream_url)
    upstream_origin = f"{up.scheme}://{up.netloc}"
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120),
                                    auto_decompress=False)
    own: dict[str, str] = {}
    open_answers: set[aiohttp.ClientResponse] = set()

    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = up.netloc if request.host == own["host"] else request.host
        if headers.get("Origin") == own["origin"]:
            headers["Origin"] = upstream_origin
        headers["Authorization"] = f"Bearer {token}"
        body = await request.read()
        async with session.request(request.method, upstream_origin + request.path_qs, headers=headers,
                                   data=body or None, allow_redirects=False) as answer:
            response = web.StreamResponse(status=answer.status, headers={
                k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP})
            await response.prepare(request)
            open_answers.add(answer)
            try:
                async for chunk in answer.content.iter_any():    # SSE streams pass through as they come
                    await response.write(chunk)
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
                pass                         # the client went away mid-stream (it abandons SSE streams)
            finally:
                open_answers.discard(answer)
            return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    own["host"], own["origin"] = f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"
    try:
        yield f"http://127.0.0.1:{port}{up.path}"
    finally:
        for answer in list(open_answers):     # end relayed streams the suite left open
            answer.close()
        await runner.cleanup()
        await session.close()


async def run_server_suite(node: NodeEnv, url: str, *, token: str | None = None, scenario: str | None = None,
                           suite: str = "active", timeout: float = SUITE_TIMEOUT,
                           out_dir: Path | None = None) -> SuiteRun:
    """Run the server scenarios against ``url`` (through a bearer proxy when ``token`` is given)."""
    import anyio

    if not node.at_least(22):
        raise RuntimeError(f"the conformance suite needs Node >= 22 (has {'.'.join(map(str, node.version))})")
    out = out_dir or Path(tempfile.mkdtemp(prefix="till-conformance-"))
    cli = node.modules / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"

    async def run(target: str) -> SuiteRun:
        cmd = [str(node.node), str(cli), "server", "--url", target, "-o", str(out), "--suite", suite]
        if scenario:
            cmd += ["--scenario", scenario]
        with anyio.fail_after(timeout):
            proc = await anyio.run_process(cmd, env=node.environ(), check=False, stdin=None)
        text = (proc.stdout + proc.stderr).decode(errors="replace")
        return SuiteRun(parse_results(out), proc.returncode, text)

    if token:
        async with bearer_proxy(url, token) as proxied:
            return await run(proxied)
    return await run(url)


# What each server scenario of conformance 0.1.16 asks of the server beyond plain MCP: the fixture
# names come from the suite's "everything server".  A server without them fails those scenarios.
REQUIREMENTS: dict[str, str] = {
    "server-initialize": "initialize answers with serverInfo and capabilities",
    "ping": "ping answers {}",
    "tools-list": "tools/list answers a list",
    "resources-list": "resources/list answers a list",
    "prompts-list": "prompts/list answers a list",
    "dns-rebinding-protection": "a POST with Host and Origin evil.example.com gets a 4xx; one with the URL's own "
                                "host as Host and http://<host> as Origin gets a 2xx",
    "tools-call-error": "tool test_error_handling returns isError (an unknown-tool isError result passes too)",
    "tools-call-simple-text": "tool test_simple_text returns text (an unknown-tool isError text result passes too)",
    "logging-set-level": "logging capability: logging/setLevel answers {}",
    "completion-complete": "completion/complete for ref/prompt test_prompt_with_arguments",
    "tools-call-image": "tool test_image_content returns an image content item",
    "tools-call-audio": "tool test_audio_content returns an audio content item",
    "tools-call-embedded-resource": "tool test_embedded_resource returns an embedded resource item",
    "tools-call-mixed-content": "tool test_multiple_content_types returns text + image + resource items",
    "tools-call-with-logging": "tool test_tool_with_logging sends notifications/message during the call "
                               "(needs logging/setLevel and a streamed response)",
    "tools-call-with-progress": "tool test_tool_with_progress sends notifications/progress for the request's "
                                "progressToken (streamed response)",
    "tools-call-sampling": "tool test_sampling sends sampling/createMessage to the client mid-call",
    "tools-call-elicitation": "tool test_elicitation sends elicitation/create to the client mid-call",
    "elicitation-sep1034-defaults": "tool test_elicitation_sep1034_defaults elicits with default values",
    "elicitation-sep1330-enums": "tool test_elicitation_sep1330_enums elicits with enum schemas",
    "server-sse-multiple-streams": "several concurrent streams of one session (a warning only, never fails)",
    "resources-read-text": "resource test://static-text (text)",
    "resources-read-binary": "resource test://static-binary (blob)",
    "resources-templates-read": "resource template test://template/{id}/data, read as test://template/123/data",
    "resources-subscribe": "resources/subscribe on test://watched-resource (subscribe capability)",
    "resources-unsubscribe": "resources/unsubscribe on test://watched-resource",
    "prompts-get-simple": "prompt test_simple_prompt",
    "prompts-get-with-args": "prompt test_prompt_with_arguments (arguments arg1, arg2)",
    "prompts-get-embedded-resource": "prompt test_prompt_with_embedded_resource (argument resourceUri)",
    "prompts-get-with-image": "prompt test_prompt_with_image",
}
