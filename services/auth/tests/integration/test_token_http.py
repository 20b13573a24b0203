"""Token endpoint: TK rows over real HTTP (SQLite and PostgreSQL for the family logic)."""

from __future__ import annotations

import base64
import sqlite3
import threading
import time

import pytest


def _feed(srv, after: int = 0) -> list[dict]:
    return srv.internal().get("/internal/v1/revocations", params={"after": after}).json()["events"]


def test_tk01_code_replay_is_invalid_grant_and_revokes_the_family(auth_any, Flow) -> None:
    flow = Flow.start(auth_any)
    code, verifier = flow.code()
    first = flow.exchange(code, verifier)
    assert first.status_code == 200
    second = flow.exchange(code, verifier)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert second.headers["cache-control"] == "no-store"
    gid = __import__("jwt").decode(first.json()["access_token"], options={"verify_signature": False})["gid"]
    assert {"kind": "grant", "value": gid} in [{"kind": e["kind"], "value": e["value"]} for e in _feed(auth_any)]
    r = flow.refresh(first.json()["refresh_token"])
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


def test_tk03_wrong_missing_or_malformed_verifier(auth, Flow, helpers) -> None:
    flow = Flow.start(auth)
    for bad in (helpers.verifier_pair()[0], None, "a", "x" * 42, "y" * 129):
        code, _ = flow.code()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": flow.redirect_uri}
        if bad is not None:
            form["code_verifier"] = bad
        r = flow.token(**form)
        assert r.status_code == 400, bad
        assert r.json()["error"] == "invalid_grant"


def test_tk04_client_authentication_failures(auth, Flow) -> None:
    conf = Flow.start(auth, auth_method="client_secret_basic")
    code, verifier = conf.code()
    api = auth.http()
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": conf.redirect_uri}
    r = api.post("/mcp/oauth/token", data={**form, "client_id": "unknown"})
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    r = api.post("/mcp/oauth/token", data=form, auth=(conf.client_id, "wrong"))
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic")
    r = api.post("/mcp/oauth/token", data={**form, "client_id": conf.client_id, "client_secret": "wrong"})
    assert r.status_code == 401
    r = api.post("/mcp/oauth/token", data={**form, "client_secret": conf.client["client_secret"]},
                 auth=(conf.client_id, conf.client["client_secret"]))
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"
    r = api.post("/mcp/oauth/token", data=form, auth=(conf.client_id, conf.client["client_secret"]))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("grant_type", ["password", "client_credentials", "implicit",
                                        "urn:ietf:params:oauth:grant-type:device_code", None])
def test_tk05_unsupported_grant_types(auth, Flow, grant_type: str | None) -> None:
    flow = Flow.start(auth, login=False)
    form = {} if grant_type is None else {"grant_type": grant_type}
    r = flow.token(**form)
    assert r.status_code == 400
    assert r.json()["error"] == ("invalid_request" if grant_type is None else "unsupported_grant_type")


def test_tk06_form_only_no_store_everywhere_and_safe_descriptions(auth, Flow) -> None:
    flow = Flow.start(auth)
    code, verifier = flow.code()
    api = auth.http()
    r = api.post("/mcp/oauth/token", json={"grant_type": "authorization_code", "code": code,
                                           "client_id": flow.client_id, "code_verifier": verifier})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"
    assert api.get("/mcp/oauth/token").status_code == 405
    r = api.post("/mcp/oauth/token", content=f"grant_type=authorization_code&code={code}&code={code}"
                 f"&client_id={flow.client_id}", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.json()["error"] == "invalid_request"
    ok = flow.exchange(code, verifier)
    for resp in (r, ok):
        assert resp.headers["cache-control"] == "no-store"
        assert resp.headers["content-type"].startswith("application/json")
        desc = resp.json().get("error_description", "")
        assert not any(ch in desc for ch in "\r\n\t")


def test_tk07_resource_at_token_must_match_authorize(auth, Flow) -> None:
    flow = Flow.start(auth)
    code, verifier = flow.code(resource=auth.issuer + "/mcp")
    r = flow.exchange(code, verifier, resource=auth.issuer + "/mcp/sse")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_target"
    assert "access_token" not in r.json()


def test_tk08_refresh_reuse_after_grace_revokes_family(auth_any, Flow, monkeypatch) -> None:
    from till_auth.oauth import token as token_module

    flow = Flow.start(auth_any)
    tokens = flow.tokens()
    r1 = tokens["refresh_token"]
    r2 = flow.refresh(r1).json()["refresh_token"]
    monkeypatch.setattr(token_module, "GRACE", -1)      # "31 s later" without sleeping
    again = flow.refresh(r1)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert flow.refresh(r2).json()["error"] == "invalid_grant"
    gid = __import__("jwt").decode(tokens["access_token"], options={"verify_signature": False})["gid"]
    assert any(e["kind"] == "grant" and e["value"] == gid for e in _feed(auth_any))


def test_tk09_parallel_refreshes_and_replays_in_grace_get_the_same_successor(auth_any, Flow) -> None:
    flow = Flow.start(auth_any)
    r1 = flow.tokens()["refresh_token"]
    results: list = []

    def go() -> None:
        results.append(flow.refresh(r1))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    results += [flow.refresh(r1) for _ in range(5)]
    assert [r.status_code for r in results] == [200] * 7, [r.text for r in results]
    successors = {r.json()["refresh_token"] for r in results}
    assert len(successors) == 1
    assert not [e for e in _feed(auth_any) if e["kind"] == "grant"]
    r2 = successors.pop()
    assert flow.refresh(r2).status_code == 200          # the successor works: nothing was revoked


def test_tk09_grace_covers_only_the_current_successor(auth, Flow) -> None:
    flow = Flow.start(auth)
    r1 = flow.tokens()["refresh_token"]
    r2 = flow.refresh(r1).json()["refresh_token"]
    assert flow.refresh(r2).status_code == 200       # R2 → R3
    r = flow.refresh(r1)                             # R1 again: its successor is no longer current
    assert r.json()["error"] == "invalid_grant"


def test_tk11_other_client_and_wider_scope(auth, Flow) -> None:
    c = Flow.start(auth)
    c2 = Flow.start(auth, login=False)
    body = c.tokens(scope="products:read orders:read")
    assert body["scope"] == "products:read orders:read"
    r = c2.refresh(body["refresh_token"])
    assert r.json()["error"] == "invalid_grant"
    r = c.refresh(body["refresh_token"], scope="products:read products:write")
    assert r.json()["error"] == "invalid_scope"
    r = c.refresh(body["refresh_token"], scope="orders:read")
    assert r.status_code == 200
    assert r.json()["scope"] == "orders:read"


def test_tk12_refresh_after_user_store_and_client_revocation(auth, Flow) -> None:
    admin = auth.admin()
    for target in ("user_id", "store_id", "client_id"):
        flow = Flow.start(auth)
        refresh = flow.tokens()["refresh_token"]
        value = {"user_id": 1, "store_id": 1, "client_id": flow.client_id}[target]
        r = admin.post("/admin/v1/revocations", json={target: value})
        assert r.status_code == 200, r.text
        assert r.json()["revoked"] >= 1
        assert flow.refresh(refresh).json()["error"] == "invalid_grant", target
    flow = Flow.start(auth)
    refresh = flow.tokens()["refresh_token"]
    assert admin.delete(f"/admin/v1/clients/{flow.client_id}").status_code == 204
    r = flow.refresh(refresh)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


def test_token_issued_in_the_cutoff_second_survives_it(auth, Flow) -> None:
    import jwt

    flow = Flow.start(auth)
    code, verifier = flow.code()
    before = auth.admin().post("/admin/v1/revocations", json={"user_id": 1})
    assert before.status_code == 200
    cutoff = _feed(auth)[-1]["before"]
    # a code issued before the cutoff is dead, like every credential of that moment
    assert flow.exchange(code, verifier).json()["error"] == "invalid_grant"
    flow.login()                        # the admin revocation also ended the web session
    body = flow.tokens()
    iat = jwt.decode(body["access_token"], options={"verify_signature": False})["iat"]
    assert iat > cutoff


def test_sc01_database_holds_hashes_and_sealed_keys_only(auth, Flow) -> None:
    flow = Flow.start(auth, auth_method="client_secret_post")
    body = flow.tokens()
    pat = auth.http().post("/mcp/token", auth=("owner@demo.store", auth.settings.demo_password)).json()["token"]
    db_path = auth.settings.auth_database_url.split("///", 1)[1]
    time.sleep(0.1)
    with sqlite3.connect(db_path) as conn:
        dump = "\n".join(conn.iterdump())
    for secret in (body["refresh_token"], body["access_token"], flow.client["client_secret"],
                   flow.client["registration_access_token"], pat):
        assert secret not in dump
    assert "PRIVATE KEY" not in dump
    assert '"d"' not in dump
    assert "$argon2id$" in dump


def test_basic_credentials_are_form_urlencoded(auth, Flow) -> None:
    flow = Flow.start(auth, auth_method="client_secret_basic")
    code, verifier = flow.code()
    raw = base64.b64encode(f"{flow.client_id}:{flow.client['client_secret']}".encode()).decode()
    r = auth.http().post("/mcp/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                   "code_verifier": verifier, "redirect_uri": flow.redirect_uri},
                         headers={"Authorization": "Basic " + raw})
    assert r.status_code == 200


def _throttled_server(helpers, tmp_path, sqlite_template, **limits: int):
    import shutil

    if time.time() % 60 > 50:                  # fixed windows: do not straddle a minute boundary
        time.sleep(60.5 - time.time() % 60)
    port = helpers.free_port()
    db = tmp_path / "auth.db"
    shutil.copyfile(sqlite_template, db)
    return helpers.serve(helpers.make_settings(f"sqlite+aiosqlite:///{db}", port, **limits), port)


def test_ds05_failed_token_requests_are_throttled_per_ip(Flow, helpers, tmp_path, sqlite_template) -> None:
    srv = _throttled_server(helpers, tmp_path, sqlite_template, token_failures_per_minute=5)
    try:
        flow = Flow.start(srv, login=False)
        codes = [flow.token(grant_type="authorization_code", code=f"guess-{i}", code_verifier="v" * 43).status_code
                 for i in range(7)]
        assert codes[:5] == [400] * 5
        assert codes[-1] == 429
        r = flow.token(grant_type="authorization_code", code="x", code_verifier="v" * 43)
        assert r.json()["error"] == "slow_down"
        assert r.headers["retry-after"]
    finally:
        srv.stop()


def test_ds05_failed_token_requests_are_throttled_per_client_from_any_ip(Flow, helpers, tmp_path,
                                                                         sqlite_template) -> None:
    """Guesses spread over many addresses still meet the per-client_id limit; other clients and
    unknown ids are unaffected (unknown ids get no bucket at all, so they cannot fill the store)."""
    srv = _throttled_server(helpers, tmp_path, sqlite_template, token_failures_per_minute=1000,
                            client_token_failures_per_minute=5)
    try:
        c, c2 = Flow.start(srv, login=False), Flow.start(srv, login=False)
        internal = srv.settings.internal_token

        def guess(flow, i: int, **form: str):
            # through the gateway: the forwarded client IP counts, a different one each time
            return srv.http().post("/mcp/oauth/token", data={
                **flow.client_auth(), "grant_type": "authorization_code", "code": f"guess-{i}",
                "code_verifier": "v" * 43, **form},
                headers={"X-Till-Gateway": internal, "X-Forwarded-For": f"203.0.113.{i}"})

        codes = [guess(c, i).status_code for i in range(7)]
        assert codes[:5] == [400] * 5
        assert codes[5:] == [429, 429]
        refused = guess(c, 99)
        assert refused.json()["error"] == "slow_down"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["cache-control"] == "no-store"
        assert guess(c2, 100).status_code == 400                        # another client: its own bucket
        unknown = [srv.http().post("/mcp/oauth/token", data={
            "client_id": "nobody", "grant_type": "authorization_code", "code": "x", "code_verifier": "v" * 43},
            headers={"X-Till-Gateway": internal, "X-Forwarded-For": f"198.51.100.{i}"}).status_code
            for i in range(8)]
        assert unknown == [401] * 8
    finally:
        srv.stop()
