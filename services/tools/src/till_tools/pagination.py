"""Opaque cursors, default page sizes and the 100k-character ceiling on a result (SPEC §3)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import msgspec

from till_tools.spec import InvalidArgument, Page

DEFAULT_LIMIT: Final = 20
#: the structured result is also sent as JSON text, so each copy stays under half of 100k
MAX_RESULT_CHARS: Final = 48_000

P = TypeVar("P", bound=Page)
_encoder = msgspec.json.Encoder()


def encode_cursor(tool: str, offset: int) -> str:
    raw = _encoder.encode([tool, offset])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(tool: str, cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, offset = msgspec.json.decode(raw, type=tuple[str, int])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidArgument("$.cursor", "cursor is not one this tool issued; omit it to start over") from None
    if name != tool or not 0 <= offset <= 10_000_000:
        raise InvalidArgument("$.cursor", "cursor belongs to another listing; omit it to start over")
    return offset


def finish(tool: str, make: Callable[..., P], items: Sequence[Any], offset: int, limit: int,
           **extra: Any) -> P:
    """``items`` holds up to ``limit + 1`` rows (one more tells that another page exists)."""
    has_more = len(items) > limit
    kept = list(items[:limit])
    page = make(items=kept, next_cursor=encode_cursor(tool, offset + len(kept)) if has_more else None, **extra)
    size = len(_encoder.encode(page))
    if size <= MAX_RESULT_CHARS:
        return page
    while kept and size > MAX_RESULT_CHARS:
        kept = kept[: max(len(kept) * MAX_RESULT_CHARS // size - 1, 0)]
        page = make(items=kept, next_cursor=encode_cursor(tool, offset + len(kept)), truncated=True,
                    note=f"result truncated to {len(kept)} items to stay under the size limit; "
                         "pass next_cursor for the rest", **extra)
        size = len(_encoder.encode(page))
    return page


def like_contains(text: str) -> str:
    """A LIKE pattern matching ``text`` literally ("%" and "_" are data, TL-05); escape is "\\"."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
