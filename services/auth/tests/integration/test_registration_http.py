"""RFC 7591 / 7592 over HTTP (RG-01..RG-06)."""

from __future__ import annotations

import pytest

GOOD = ["https://claude.ai/api/mcp/auth_callback", "http://127.0.0.1/cb", "http://[::1]:8080/cb",
        "http://localhost:33418/cb", "cursor://anysphere.cursor-retrieval/oauth/callback"]


def test_rg02_good_redirects_register_public_and_confidential(auth) -> None:
    api = auth.http()
    r = api.post("/mcp/oauth/register", json={"client_name": "Claude", "redirect_uris": GOOD,
                                              "token_endpoint_auth_method": "none"})
    assert r.status_code == 201
    body = r.json()
    assert body["client_id"]
    assert isinstance(body["client_id_issued_at"], int)
    assert body["redirect_uris"] == GOOD
    assert body["client_name"] == "Claude"
    assert "client_secret" not in body
    assert body["registration_client_uri"] == f"{auth.issuer}/mcp/oauth/register/{body['client_id']}"
    assert r.headers["cache-control"] == "no-store"
    conf = api.post("/mcp/oauth/register", json={"redirect_uris": GOOD[:1],
                                                 "token_endpoint_auth_method": "client_secret_post"}).json()
    assert conf["client_secret"]
    assert conf["client_secret_expires_at"] == 0


@pytest.mark.parametrize("uri", ["http://evil.example/cb", "https://*.c.example/cb", "https://c.example/cb#f", "/cb",
                                 "javascript:alert(1)", "JavaScript:alert(1)", "\tjavascript:alert(1)",
                                 "data:text/html,x", "file:///etc/passwd", "http://localhost.evil.example/cb",
                                 "http://127.0.0.1.nip.io/cb", "https://u@c.example/cb"])
def test_rg01_bad_redirect_is_refused_and_nothing_stored(auth, uri: str) -> None:
    before = len(auth.admin().get("/admin/v1/clients").json())
    r = auth.http().post("/mcp/oauth/register", json={"redirect_uris": ["https://ok.example/cb", uri]})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_redirect_uri"
    assert len(auth.admin().get("/admin/v1/clients").json()) == before


def test_rg03_bad_metadata_and_malformed_json(auth) -> None:
    api = auth.http()
    assert api.post("/mcp/oauth/register", json={"client_name": "x"}).json()["error"] == "invalid_redirect_uri"
    for extra in ({"grant_types": ["implicit"]}, {"grant_types": ["password"]}, {"response_types": ["token"]},
                  {"token_endpoint_auth_method": "private_key_jwt"}):
        r = api.post("/mcp/oauth/register", json={"redirect_uris": GOOD[:1], **extra})
        assert r.json()["error"] == "invalid_client_metadata", extra
    r = api.post("/mcp/oauth/register", content=b"{", headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_client_metadata")


def test_rg04_server_assigns_ids_and_ignores_unknown_fields(auth, Flow, helpers) -> None:
    r = auth.http().post("/mcp/oauth/register", json={
        "redirect_uris": ["https://client.example/cb"], "client_id": "chosen", "client_secret": "chosen-secret",
        "registration_access_token": "chosen-rat", "skip_consent": True, "x_admin": True,
        "token_endpoint_auth_method": "none"})
    body = r.json()
    assert body["client_id"] != "chosen"
    assert body["registration_access_token"] != "chosen-rat"
    assert "client_secret" not in body
    assert "skip_consent" not in body
    assert "x_admin" not in body
    flow = Flow(auth, auth.http(), body, "https://client.example/cb")
    flow.login()
    _, challenge = helpers.verifier_pair()
    assert flow.browser.get("/mcp/oauth/authorize", params=flow.authorize_params(challenge)).status_code == 200


def test_rg05_registration_management(auth, Flow) -> None:
    c = Flow.start(auth)
    c2 = Flow.start(auth, login=False)
    uri = c.client["registration_client_uri"].replace(auth.issuer, "")
    api = auth.http()
    for header in (None, "Bearer wrong", f"Bearer {c2.client['registration_access_token']}"):
        r = api.get(uri, headers={"Authorization": header} if header else {})
        assert r.status_code == 401
        assert r.json()["error"] == "invalid_token"
        assert r.headers["www-authenticate"].startswith("Bearer")
    auth_header = {"Authorization": f"Bearer {c.client['registration_access_token']}"}
    assert api.get(uri, headers=auth_header).json()["client_id"] == c.client_id
    r = api.put(uri, headers=auth_header, json={"client_id": "other", "redirect_uris": [c.redirect_uri]})
    assert r.json()["error"] == "invalid_client_metadata"
    r = api.put(uri, headers=auth_header, json={"client_id": c.client_id, "redirect_uris": ["javascript:x"]})
    assert r.json()["error"] == "invalid_redirect_uri"
    assert api.get(uri, headers=auth_header).json()["redirect_uris"] == [c.redirect_uri]
    r = api.put(uri, headers=auth_header, json={"client_id": c.client_id, "client_name": "Renamed",
                                                "redirect_uris": [c.redirect_uri, "https://client.example/cb2"]})
    assert r.status_code == 200
    assert r.json()["client_name"] == "Renamed"
    refresh = c.tokens()["refresh_token"]
    assert api.delete(uri, headers=auth_header).status_code == 204
    r = c.refresh(refresh)
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
    events = auth.internal().get("/internal/v1/revocations").json()["events"]
    assert events[-1]["kind"] == "client"
    assert events[-1]["value"] == c.client_id


def test_rg06_registration_rate_limit_per_ip(sqlite_template, tmp_path, helpers) -> None:
    import shutil

    db = tmp_path / "auth.db"
    shutil.copyfile(sqlite_template, db)
    port = helpers.free_port()
    srv = helpers.serve(helpers.make_settings(f"sqlite+aiosqlite:///{db}", port, registrations_per_minute=3), port)
    try:
        import time

        if time.time() % 60 > 50:            # fixed one-minute windows: do not straddle a boundary
            time.sleep(60.5 - time.time() % 60)
        api = srv.http()
        body = {"redirect_uris": ["https://c.example/cb"], "token_endpoint_auth_method": "none"}
        codes = [api.post("/mcp/oauth/register", json=body).status_code for _ in range(5)]
        assert codes[:3] == [201, 201, 201]
        last = api.post("/mcp/oauth/register", json=body)
        assert last.status_code == 429
        assert 1 <= int(last.headers["retry-after"]) <= 60
        # behind the gateway, the forwarded IP counts, but only with the gateway's secret
        forged = {"X-Forwarded-For": "203.0.113.9", "X-Till-Gateway": "wrong"}
        assert api.post("/mcp/oauth/register", json=body, headers=forged).status_code == 429
        via_gateway = {"X-Forwarded-For": "203.0.113.9", "X-Till-Gateway": srv.settings.internal_token}
        assert api.post("/mcp/oauth/register", json=body, headers=via_gateway).status_code == 201
    finally:
        srv.stop()


def test_rg06_unused_clients_are_reaped(auth, Flow) -> None:
    import asyncio
    import time

    from till_auth import maintenance
    from till_auth.registry import Registry

    flow = Flow.start(auth, login=False)
    used = Flow.start(auth)
    used.tokens()
    reg = Registry.build(auth.settings)

    async def sweep() -> list[str]:
        try:
            return await maintenance.sweep(reg, now=int(time.time()) + 31 * 86400)
        finally:
            await reg.close()

    reaped = asyncio.run(sweep())
    assert flow.client_id in reaped
    r = flow.token(grant_type="authorization_code", code="x", code_verifier="y" * 43)
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
