"""The services' listening socket (``serve.listen_socket``): TCP_USER_TIMEOUT reaches accepted connections."""

from __future__ import annotations

import socket

import pytest

from till_common.errors import ConfigError
from till_common.serve import TCP_USER_TIMEOUT_MS, listen_socket

linux_only = pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="TCP_USER_TIMEOUT is Linux-only")


@linux_only
def test_accepted_connections_inherit_the_user_timeout() -> None:
    sock = listen_socket("127.0.0.1", 0, user_timeout_ms=12_345)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 12_345
        sock.listen()
        with socket.create_connection(sock.getsockname(), timeout=5):
            accepted, _ = sock.accept()
            with accepted:
                # what uvicorn's connections get: a vanished client's stream ends after this long
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 12_345
    finally:
        sock.close()


@linux_only
def test_the_default_is_a_minute() -> None:
    sock = listen_socket("127.0.0.1", 0)
    with sock:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == TCP_USER_TIMEOUT_MS == 60_000


def test_a_port_in_use_is_a_config_error() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1"):
            listen_socket("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()
