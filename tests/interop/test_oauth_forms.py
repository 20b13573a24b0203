"""The scripted browser against a small fake authorization server (aiohttp, real HTTP on 127.0.0.1).

The fake keeps to SPEC §5 and nothing more of Till: a login form with ``email`` / ``password``,
a consent form with ``decision=approve|deny`` buttons, a CSRF token in a hidden input bound to a
cookie on every form, a session cookie after login, and a redirect with ``code``, ``state`` and
``iss`` (RFC 9207).  Markup details (ids, layout, extra fields) are deliberately different from
anything Till renders.
"""

from __future__ import annotations

import html
import json
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import pytest
from aiohttp import web

from tests.interop.oauth_forms import AuthorizationFailed, ScriptedBrowser, parse_forms
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
EMAIL, PASSWORD = "owner@demo.store", "correct horse battery staple"


@dataclass
class FakeAS:
    base: str
    decision: str = "approve"               # what the fake's consent expects to be approved
    submitted: list[dict[str, str]] = field(default_factory=list)
    callbacks: list[dict[str, str]] = field(default_factory=list)
    csrf: dict[str, str] = field(default_factory=dict)        # pre-session cookie -> token
    sessions: set[str] = field(default_factory=set)

    def authorize_url(self, redirect_uri: str, state: str = "st-123") -> str:
        return self.base + "/oauth/authorize?" + urlencode(
            {"response_type": "code", "client_id": "c1", "redirect_uri": redirect_uri, "state": state,
             "code_challenge": "x" * 43, "code_challenge_method": "S256", "scope": "products:read"})


def _page(body: str) -> web.Response:
    return web.Response(text=f"<!doctype html><html><body>{body}</body></html>", content_type="text/html")


def _csrf(fake: FakeAS, request: web.Request, response_cookies: dict[str, str]) -> str:
    pre = request.cookies.get("pre") or secrets.token_hex(8)
    response_cookies["pre"] = pre
    return fake.csrf.setdefault(pre, secrets.token_urlsafe(16))


def _csrf_ok(fake: FakeAS, request: web.Request, form: dict[str, str]) -> bool:
    pre = request.cookies.get("pre", "")
    return bool(pre) and fake.csrf.get(pre) == form.get("csrf_token") and \
        request.headers.get("Origin") == fake.base


def build_app(fake: FakeAS) -> web.Application:
    async def authorize(request: web.Request) -> web.Response:
        if request.cookies.get("sid") not in fake.sessions:
            raise web.HTTPFound("/login?" + urlencode({"next": str(request.rel_url)}))
        cookies: dict[str, str] = {}
        token = _csrf(fake, request, cookies)
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in request.query.items())
        resp = _page(
            "<h1>Allow <b>Claude</b> to use your store?</h1>"
            '<form class="consent" method="POST" action="/oauth/authorize/decision">'
            f'<input type="hidden" name="csrf_token" value="{token}">{hidden}'
            '<label><input type="checkbox" name="remember" value="yes" checked> remember</label>'
            '<label><input type="checkbox" name="marketing" value="yes"> marketing</label>'
            '<input type="text" name="disabled_thing" value="x" disabled>'
            '<button type="submit" name="decision" value="deny">Deny</button>'
            '<button type="submit" name="decision" value="approve">Approve</button>'
            "</form>")
        for k, v in cookies.items():
            resp.set_cookie(k, v, httponly=True)
        return resp

    async def decision(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        fake.submitted.append({"page": "consent", **form})
        if request.cookies.get("sid") not in fake.sessions or not _csrf_ok(fake, request, form):
            return web.Response(status=403, text="csrf")
        target = form["redirect_uri"]
        if form.get("decision") != fake.decision:
            raise web.HTTPFound(target + "?" + urlencode({"error": "access_denied", "state": form["state"]}))
        raise web.HTTPFound(target + "?" + urlencode({"code": "code-" + secrets.token_hex(4), "state": form["state"],
                                                       "iss": fake.base}))

    async def login_page(request: web.Request, failed: bool = False) -> web.Response:
        cookies: dict[str, str] = {}
        token = _csrf(fake, request, cookies)
        error = '<p class="err">Wrong email or password</p>' if failed else ""
        resp = _page(
            f'{error}<form id="login" method="post">'
            f'<input type="hidden" name="csrf_token" value="{token}">'
            f'<input type="hidden" name="next" value="{html.escape(request.query.get("next", "/"))}">'
            '<input type="email" name="email" autocomplete="username">'
            '<input type="password" name="password">'
            '<select name="locale"><option value="de">de</option><option value="en" selected>en</option></select>'
            '<textarea name="note">a note</textarea>'
            '<input type="submit" value="Log in"></form>')
        for k, v in cookies.items():
            resp.set_cookie(k, v, httponly=True)
        return resp

    async def login(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        fake.submitted.append({"page": "login", **form})
        if not _csrf_ok(fake, request, form):
            return web.Response(status=403, text="csrf")
        if (form.get("email"), form.get("password")) != (EMAIL, PASSWORD):
            return await login_page(request, failed=True)
        sid = secrets.token_hex(8)
        fake.sessions.add(sid)
        resp = web.HTTPSeeOther(form["next"])
        resp.set_cookie("sid", sid, httponly=True)
        raise resp

    async def callback(request: web.Request) -> web.Response:
        fake.callbacks.append(dict(request.query))
        return web.Response(text="You can close this window.")

    app = web.Application()
    app.router.add_get("/oauth/authorize", authorize)
    app.router.add_post("/oauth/authorize/decision", decision)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_get("/oauth/callback", callback)
    return app


@pytest.fixture
async def fake_as() -> AsyncIterator[FakeAS]:
    port = free_port()
    fake = FakeAS(base=f"http://127.0.0.1:{port}")
    runner = web.AppRunner(build_app(fake))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield fake
    await runner.cleanup()


def _callback(fake: FakeAS) -> str:
    # "localhost" against an AS on 127.0.0.1: another origin, as a desktop client's loopback callback is
    return fake.base.replace("127.0.0.1", "localhost") + "/oauth/callback"


async def test_browser_logs_in_approves_and_returns_code_state_and_iss(fake_as: FakeAS) -> None:
    redirect = "http://127.0.0.1:53682/callback"        # nothing listens: the browser must stop before it
    async with ScriptedBrowser(EMAIL, PASSWORD, redirect_uri=redirect) as browser:
        result = await browser.authorize(fake_as.authorize_url(redirect, state="s-42"))
    assert result.code.startswith("code-")
    assert (result.state, result.iss) == ("s-42", fake_as.base)
    assert result.redirect.startswith(redirect + "?")
    login, consent = fake_as.submitted
    assert (login["email"], login["password"]) == (EMAIL, PASSWORD)
    assert (login["locale"], login["note"]) == ("en", "a note")      # selected option and textarea go back
    assert consent["decision"] == "approve"
    assert consent["remember"] == "yes"
    assert "marketing" not in consent                                    # unchecked
    assert "disabled_thing" not in consent                               # disabled
    assert consent["state"] == "s-42"                                    # hidden inputs return unchanged


async def test_browser_without_redirect_uri_stops_at_the_first_other_origin(fake_as: FakeAS) -> None:
    async with ScriptedBrowser(EMAIL, PASSWORD) as browser:
        result = await browser.authorize(fake_as.authorize_url(_callback(fake_as)))
        assert fake_as.callbacks == []
        assert await browser.deliver(result) == 200
    assert fake_as.callbacks == [{"code": result.code, "state": "st-123", "iss": fake_as.base}]


async def test_wrong_password_fails_instead_of_looping(fake_as: FakeAS) -> None:
    async with ScriptedBrowser(EMAIL, "wrong") as browser:
        with pytest.raises(AuthorizationFailed, match="login form came back"):
            await browser.authorize(fake_as.authorize_url(_callback(fake_as)))
    assert [s["page"] for s in fake_as.submitted] == ["login"]


async def test_error_redirect_is_reported_with_its_code(fake_as: FakeAS) -> None:
    fake_as.decision = "deny"            # the fake now treats "approve" as the wrong button
    async with ScriptedBrowser(EMAIL, PASSWORD) as browser:
        with pytest.raises(AuthorizationFailed, match="error=access_denied"):
            await browser.authorize(fake_as.authorize_url(_callback(fake_as)))


async def test_a_page_without_forms_fails_with_its_url(fake_as: FakeAS) -> None:
    async with ScriptedBrowser(EMAIL, PASSWORD) as browser:
        with pytest.raises(AuthorizationFailed, match="answered 404"):
            await browser.authorize(fake_as.base + "/nowhere")


async def test_command_line_browser_delivers_the_code_to_the_callback(fake_as: FakeAS) -> None:
    """The form used by mcp-remote's $BROWSER and the TS client's --authorize-cmd: a real process."""
    import anyio

    env = {"TILL_INTEROP_EMAIL": EMAIL, "TILL_INTEROP_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin"}
    url = fake_as.authorize_url(_callback(fake_as))
    proc = await anyio.run_process([sys.executable, "-m", "tests.interop.oauth_forms", "--deliver", url],
                                   cwd=ROOT, env=env, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    answer = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert answer["state"] == "st-123"
    assert fake_as.callbacks == [{"code": answer["code"], "state": "st-123", "iss": fake_as.base}]


def test_command_line_browser_needs_credentials() -> None:
    proc = subprocess.run([sys.executable, "-m", "tests.interop.oauth_forms", "http://127.0.0.1:9/x"], cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "TILL_INTEROP_EMAIL" in json.loads(proc.stdout)["error"]


def test_parse_forms_submits_what_a_browser_would() -> None:
    forms = parse_forms(
        '<form action="/a" method="POST"><input name="h" type="hidden" value="1&amp;2">'
        '<input type="radio" name="r" value="a"><input type="radio" name="r" value="b" checked>'
        '<input type="checkbox" name="c">'
        '<select name="s"><option>first</option><option>second</option></select>'
        '<input type="file" name="f"><input type="reset" name="x">'
        '<button name="go" value="yes">Go</button><button type="button" name="no">No</button></form>'
        "<form><input name=q></form>")
    first, second = forms
    assert (first.action, first.method) == ("/a", "post")
    assert first.fields == [("h", "1&2"), ("r", "b"), ("s", "")]   # an option without value= yields ""
    assert first.buttons == [("go", "yes")]
    assert (second.method, second.fields) == ("get", [("q", "")])
