"""Entry-point plumbing shared by ``till-auth``, ``till-gateway`` and ``till-tools``.

Settings are read once here, a pre-flight check proves the port is free and the service's own
dependencies answer, and any :class:`TillError` becomes one line on stderr and exit status 2 —
never a traceback wall (foundation issue, "Bad input").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import msgspec

from till_common.errors import ConfigError, TillError
from till_common.logging import configure_logging
from till_common.settings import load_settings

S = TypeVar("S", bound=msgspec.Struct)


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def fail(program: str, message: str) -> None:
    print(f"{program}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def service_main(program: str, settings_cls: type[S], *, default_port: int,
                 create_app: Callable[[S], Any],
                 preflight: Callable[[S], Coroutine[Any, Any, None]] | None = None,
                 argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=program)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--graceful-timeout", type=float, default=10.0,
                        help="seconds to let in-flight requests finish after SIGTERM")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(settings_cls, os.environ)
        configure_logging(program, getattr(settings, "log_level", "info"))
        check_port_free(args.host, args.port)
        if preflight is not None:
            asyncio.run(preflight(settings))
        app = create_app(settings)
    except TillError as exc:
        fail(program, exc.description)
        return
    import uvicorn  # imported late: `--help` and config errors stay instant

    # proxy_headers=False: uvicorn would otherwise let any loopback peer set the client address
    # through X-Forwarded-For; each service decides itself whom to believe (auth: X-Till-Gateway).
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools", lifespan="on",
                access_log=False, log_config=None, server_header=False, proxy_headers=False,
                timeout_graceful_shutdown=args.graceful_timeout)
