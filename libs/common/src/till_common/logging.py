"""JSON structured logs with a request id that travels between services.

Log events carry ``request_id`` from a context variable set by each service's request
middleware (from ``X-Request-Id`` when a trusted hop sent one).  Values that look like
credentials are redacted before rendering (security case SC-02).
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog

REQUEST_ID_HEADER = "X-Request-Id"
request_id_var: ContextVar[str] = ContextVar("request_id", default="")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_SECRET_KEYS = re.compile(r"(authorization|token|secret|password|code_verifier|cookie|^code$|assertion)",
                          re.IGNORECASE)
_SECRET_VALUES = re.compile(r"(Bearer\s+\S+|till_pat_[A-Za-z0-9_-]+|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9._-]+)")
REDACTED = "[REDACTED]"


def new_request_id() -> str:
    return secrets.token_hex(8)


def accept_request_id(value: str | None) -> str:
    """A well-formed incoming id is kept (it correlates the hops); anything else is replaced."""
    return value if value and _VALID_ID.match(value) else new_request_id()


def redact(value: Any, key: str = "") -> Any:
    if key and _SECRET_KEYS.search(key) and key not in {"token_type", "token_kind", "token_id"}:
        return REDACTED
    if isinstance(value, str):
        return _SECRET_VALUES.sub(REDACTED, value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _add_request_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    rid = request_id_var.get()
    if rid:
        event.setdefault("request_id", rid)
    return event


def _redact_processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return {k: (v if k in {"event", "timestamp", "level", "logger", "request_id"} else redact(v, k))
            for k, v in event.items()}


def configure_logging(service: str, level: str = "info") -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_request_id,
        _redact_processor,
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # uvicorn and libraries log through stdlib logging: route them through the same renderer.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processor=structlog.processors.JSONRenderer(),
        foreign_pre_chain=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                           structlog.processors.TimeStamper(fmt="iso", utc=True),
                           _add_request_id, _redact_processor],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
