"""Issue #4 and WP-09 in a real browser, through the balancer: log in, generate a personal token on
/settings/connector, copy it, use it against the gateway, then "Revoke & regenerate": the old token
is refused (401) and the new one works.  The token is shown once: not after a reload, the back
button or a new visit."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.stack import Stack
from tests.support import chromium

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.redis, pytest.mark.postgres,
              pytest.mark.timeout(180)]

LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


def new_merchant(stack: Stack) -> tuple[str, str]:
    """A merchant of its own in Other Store: "Revoke & regenerate" must not touch the session's tokens."""
    from till_auth.operations import create_merchant
    from till_auth.settings import AuthSettings
    from till_common.settings import load_settings

    email, password = f"connector-{secrets.token_hex(4)}@other.store", secrets.token_urlsafe(16)
    asyncio.run(create_merchant(load_settings(AuthSettings, stack.auth_environ()), email=email, password=password,
                                store_id=2, role="manager"))
    return email, password


def mcp(stack: Stack, token: str) -> httpx.Response:
    return httpx.post(stack.mcp_url, json=LIST, timeout=15, headers={"Authorization": f"Bearer {token}"})


def refused_within(stack: Stack, token: str, seconds: float = 15) -> int:
    deadline = time.monotonic() + seconds
    while True:
        status = mcp(stack, token).status_code
        if status == 401 or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def test_connector_page_generate_copy_use_regenerate(till_stack: Stack, tmp_path: Path) -> None:
    email, password = new_merchant(till_stack)
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1000, "height": 1400})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=till_stack.url)
        page = context.new_page()
        page.goto(f"{till_stack.url}/login?next=/settings/connector")
        page.fill("#email", email)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_selector("#generate")
        assert page.locator("#token").count() == 0

        page.click("#generate")
        page.wait_for_selector("#token")
        token = page.inner_text("#token").strip()
        assert token.startswith("till_pat_")
        page.click("button[data-copy=token]")
        # not page.wait_for_function: a string predicate is evaluated with eval(), which the page's
        # CSP (script-src 'nonce-…', no 'unsafe-eval') refuses once the first check comes back false
        expect(page.locator("button[data-copy=token]")).not_to_have_text("Copy token")
        copied = page.evaluate("navigator.clipboard.readText()")
        selected = page.evaluate("window.getSelection().toString()")
        assert selected.strip() == token                   # selected in any case (Ctrl+C works)
        assert copied.strip() == token, page.inner_text("button[data-copy=token]")   # and on the clipboard
        page.screenshot(path=str(tmp_path / "connector.png"), full_page=True)

        listed = mcp(till_stack, token)
        assert listed.status_code == 200, listed.text
        assert listed.json()["result"]["tools"]

        # WP-09: shown once — not after a reload, the back button, or a new visit
        page.reload()
        assert page.locator("#token").count() == 0
        assert token not in page.content()
        page.go_back()
        page.wait_for_load_state()
        assert token not in page.content()
        again = context.new_page()
        again.goto(f"{till_stack.url}/settings/connector")
        assert token not in again.content()
        again.close()

        page.goto(f"{till_stack.url}/settings/connector")
        page.click("#regenerate")
        page.wait_for_selector("#token")
        new_token = page.inner_text("#token").strip()
        assert new_token.startswith("till_pat_")
        assert new_token != token
        page.screenshot(path=str(tmp_path / "regenerated.png"), full_page=True)
        page.reload()                                     # no re-post: the new token survives a reload
        assert page.locator("#token").count() == 0
        context.close()

    assert refused_within(till_stack, token) == 401
    assert mcp(till_stack, new_token).status_code == 200
