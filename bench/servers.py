"""The baseline servers every ratio is measured against, each its own process, same uvicorn settings.

* ``echo``: litestar + msgspec, ``POST /echo`` returns the JSON body it got (the floor of any
  litestar app on this machine);
* ``sdk``: the official MCP Python SDK (``mcp``) as a stateless Streamable HTTP server with JSON
  responses, one tool ``get_product`` doing what Till's read path does in-process: a static bearer
  compare, one SELECT of a product row from SQLite and one INSERT of an audit row, committed;
* ``fastmcp``: the same tool and data on ``fastmcp`` (bench/fastmcp_server.py).

Sockets are bound to port 0 by the parent and handed over as inherited fds (``--fd``), so no port is
assumed free.  ``python -m bench.servers --role echo|sdk|fastmcp --fd N [--db PATH --token T]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"

# uvicorn settings of till_common.serve.service_main, applied to every baseline as well.
UVICORN: dict[str, Any] = {"loop": "uvloop", "http": "httptools", "lifespan": "on", "access_log": False,
                           "log_config": None, "log_level": "warning", "server_header": False,
                           "proxy_headers": False}


def build_echo() -> Any:
    from litestar import Litestar, post

    @post("/echo", status_code=200, sync_to_thread=False)
    def echo(data: dict[str, Any]) -> dict[str, Any]:
        # litestar decodes and encodes with msgspec
        return data

    return Litestar(route_handlers=[echo], debug=False, openapi_config=None, logging_config=None)


SDK_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (id INTEGER PRIMARY KEY, store_id INTEGER NOT NULL, title TEXT NOT NULL,
                                     sku TEXT NOT NULL, price_minor INTEGER NOT NULL, currency TEXT NOT NULL,
                                     stock INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, store_id INTEGER,
                                  tool TEXT NOT NULL, arguments TEXT NOT NULL, outcome TEXT NOT NULL);
"""


def prepare_sdk_db(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(SDK_SCHEMA)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("INSERT OR REPLACE INTO products VALUES (1, 1, 'Classic T-Shirt', 'TS-001', 2999, 'USD', 120)")
        db.commit()


def serve(app: Any, fd: int) -> None:
    import logging

    import uvicorn

    for name in ("httpx", "httpcore", "aiohttp", "mcp"):
        logging.getLogger(name).setLevel(logging.WARNING)
    sock = socket.socket(fileno=fd)
    uvicorn.Server(uvicorn.Config(app, workers=1, **UVICORN)).run(sockets=[sock])


class Servers:
    """Baseline server processes of one bench run; every one is stopped by its PID."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, role: str, *extra: str, python: str = sys.executable,
              module: tuple[str, ...] = ("-m", "bench.servers")) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, 0))
        sock.listen(4096)
        port = sock.getsockname()[1]
        fd = sock.fileno()
        proc = subprocess.Popen([python, *module, "--role", role, "--fd", str(fd), *extra],
                                pass_fds=[fd])
        sock.close()
        self.procs[name] = proc
        return f"http://{HOST}:{port}"

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"baseline server {name} (pid {proc.pid}) exited with {proc.returncode}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.procs.clear()


NGINX_STATIC = """daemon off;
worker_processes 1;
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(prefix)s/body;
    proxy_temp_path %(prefix)s/proxy;
    fastcgi_temp_path %(prefix)s/fastcgi;
    uwsgi_temp_path %(prefix)s/uwsgi;
    scgi_temp_path %(prefix)s/scgi;
    server {
        listen %(listen)s;
        location / { default_type application/json; return 200 '{"jsonrpc":"2.0","id":1,"result":{}}'; }
    }
}
"""


def start_static_nginx(nginx: str, prefix: Path, servers: Servers) -> str:
    """nginx answering a fixed 200 from one worker: far faster than any Python server here, so a run
    against it shows what the load generator itself can do on this machine (its ceiling)."""
    prefix.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(socket.socket()) as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_STATIC % {"prefix": prefix, "listen": f"{HOST}:{port}"})
    servers.procs["nginx-static"] = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return f"http://{HOST}:{port}"


def main() -> int:
    p = argparse.ArgumentParser(description="a baseline server of the bench")
    p.add_argument("--role", choices=["echo", "sdk", "fastmcp"], required=True)
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--db", default="")
    p.add_argument("--token", default="")
    a = p.parse_args()
    if a.role == "echo":
        serve(build_echo(), a.fd)
    elif a.role == "fastmcp":
        from bench.fastmcp_server import build_fastmcp

        serve(build_fastmcp(a.db, a.token), a.fd)
    else:
        from bench.sdk_server import build_sdk

        serve(build_sdk(a.db, a.token), a.fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["HOST", "UVICORN", "Servers", "build_echo", "prepare_sdk_db", "serve", "start_static_nginx"]
