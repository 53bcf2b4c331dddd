"""The one parser of event cursors that SSE (`after`, Last-Event-ID) and GraphQL (`after`) share."""

from __future__ import annotations

import pytest

from api.errors import InvalidInput, InvalidReason
from api.live import parse_cursor

LARGEST = 2**63 - 1


@pytest.mark.parametrize("text", ["0", "7", "0042", "1234567890", str(LARGEST)])
def test_whole_numbers_up_to_the_largest_cursor_are_cursors(text: str) -> None:
    assert parse_cursor(text, "after") == int(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "²",  # str.isdigit() says yes; int() says no
        "1²",
        "٣",  # an Arabic-Indic three: int() would read it as 3
        "-1",
        "+1",
        " 1",
        "1 ",
        "1.0",
        "1e3",
        "0x10",
        "1_000",
        "yesterday",
        str(LARGEST + 1),  # past the bigint sequence
        "9" * 20,
        "9" * 100_000,
    ],
)
def test_anything_else_is_invalid_input_naming_the_parameter(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_cursor(text, "Last-Event-ID")
    assert caught.value.field == "Last-Event-ID"
    assert caught.value.reason is InvalidReason.FORMAT
    assert "Last-Event-ID must be an event cursor" in caught.value.message
    # A long value is shown cut short, not echoed whole.
    assert len(caught.value.message) < 200
