"""Fixtures of the tools service: seeded databases (SQLite and PostgreSQL), principals, a caller.

Seeding takes seconds, so each kind of database is migrated and seeded once per run into a
template; every test gets its own copy (a file copy on SQLite, ``CREATE DATABASE … TEMPLATE`` on
PostgreSQL) and may change it freely.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest

from till_common import demo
from till_common.permissions import ROLE_PERMISSIONS, Role
from till_common.principal import Principal
from till_common.protocol.internal import ToolsRpcRequest
from till_tools import bootstrap, rpc
from till_tools.registry import Registry, default_catalogue
from till_tools.settings import ToolsSettings

INTERNAL_TOKEN = "internal-" + "i" * 40
PG_SERVER = os.environ.get("TILL_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432")
CATALOGUE = default_catalogue()
OUTPUT_VALIDATORS = {n: jsonschema.Draft202012Validator(d["outputSchema"]) for n, d in CATALOGUE.definitions.items()}


KEK = "kek-" + "k" * 40          # the value tests.support gives every process


def settings_for(url: str) -> ToolsSettings:
    return ToolsSettings(internal_token=INTERNAL_TOKEN, tools_database_url=url, key_encryption_key=KEK)


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_SERVER.replace("postgresql+asyncpg", "postgresql") + "/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _prepare(url: str) -> None:
    await bootstrap.migrate(settings_for(url))
    await bootstrap.seed_demo(settings_for(url))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "seeded.db"
    asyncio.run(_prepare(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_template(postgres: Any) -> Iterator[str]:
    name = f"till_tmpl_{secrets.token_hex(4)}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    asyncio.run(_prepare(f"{PG_SERVER}/{name}"))
    yield name
    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A seeded store database of each supported kind, this test's own."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "store.db"
        shutil.copy(template, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    template_name: str = request.getfixturevalue("pg_template")
    name = f"till_t_{secrets.token_hex(4)}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    yield f"{PG_SERVER}/{name}"
    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_store_url(sqlite_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "store.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
async def reg(store_url: str) -> AsyncIterator[Registry]:
    registry = Registry.build(settings_for(store_url), CATALOGUE)
    yield registry
    await registry.close()


def principal(role: Role = "owner", store_id: int = demo.DEMO_STORE_ID, user_id: int | None = None,
              scopes: tuple[str, ...] | None = None, request_id: str = "req-test") -> Principal:
    users = {(s, r): u for u, _, s, r in demo.USERS}
    uid = user_id if user_id is not None else users.get((store_id, role), 99)
    return Principal(user_id=uid, store_id=store_id, role=role,
                     scopes=tuple(sorted(ROLE_PERMISSIONS[role])) if scopes is None else scopes,
                     client_id="test-client", token_id=f"tok-{uid}", request_id=request_id)


OWNER = principal("owner")
OTHER = principal("owner", demo.OTHER_STORE_ID)

Call = Callable[..., Awaitable[dict[str, Any]]]


async def rpc_call(reg: Registry, who: Principal, method: str, params: dict[str, Any]) -> dict[str, Any]:
    response = await rpc.handle(reg, ToolsRpcRequest(principal=who, method=method, params=params))
    out: dict[str, Any] = msgspec.to_builtins(response)
    # the wire round trip the gateway sees
    out = msgspec.json.decode(msgspec.json.encode(out))
    return out


async def call_tool(reg: Registry, name: str, args: dict[str, Any] | None = None, who: Principal = OWNER,
                    ) -> dict[str, Any]:
    """tools/call; a successful result's structuredContent is validated against the tool's outputSchema,
    as the official SDK clients do."""
    out = await rpc_call(reg, who, "tools/call", {"name": name, "arguments": args or {}})
    result = out.get("result")
    if result is not None and not result["isError"]:
        OUTPUT_VALIDATORS[name].validate(result["structuredContent"])
        assert msgspec.json.decode(result["content"][0]["text"]) == result["structuredContent"]
    return out


def ok(out: dict[str, Any]) -> dict[str, Any]:
    assert "error" not in out, out
    assert out["result"]["isError"] is False, out
    data: dict[str, Any] = out["result"]["structuredContent"]
    return data


def failed(out: dict[str, Any]) -> str:
    assert "error" not in out, out
    assert out["result"]["isError"] is True, out
    text: str = out["result"]["content"][0]["text"]
    return text


def rpc_error(out: dict[str, Any], code: int) -> dict[str, Any]:
    assert "result" not in out, out
    assert out["error"]["code"] == code, out
    err: dict[str, Any] = out["error"]
    return err


class Harness:
    """What tests use: principals, calls through the rpc dispatcher, result checks."""

    OWNER = OWNER
    OTHER = OTHER
    principal = staticmethod(principal)
    ok = staticmethod(ok)
    failed = staticmethod(failed)
    rpc_error = staticmethod(rpc_error)
    catalogue = CATALOGUE

    def __init__(self, reg: Registry) -> None:
        self.reg = reg

    async def call(self, name: str, args: dict[str, Any] | None = None, who: Principal = OWNER) -> dict[str, Any]:
        return await call_tool(self.reg, name, args, who)

    async def rpc(self, method: str, params: dict[str, Any], who: Principal = OWNER) -> dict[str, Any]:
        return await rpc_call(self.reg, who, method, params)

    async def sql(self, statement: Any) -> Any:
        async with self.reg.sessions() as db:
            return (await db.execute(statement)).all()


@pytest.fixture
def h(reg: Registry) -> Harness:
    return Harness(reg)
