"""The cheaper row conversions of the call path give exactly what the generic ones gave (D892)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime, TypeDecorator
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from till_tools.money import Money, money, to_decimal
from till_tools.store import models
from till_tools.store.models import UTCDateTime

pytestmark = pytest.mark.unit
CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "KWD", "GBP", "BHD", "XYZ", "HUF", "CLP"])
SQLITE = sqlite.dialect()


def old_to_decimal(minor: int, currency: str) -> str:
    """``money.to_decimal`` before D892, verbatim."""
    exp = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "HUF": 2, "BHD": 3, "KWD": 3,
           "JOD": 3, "OMR": 3, "TND": 3}.get(currency, 2)
    if exp == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp)
    return f"{sign}{whole}.{frac:0{exp}d}"


@pytest.mark.parametrize(("minor", "currency", "text"), [
    (0, "USD", "0.00"), (5, "USD", "0.05"), (2999, "USD", "29.99"), (-2999, "USD", "-29.99"), (-5, "USD", "-0.05"),
    (100, "USD", "1.00"), (10**13, "USD", "100000000000.00"), (2999, "JPY", "2999"), (-7, "JPY", "-7"),
    (29990, "KWD", "29.990"), (-1, "KWD", "-0.001"), (True, "USD", "0.01"),
])
def test_to_decimal_table(minor: int, currency: str, text: str) -> None:
    assert to_decimal(minor, currency) == text == old_to_decimal(minor, currency)
    assert money(minor, currency) == Money(text, currency)


@given(st.integers(min_value=-(10**16), max_value=10**16), CURRENCIES)
def test_to_decimal_matches_the_old_function(minor: int, currency: str) -> None:
    assert to_decimal(minor, currency) == old_to_decimal(minor, currency)
    m = money(minor, currency)
    assert m == Money(old_to_decimal(minor, currency), currency)
    assert money(minor, currency) is m or money.cache_info().maxsize is not None   # cached, and bounded


class GenericUTCDateTime(TypeDecorator[datetime]):
    """``UTCDateTime`` as it was: the decorator's generic wrapper around the dialect's processors."""

    impl = DateTime
    cache_ok = True
    process_bind_param = UTCDateTime.process_bind_param
    process_result_value = UTCDateTime.process_result_value


def processors(t: TypeDecorator[Any], dialect: Dialect) -> tuple[Any, Any]:
    impl = t.dialect_impl(dialect)            # what Core and store/hot.py use
    return impl.bind_processor(dialect), impl.result_processor(dialect, None)


def naive(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A naive UTC datetime, as columns store them."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC).replace(tzinfo=None)


ZONES = st.sampled_from([None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])


@given(st.datetimes(min_value=naive(1, 1, 2), max_value=naive(9999, 12, 30)), ZONES)
def test_utc_datetime_on_sqlite_binds_and_reads_what_the_generic_path_did(at: datetime, zone: Any) -> None:
    value = at if zone is None else at.replace(tzinfo=zone)
    fast_bind, fast_result = processors(UTCDateTime(), SQLITE)
    slow_bind, slow_result = processors(GenericUTCDateTime(), SQLITE)
    stored = slow_bind(value)
    assert fast_bind(value) == stored
    assert type(fast_bind(value)) is str
    assert fast_result(stored) == slow_result(stored)
    assert fast_result(stored).tzinfo is UTC
    assert str(fast_result(stored)) == str(slow_result(stored))


@pytest.mark.parametrize("stored", ["2026-11-23 11:59:25.101668", "2026-11-23 11:59:25", "2026-11-23 11:59",
                                    "0999-01-02 03:04:05.000006", "2026-11-23T11:59:25.5", "2026-11-23"])
def test_utc_datetime_reads_every_stored_form_alike(stored: str) -> None:
    fast_bind, fast_result = processors(UTCDateTime(), SQLITE)
    _, slow_result = processors(GenericUTCDateTime(), SQLITE)
    assert fast_result(stored) == slow_result(stored)
    assert fast_result(None) is None
    assert fast_bind(None) is None


def test_the_fast_path_is_sqlites_default_datetime_only() -> None:
    assert sqlite.DATETIME()._storage_format == models._SQLITE_DATETIME_FORMAT    # type: ignore[no-untyped-call]
    assert models._default_sqlite_datetime(UTCDateTime(), SQLITE)
    assert not models._default_sqlite_datetime(UTCDateTime(), postgresql.dialect())   # type: ignore[no-untyped-call]
    pg = postgresql.dialect()   # type: ignore[no-untyped-call]
    at = datetime(2026, 11, 23, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    fast_bind, fast_result = processors(UTCDateTime(), pg)
    slow_bind, slow_result = processors(GenericUTCDateTime(), pg)
    stored = naive(2026, 11, 23, 10, 0)
    assert fast_bind(at) == slow_bind(at) == stored
    assert fast_result(stored) == slow_result(stored) == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
