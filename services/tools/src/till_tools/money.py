"""Money on the wire: decimal strings in, ``{"amount": "29.99", "currency": "USD"}`` out (SPEC §6).

Storage is integer minor units.  Floats never reach this module: the argument Structs type money
as ``str`` with an ASCII-only pattern, so ``29.99`` (a JSON number), ``"٣"``, ``"29,99"``,
``"NaN"`` and ``"1e309"`` are refused by validation, naming the field.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Final

import msgspec
from msgspec import Meta

#: ISO 4217 minor-unit exponents that differ from 2.
_EXPONENTS: Final = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "HUF": 2, "BHD": 3, "KWD": 3,
                     "JOD": 3, "OMR": 3, "TND": 3}
MAX_MINOR: Final = 10**13   # 100 billion in a two-decimal currency; far beyond any price

#: A non-negative decimal amount with at most three decimals, ASCII digits only.
MONEY_PATTERN: Final = r"^(0|[1-9][0-9]{0,13})(\.[0-9]{1,3})?$"
MoneyStr = Annotated[str, Meta(pattern=MONEY_PATTERN, max_length=20,
                               description='A decimal string in the store currency, e.g. "29.99". Never a number.',
                               examples=["29.99"])]
_MONEY = re.compile(MONEY_PATTERN, re.ASCII)


class Money(msgspec.Struct, frozen=True):
    amount: str
    currency: str


class MoneyError(ValueError):
    """The amount cannot be represented in the currency (e.g. "29.999" USD)."""


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


def to_minor(value: str, currency: str) -> int:
    """``"29.99"`` USD → ``2999``.  Exact: no float ever touches the amount."""
    if not _MONEY.match(value):
        raise MoneyError(f'"{value}" is not a decimal amount like "29.99"')
    whole, _, frac = value.partition(".")
    exp = exponent(currency)
    if len(frac) > exp:
        if exp == 0:
            raise MoneyError(f"{currency} has no minor unit; use a whole number")
        raise MoneyError(f"{currency} has {exp} decimals at most, got \"{value}\"")
    minor: int = int(whole) * 10**exp + (int(frac.ljust(exp, "0")) if exp else 0)
    if minor > MAX_MINOR:
        raise MoneyError(f'"{value}" is too large')
    return minor


def to_decimal(minor: int, currency: str) -> str:
    exp = _EXPONENTS.get(currency, 2)
    if exp == 2 and minor >= 0:              # nearly every amount: no sign, no nested format spec
        whole, frac = divmod(minor, 100)
        return f"{whole}.{frac:02d}"
    if exp == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp)
    return f"{sign}{whole}.{frac:0{exp}d}"


@functools.lru_cache(maxsize=4096)
def money(minor: int, currency: str) -> Money:
    """Frozen, so one instance serves every result showing the same amount (prices repeat: D892)."""
    return Money(to_decimal(minor, currency), currency)
