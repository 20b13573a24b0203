"""Signing keys (rotation, sealing, wrong KEK) and the ``till`` admin commands, as real processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import jwt


def till(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "till_cli.main", *args], env=env, input=stdin, text=True,
                          capture_output=True, timeout=60, check=False)


def cli_env(db: Path, helpers, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILL_") or k.startswith("TILL_TEST_")}
    env.update(helpers.SECRETS)
    env["TILL_AUTH_DATABASE_URL"] = f"sqlite+aiosqlite:///{db}"
    env.update(extra)
    return env


def test_wrong_key_encryption_key_stops_start_up_in_one_line(auth, tmp_path, helpers) -> None:
    auth.http().get("/.well-known/jwks.json")            # the first key now exists, sealed
    db = auth.settings.auth_database_url.split("///", 1)[1]
    env = cli_env(Path(db), helpers, TILL_KEY_ENCRYPTION_KEY="another-key-" + "z" * 30)
    proc = subprocess.run([sys.executable, "-m", "till_auth", "--port", str(helpers.free_port())], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == ["till-auth: error: TILL_KEY_ENCRYPTION_KEY cannot decrypt the signing keys in "
                     "TILL_AUTH_DATABASE_URL (wrong key?)"]


def test_rotation_publishes_first_signs_after_the_delay_and_retires_later(sqlite_template, tmp_path,
                                                                          helpers) -> None:
    import asyncio
    import time

    from till_auth.registry import Registry

    db = tmp_path / "auth.db"
    shutil.copyfile(sqlite_template, db)
    settings = helpers.make_settings(f"sqlite+aiosqlite:///{db}", 1, key_activation_delay=600)
    reg = Registry.build(settings)

    async def scenario() -> None:
        first = await reg.keys.signing_key()
        async with reg.sessions.begin() as s:
            fresh = await reg.keys.rotate(s)
        kids = [k["kid"] for k in (await reg.keys.jwks())["keys"]]
        assert kids == [first.kid, fresh.kid]                  # published at once
        assert (await reg.keys.signing_key()).kid == first.kid  # not signing yet
        # the world 601 s later: the new key signs, the old one is still published for its tokens
        now = int(time.time()) + 601
        real = time.time
        try:
            time.time = lambda: float(now)  # type: ignore[assignment]
            reg.keys._loaded_at = float("-inf")
            assert (await reg.keys.signing_key()).kid == fresh.kid
            assert first.kid in [k["kid"] for k in (await reg.keys.jwks())["keys"]]
            time.time = lambda: float(now + 3600 + 61)  # type: ignore[assignment]
            assert [k["kid"] for k in (await reg.keys.jwks())["keys"]] == [fresh.kid]
        finally:
            time.time = real  # type: ignore[assignment]
        await reg.close()

    asyncio.run(scenario())


def test_admin_rotate_then_tokens_still_verify(auth, Flow) -> None:
    flow = Flow.start(auth)
    before = flow.tokens()["access_token"]
    r = auth.admin().post("/admin/v1/keys/rotate")
    assert r.status_code == 200
    keys = auth.http().get("/.well-known/jwks.json").json()["keys"]
    assert r.json()["kid"] in [k["kid"] for k in keys]
    assert jwt.get_unverified_header(before)["kid"] in [k["kid"] for k in keys]
    after = flow.tokens()["access_token"]
    assert jwt.get_unverified_header(after)["kid"] == jwt.get_unverified_header(before)["kid"]


def test_till_commands_create_mint_rotate_revoke(sqlite_template, tmp_path, helpers) -> None:
    db = tmp_path / "auth.db"
    shutil.copyfile(sqlite_template, db)
    env = cli_env(db, helpers)
    r = till(env, "merchants", "create", "--email", "New@Shop.example", "--store", "New Shop", "--password-stdin",
             stdin="a-long-password\n")
    assert r.returncode == 0, r.stderr
    assert "store 3" in r.stdout
    r = till(env, "merchants", "create", "--email", "new@shop.example", "--store", "Again", "--password-stdin",
             stdin="a-long-password\n")
    assert r.returncode == 2
    assert "exists already" in r.stderr
    r = till(env, "tokens", "mint", "--email", "new@shop.example")
    assert r.returncode == 0, r.stderr
    token = r.stdout.splitlines()[0]
    assert token.startswith("till_pat_")
    for _ in range(2):          # the first creates the initial key (signing at once), the second rotates
        r = till(env, "keys", "rotate")
        assert r.returncode == 0, r.stderr
        assert "published" in r.stdout
    port = helpers.free_port()
    srv = helpers.serve(helpers.make_settings(f"sqlite+aiosqlite:///{db}", port), port)
    try:
        internal = srv.internal()
        info = internal.post("/internal/v1/introspect", data={"token": token}).json()
        assert (info["active"], info["store_id"], info["role"]) == (True, 3, "owner")
        assert len(srv.http().get("/.well-known/jwks.json").json()["keys"]) == 2
        r = till(env, "revoke", "--user", "new@shop.example")
        assert r.returncode == 0, r.stderr
        assert internal.post("/internal/v1/introspect", data={"token": token}).json() == {"active": False}
        assert till(env, "tokens", "mint", "--email", "nobody@x.example").returncode == 2
    finally:
        srv.stop()


def test_till_merchants_join_gives_a_second_store_and_tokens_for_it(sqlite_template, tmp_path, helpers) -> None:
    db = tmp_path / "auth.db"
    shutil.copyfile(sqlite_template, db)
    env = cli_env(db, helpers)
    r = till(env, "merchants", "join", "--email", "owner@demo.store", "--store-id", "2", "--role", "analyst")
    assert r.returncode == 0, r.stderr
    assert "store 2, role analyst" in r.stdout
    refused = till(env, "merchants", "join", "--email", "owner@demo.store", "--store-id", "99", "--role", "analyst")
    assert refused.returncode == 2
    assert "no store 99" in refused.stderr
    first = till(env, "tokens", "mint", "--email", "owner@demo.store").stdout.splitlines()[0]
    second = till(env, "tokens", "mint", "--email", "owner@demo.store", "--store-id", "2").stdout.splitlines()[0]
    outside = till(env, "tokens", "mint", "--email", "support@demo.store", "--store-id", "2")
    assert outside.returncode == 2
    assert "not a member of store 2" in outside.stderr
    port = helpers.free_port()
    srv = helpers.serve(helpers.make_settings(f"sqlite+aiosqlite:///{db}", port), port)
    try:
        internal = srv.internal()
        seen = [internal.post("/internal/v1/introspect", data={"token": t}).json() for t in (first, second)]
        assert [(s["store_id"], s["role"]) for s in seen] == [(1, "owner"), (2, "analyst")]
    finally:
        srv.stop()


def test_mint_dev_token_gives_a_working_owner_token(sqlite_template, tmp_path, helpers) -> None:
    import asyncio

    from till_auth.bootstrap import mint_dev_token

    db = tmp_path / "auth.db"
    shutil.copyfile(sqlite_template, db)
    port = helpers.free_port()
    settings = helpers.make_settings(f"sqlite+aiosqlite:///{db}", port)
    first, second = asyncio.run(mint_dev_token(settings)), asyncio.run(mint_dev_token(settings))
    assert first != second
    srv = helpers.serve(settings, port)
    try:
        info = srv.internal().post("/internal/v1/introspect", data={"token": first}).json()
        assert (info["active"], info["sub"], info["role"]) == (True, "1", "owner")
    finally:
        srv.stop()
