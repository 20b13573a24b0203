"""``till tokens mint --email``: a personal MCP token (shown once)."""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import UTC, datetime
from typing import Any

from till_auth.operations import mint_token
from till_auth.settings import AuthSettings
from till_common.settings import load_settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("tokens", help="personal MCP tokens")
    tsub = p.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    mint = tsub.add_parser("mint", help="mint a 1-year personal token for a merchant")
    mint.add_argument("--email", required=True)
    mint.add_argument("--store-id", type=int, help="which of the merchant's stores (default: the first)")
    mint.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    minted = asyncio.run(mint_token(load_settings(AuthSettings, os.environ), args.email, args.store_id))
    expires = datetime.fromtimestamp(minted.expires_at, tz=UTC).strftime("%Y-%m-%d")
    print(minted.token)
    print(f"token id {minted.token_id}, valid until {expires}; it is not shown again", flush=True)
    return 0
