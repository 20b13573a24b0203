"""Client ID Metadata Documents (RG-07, RG-10) against a real document server on loopback."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

DOCS: dict[str, dict] = {}


class DocHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        doc = DOCS.get(self.path)
        body = json.dumps(doc).encode() if doc is not None else b"{}"
        self.send_response(200 if doc is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def docs() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), DocHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)
    DOCS.clear()


def start(sqlite_template, tmp_path, helpers, *, allow_private: bool):
    db = tmp_path / "auth.db"
    shutil.copyfile(sqlite_template, db)
    port = helpers.free_port()
    return helpers.serve(helpers.make_settings(f"sqlite+aiosqlite:///{db}", port,
                                               cimd_allow_private=allow_private), port)


def login(srv, helpers):
    browser = srv.http()
    page = browser.get("/login")
    browser.post("/login", data={"email": helpers.OWNER, "password": helpers.PASSWORD,
                                 "csrf": helpers.hidden(page.text, "csrf"), "next": ""})
    return browser


def params(client_id: str, challenge: str, redirect_uri: str = "http://127.0.0.1/cb") -> dict[str, str]:
    return {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
            "code_challenge": challenge, "code_challenge_method": "S256", "state": "s"}


def test_rg10_cimd_client_with_loopback_redirect_gets_consent_with_warning_and_a_token(
        docs, sqlite_template, tmp_path, helpers) -> None:
    url = docs + "/claude.json"
    DOCS["/claude.json"] = {"client_id": url, "client_name": "Claude", "redirect_uris": ["http://127.0.0.1/cb"]}
    srv = start(sqlite_template, tmp_path, helpers, allow_private=True)
    try:
        browser = login(srv, helpers)
        verifier, challenge = helpers.verifier_pair()
        page = browser.get("/mcp/oauth/authorize", params=params(url, challenge, "http://127.0.0.1:5555/cb"))
        assert page.status_code == 200, page.text
        assert 'id="local-warning"' in page.text
        assert "127.0.0.1" in page.text
        r = browser.post("/mcp/oauth/authorize/decision", data={
            "csrf": helpers.hidden(page.text, "csrf"), "request": helpers.hidden(page.text, "request"),
            "decision": "approve", "remember": "1"})
        code = helpers.query_of(r.headers["location"])["code"]
        tok = srv.http().post("/mcp/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                         "code_verifier": verifier, "client_id": url,
                                                         "redirect_uri": "http://127.0.0.1:5555/cb"})
        assert tok.status_code == 200, tok.text
        # never auto-approved, even after "remember"
        again = browser.get("/mcp/oauth/authorize", params=params(url, challenge))
        assert again.status_code == 200
    finally:
        srv.stop()


@pytest.mark.parametrize("case", ["id_mismatch", "trailing_slash", "secret", "secret_method", "redirect_not_listed",
                                  "missing"])
def test_rg07_bad_documents_show_an_error_page(docs, sqlite_template, tmp_path, helpers, case: str) -> None:
    url = docs + "/c.json"
    doc = {"client_id": url, "client_name": "X", "redirect_uris": ["https://client.example/cb"]}
    if case == "id_mismatch":
        doc["client_id"] = url + "?x=1"
    elif case == "trailing_slash":
        doc["client_id"] = url + "/"
    elif case == "secret":
        doc["client_secret"] = "s"
    elif case == "secret_method":
        doc["token_endpoint_auth_method"] = "client_secret_basic"
    if case != "missing":
        DOCS["/c.json"] = doc
    srv = start(sqlite_template, tmp_path, helpers, allow_private=True)
    try:
        browser = login(srv, helpers)
        _, challenge = helpers.verifier_pair()
        redirect = "https://evil.example/cb" if case == "redirect_not_listed" else "https://client.example/cb"
        r = browser.get("/mcp/oauth/authorize", params=params(url, challenge, redirect))
        assert r.status_code == 400
        assert "location" not in r.headers
    finally:
        srv.stop()


def test_cimd_on_private_addresses_is_refused_by_default(docs, sqlite_template, tmp_path, helpers) -> None:
    url = docs + "/c.json"
    DOCS["/c.json"] = {"client_id": url, "redirect_uris": ["https://client.example/cb"]}
    srv = start(sqlite_template, tmp_path, helpers, allow_private=False)
    try:
        browser = login(srv, helpers)
        _, challenge = helpers.verifier_pair()
        r = browser.get("/mcp/oauth/authorize", params=params(url, challenge, "https://client.example/cb"))
        assert r.status_code == 400
    finally:
        srv.stop()


def test_cimd_url_rules_without_io() -> None:
    from till_auth import cimd

    for bad in ("http://c.example/x.json", "https://c.example", "https://c.example/", "https://u@c.example/x",
                "https://c.example/x#f", "https://c.example/a/../b"):
        with pytest.raises(cimd.CimdError):
            cimd.check_url(bad, allow_private=False)
    assert cimd.check_url("https://c.example/x.json", allow_private=False) == ("c.example", 443)
    for ip in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "192.168.1.1", "::1", "fd00::1", "0.0.0.0"):
        assert not cimd.public_address(ip), ip
    assert cimd.public_address("93.184.216.34")


# --- DNS rebinding (issue #4): resolve once, check every address, connect only to those ---------

class RecordingHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.hits.append((self.path, self.headers.get("Host")))  # type: ignore[attr-defined]
        body = json.dumps(self.server.doc).encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recording_server() -> Iterator[object]:
    servers = []

    def start(address: str, doc: dict | None = None, port: int = 0) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer((address, port), RecordingHandler)
        server.hits = []  # type: ignore[attr-defined]
        server.doc = doc or {}  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def rebinding_lookup(first: str, then: str):
    """A resolver that answers ``first`` once and ``then`` ever after (a rebinding attacker's DNS)."""
    calls: list[str] = []

    async def lookup(host: str, port: int) -> list[tuple[int, str]]:
        calls.append(host)
        return [(socket.AF_INET, first if len(calls) == 1 else then)]

    return lookup, calls


@pytest.fixture
def loopback_as_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test wiring: 127.0.0.2 plays a public address, 127.0.0.1 the private target; http is allowed so
    that no TLS is needed (the address check itself stays on: allow_private=False)."""
    from till_auth import cimd

    original = cimd.check_url
    monkeypatch.setattr(cimd, "public_address", lambda ip: ip != "127.0.0.1")
    monkeypatch.setattr(cimd, "check_url", lambda url, allow_private: original(url, allow_private=True))


def test_cimd_dns_rebinding_cannot_reach_the_private_address(recording_server, loopback_as_public) -> None:
    from till_auth import cimd

    inside = recording_server("127.0.0.1", {"client_id": "secret"})
    port = inside.server_address[1]
    lookup, calls = rebinding_lookup("127.0.0.2", "127.0.0.1")
    with pytest.raises(cimd.CimdError, match="cannot fetch"):
        asyncio.run(cimd.fetch(f"http://client.test:{port}/doc.json", allow_private=False, lookup=lookup))
    assert calls == ["client.test"]                 # resolved exactly once
    assert inside.hits == []                        # the rebound address was never contacted


def test_cimd_connects_to_the_checked_address_with_the_name_as_host(recording_server, loopback_as_public) -> None:
    from till_auth import cimd

    doc = {"client_id": "x", "redirect_uris": ["https://c.example/cb"]}
    outside = recording_server("127.0.0.2", doc)
    port = outside.server_address[1]
    lookup, calls = rebinding_lookup("127.0.0.2", "127.0.0.1")
    got = asyncio.run(cimd.fetch(f"http://client.test:{port}/doc.json", allow_private=False, lookup=lookup))
    assert got == doc
    assert calls == ["client.test"]
    assert outside.hits == [("/doc.json", f"client.test:{port}")]     # Host keeps the name (and so SNI)


def test_cimd_any_private_answer_refuses_without_connecting(recording_server, loopback_as_public) -> None:
    from till_auth import cimd

    inside = recording_server("127.0.0.1")

    async def lookup(host: str, port: int) -> list[tuple[int, str]]:
        return [(socket.AF_INET, "127.0.0.2"), (socket.AF_INET, "127.0.0.1")]

    with pytest.raises(cimd.CimdError, match="private address"):
        asyncio.run(cimd.fetch(f"http://client.test:{inside.server_address[1]}/d.json", allow_private=False,
                               lookup=lookup))
    assert inside.hits == []
