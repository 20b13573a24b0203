"""The one way a tool runs (SPEC §6, STYLE "call.py is the only way a tool runs").

role → scope → arguments → handler + audit row in one transaction → result.  A handler that fails
rolls back and its audit row is then written alone; every call leaves exactly one row.
"""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from till_common.logging import get_logger
from till_common.principal import Principal
from till_common.protocol.internal import INSUFFICIENT_SCOPE, INTERNAL_ERROR, INVALID_PARAMS
from till_tools import audit
from till_tools.money import MONEY_PATTERN
from till_tools.registry import Registry
from till_tools.spec import FORMAT_HINTS, Ctx, InvalidArgument, ToolFailure, ToolSpec
from till_tools.store.content import IdempotencyRecord
from till_tools.store.models import Store
from till_tools.store.tx import CallTx

log = get_logger("till.tools.call")
_encoder = msgspec.json.Encoder()
_sorted = msgspec.json.Encoder(order="sorted")
_AT = re.compile(r" - at `(\$[^`]*)`$")
_UNKNOWN = re.compile(r"unknown field `([^`]*)`")
_NAME_MAX: Final = 100


class RpcFault(Exception):
    """A JSON-RPC error for the gateway to send as is."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class _Rollback(Exception):
    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload


_HINTS: Final[dict[str, str]] = {
    f"Expected `str` matching regex {pattern!r}": f"Expected {hint}"
    for pattern, hint in {**FORMAT_HINTS, MONEY_PATTERN: 'a decimal string like "29.99" (no currency '
                          "sign, at most 3 decimals)"}.items()
}


def validation_fault(exc: msgspec.ValidationError) -> RpcFault:
    """msgspec's "… - at `$.price`" becomes data {"path": "$.price"}; a bare regex becomes words."""
    text = str(exc)
    for raw, hint in _HINTS.items():
        if text.startswith(raw):
            text = hint + text[len(raw):]
            break
    m = _AT.search(text)
    path = m.group(1) if m else "$"
    data: dict[str, Any] = {"path": path, "input": True}
    unknown = _UNKNOWN.search(text)
    if unknown:
        data["unexpected"] = unknown.group(1)
    return RpcFault(INVALID_PARAMS, f"invalid arguments: {text}", data)


def tool_result(payload: dict[str, Any]) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": _encoder.encode(payload).decode()}],
            "structuredContent": payload, "isError": False}


def error_result(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "isError": True}


def fingerprint(tool: str, args: Any) -> str:
    body = msgspec.to_builtins(args)
    body.pop("idempotency_key", None)
    body.pop("dry_run", None)
    return hashlib.sha256(_sorted.encode([tool, body])).hexdigest()


async def store_currency(reg: Registry, db: AsyncSession, store_id: int) -> str:
    currency = reg.currencies.get(store_id)
    if currency is None:
        store = await db.get(Store, store_id)
        if store is None:
            # a store auth knows but tools has never seen: start it empty (USD until configured)
            store = Store(id=store_id, name=f"Store {store_id}", currency="USD")
            db.add(store)
            await db.flush()
        currency = reg.currencies[store_id] = store.currency
    return currency


async def _audit_alone(reg: Registry, who: Principal, tool: str, args_text: str, outcome: audit.Outcome,
                       detail: str, started: float) -> None:
    async with reg.write_slot(), reg.transaction() as tx:
        await audit.append(tx.db, who, tool, args_text, outcome, detail, (time.perf_counter() - started) * 1000,
                           datetime.now(UTC), reg.audit_heads)
        await tx.commit()


async def call_tool(reg: Registry, who: Principal, params: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    name = params.get("name")
    raw_args = params.get("arguments")
    raw_args = {} if raw_args is None else raw_args
    args_text = audit.arguments_text(raw_args)
    if not isinstance(name, str) or not name:
        raise RpcFault(INVALID_PARAMS, "tools/call needs params.name", {"path": "$.name"})
    spec = reg.catalogue.get(name)
    if spec is None:
        await _audit_alone(reg, who, name[:_NAME_MAX], args_text, "refused", "unknown tool", started)
        raise RpcFault(INVALID_PARAMS, f"unknown tool {name[:_NAME_MAX]!r}; tools/list shows the tools",
                       {"path": "$.name"})
    if not who.role_allows(spec.permission):
        detail = f"role {who.role} lacks {spec.permission}"
        await _audit_alone(reg, who, name, args_text, "denied", detail, started)
        return error_result(f"Permission denied: {name} needs the permission {spec.permission}, which the "
                            f"role '{who.role}' does not have. Ask the store owner for a role that includes it.")
    if not who.scope_allows(spec.permission):
        await _audit_alone(reg, who, name, args_text, "denied", f"token scope lacks {spec.permission}", started)
        raise RpcFault(INSUFFICIENT_SCOPE, f"the token's scope does not include {spec.permission}",
                       {"scope": spec.permission})
    if not isinstance(raw_args, dict):
        await _audit_alone(reg, who, name, args_text, "refused", "arguments not an object", started)
        raise RpcFault(INVALID_PARAMS, "arguments must be an object", {"path": "$"})
    try:
        args = msgspec.convert(raw_args, spec.params)
    except msgspec.ValidationError as exc:
        fault = validation_fault(exc)
        await _audit_alone(reg, who, name, args_text, "refused", fault.message[:500], started)
        raise fault from None
    for attempt in (1, 2):
        try:
            return await _run(reg, who, spec, args, args_text, started)
        except IntegrityError:
            # two calls raced on one idempotency key: the loser now finds the winner's stored result
            if attempt == 2 or getattr(args, "idempotency_key", None) is None:
                raise
    raise AssertionError("unreachable")


async def _stored_result(db: AsyncSession, store_id: int, key: str, fp: str) -> dict[str, Any] | None:
    """Same key + same arguments → the stored result; same key + other arguments → refused."""
    rec = (await db.execute(select(IdempotencyRecord.fingerprint, IdempotencyRecord.result)
                            .where(IdempotencyRecord.store_id == store_id, IdempotencyRecord.key == key))).first()
    if rec is None:
        return None
    if rec[0] != fp:
        raise InvalidArgument("$.idempotency_key", "this idempotency_key was already used with different "
                                                   "arguments; use a new key for a new request")
    payload: dict[str, Any] = msgspec.json.decode(rec[1])
    payload["replayed"] = True
    return payload


async def _committed(reg: Registry, tx: CallTx, who: Principal, spec: ToolSpec[Any, Any], args: Any,
                     args_text: str, started: float, now: datetime) -> dict[str, Any]:
    """The handler (or a stored idempotent result) and its audit row, committed together."""
    name = spec.name
    key: str | None = getattr(args, "idempotency_key", None)
    dry_run: bool = getattr(args, "dry_run", False)
    db = tx.db
    ctx = Ctx(db=db, store_id=who.store_id, currency=await store_currency(reg, db, who.store_id),
              who=who, now=now, dialect=reg.dialect, dry_run=dry_run, payment_keys=reg.payment_keys)
    fp = None
    if key is not None and not dry_run:
        fp = fingerprint(name, args)
        stored = await _stored_result(db, who.store_id, key, fp)
        if stored is not None:
            await audit.append(db, who, name, args_text, "success", "replayed",
                               (time.perf_counter() - started) * 1000, now, reg.audit_heads)
            await tx.commit()
            return tool_result(stored)
    result = await spec.handler(ctx, args)
    payload = msgspec.to_builtins(result)
    if not spec.read_only:
        payload["changes"] = msgspec.to_builtins(ctx.changes)
        payload["dry_run"] = dry_run
    if dry_run:
        raise _Rollback(payload)
    if fp is not None:
        db.add(IdempotencyRecord(store_id=who.store_id, key=key, tool=name, fingerprint=fp,
                                 result=_encoder.encode(payload).decode(), created_at=now))
        await db.flush()
    await audit.append(db, who, name, args_text, "success", "",
                       (time.perf_counter() - started) * 1000, now, reg.audit_heads)
    await tx.commit()
    return tool_result(payload)


async def _run(reg: Registry, who: Principal, spec: ToolSpec[Any, Any], args: Any, args_text: str,
               started: float) -> dict[str, Any]:
    """Handler + audit row in one transaction; a dry run or a failure rolls it back, then the audit row
    is written alone in a second one (``store/tx.py``: the same semantics on every engine)."""
    name = spec.name
    key: str | None = getattr(args, "idempotency_key", None)
    now = datetime.now(UTC)

    async def audit_alone(tx: CallTx, outcome: audit.Outcome, detail: str) -> None:
        await tx.rollback()
        await audit.append(tx.db, who, name, args_text, outcome, detail, (time.perf_counter() - started) * 1000,
                           now, reg.audit_heads)
        await tx.commit()

    try:
        async with reg.write_slot(), reg.transaction() as tx:
            try:
                return await _committed(reg, tx, who, spec, args, args_text, started, now)
            except _Rollback as rb:
                await audit_alone(tx, "success", "dry run")
                return tool_result(rb.payload)
            except ToolFailure as exc:
                await audit_alone(tx, "failed", exc.message[:500])
                return error_result(exc.message)
            except IntegrityError:
                if key is not None:
                    raise
                await audit_alone(tx, "failed", "conflict with existing data")
                return error_result("the change conflicts with existing data (a duplicate code, SKU or slug, "
                                    "or a concurrent change); nothing was changed — read the record and retry")
            except InvalidArgument as exc:
                await audit_alone(tx, "refused", exc.message[:500])
                raise RpcFault(INVALID_PARAMS, f"invalid arguments: {exc.message} - at `{exc.path}`",
                               {"path": exc.path, "input": True}) from None
    except (RpcFault, IntegrityError):
        raise
    except Exception:
        log.exception("tool failed", tool=name)
        try:
            await _audit_alone(reg, who, name, args_text, "failed", "internal error", started)
        except Exception:
            log.exception("audit of a failed call failed too", tool=name)
        raise RpcFault(INTERNAL_ERROR, "internal error; quote the correlation id when reporting it",
                       {"correlation_id": who.request_id}) from None
