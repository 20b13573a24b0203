"""``till doctor URL`` as a user runs it (a subprocess): all PASS against Till's running stack, and the
right FAIL line (exit 1) against small in-test servers that each get one thing of SPEC §9 wrong."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import re
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from aiohttp import web

from tests.e2e.stack import Stack
from tests.support import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

DOCTOR_TIMEOUT = 60.0


@dataclass
class Doctor:
    code: int
    out: str

    def _steps(self, verdict: str) -> list[str]:
        lines = re.findall(rf"^  {verdict}  (.+)$", self.out, re.M)
        return [next((s for s in KNOWN_STEPS if line.startswith(s + ":")), line) for line in lines]

    @property
    def passed(self) -> list[str]:
        """The names of the steps that passed, in order."""
        return self._steps("PASS")

    @property
    def failed(self) -> list[str]:
        """The whole FAIL lines (step name, colon, detail)."""
        return re.findall(r"^  FAIL  (.+)$", self.out, re.M)


async def doctor(*args: str) -> Doctor:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "till_cli.main", "doctor", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), DOCTOR_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Doctor(proc.returncode, out.decode())


async def doctor_in_process(*args: str) -> Doctor:
    """The same ``till`` entry point, in a worker thread of this process: no interpreter start-up per
    broken server (the subprocess runs above cover the console entry itself)."""

    def run() -> Doctor:
        from till_cli.main import main

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                main(["doctor", *args])
            except SystemExit as exc:
                return Doctor(int(exc.code or 0), out.getvalue())
        raise AssertionError("till did not exit")

    return await asyncio.wait_for(asyncio.to_thread(run), DOCTOR_TIMEOUT)


ALL_STEPS = ["401 challenge without a token", "protected-resource metadata (RFC 9728)",
             "authorization-server metadata (RFC 8414)", "JWKS", "dynamic client registration (RFC 7591)",
             "authorization request with PKCE", "token endpoint: unknown client → 401 invalid_client"]
KNOWN_STEPS = [*ALL_STEPS, "initialize with the token", "tools/list with the token"]


# --- against Till --------------------------------------------------------------------------------

@pytest.mark.redis
@pytest.mark.postgres
async def test_doctor_passes_every_step_against_the_running_stack(till_stack: Stack) -> None:
    result = await doctor(till_stack.mcp_url)
    assert result.code == 0, result.out
    assert result.passed == ALL_STEPS, result.out
    assert not result.failed
    assert result.out.rstrip().endswith("all checks passed")


@pytest.mark.redis
@pytest.mark.postgres
async def test_doctor_with_a_token_from_till_tokens_mint_also_initializes_and_lists_tools(till_stack: Stack) -> None:
    """The operator's path: ``till tokens mint`` on the auth database, then ``till doctor --token``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "till_cli.main", "tokens", "mint", "--email", "analyst@demo.store",
        env=till_stack.auth_environ(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), DOCTOR_TIMEOUT)
    assert proc.returncode == 0, err.decode()
    token, note = out.decode().splitlines()
    assert token.startswith("till_pat_")
    assert "not shown again" in note
    result = await doctor(till_stack.mcp_url, "--token", token)
    assert result.code == 0, result.out
    assert result.passed == [*ALL_STEPS, "initialize with the token", "tools/list with the token"], result.out
    assert token not in result.out, "the token is never printed"


@pytest.mark.redis
@pytest.mark.postgres
async def test_doctor_with_a_bad_token_fails_that_step(till_stack: Stack) -> None:
    result = await doctor(till_stack.mcp_url, "--token", "till_pat_" + "x" * 43,
                          "--no-register")
    assert result.code == 1, result.out
    assert [f.split(":")[0] for f in result.failed] == ["initialize with the token"], result.out


# --- against deliberately broken servers ------------------------------------------------------------

@dataclass(frozen=True)
class Flaws:
    challenge_header: bool = True         # 401 carries WWW-Authenticate
    relative_prm: bool = False            # resource_metadata="/.well-known/…"
    issuer_slash: bool = False            # AS metadata issuer "http://host:port/"
    prm_issuer_slash: bool = False        # and the PRM's authorization_servers says so too
    unknown_client_status: int = 401      # the token endpoint's answer to an unknown client


def fake_server(flaws: Flaws, port: int) -> web.Application:
    """An MCP endpoint with just enough discovery and OAuth for the doctor's walk, wrong only where told."""
    origin = f"http://127.0.0.1:{port}"
    prm_path = "/.well-known/oauth-protected-resource/mcp"
    clients: set[str] = set()

    async def mcp(request: web.Request) -> web.Response:
        if flaws.challenge_header:
            prm = prm_path if flaws.relative_prm else origin + prm_path
            headers = {"WWW-Authenticate": f'Bearer resource_metadata="{prm}", scope="products:read"'}
        else:
            headers = {}
        return web.json_response({"error": "unauthorized"}, status=401, headers=headers)

    async def prm(request: web.Request) -> web.Response:
        issuer = origin + "/" if flaws.prm_issuer_slash else origin
        return web.json_response({"resource": origin + "/mcp", "authorization_servers": [issuer],
                                  "bearer_methods_supported": ["header"]})

    async def metadata(request: web.Request) -> web.Response:
        return web.json_response({
            "issuer": origin + "/" if flaws.issuer_slash else origin,
            "authorization_endpoint": origin + "/authorize", "token_endpoint": origin + "/token",
            "registration_endpoint": origin + "/register", "jwks_uri": origin + "/jwks.json",
            "code_challenge_methods_supported": ["S256"], "response_types_supported": ["code"],
        })

    async def jwks(request: web.Request) -> web.Response:
        x = base64.urlsafe_b64encode(hashlib.sha256(b"x").digest()).rstrip(b"=").decode()
        return web.json_response({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "x": x, "y": x}]})

    async def register(request: web.Request) -> web.Response:
        body = await request.json()
        client_id = "c_" + secrets.token_hex(8)
        clients.add(client_id)
        return web.json_response({**body, "client_id": client_id}, status=201)

    async def authorize(request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") not in clients or q.get("code_challenge_method") != "S256":
            return web.Response(status=400, text="bad request")
        return web.Response(text="<form>login</form>", content_type="text/html")

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("client_id") not in clients:
            return web.json_response({"error": "invalid_client"}, status=flaws.unknown_client_status)
        return web.json_response({"error": "invalid_grant"}, status=400)

    app = web.Application()
    app.router.add_post("/mcp", mcp)
    app.router.add_get(prm_path, prm)
    app.router.add_get("/.well-known/oauth-authorization-server", metadata)
    app.router.add_get("/jwks.json", jwks)
    app.router.add_post("/register", register)
    app.router.add_get("/authorize", authorize)
    app.router.add_post("/token", token)
    return app


@asynccontextmanager
async def serving(flaws: Flaws) -> AsyncIterator[str]:
    port = free_port()
    runner = web.AppRunner(fake_server(flaws, port), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        await runner.cleanup()


async def test_the_fake_server_is_right_where_not_told_otherwise() -> None:
    """The control: each broken server below differs from this one in one flaw only."""
    async with serving(Flaws()) as url:
        result = await doctor_in_process(url)
    assert result.code == 0, result.out
    assert result.passed == ALL_STEPS, result.out


@pytest.mark.parametrize(("flaws", "step", "detail"), [
    pytest.param(Flaws(challenge_header=False), "401 challenge without a token", "401 without WWW-Authenticate",
                 id="401-without-www-authenticate"),
    pytest.param(Flaws(relative_prm=True), "401 challenge without a token",
                 'WWW-Authenticate: Bearer resource_metadata="/.well-known/oauth-protected-resource/mcp"',
                 id="relative-resource-metadata"),
    pytest.param(Flaws(issuer_slash=True), "authorization-server metadata (RFC 8414)", "trailing slash",
                 id="issuer-with-trailing-slash"),
    pytest.param(Flaws(unknown_client_status=400), "token endpoint: unknown client → 401 invalid_client",
                 "HTTP 400 {'error': 'invalid_client'}", id="unknown-client-400"),
])
async def test_each_known_client_trap_is_the_one_failing_step(flaws: Flaws, step: str, detail: str) -> None:
    async with serving(flaws) as url:
        result = await doctor_in_process(url)
    assert result.code == 1, result.out
    assert len(result.failed) == 1, result.out
    assert result.failed[0].startswith(f"{step}: "), result.out
    assert detail in result.failed[0], result.out
    assert "fix: " in result.out
    assert result.out.rstrip().endswith("some checks failed")
    # the walk stops at a broken link of the discovery chain, but goes on past a bad token endpoint
    expected_passes = ALL_STEPS[:ALL_STEPS.index(step)]
    assert result.passed == expected_passes, result.out


async def test_issue_doctor_passed_an_issuer_with_a_trailing_slash_the_prm_agreed_on() -> None:
    """SPEC §9: SDKs reject an issuer with a trailing slash, even one the PRM and the metadata agree on."""
    async with serving(Flaws(issuer_slash=True, prm_issuer_slash=True)) as url:
        result = await doctor_in_process(url)
    assert result.code == 1, result.out
    assert len(result.failed) == 1, result.out
    assert result.failed[0].startswith("authorization-server metadata (RFC 8414): "), result.out
    assert "trailing slash" in result.failed[0], result.out
