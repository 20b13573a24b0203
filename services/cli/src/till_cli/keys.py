"""``till keys rotate``: publish a new signing key; it signs after TILL_KEY_ACTIVATION_DELAY."""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import UTC, datetime
from typing import Any

from till_auth.operations import rotate_keys
from till_auth.settings import AuthSettings
from till_common.settings import load_settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("keys", help="JWT signing keys")
    ksub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    ksub.add_parser("rotate", help="publish a new key now; it signs after the activation delay").set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    kid, activates = asyncio.run(rotate_keys(load_settings(AuthSettings, os.environ)))
    when = datetime.fromtimestamp(activates, tz=UTC).isoformat()
    print(f"new key {kid} published in JWKS; it signs from {when}; older keys retire after their last token expires")
    return 0
