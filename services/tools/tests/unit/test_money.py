"""Money parsing: exact, decimal strings only (hypothesis properties, TL-08)."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from till_tools.money import MAX_MINOR, MoneyError, MoneyStr, exponent, to_decimal, to_minor

CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "KWD", "GBP"])


class Price(msgspec.Struct, forbid_unknown_fields=True):
    price: MoneyStr


@given(st.integers(min_value=0, max_value=MAX_MINOR), CURRENCIES)
def test_minor_units_round_trip_through_the_decimal_string(minor: int, currency: str) -> None:
    assert to_minor(to_decimal(minor, currency), currency) == minor


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False))
def test_two_decimal_amounts_are_exact(amount: Decimal) -> None:
    assert to_minor(f"{amount:.2f}", "USD") == int(amount * 100)


@given(st.text(max_size=12))
def test_arbitrary_text_is_a_valid_amount_or_a_money_error(text: str) -> None:
    try:
        minor = to_minor(text, "USD")
    except MoneyError:
        return
    assert minor >= 0
    assert Decimal(text) * 100 == minor


@pytest.mark.parametrize("bad", ["29.999", "-5", "1e309", "NaN", "٣", "29,99", "", " 1", "1 ", "+1", "01", ".5",
                                 "5.", "Infinity", "0x10", "1_000"])
def test_bad_amounts_are_refused(bad: str) -> None:
    with pytest.raises(MoneyError):
        to_minor(bad, "USD")


@pytest.mark.parametrize("bad", [29.99, 29, None, True, "abc", "29.9999"])
def test_the_argument_type_refuses_non_strings_naming_the_field(bad: object) -> None:
    with pytest.raises(msgspec.ValidationError, match=r"at `\$\.price`"):
        msgspec.convert({"price": bad}, Price)


def test_currency_exponents() -> None:
    assert (exponent("USD"), exponent("JPY"), exponent("KWD")) == (2, 0, 3)
    assert to_decimal(2999, "USD") == "29.99"
    assert to_decimal(2999, "JPY") == "2999"
    assert to_decimal(-150, "EUR") == "-1.50"
    assert to_minor("1.5", "KWD") == 1500
    with pytest.raises(MoneyError, match="no minor unit"):
        to_minor("1.5", "JPY")
