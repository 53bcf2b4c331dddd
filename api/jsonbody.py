"""JSON request bodies parsed with a nesting limit, for every front end alike.

`json.loads` recurses once per level of nesting: a body of a few hundred
kilobytes of brackets raises RecursionError deep inside whatever parses it,
and nested values that do parse are walked recursively again by every layer
after it (GraphQL's coercion, filters, validation). So the nesting is measured
first, on the raw text and without recursion, in a few passes of C code:
escapes and strings are cut out (their brackets do not count), brackets become
+1 and -1, and their running sum is the depth. That costs less than parsing
the same text, and a body of a few brackets is not examined at all.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

# Objects and arrays inside each other, counting the outermost: deeper bodies are refused.
MAX_DEPTH = 512

_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'{}[]"')
# A string once nothing but brackets and quotes is left of the text.
_STRING = re.compile(b'"[^"]*"')
# Brackets become +1 and -1 (as signed bytes).
_SIGNS = bytes.maketrans(b"{[}]", b"\x01\x01\xff\xff")
# Levels are summed a slice at a time, so that a deep body is refused early.
_SLICE = 1 << 16


class TooDeep(ValueError):
    """The body nests objects and arrays deeper than the limit."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"the JSON body nests objects and arrays more than {max_depth} levels deep")
        self.max_depth = max_depth


def depth_exceeds(raw: bytes | str, max_depth: int = MAX_DEPTH) -> bool:
    """Whether the JSON text nests objects and arrays more than `max_depth` deep (brackets in strings aside)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    # Most bodies cannot be deep at all: too few brackets.
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return False
    # Outside strings JSON has no backslash: once escaped backslashes and quotes are gone, quotes
    # alternate between opening and closing a string.
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = data.translate(None, _NOT_STRUCTURE)
    # Two quotes side by side enclose (or separate) no bracket: dropping them changes nothing.
    structure = structure.replace(b'""', b"")
    if b'"' in structure:
        structure = _STRING.sub(b"", structure)
    steps = memoryview(structure.translate(_SIGNS)).cast("b")
    depth = 0
    for start in range(0, len(steps), _SLICE):
        levels = list(accumulate(steps[start : start + _SLICE], initial=depth))
        if max(levels) > max_depth:
            return True
        depth = levels[-1]
    return False


def loads(raw: bytes | str, max_depth: int = MAX_DEPTH, **options: Any) -> Any:
    """`json.loads` (with its `options`), refusing bodies nested deeper than `max_depth` with `TooDeep`
    (a ValueError)."""
    if depth_exceeds(raw, max_depth):
        raise TooDeep(max_depth)
    try:
        return json.loads(raw, **options)
    except RecursionError:  # a call stack already deep when parsing began
        raise TooDeep(max_depth) from None
