"""``till merchants create|join``: a merchant account in a new or an existing store; more stores later."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
from typing import Any

from till_auth.operations import create_merchant, join_store
from till_auth.settings import AuthSettings
from till_common.permissions import ROLES
from till_common.settings import load_settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("merchants", help="merchant accounts")
    msub = p.add_subparsers(dest="merchants_command", required=True, metavar="ACTION")
    create = msub.add_parser("create", help="create a merchant (password prompted, or --password-stdin)")
    create.add_argument("--email", required=True)
    where = create.add_mutually_exclusive_group(required=True)
    where.add_argument("--store", help="name of a new store this merchant owns")
    where.add_argument("--store-id", type=int, help="an existing store to join")
    create.add_argument("--role", choices=ROLES, default="owner")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.set_defaults(run=run)
    join = msub.add_parser("join", help="give an existing merchant a role in another existing store")
    join.add_argument("--email", required=True)
    join.add_argument("--store-id", type=int, required=True)
    join.add_argument("--role", choices=ROLES, required=True)
    join.set_defaults(run=run_join)


def run(args: argparse.Namespace) -> int:
    import sys

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
    merchant = asyncio.run(create_merchant(load_settings(AuthSettings, os.environ), email=args.email,
                                           password=password, store=args.store, store_id=args.store_id,
                                           role=args.role))
    print(f"merchant {args.email}: user {merchant.user_id}, store {merchant.store_id}, role {merchant.role}")
    return 0


def run_join(args: argparse.Namespace) -> int:
    merchant = asyncio.run(join_store(load_settings(AuthSettings, os.environ), email=args.email,
                                      store_id=args.store_id, role=args.role))
    print(f"merchant {args.email}: user {merchant.user_id}, store {merchant.store_id}, role {merchant.role}")
    return 0
