"""RFC 7009 revocation, the revocation feed, Redis pushes, introspection and the admin API."""

from __future__ import annotations

import json
import threading
import time

import jwt
import pytest
import redis

from till_common.protocol.internal import Introspection, RevocationEvent, RevocationPage, revocation_channel


def feed(srv, after: int = 0) -> RevocationPage:
    import msgspec

    r = srv.internal().get("/internal/v1/revocations", params={"after": after})
    assert r.status_code == 200
    return msgspec.json.decode(r.content, type=RevocationPage)


def test_tk13_revoke_endpoint(auth, Flow) -> None:
    c = Flow.start(auth)
    c2 = Flow.start(auth, login=False)
    body = c.tokens()
    api = auth.http()
    for token in ("random-string", "till_pat_unknown"):
        r = api.post("/mcp/oauth/revoke", data={"token": token, "client_id": c.client_id})
        assert (r.status_code, r.content) == (200, b"")
    r = api.post("/mcp/oauth/revoke", data={"token": "x", "token_type_hint": "weird", "client_id": c.client_id})
    assert r.status_code == 200
    # C2 may not revoke C's refresh token; it stays valid
    r = api.post("/mcp/oauth/revoke", data={"token": body["refresh_token"], "client_id": c2.client_id})
    assert r.status_code == 400
    refreshed = c.refresh(body["refresh_token"])
    assert refreshed.status_code == 200
    current = refreshed.json()
    r = api.post("/mcp/oauth/revoke", data={"token": current["refresh_token"], "client_id": c.client_id,
                                            "token_type_hint": "refresh_token"})
    assert r.status_code == 200
    assert c.refresh(current["refresh_token"]).json()["error"] == "invalid_grant"
    gid = jwt.decode(current["access_token"], options={"verify_signature": False})["gid"]
    assert any(e.kind == "grant" and e.value == gid for e in feed(auth).events)
    # revoking an already revoked token is still 200
    assert api.post("/mcp/oauth/revoke", data={"token": current["refresh_token"],
                                               "client_id": c.client_id}).status_code == 200


def test_revoke_an_access_token_announces_its_jti(auth, Flow) -> None:
    c = Flow.start(auth)
    access = c.tokens()["access_token"]
    r = auth.http().post("/mcp/oauth/revoke", data={"token": access, "client_id": c.client_id})
    assert r.status_code == 200
    jti = jwt.decode(access, options={"verify_signature": False})["jti"]
    assert any(e.kind == "token" and e.value == jti for e in feed(auth).events)
    c2 = Flow.start(auth, login=False)
    r = auth.http().post("/mcp/oauth/revoke", data={"token": c.tokens()["access_token"], "client_id": c2.client_id})
    assert r.status_code == 400


def test_feed_is_ordered_and_paged_by_cursor(auth) -> None:
    admin = auth.admin()
    for user in (2, 3):
        assert admin.post("/admin/v1/revocations", json={"user_id": user}).status_code == 200
    page = feed(auth)
    assert [e.value for e in page.events] == ["2", "3"]
    assert [e.seq for e in page.events] == sorted(e.seq for e in page.events)
    assert page.cursor == page.events[-1].seq
    later = feed(auth, page.cursor)
    assert later.events == []
    assert later.cursor == page.cursor
    assert all(e.at.endswith("Z") for e in page.events)
    assert auth.http().get("/internal/v1/revocations").status_code == 401


def test_revocations_are_published_on_redis_after_commit(redis_url, redis_namespace, sqlite_template, tmp_path,
                                                         helpers) -> None:
    import shutil

    db = tmp_path / "auth.db"
    shutil.copyfile(sqlite_template, db)
    port = helpers.free_port()
    settings = helpers.make_settings(f"sqlite+aiosqlite:///{db}", port, redis_url=redis_url,
                                     redis_namespace=redis_namespace)
    srv = helpers.serve(settings, port)
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    try:
        pubsub.subscribe(revocation_channel(redis_namespace))
        deadline = time.monotonic() + 5
        while pubsub.get_message(timeout=0.1) is None and time.monotonic() < deadline:
            pass
        r = srv.admin().post("/admin/v1/revocations", json={"store_id": 2})
        assert r.status_code == 200
        message = None
        deadline = time.monotonic() + 5
        while message is None and time.monotonic() < deadline:
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        assert message is not None
        import msgspec

        event = msgspec.json.decode(message["data"], type=RevocationEvent)
        assert (event.kind, event.value) == ("store", "2")
        assert event.seq == feed(srv).events[-1].seq
    finally:
        pubsub.close()
        client.close()
        srv.stop()


def test_introspection_of_personal_tokens(auth) -> None:
    import msgspec

    minted = auth.http().post("/mcp/token", auth=("support@demo.store", auth.settings.demo_password)).json()
    internal = auth.internal()
    r = internal.post("/internal/v1/introspect", data={"token": minted["token"]})
    info = msgspec.json.decode(r.content, type=Introspection)
    assert info.active
    assert info.token_kind == "pat"
    assert info.client_id is None
    assert (info.sub, info.store_id, info.role, info.jti) == ("2", 1, "support", minted["token_id"])
    assert set(info.scope.split()) == {"products:read", "orders:read", "orders:write", "customers:read",
                                       "customers:write"}
    assert info.exp - info.iat == 365 * 24 * 3600
    assert auth.http().post("/internal/v1/introspect", data={"token": minted["token"]}).status_code == 401
    r = auth.admin().post("/admin/v1/revocations", json={"token_id": minted["token_id"]})
    assert r.json()["revoked"] == 1
    assert json.loads(internal.post("/internal/v1/introspect", data={"token": minted["token"]}).content) == {
        "active": False}


def test_sc04_pats_are_long_random_and_guesses_are_inactive(auth) -> None:
    api = auth.http()
    tokens = {api.post("/mcp/token", auth=("owner@demo.store", auth.settings.demo_password)).json()["token"]
              for _ in range(5)}
    assert len(tokens) == 5
    for t in tokens:
        assert t.startswith("till_pat_")
        assert len(t) - len("till_pat_") >= 43          # 32 random bytes, base64url
    for guess in ("till_pat_" + "A" * 43, "garbage", ""):
        r = auth.internal().post("/internal/v1/introspect", data={"token": guess})
        assert r.json() == {"active": False}


def test_pat_dies_on_user_revocation_and_a_new_one_in_the_same_second_lives(auth) -> None:
    api = auth.http()
    creds = ("owner@demo.store", auth.settings.demo_password)
    old = api.post("/mcp/token", auth=creds).json()["token"]
    assert auth.admin().post("/admin/v1/revocations", json={"user_id": 1}).status_code == 200
    new = api.post("/mcp/token", auth=creds).json()["token"]
    internal = auth.internal()
    assert internal.post("/internal/v1/introspect", data={"token": old}).json() == {"active": False}
    info = internal.post("/internal/v1/introspect", data={"token": new}).json()
    assert info["active"] is True
    assert info["iat"] > feed(auth).events[-1].before


@pytest.mark.parametrize("header", [None, "Bearer " + "x" * 46, "Bearer short", "admin-" + "a" * 40,
                                    "Basic YWRtaW46YWRtaW4="])
def test_sc05_admin_api_refuses_wrong_tokens(auth, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    api = auth.http(headers=headers)
    assert api.get("/admin/v1/clients").status_code == 401
    assert api.post("/admin/v1/revocations", json={"user_id": 1}).status_code == 401
    assert auth.http().get("/admin/v1/clients", params={"access_token": auth.settings.admin_token}).status_code == 401


def test_admin_revocation_needs_exactly_one_target(auth) -> None:
    admin = auth.admin()
    assert admin.post("/admin/v1/revocations", json={}).status_code == 400
    assert admin.post("/admin/v1/revocations", json={"user_id": 1, "store_id": 1}).status_code == 400
    r = admin.post("/admin/v1/revocations", json={"token_id": "some-jti"})
    assert r.status_code == 200
    assert set(r.json()) == {"revoked", "at"}


def test_admin_clients_grants_and_schema(auth, Flow) -> None:
    flow = Flow.start(auth)
    flow.tokens()
    admin = auth.admin()
    listed = admin.get("/admin/v1/clients").json()
    assert flow.client_id in [c["client_id"] for c in listed]
    one = admin.get(f"/admin/v1/clients/{flow.client_id}").json()
    assert one["redirect_uris"] == [flow.redirect_uri]
    grants = admin.get("/admin/v1/users/1/grants").json()
    assert grants[-1]["client_id"] == flow.client_id
    assert admin.get("/admin/v1/clients/nope").status_code == 404
    schema = auth.http().get("/admin/v1/schema/openapi.json").json()
    assert schema["paths"]
    assert all(p.startswith("/admin/v1/") for p in schema["paths"])


def test_role_change_revokes_the_users_tokens(auth, Flow) -> None:
    flow = Flow.start(auth, email="support@demo.store")
    refresh = flow.tokens()["refresh_token"]
    r = auth.admin().put("/admin/v1/users/2/role", json={"store_id": 1, "role": "analyst"})
    assert r.status_code == 200
    assert flow.refresh(refresh).json()["error"] == "invalid_grant"
    assert feed(auth).events[-1].kind == "user"


def test_two_threads_revoking_keep_the_feed_gapless(auth_any) -> None:
    auth = auth_any
    admin_a, admin_b = auth.admin(), auth.admin()
    threads = [threading.Thread(target=lambda c=c, u=u: c.post("/admin/v1/revocations", json={"user_id": u}))
               for c, u in ((admin_a, 2), (admin_b, 3), (admin_a, 4))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    seqs = [e.seq for e in feed(auth).events]
    assert seqs == list(range(seqs[0], seqs[0] + 3))
