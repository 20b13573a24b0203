"""Entry-point plumbing shared by ``till-auth``, ``till-gateway`` and ``till-tools``.

Settings are read once here, a pre-flight check proves the port is free and the service's own
dependencies answer, and any :class:`TillError` becomes one line on stderr and exit status 2 —
never a traceback wall (foundation issue, "Bad input").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import socket
import sys
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgspec

from till_common.errors import ConfigError, TillError
from till_common.logging import configure_logging
from till_common.settings import load_settings

if TYPE_CHECKING:
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

S = TypeVar("S", bound=msgspec.Struct)


class CoalescingTransport(asyncio.Transport):
    """Writes made in one event-loop iteration leave in one ``write`` at the end of it.

    uvicorn writes a response's head and its body separately: two send syscalls per response, and
    on loopback each one also runs the receiver's TCP path.  Held until the loop's next pass, they
    leave together; nothing waits longer than that pass, so a streamed event (SSE, heartbeats
    included) still goes out as soon as the task that wrote it yields (docs/decisions.md D820).
    ``close()`` sends what is held first; ``abort()`` drops it, as the real transport would.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._real = transport
        self._loop = loop
        self._held: list[bytes] = []

    def _flush(self) -> None:
        held = self._held
        if not held:
            return
        self._held = []
        if not self._real.is_closing():      # the peer went away meanwhile: nothing to deliver
            self._real.write(held[0] if len(held) == 1 else b"".join(held))

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(bytes(data))

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def close(self) -> None:
        self._flush()
        self._real.close()

    def abort(self) -> None:
        self._held = []
        self._real.abort()

    def write_eof(self) -> None:
        self._flush()
        self._real.write_eof()

    def can_write_eof(self) -> bool:
        return self._real.can_write_eof()

    def is_closing(self) -> bool:
        return self._real.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._real.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._real.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._real.get_protocol()

    def is_reading(self) -> bool:
        return self._real.is_reading()

    def pause_reading(self) -> None:
        self._real.pause_reading()

    def resume_reading(self) -> None:
        self._real.resume_reading()

    def get_write_buffer_size(self) -> int:
        return self._real.get_write_buffer_size() + sum(map(len, self._held))

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._real.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._real.get_write_buffer_limits()


def http_protocol() -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol on a :class:`CoalescingTransport` (uvicorn takes the class as ``http=``)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class CoalescingHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(CoalescingTransport(transport, self.loop))

    return CoalescingHttpToolsProtocol


#: Unacknowledged data older than this closes the connection (TCP_USER_TIMEOUT, RFC 5482): a client that
#: vanished without FIN or RST (laptop lid, NAT timeout) otherwise holds its SSE stream, session and
#: socket for the kernel's ~15 minutes of retransmissions; heartbeats (15 s) are what exposes it.
TCP_USER_TIMEOUT_MS: Final = 60_000


def listen_socket(host: str, port: int, user_timeout_ms: int = TCP_USER_TIMEOUT_MS) -> socket.socket:
    """The service's bound TCP socket (uvicorn listens on it).  Accepted connections inherit the
    listener's TCP_USER_TIMEOUT on Linux; elsewhere the option is skipped."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, user_timeout_ms)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


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


#: gen0 threshold once the service is up (CPython's default is 700): most objects of a request die by
#: reference count before any collection sees them, so fewer, larger young collections do less work.
GC_GEN0_THRESHOLD: Final = 10_000


def settle_gc() -> None:
    """Once the service has started: everything built so far (imports, the app, its caches) goes to
    the permanent generation, and young collections run less often (docs/decisions.md D864).

    A full collection walks every tracked object; with a service's ~70,000 startup objects one took
    ~66 ms on this machine, and CPython runs one whenever enough survivors pile up: a pause for every
    request in flight (bench p99 87 → 35 ms on tools/call).  Frozen objects are never walked again;
    garbage made later is collected as before."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def server_class() -> type[uvicorn.Server]:
    """uvicorn's Server, settling the collector (:func:`settle_gc`) once startup has succeeded."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                settle_gc()

    return Server


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
        sock = listen_socket(args.host, args.port)
    except TillError as exc:
        fail(program, exc.description)
        return
    try:
        if preflight is not None:
            asyncio.run(preflight(settings))
        app = create_app(settings)
    except TillError as exc:
        sock.close()
        fail(program, exc.description)
        return
    import uvicorn  # imported late: `--help` and config errors stay instant

    # proxy_headers=False: uvicorn would otherwise let any loopback peer set the client address
    # through X-Forwarded-For; each service decides itself whom to believe (auth: X-Till-Gateway).
    config = uvicorn.Config(app, host=args.host, port=args.port, loop="uvloop", http=http_protocol(),
                            lifespan="on", access_log=False, log_config=None, server_header=False,
                            proxy_headers=False, timeout_graceful_shutdown=args.graceful_timeout)
    server = server_class()(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    if not server.started:       # what uvicorn.run does: a failed startup (lifespan) is exit status 3
        raise SystemExit(3)
