"""``till revoke --user/--client/--token/--store``: revoke and tell every gateway."""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from till_auth.operations import revoke
from till_auth.settings import AuthSettings
from till_common.settings import load_settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("revoke", help="revoke a token, client, user or store")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--user", help="user id or email: every credential issued until now")
    g.add_argument("--client", help="OAuth client id")
    g.add_argument("--token", help="access-token jti or personal-token id")
    g.add_argument("--store", help="store id")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    kind, value = next((k, getattr(args, k)) for k in ("user", "client", "token", "store") if getattr(args, k))
    n = asyncio.run(revoke(load_settings(AuthSettings, os.environ), kind, value))
    print(f"revoked {kind} {value} ({n} stored credential(s) marked); gateways are notified")
    return 0
