"""Find records by what a merchant calls them: id, name, SKU, email, code; near misses suggest."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.orm import InstrumentedAttribute

from till_tools.spec import Ctx, InvalidArgument, ToolFailure
from till_tools.store.hot import Hot

T = TypeVar("T")


def suggest(wanted: str, candidates: Sequence[tuple[str, int]], what: str) -> str:
    """``no product matches 'Clasic T-Shirt'; closest: Classic T-Shirt (id 12)``."""
    names = [c[0] for c in candidates]
    close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.6)
    if not close:
        lowered = {n.lower(): n for n in names}
        close = [lowered[m] for m in difflib.get_close_matches(wanted.lower(), list(lowered), n=3, cutoff=0.6)]
    msg = f"no {what} matches '{wanted}'"
    if close:
        ids = {n: i for n, i in candidates}
        msg += "; closest: " + ", ".join(f"{n} (id {ids[n]})" for n in close)
    return msg


async def by_id(ctx: Ctx, model: type[T], id: int, what: str) -> T:
    row = await ctx.db.get(model, id)
    # another store's id answers exactly like a nonexistent one (TL-01)
    if row is None or getattr(row, "store_id", None) != ctx.store_id:
        raise ToolFailure(f"no {what} with id {id} in this store")
    return row


_BY_ID: dict[type[Any], Hot] = {}
_BY_TEXT: dict[tuple[type[Any], str], Hot] = {}


def _columns(model: type[Any]) -> Select[Any]:
    return select(*model.__table__.c)


async def row_by_id(ctx: Ctx, model: type[Any], id: int, what: str) -> Any:
    """``by_id`` without the ORM, for reads and single-column updates on the hot path: the model's
    columns as a row with attribute access like the mapped object, one statement built once (store/hot.py)."""
    stmt = _BY_ID.get(model)
    if stmt is None:
        stmt = _BY_ID[model] = Hot(_columns(model).where(model.id == bindparam("id")))
    rows = await stmt.rows(ctx.db, {"id": id})
    row = rows[0] if rows else None
    if row is None or row.store_id != ctx.store_id:
        raise ToolFailure(f"no {what} with id {id} in this store")
    return row


async def row_by_text(ctx: Ctx, model: type[Any], column: InstrumentedAttribute[Any], value: str,
                      what: str) -> Any:
    """``by_text`` (case-insensitive) without the ORM when exactly one row matches; otherwise ``by_text``
    itself answers, so misses and ambiguities read exactly the same."""
    stmt = _BY_TEXT.get((model, column.key))
    if stmt is None:
        stmt = _BY_TEXT[(model, column.key)] = Hot(_columns(model).where(
            model.store_id == bindparam("store"), func.lower(column) == bindparam("value")).limit(2))
    rows = await stmt.rows(ctx.db, {"store": ctx.store_id, "value": value.lower()})
    if len(rows) == 1:
        return rows[0]
    return await by_text(ctx, model, column, value, what)


async def by_text(ctx: Ctx, model: type[T], column: InstrumentedAttribute[Any], value: str, what: str,
                  label: InstrumentedAttribute[Any] | None = None, case_insensitive: bool = True) -> T:
    """Exact match (case-insensitive), else a ToolFailure naming the closest values in this store."""
    store_col: ColumnElement[Any] = model.store_id  # type: ignore[attr-defined]
    cond = func.lower(column) == value.lower() if case_insensitive else column == value
    rows = (await ctx.db.scalars(select(model).where(store_col == ctx.store_id, cond).limit(2))).all()
    if len(rows) == 1:
        return rows[0]
    if len(rows) > 1:
        raise ToolFailure(f"more than one {what} matches '{value}'; use the id")
    shown = label if label is not None else column
    candidates = (await ctx.db.execute(
        select(shown, model.id).where(store_col == ctx.store_id).limit(5000))).all()  # type: ignore[attr-defined]
    raise ToolFailure(suggest(value, [(str(c[0]), int(c[1])) for c in candidates], what))


async def by_id_or_text(ctx: Ctx, model: type[T], id: int | None, column: InstrumentedAttribute[Any],
                        value: str | None, what: str, field: str) -> T:
    """A reference given as exactly one of ``id`` or a text ``field`` (name, code…)."""
    if (id is None) == (value is None):
        raise InvalidArgument("$", f"give exactly one of id or {field}")
    if id is not None:
        return await by_id(ctx, model, id, what)
    assert value is not None
    return await by_text(ctx, model, column, value, what)
