"""A bad format is explained in words the model can act on, never as a bare regular expression."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest
from msgspec import Meta

from till_tools.call import validation_fault
from till_tools.money import MONEY_PATTERN
from till_tools.spec import FORMAT_HINTS


@pytest.mark.parametrize("pattern", [*FORMAT_HINTS, MONEY_PATTERN])
def test_every_known_pattern_is_put_into_words(pattern: str) -> None:
    value = msgspec.defstruct("Args", [("value", Annotated[str, Meta(pattern=pattern)])])
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert({"value": "\x01 Not Valid!\x02"}, value)
    fault = validation_fault(caught.value)
    assert "regex" not in fault.message
    assert fault.message.startswith("invalid arguments: Expected ")
    assert fault.message.endswith("- at `$.value`")
    assert fault.data == {"path": "$.value", "input": True}


def test_the_price_hint_says_what_to_send() -> None:
    args = msgspec.defstruct("Args", [("price", Annotated[str, Meta(pattern=MONEY_PATTERN)])])
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert({"price": "$29.99"}, args)
    assert '"29.99"' in validation_fault(caught.value).message


def test_other_validation_messages_are_kept() -> None:
    args = msgspec.defstruct("Args", [("stock", int)])
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert({"stock": "many"}, args)
    assert validation_fault(caught.value).message == "invalid arguments: Expected `int`, got `str` - at `$.stock`"
