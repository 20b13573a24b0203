"""SC-02 (auth side) and FT-07: the real ``till-auth`` process at debug level never logs a secret,
and a database failure during a token exchange answers in OAuth JSON without issuing anything."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


@dataclass
class Proc:
    url: str
    settings: Any
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return self.url

    def http(self, **kw: Any) -> httpx.Client:
        c = httpx.Client(base_url=self.url, follow_redirects=False, timeout=30, **kw)
        self.clients.append(c)
        return c


def spawn_auth(db: Path, helpers, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Proc, Path]:
    port = helpers.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILL_") or k.startswith("TILL_TEST_")}
    env.update(helpers.SECRETS)
    env.update({"TILL_AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "TILL_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "TILL_LOG_LEVEL": "debug"})
    log = tmp_path / "auth.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "till_auth", "--port", str(port)], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    settings = helpers.make_settings(f"sqlite+aiosqlite:///{db}", port)
    return proc, Proc(f"http://127.0.0.1:{port}", settings), log


def test_sc02_no_secret_reaches_the_log_at_debug_level(sqlite_template, tmp_path, helpers, Flow) -> None:
    db = tmp_path / "auth.db"
    shutil.copyfile(sqlite_template, db)
    proc, srv, log = spawn_auth(db, helpers, tmp_path)
    try:
        flow = Flow.start(srv, auth_method="client_secret_post")
        code, verifier = flow.code()
        body = flow.exchange(code, verifier).json()
        refreshed = flow.refresh(body["refresh_token"]).json()
        flow.exchange(code, verifier)                                   # replay: an error path
        flow.refresh("not-a-token")
        pat = srv.http().post("/mcp/token", auth=(helpers.OWNER, helpers.PASSWORD)).json()["token"]
        srv.http().post("/mcp/token", auth=(helpers.OWNER, "a-wrong-password"))
        metrics = srv.http().get("/metrics").text
    finally:
        for c in srv.clients:
            c.close()
        proc.terminate()
        proc.wait(15)
    text = log.read_text()
    assert "server process" in text            # the log file is the process's real output
    secrets = [code, verifier, body["access_token"], body["refresh_token"], refreshed["refresh_token"], pat,
               flow.client["client_secret"], flow.client["registration_access_token"], helpers.PASSWORD,
               "a-wrong-password", helpers.SECRETS["TILL_INTERNAL_TOKEN"], helpers.SECRETS["TILL_ADMIN_TOKEN"],
               helpers.SECRETS["TILL_KEY_ENCRYPTION_KEY"]]
    for secret in secrets:
        assert secret not in text
        assert secret not in metrics
    assert helpers.OWNER not in metrics
    assert flow.client_id not in metrics


def test_ft07_database_gone_during_token_exchange_is_oauth_json_and_issues_nothing(auth, Flow) -> None:
    flow = Flow.start(auth)
    code, verifier = flow.code()
    db = Path(auth.settings.auth_database_url.split("///", 1)[1])
    moved = db.with_suffix(".away")
    import sqlite3

    with sqlite3.connect(db) as conn:       # make the schema unusable for one request
        conn.execute("ALTER TABLE oauth_grants RENAME TO oauth_grants_away")
    try:
        r = flow.exchange(code, verifier)
        assert r.status_code == 503
        assert r.json()["error"] == "temporarily_unavailable"
        assert r.headers["cache-control"] == "no-store"
    finally:
        with sqlite3.connect(db) as conn:
            conn.execute("ALTER TABLE oauth_grants_away RENAME TO oauth_grants")
    assert not moved.exists()
    again = flow.exchange(code, verifier)   # rolled back: the code works once now
    assert again.status_code == 200, again.text
    assert flow.exchange(code, verifier).json()["error"] == "invalid_grant"
