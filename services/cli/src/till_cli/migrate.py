"""``till migrate [--seed-demo]``: bring both databases to the newest schema."""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from till_auth import bootstrap as auth_bootstrap
from till_auth.settings import AuthSettings
from till_common.settings import load_settings
from till_tools import bootstrap as tools_bootstrap
from till_tools.settings import ToolsSettings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("migrate", help="migrate the auth and store databases")
    p.add_argument("--seed-demo", action="store_true", help="also load the demo store and users")
    p.set_defaults(run=run)


async def prepare(environ: dict[str, str] | os._Environ[str], *, seed: bool) -> None:
    auth = load_settings(AuthSettings, environ)
    tools = load_settings(ToolsSettings, environ)
    # one after the other: alembic's `context` is process-global, two at once corrupt each other
    await auth_bootstrap.migrate(auth)
    await tools_bootstrap.migrate(tools)
    if seed:
        await asyncio.gather(auth_bootstrap.seed_demo(auth), tools_bootstrap.seed_demo(tools))


def run(args: argparse.Namespace) -> int:
    asyncio.run(prepare(os.environ, seed=args.seed_demo))
    print("databases migrated" + (" and demo data loaded" if args.seed_demo else ""))
    return 0
