"""Chain verification, redaction and idempotency fingerprints, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from till_tools import audit
from till_tools.call import fingerprint
from till_tools.store.content import AuditEntry
from till_tools.tools.coupons import CreateCoupon

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def chain(n: int) -> list[AuditEntry]:
    rows, prev = [], audit.GENESIS
    for i in range(1, n + 1):
        row = AuditEntry(id=100 + i, store_id=1, seq=i, at=T0 + timedelta(seconds=i), user_id=1, client_id=None,
                         token_id="t", source="mcp", tool="get_product", arguments='{"id":1}', outcome="success",
                         detail="", duration_ms=1.5, request_id=f"r{i}", prev_hash=prev, hash="")
        row.hash = audit.row_hash(audit.canonical_of(row))
        prev = row.hash
        rows.append(row)
    return rows


def test_an_intact_chain_verifies() -> None:
    rows = chain(5)
    assert audit.verify_rows(1, rows, (5, rows[-1].hash)).ok


def test_edit_delete_swap_and_truncation_are_named() -> None:
    rows = chain(5)
    rows[2].outcome = "denied"
    v = audit.verify_rows(1, rows, None)
    assert (v.bad_row_id, v.bad_seq) == (103, 3)
    assert "edited" in v.reason

    rows = chain(5)
    del rows[1]
    assert audit.verify_rows(1, rows, None).bad_row_id == 103

    rows = chain(5)
    a, b = rows[1], rows[2]
    swapped = [rows[0], b, a, *rows[3:]]
    assert audit.verify_rows(1, swapped, None).bad_row_id == b.id

    rows = chain(5)
    v = audit.verify_rows(1, rows[:4], (5, rows[-1].hash))
    assert not v.ok
    assert "deleted" in v.reason


def test_secrets_are_redacted_recursively_but_idempotency_keys_stay() -> None:
    out = audit.redact({"api_key": "a", "nested": {"Password": "p", "x": [{"client_secret": "s"}]},
                        "idempotency_key": "k", "token": "t", "name": "ok"})
    assert out == {"api_key": "[REDACTED]", "idempotency_key": "k", "token": "[REDACTED]", "name": "ok",
                   "nested": {"Password": "[REDACTED]", "x": [{"client_secret": "[REDACTED]"}]}}


@given(st.integers(min_value=1, max_value=100), st.text(min_size=1, max_size=20), st.booleans())
def test_fingerprint_ignores_key_and_dry_run_but_not_arguments(percent: int, key: str, dry: bool) -> None:
    a = CreateCoupon(percent_off=percent, code="ABC", idempotency_key=key, dry_run=dry)
    b = CreateCoupon(percent_off=percent, code="ABC")
    c = CreateCoupon(percent_off=percent % 100 + 1, code="ABC")
    assert fingerprint("create_coupon", a) == fingerprint("create_coupon", b)
    assert fingerprint("create_coupon", a) != fingerprint("create_coupon", c)
    assert fingerprint("create_coupon", a) != fingerprint("update_coupon", b)


def test_arguments_text_is_canonical_and_bounded() -> None:
    args: dict[str, Any] = {"b": 1, "a": 2}
    assert audit.arguments_text(args) == '{"a":2,"b":1}'
    assert len(audit.arguments_text({"x": "y" * 100_000})) < 3000


@given(st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                               timezone(timedelta(hours=-8))])))
def test_timestamp_is_the_strftime_text_every_stored_hash_was_computed_over(at: datetime) -> None:
    assert audit.timestamp(at) == at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
