"""GET requests of a shape already seen: the same resource and parameters, other values.

Reading PostgREST's query string and planning cost more Python than the rest
of a read. Clients mostly repeat a few kinds of request with other values
(`/actors?id=eq.p-7`, then `eq.p-8`), so a plain GET has a shape: its path,
each filter's name and operator, and its other parameters as they are. The
first request of a shape is answered as usual; its shape is then planned
once more, with a marker in place of each filter value, to learn which slot
of the plan (`plan.parameterized`) each value fills. Later requests of that
shape put their values in those slots and run the same prepared statement.

Only what is sure to mean the same whatever the values takes this path:
filters that are plain comparisons (`eq`, `neq`, `gt`, `gte`, `lt`, `lte`,
with or without `not.`), whose value the planner hands on untouched (a shape
whose markers come out anywhere but in slots is never used), and requests
without Prefer, Range or Accept-Profile, asking for JSON. Everything else,
and any answer that would be streamed, goes the usual way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from api.cache import BoundedCache
from api.errors import DomainError
from api.plan import ReadPlan, parameterized
from api.rest.errors import RestError
from api.rest.headers import MediaType, negotiate
from api.rest.querystring import RESERVED, RESERVED_EMBEDDABLE, canonical
from api.rest.reading import STREAM_AFTER, read_plans
from api.rest.reply import Reply, read_reply
from api.rest.request import ApiRequest, api_request, query_items
from api.rest.response import range_status
from api.store import Reader

SHAPES_KEPT = 1024
COMPARISON = re.compile(r"(not\.)?(eq|neq|gte|gt|lte|lt)\.", re.DOTALL)
PLAIN_ACCEPT = (None, "*/*", "application/json")
# A filter value's stand-in while a shape is planned: private-use characters no client sends by chance.
MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"
MARKER = re.compile(f"{MARK_OPEN}([0-9]+){MARK_CLOSE}")
# A query string that quoting leaves as it is: unreserved characters only, every part a key and a value.
_PART = rb"[A-Za-z0-9._~-]+=[A-Za-z0-9._~-]*"
CANONICAL = re.compile(_PART + rb"(?:&" + _PART + rb")*")
# A key not seen yet.
_NEW = object()


@dataclass(frozen=True)
class Shape:
    api: ApiRequest
    media: MediaType
    plan: ReadPlan  # the plan as planned with markers, for rendering
    slots: ReadPlan  # the shape of its first read (see `reading.read_plans`), slots in place of values
    sources: tuple[int, ...]  # for each slot, the filter whose value fills it
    streamable: bool
    location: str  # the resource's path, which Content-Location starts with
    content_type: bytes


class Shapes:
    """The shapes of an app's recent GETs (None: a request of that shape is always planned)."""

    def __init__(self, size: int = SHAPES_KEPT) -> None:
        self.known: BoundedCache[tuple[Any, ...], Shape | None] = BoundedCache("rest_shapes", size)
        # What writes without a query string show of their rows, by entity and options (api/rest/writing.py).
        self.write_plans: BoundedCache[tuple[str, bool, bool], ReadPlan] = BoundedCache("rest_write_plans", 64)

    async def answer(
        self, request: Request, reader: Reader, max_rows: int | None, aggregates: bool = True
    ) -> Reply | None:
        """The answer from a known shape, or None: then answer as usual (the shape of a request
        seen for the first time is planned here, for the next ones)."""
        found = _key(request)
        if found is None:
            return None
        accept, parts, values, items = found
        key = (max_rows, aggregates, request.scope["path"], accept, parts)
        shape = self.known.get(key, _NEW)
        if not isinstance(shape, Shape):  # None: a shape that is always planned
            if shape is _NEW:
                self.known.put(key, _plan_shape(request, parts, len(values), max_rows, aggregates))
            return None
        text, rows = await reader.json_rows_shaped(shape.slots, [values[i] for i in shape.sources])
        if shape.streamable and rows > STREAM_AFTER:
            return None
        status, content_range = range_status(shape.api.offset, rows, None)
        location = shape.location + (f"?{_canonical(request.scope['query_string'], items)}" if items else "")
        return read_reply(status, location, content_range, text.encode(), shape.content_type)


def _canonical(raw: bytes, items: list[tuple[str, str]]) -> str:
    """`canonical(items)`; a query string already in that form (keys in order, nothing to quote) is its own."""
    if CANONICAL.fullmatch(raw) and all(items[i][0] <= items[i + 1][0] for i in range(len(items) - 1)):
        return raw.decode("ascii")
    return canonical(items)


def _key(
    request: Request,
) -> tuple[str | None, tuple[tuple[str, str, bool], ...], list[str], list[tuple[str, str]]] | None:
    """The request's Accept header, its parameters as its shape sees them (name; the value, or for a
    filter its operator; whether it is a filter), its filter values and its query items; None when it
    has no shape to keep."""
    scope = request.scope
    if scope["method"] != "GET":
        return None
    accept = None
    for name, value in scope["headers"]:
        if name in (b"prefer", b"range", b"accept-profile"):
            return None
        if name == b"accept":
            if accept is not None:
                return None  # several Accept headers: only the usual path reads them as it does
            accept = value.decode("latin-1")
    if accept not in PLAIN_ACCEPT:
        return None
    parts: list[tuple[str, str, bool]] = []
    values: list[str] = []
    items = query_items(scope["query_string"])
    if any(MARK_OPEN in key or MARK_OPEN in value or MARK_CLOSE in key or MARK_CLOSE in value for key, value in items):
        return None  # a client's own markers would be taken for ours while the shape is planned
    for key, value in items:
        if key in RESERVED or key.rsplit(".", 1)[-1] in RESERVED_EMBEDDABLE:
            parts.append((key, value, False))
            continue
        comparison = COMPARISON.match(value)
        if comparison is None:
            return None
        parts.append((key, comparison.group(), True))
        values.append(value[comparison.end() :])
    return accept, tuple(parts), values, items


def _plan_shape(
    request: Request, parts: tuple[tuple[str, str, bool], ...], filters: int, max_rows: int | None, aggregates: bool
) -> Shape | None:
    """Plan the request with markers for its filter values; None unless every marker lands in a slot."""
    marked: list[tuple[str, str]] = []
    index = 0
    for key, text, is_filter in parts:
        if is_filter:
            text, index = f"{text}{MARK_OPEN}{index}{MARK_CLOSE}", index + 1
        marked.append((key, text))
    stand_in = Request({**request.scope, "query_string": urlencode(marked).encode("latin-1")})
    try:
        api = api_request(stand_in)
        if api.action != "read" or api.entity is None:
            return None
        media = negotiate(api.accepts, ("json", "object", "csv"))
        if media.kind != "json":
            return None
        plan, probe = read_plans(api, max_rows, media, aggregates)
    except (RestError, DomainError):
        return None  # the usual path answers each such request with its error
    slots, marks = parameterized(probe)
    sources: list[int] = []
    for mark in marks:
        found = MARKER.fullmatch(mark) if isinstance(mark, str) else None
        if found is None:
            return None
        sources.append(int(found.group(1)))
    if sorted(set(sources)) != list(range(filters)) or MARK_OPEN in repr(slots):
        return None  # a value the plan does not merely carry: only the usual path knows what it means
    assert api.entity is not None
    return Shape(
        api=api,
        media=media,
        plan=plan,
        slots=slots,
        sources=tuple(sources),
        streamable=probe is not plan,
        location=f"/{api.entity.resource}",
        content_type=media.content_type.encode("latin-1"),
    )
