"""The tamper-evident audit trail (SPEC §6): one row per call, hash-chained per store.

``hash = sha256(canonical JSON of the row's fields, sorted keys, including prev_hash)``.  Appends
serialize on the store's chain head row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's single
writer does the same), and ``UNIQUE(store_id, seq)`` makes a fork impossible even if they did not.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import msgspec
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from till_common.principal import Principal
from till_tools.store.content import AuditEntry, AuditHead
from till_tools.store.hot import Hot

Outcome = Literal["success", "failed", "denied", "refused"]
GENESIS: Final = "0" * 64
REDACTED: Final = "[REDACTED]"
SOURCE: Final = "mcp"
_SECRET_KEY = re.compile(r"(password|passwd|secret|api[_-]?key|apikey|token|authorization|credential|"
                         r"private[_-]?key|card[_-]?number|cvc|cvv)", re.IGNORECASE)
_MAX_ARGS_CHARS: Final = 20_000
_encoder = msgspec.json.Encoder(order="sorted")


def redact(value: Any) -> Any:
    """Secrets by key name (SC-03), recursively; ``idempotency_key`` is not a secret."""
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) and k != "idempotency_key"
                    else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def arguments_text(arguments: Any) -> str:
    try:
        text = _encoder.encode(redact(arguments)).decode()
    except (TypeError, UnicodeEncodeError, msgspec.EncodeError):
        return '"[unencodable arguments]"'
    if len(text) > _MAX_ARGS_CHARS:
        return _encoder.encode({"truncated": True, "prefix": text[:2000]}).decode()
    return text


def timestamp(at: datetime) -> str:
    """``%Y-%m-%dT%H:%M:%S.%fZ`` in UTC: the form every row's hash was computed over."""
    if at.tzinfo is not UTC or at.year < 1000:   # strftime's %Y does not pad years below 1000
        return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # the same text without strftime, which was 2 % of a call (D822)
    return at.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def row_hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(_encoder.encode(fields)).hexdigest()


def canonical(store_id: int, seq: int, at: datetime, user_id: int, client_id: str | None, token_id: str,
              source: str, tool: str, arguments: str, outcome: str, detail: str, duration_ms: float,
              request_id: str, prev_hash: str) -> dict[str, Any]:
    return {"store_id": store_id, "seq": seq, "at": timestamp(at), "user_id": user_id, "client_id": client_id,
            "token_id": token_id, "source": source, "tool": tool, "arguments": arguments, "outcome": outcome,
            "detail": detail, "duration_ms": duration_ms, "request_id": request_id, "prev_hash": prev_hash}


def canonical_of(row: AuditEntry) -> dict[str, Any]:
    return canonical(row.store_id, row.seq, row.at, row.user_id, row.client_id, row.token_id, row.source, row.tool,
                     row.arguments, row.outcome, row.detail, row.duration_ms, row.request_id, row.prev_hash)


_HEAD = select(AuditHead.seq, AuditHead.hash).where(AuditHead.store_id == bindparam("store_id"))
_HEAD_LOCKED = _HEAD.with_for_update()
_INSERT_ENTRY = insert(AuditEntry)
_ENTRY_KEYS = ("store_id", "seq", "at", "user_id", "client_id", "token_id", "source", "tool", "arguments",
               "outcome", "detail", "duration_ms", "request_id", "prev_hash", "hash")
_HOT_INSERT_ENTRY = Hot(_INSERT_ENTRY, _ENTRY_KEYS)
_MOVE_HEAD = (update(AuditHead).where(AuditHead.store_id == bindparam("head_store"))
              .values(seq=bindparam("new_seq"), hash=bindparam("new_hash")))
# compare-and-set: moves the head only if it is still where this process last left it
_ADVANCE_HEAD = (update(AuditHead).where(AuditHead.store_id == bindparam("head_store"),
                                         AuditHead.seq == bindparam("old_seq"),
                                         AuditHead.hash == bindparam("old_hash"))
                 .values(seq=bindparam("new_seq"), hash=bindparam("new_hash")))
_HOT_ADVANCE_HEAD = Hot(_ADVANCE_HEAD)


class HeadCache:
    """The chain head (seq, hash) per store as this process last wrote it: a hint, never trusted.

    ``append`` moves the head with a compare-and-set on the head row (which also takes the row's
    write lock), so another process's write, a rolled-back transaction or a tampered table only
    costs the fallback read; the chain stays the one in the database (D606)."""

    def __init__(self) -> None:
        self._heads: dict[int, tuple[int, str]] = {}

    def get(self, store_id: int) -> tuple[int, str] | None:
        return self._heads.get(store_id)

    def put(self, store_id: int, seq: int, digest: str) -> None:
        self._heads[store_id] = (seq, digest)

    def forget(self, store_id: int) -> None:
        self._heads.pop(store_id, None)


async def append(db: AsyncSession, who: Principal, tool: str, arguments: str, outcome: Outcome, detail: str,
                 duration_ms: float, at: datetime, heads: HeadCache | None = None) -> None:
    """Add one row inside the caller's transaction, after locking the store's chain head.

    Core statements built once, on the session's connection: this runs on every call.  With a
    ``HeadCache`` that still matches the table it is two statements (move the head, insert the row);
    otherwise the head is read (``FOR UPDATE`` on PostgreSQL) first."""
    store_id = who.store_id
    duration_ms = round(duration_ms, 3)
    detail = detail[:500]
    tool = tool[:100]
    request_id = who.request_id[:64]

    def entry(seq: int, prev: str) -> dict[str, Any]:
        fields = canonical(store_id, seq, at, who.user_id, who.client_id, who.token_id, SOURCE, tool, arguments,
                           outcome, detail, duration_ms, request_id, prev)
        return {"store_id": store_id, "seq": seq, "at": at, "user_id": who.user_id, "client_id": who.client_id,
                "token_id": who.token_id, "source": SOURCE, "tool": tool, "arguments": arguments,
                "outcome": outcome, "detail": detail, "duration_ms": duration_ms, "request_id": request_id,
                "prev_hash": prev, "hash": row_hash(fields)}

    cached = heads.get(store_id) if heads is not None else None
    if cached is not None:
        row = entry(cached[0] + 1, cached[1])
        moved = await _HOT_ADVANCE_HEAD.run(db, {"head_store": store_id, "old_seq": cached[0],
                                                 "old_hash": cached[1], "new_seq": row["seq"],
                                                 "new_hash": row["hash"]})
        if moved == 1:
            await _HOT_INSERT_ENTRY.run(db, row)
            assert heads is not None
            heads.put(store_id, row["seq"], row["hash"])
            return
        assert heads is not None
        heads.forget(store_id)
    conn = await db.connection()
    postgres = conn.dialect.name == "postgresql"
    key = {"store_id": store_id}
    head = (await conn.execute(_HEAD_LOCKED if postgres else _HEAD, key)).first()
    if head is None:
        ins = (pg_insert if postgres else sqlite_insert)(AuditHead)
        await conn.execute(ins.values(store_id=store_id, seq=0, hash=GENESIS).on_conflict_do_nothing())
        head = (await conn.execute(_HEAD_LOCKED if postgres else _HEAD, key)).first()
        assert head is not None
    row = entry(head[0] + 1, head[1])
    await _HOT_INSERT_ENTRY.run(db, row)
    await conn.execute(_MOVE_HEAD, {"head_store": store_id, "new_seq": row["seq"], "new_hash": row["hash"]})
    if heads is not None:
        heads.put(store_id, row["seq"], row["hash"])


@dataclass
class Verdict:
    store_id: int
    rows: int
    bad_row_id: int | None = None
    bad_seq: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.bad_row_id is None and not self.reason


def verify_rows(store_id: int, rows: Sequence[AuditEntry], head: tuple[int, str] | None) -> Verdict:
    """Rows in id order: seq must count up from 1, each prev_hash must be the previous hash and each
    hash must recompute.  An edit breaks the hash, a deletion the seq, a swap both (TL-12)."""
    prev, expected_seq = GENESIS, 1
    for row in rows:
        if row.seq != expected_seq:
            return Verdict(store_id, len(rows), row.id, row.seq,
                           f"seq {row.seq} where {expected_seq} was expected (a row was deleted or moved)")
        if row.prev_hash != prev:
            return Verdict(store_id, len(rows), row.id, row.seq, "prev_hash does not match the previous row")
        if row_hash(canonical_of(row)) != row.hash:
            return Verdict(store_id, len(rows), row.id, row.seq, "hash does not match the row (row edited)")
        prev, expected_seq = row.hash, expected_seq + 1
    if head is not None and (head[0] != expected_seq - 1 or head[1] != prev):
        return Verdict(store_id, len(rows), None, head[0],
                       f"chain head says seq {head[0]} but the last row is seq {expected_seq - 1} "
                       "(rows at the end were deleted)")
    return Verdict(store_id, len(rows))


async def verify_store(db: AsyncSession, store_id: int) -> Verdict:
    rows = (await db.scalars(select(AuditEntry).where(AuditEntry.store_id == store_id)
                             .order_by(AuditEntry.id))).all()
    head = (await db.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.store_id == store_id))).first()
    return verify_rows(store_id, rows, None if head is None else (head[0], head[1]))


async def audited_stores(db: AsyncSession) -> list[int]:
    a = set((await db.scalars(select(AuditEntry.store_id).distinct())).all())
    b = set((await db.scalars(select(AuditHead.store_id))).all())
    return sorted(a | b)


class AuditRow(msgspec.Struct, kw_only=True):
    id: int
    seq: int
    at: str
    store_id: int
    user_id: int
    client_id: str | None
    token_id: str
    source: str
    tool: str
    arguments: Any
    outcome: str
    detail: str
    duration_ms: float
    request_id: str
    prev_hash: str
    hash: str


class AuditPage(msgspec.Struct, kw_only=True):
    items: list[AuditRow]
    next: int | None       # pass as ?after= for the following page; null at the end


async def page(db: AsyncSession, store_id: int, after: int, limit: int) -> AuditPage:
    rows = (await db.scalars(select(AuditEntry).where(AuditEntry.store_id == store_id, AuditEntry.seq > after)
                             .order_by(AuditEntry.seq).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [AuditRow(id=r.id, seq=r.seq, at=timestamp(r.at), store_id=r.store_id, user_id=r.user_id,
                      client_id=r.client_id, token_id=r.token_id, source=r.source, tool=r.tool,
                      arguments=msgspec.json.decode(r.arguments), outcome=r.outcome, detail=r.detail,
                      duration_ms=r.duration_ms, request_id=r.request_id, prev_hash=r.prev_hash, hash=r.hash)
             for r in rows]
    return AuditPage(items=items, next=rows[-1].seq if more and rows else None)
