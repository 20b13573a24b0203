"""Auth fixtures: the real app under uvicorn on a free loopback port, on a migrated, seeded database."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import importlib.util
import re
import secrets
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn

from till_auth import bootstrap
from till_auth.app import create_app
from till_auth.settings import AuthSettings

# pytest (importlib mode) registers the root conftest as module "conftest" only while it is the
# only conftest in the run; with this one present, `from conftest import …` in tests/e2e breaks.
# Register a copy of the root module under that name so both keep working.
if "conftest" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("conftest", Path(__file__).resolve().parents[3] / "conftest.py")
    assert _spec is not None
    assert _spec.loader is not None
    _root = importlib.util.module_from_spec(_spec)
    sys.modules["conftest"] = _root
    _spec.loader.exec_module(_root)

# the same values as the root conftest's SECRETS
SECRETS = {
    "TILL_INTERNAL_TOKEN": "internal-" + "i" * 40,
    "TILL_ADMIN_TOKEN": "admin-" + "a" * 40,
    "TILL_KEY_ENCRYPTION_KEY": "kek-" + "k" * 40,
    "TILL_DEMO_PASSWORD": "demo-password-for-tests",
}
PASSWORD = SECRETS["TILL_DEMO_PASSWORD"]


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
OWNER = "owner@demo.store"


def make_settings(db_url: str, port: int, **extra: Any) -> AuthSettings:
    return AuthSettings(internal_token=SECRETS["TILL_INTERNAL_TOKEN"], admin_token=SECRETS["TILL_ADMIN_TOKEN"],
                        key_encryption_key=SECRETS["TILL_KEY_ENCRYPTION_KEY"], public_url=f"http://127.0.0.1:{port}",
                        auth_database_url=db_url, demo_password=PASSWORD, **extra)


def prepare(settings: AuthSettings) -> None:
    async def run() -> None:
        await bootstrap.migrate(settings)
        await bootstrap.seed_demo(settings)

    asyncio.run(run())


@dataclass
class AuthServer:
    url: str
    settings: AuthSettings
    server: uvicorn.Server
    thread: threading.Thread
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return self.settings.public_url

    def http(self, **kw: Any) -> httpx.Client:
        c = httpx.Client(base_url=self.url, follow_redirects=False, timeout=30, **kw)
        self.clients.append(c)
        return c

    def admin(self) -> httpx.Client:
        return self.http(headers={"Authorization": f"Bearer {self.settings.admin_token}"})

    def internal(self) -> httpx.Client:
        return self.http(headers={"Authorization": f"Bearer {self.settings.internal_token}"})

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self.server.should_exit = True
        self.thread.join(20)


def serve(settings: AuthSettings, port: int) -> AuthServer:
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, lifespan="on", log_config=None,
                            access_log=False, proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("auth server did not start")
        time.sleep(0.02)
    return AuthServer(f"http://127.0.0.1:{port}", settings, server, thread)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated and seeded once per run (argon2 hashing is the slow part); each test copies it."""
    path = tmp_path_factory.mktemp("auth-template") / "auth.db"
    prepare(make_settings(f"sqlite+aiosqlite:///{path}", 1))
    return path


@pytest.fixture
def auth(tmp_path: Path, sqlite_template: Path) -> Iterator[AuthServer]:
    """The auth service on SQLite."""
    port = free_port()
    db = tmp_path / "auth.db"
    shutil.copyfile(sqlite_template, db)
    settings = make_settings(f"sqlite+aiosqlite:///{db}", port)
    srv = serve(settings, port)
    yield srv
    srv.stop()


@pytest.fixture
def auth_any(database_url: str) -> Iterator[AuthServer]:
    """The auth service on each supported database (SQLite and PostgreSQL)."""
    port = free_port()
    settings = make_settings(database_url, port)
    prepare(settings)
    srv = serve(settings, port)
    yield srv
    srv.stop()


# --- an OAuth client driving the flow like claude.ai would ---------------------------------------

def verifier_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)[:64]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def hidden(page: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert m, f"no hidden {name} in page"
    return html.unescape(m.group(1))


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


@dataclass
class Flow:
    srv: AuthServer
    browser: httpx.Client
    client: dict[str, Any]
    redirect_uri: str

    @classmethod
    def start(cls, srv: AuthServer, *, redirect_uri: str = "https://client.example/cb",
              auth_method: str = "none", email: str = OWNER, login: bool = True, **meta: Any) -> Flow:
        api = srv.http()
        r = api.post("/mcp/oauth/register", json={"client_name": "Test client", "redirect_uris": [redirect_uri],
                                                  "token_endpoint_auth_method": auth_method, **meta})
        assert r.status_code == 201, r.text
        flow = cls(srv, srv.http(), r.json(), redirect_uri)
        if login:
            flow.login(email)
        return flow

    @property
    def client_id(self) -> str:
        return str(self.client["client_id"])

    def login(self, email: str = OWNER, password: str = PASSWORD) -> httpx.Response:
        page = self.browser.get("/login").text
        return self.browser.post("/login", data={"email": email, "password": password,
                                                 "csrf": hidden(page, "csrf"), "next": "/settings/connector"})

    def authorize_params(self, challenge: str, **extra: str) -> dict[str, str]:
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                  "code_challenge": challenge, "code_challenge_method": "S256", "state": "xyz"}
        params.update(extra)
        return {k: v for k, v in params.items() if v is not None}

    def approve(self, challenge: str, decision: str = "approve", **extra: str) -> str:
        r = self.browser.get("/mcp/oauth/authorize", params=self.authorize_params(challenge, **extra))
        assert r.status_code == 200, (r.status_code, r.headers.get("location"), r.text[:500])
        r2 = self.browser.post("/mcp/oauth/authorize/decision",
                               data={"csrf": hidden(r.text, "csrf"), "request": hidden(r.text, "request"),
                                     "decision": decision})
        assert r2.status_code == 302, r2.text[:500]
        return r2.headers["location"]

    def code(self, **extra: str) -> tuple[str, str]:
        verifier, challenge = verifier_pair()
        location = self.approve(challenge, **extra)
        q = query_of(location)
        assert "code" in q, location
        return q["code"], verifier

    def client_auth(self) -> dict[str, str]:
        data = {"client_id": self.client_id}
        if "client_secret" in self.client:
            data["client_secret"] = self.client["client_secret"]
        return data

    def token(self, **form: str) -> httpx.Response:
        return self.srv.http().post("/mcp/oauth/token", data={**self.client_auth(), **form})

    def exchange(self, code: str, verifier: str, **extra: str) -> httpx.Response:
        return self.token(grant_type="authorization_code", code=code, code_verifier=verifier,
                          redirect_uri=self.redirect_uri, **extra)

    def tokens(self, **extra: str) -> dict[str, Any]:
        code, verifier = self.code(**extra)
        r = self.exchange(code, verifier)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def refresh(self, refresh_token: str, **extra: str) -> httpx.Response:
        return self.token(grant_type="refresh_token", refresh_token=refresh_token, **extra)


@pytest.fixture(name="Flow")
def flow_class() -> type[Flow]:
    """Test modules cannot import this conftest by name: the helper class comes as a fixture."""
    return Flow


@pytest.fixture(name="helpers")
def helpers_fixture() -> Any:
    import types

    return types.SimpleNamespace(verifier_pair=verifier_pair, hidden=hidden, query_of=query_of, PASSWORD=PASSWORD,
                                 OWNER=OWNER, make_settings=make_settings, prepare=prepare, serve=serve,
                                 free_port=free_port, SECRETS=SECRETS)
