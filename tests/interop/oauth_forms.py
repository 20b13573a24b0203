"""A scripted browser for OAuth cells: open the authorization URL, log in, approve, return the code.

It knows only what SPEC §5 fixes: the login form has fields ``email`` and ``password``, the
consent form has a ``decision`` button with value ``approve``, and every form carries hidden
inputs (the CSRF token) that must go back unchanged.  Everything else is read from the HTML with
``html.parser``: which form to submit, its method and action, its hidden and checked inputs.

It stops at the first redirect that leaves the authorization server for the client's redirect
URI (or, without one, for another origin) and carries ``code`` or ``error``.  With ``deliver`` it
then GETs that URL, which is how a browser hands the code to a desktop client's loopback
callback server (mcp-remote).

``python -m tests.interop.oauth_forms [--deliver] [--redirect-uri URI] URL`` prints one JSON line
``{"code", "state", "iss"}``; credentials come from TILL_INTEROP_EMAIL / TILL_INTEROP_PASSWORD.
It can stand in for ``$BROWSER`` (mcp-remote) or an SDK's redirect handler.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

MAX_HOPS = 20


class AuthorizationFailed(Exception):
    """The flow ended without a code: the server answered an error, or the pages did not lead on."""


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)      # successful controls but buttons
    buttons: list[tuple[str, str]] = field(default_factory=list)     # named submit controls
    names: set[str] = field(default_factory=set)                     # every control name, typed or not


class FormParser(HTMLParser):
    """Collects the forms of a page the way a browser would submit them (HTML §4.10.21.4)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._textarea: tuple[str, list[str]] | None = None
        self._select: str | None = None
        self._first_option: str | None = None
        self._selected: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._form = Form(action=a.get("action", ""), method=(a.get("method") or "get").lower())
            self.forms.append(self._form)
        elif self._form is not None and "disabled" not in a:
            if tag == "input":
                self._input(self._form, a)
            elif tag in ("button", "textarea", "select"):
                self._control(self._form, tag, a)
            elif tag == "option" and self._select is not None:
                self._option_tag(a)

    @staticmethod
    def _input(form: Form, a: dict[str, str]) -> None:
        name, kind = a.get("name", ""), a.get("type", "text").lower()
        if not name:
            return
        form.names.add(name)
        if kind in ("submit", "image"):
            form.buttons.append((name, a.get("value", "")))
        elif kind in ("checkbox", "radio"):
            if "checked" in a:
                form.fields.append((name, a.get("value", "on")))
        elif kind not in ("button", "reset", "file"):
            form.fields.append((name, a.get("value", "")))

    def _control(self, form: Form, tag: str, a: dict[str, str]) -> None:
        name = a.get("name", "")
        if not name:
            return
        form.names.add(name)
        if tag == "button" and a.get("type", "submit").lower() == "submit":
            form.buttons.append((name, a.get("value", "")))
        elif tag == "textarea":
            self._textarea = (name, [])
        elif tag == "select":
            self._select, self._first_option, self._selected = name, None, None

    def _option_tag(self, a: dict[str, str]) -> None:
        value = a.get("value", "")
        if self._first_option is None:
            self._first_option = value
        if "selected" in a:
            self._selected = value

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "textarea" and self._textarea is not None and self._form is not None:
            self._form.fields.append((self._textarea[0], "".join(self._textarea[1])))
            self._textarea = None
        elif tag == "select" and self._select is not None and self._form is not None:
            value = self._selected if self._selected is not None else self._first_option
            if value is not None:
                self._form.fields.append((self._select, value))
            self._select = None


def parse_forms(html: str) -> list[Form]:
    parser = FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


@dataclass(frozen=True)
class AuthorizationResult:
    code: str
    state: str | None
    iss: str | None
    redirect: str                  # the full redirect URL the server sent the browser to


def _login_data(form: Form, email: str, password: str) -> list[tuple[str, str]]:
    data = [(k, v) for k, v in form.fields if k not in ("email", "password")]
    data += [("email", email), ("password", password)]
    data += form.buttons[:1]
    return data


def _consent_data(form: Form) -> list[tuple[str, str]]:
    approve = [b for b in form.buttons if b[0] == "decision" and b[1] == "approve"]
    hidden_decision = [f for f in form.fields if f[0] == "decision"]
    if not approve and not hidden_decision:
        raise AuthorizationFailed("consent form has no decision=approve control")
    data = [(k, v) for k, v in form.fields if k != "decision"]
    return [*data, ("decision", "approve")]


class ScriptedBrowser:
    """One authorization flow, with its own cookie jar (the AS's session cookie lives there)."""

    def __init__(self, email: str, password: str, *, redirect_uri: str | None = None, timeout: float = 15,
                 client: httpx.AsyncClient | None = None) -> None:
        self.email, self.password, self.redirect_uri = email, password, redirect_uri
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._own_client = client is None
        self.visited: list[str] = []

    async def __aenter__(self) -> ScriptedBrowser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own_client:
            await self._client.aclose()

    def _is_final(self, url: str, server_origin: tuple[str, str]) -> bool:
        query = parse_qs(urlsplit(url).query)
        if "code" not in query and "error" not in query:
            return False
        if self.redirect_uri is not None:
            return url.split("?", 1)[0] == self.redirect_uri.split("?", 1)[0]
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc) != server_origin

    async def authorize(self, url: str) -> AuthorizationResult:
        start = urlsplit(url)
        origin = (start.scheme, start.netloc)
        submitted_login = 0
        response = await self._client.get(url)
        for _ in range(MAX_HOPS):
            self.visited.append(str(response.url))
            if response.is_redirect:
                target = urljoin(str(response.url), response.headers["location"])
                if self._is_final(target, origin):
                    return self._result(target)
                response = await self._client.get(target)
                continue
            if response.status_code != 200:
                raise AuthorizationFailed(f"{response.request.method} {response.url} answered "
                                          f"{response.status_code}: {response.text[:300]}")
            forms = parse_forms(response.text)
            login = next((f for f in forms if {"email", "password"} <= f.names), None)
            consent = next((f for f in forms if "decision" in f.names), None)
            if login is not None:
                submitted_login += 1
                if submitted_login > 1:
                    raise AuthorizationFailed("the login form came back: wrong email or password, or the CSRF "
                                              "token / session cookie was refused")
                response = await self._submit(response, login, _login_data(login, self.email, self.password))
            elif consent is not None:
                response = await self._submit(response, consent, _consent_data(consent))
            else:
                raise AuthorizationFailed(f"{response.url} has neither a login nor a consent form")
        raise AuthorizationFailed(f"no redirect with a code after {MAX_HOPS} steps: {self.visited}")

    async def _submit(self, page: httpx.Response, form: Form, data: list[tuple[str, str]]) -> httpx.Response:
        action = urljoin(str(page.url), form.action or str(page.url))
        headers = {"Referer": str(page.url)}
        parts = urlsplit(str(page.url))
        headers["Origin"] = f"{parts.scheme}://{parts.netloc}"           # what a browser sends on a POST
        if form.method == "post":
            return await self._client.post(action, data=dict(_ordered(data)), headers=headers)
        return await self._client.get(action, params=httpx.QueryParams(tuple(data)), headers=headers)

    @staticmethod
    def _result(url: str) -> AuthorizationResult:
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        if "error" in query:
            raise AuthorizationFailed(f"authorization server answered error={query['error']}: "
                                      f"{query.get('error_description', '')}")
        return AuthorizationResult(code=query["code"], state=query.get("state"), iss=query.get("iss"), redirect=url)

    async def deliver(self, result: AuthorizationResult) -> int:
        """Hand the redirect to the client's loopback callback, as the browser would."""
        response = await self._client.get(result.redirect)
        return response.status_code


def _ordered(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # a repeated name keeps its last value: httpx's dict form encoding cannot repeat keys
    seen: dict[str, str] = {}
    for k, v in pairs:
        seen[k] = v
    return list(seen.items())


async def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Fill the login and consent forms of an authorization URL")
    parser.add_argument("url")
    parser.add_argument("--deliver", action="store_true", help="GET the final redirect (loopback callback)")
    parser.add_argument("--redirect-uri", default=None)
    args = parser.parse_args(argv)
    email, password = os.environ.get("TILL_INTEROP_EMAIL"), os.environ.get("TILL_INTEROP_PASSWORD")
    if not email or not password:
        print(json.dumps({"error": "TILL_INTEROP_EMAIL and TILL_INTEROP_PASSWORD are required"}))
        return 2
    async with ScriptedBrowser(email, password, redirect_uri=args.redirect_uri) as browser:
        try:
            result = await browser.authorize(args.url)
            if args.deliver:
                await browser.deliver(result)
        except (AuthorizationFailed, httpx.HTTPError) as exc:
            print(json.dumps({"error": str(exc)}))
            return 1
    print(json.dumps({"code": result.code, "state": result.state, "iss": result.iss}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(sys.argv[1:])))
