"""Opaque cursors and literal LIKE patterns."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from till_tools.pagination import decode_cursor, encode_cursor, finish, like_contains
from till_tools.spec import InvalidArgument
from till_tools.tools.products import ProductPage


@given(st.integers(min_value=0, max_value=10_000_000))
def test_cursor_round_trip(offset: int) -> None:
    assert decode_cursor("list_products", encode_cursor("list_products", offset)) == offset


@pytest.mark.parametrize("cursor", ["x", "!!!", encode_cursor("list_orders", 5), "eyJ4IjoxfQ"])
def test_foreign_or_garbage_cursors_are_invalid(cursor: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        decode_cursor("list_products", cursor)
    assert exc.value.path == "$.cursor"


def test_like_escapes_wildcards() -> None:
    assert like_contains("50%_off\\") == "%50\\%\\_off\\\\%"


def test_oversized_pages_are_truncated_and_say_so() -> None:
    from till_tools.money import money
    from till_tools.tools.products import ProductSummary

    items = [ProductSummary(id=i, title="x" * 180, status="active", min_price=money(1, "USD"),
                            max_price=money(1, "USD"), total_stock=1, skus=["S" * 60] * 5) for i in range(101)]
    page = finish("list_products", ProductPage, items, 0, 100)
    assert page.truncated is True
    assert len(page.items) < 100
    assert page.next_cursor == encode_cursor("list_products", len(page.items))
    assert page.note is not None
