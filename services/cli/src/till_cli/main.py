"""``till``: the one admin command (SPEC §1).  Each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from till_common.errors import TillError

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    from till_cli import audit, dev, doctor, keys, merchants, migrate, revoke, tokens

    parser = argparse.ArgumentParser(prog="till", description="Till administration")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (dev, migrate, merchants, tokens, keys, revoke, audit, doctor):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Command = args.run
    try:
        code = run(args)
    except TillError as exc:
        print(f"till {args.command}: error: {exc.description}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


if __name__ == "__main__":
    main()
