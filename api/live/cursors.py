"""Event cursors as clients send them back: one parser for every front end that resumes a feed."""

from __future__ import annotations

from api.errors import InvalidInput, InvalidReason

# Cursors come from a bigint sequence: nothing past its largest value can name an event.
LARGEST = 2**63 - 1


def parse_cursor(text: str, name: str) -> int:
    """The cursor written as `text` (ASCII decimal digits, nothing else), or InvalidInput naming
    the parameter `name`. `str.isdigit` alone takes "²" and "٣", which `int` then refuses or reads."""
    digits = text.isascii() and text.isdigit()
    # Past its digit count, the number cannot be a cursor: `int` need not read a megabyte of digits.
    if digits and len(text) <= len(str(LARGEST)) and int(text) <= LARGEST:
        return int(text)
    shown = text if len(text) <= 40 else text[:40] + "..."
    raise InvalidInput(
        f"{name} must be an event cursor (the cursor of an event: a whole number), not {shown!r}",
        field=name,
        reason=InvalidReason.FORMAT,
        entity="coordination_event",
    )
