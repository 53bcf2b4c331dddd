"""Relay connections: paging arguments to a plan's filter, order and limit, and rows back to a page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import strawberry

from api.errors import InvalidInput, InvalidReason
from api.graphql.ordering import Key, after, before, decode_cursor, encode_cursor
from api.plan import Filter, OrderTerm, all_of

T = TypeVar("T")


@strawberry.type(description="Where a page sits in the whole list.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More rows follow the last one of this page.")
    has_previous_page: bool = strawberry.field(
        description="More rows precede the first one of this page. With `first`/`after` this is true whenever "
        "`after` is given; with `last`/`before`, hasNextPage is true whenever `before` is given."
    )
    start_cursor: str | None = strawberry.field(description="Cursor of the first row of this page.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last row of this page.")


@strawberry.type(description="A row with its position in the list.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Opaque position of this row, for `after` and `before`.")
    node: T


@strawberry.type(description="One page of a list, with its paging information.")
class Connection(Generic[T]):
    nodes: list[T] = strawberry.field(description="The rows of this page.")
    edges: list[Edge[T]] = strawberry.field(description="The rows of this page with their cursors.")
    page_info: PageInfo
    total: strawberry.Private[Callable[[], Awaitable[int]]]
    # The JSON value of a summary (api.plan.Summary) of the rows matching `where`: its aggregates
    # (api/graphql/aggregates.py).
    summarize: strawberry.Private[Any] = None

    @strawberry.field(description="The number of rows matching `where`, over all pages (counted only when asked).")
    async def total_count(self) -> int:
        return await self.total()


@dataclass(frozen=True)
class Page:
    """What to read for one page: the plan's filter, order and limit, and how to read the rows back."""

    where: Filter | None
    order: tuple[OrderTerm, ...]
    limit: int
    keys: tuple[Key, ...]
    size: int
    backward: bool
    # `first` and `last` together: the last `trim` of the first `size` rows.
    trim: int | None
    after_given: bool
    before_given: bool


@dataclass(frozen=True)
class Limits:
    max_page_size: int
    default_page_size: int


def plan_page(
    keys: tuple[Key, ...],
    where: Filter | None,
    limits: Limits,
    *,
    first: int | None,
    after_cursor: str | None,
    last: int | None,
    before_cursor: str | None,
) -> Page:
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= limits.max_page_size:
            raise InvalidInput(
                f"{name} must be between 0 and {limits.max_page_size}, not {value}",
                field=name,
                reason=InvalidReason.RULE,
            )
    bounds: list[Filter | None] = [where]
    if after_cursor is not None:
        bounds.append(after(keys, decode_cursor(keys, after_cursor, "after")))
    if before_cursor is not None:
        bounds.append(before(keys, decode_cursor(keys, before_cursor, "before")))
    backward = last is not None and first is None
    size = (last if backward else first) if (first is not None or last is not None) else limits.default_page_size
    assert size is not None
    ordered = tuple(k.reversed() for k in keys) if backward else keys
    return Page(
        where=all_of(*bounds),
        order=tuple(k.term() for k in ordered),
        limit=size + 1,
        keys=keys,
        size=size,
        backward=backward,
        trim=last if (first is not None and last is not None) else None,
        after_given=after_cursor is not None,
        before_given=before_cursor is not None,
    )


def build(
    page: Page,
    rows: list[dict[str, Any]],
    make: Callable[[dict[str, Any]], T],
    total: Callable[[], Awaitable[int]],
    cursors: bool = True,
    summarize: Any = None,
    kind: Any = Connection,
) -> Connection[T]:
    """The connection of rows read with `page` (one more than the page holds, to tell whether more follow).

    `cursors=False` leaves them empty, for a caller that serves none. `kind`: the connection type (an entity's,
    with its aggregates read through `summarize`)."""
    more = len(rows) > page.size
    rows = rows[: page.size]
    if page.backward:
        rows.reverse()
        has_previous, has_next = more, page.before_given
    else:
        has_previous, has_next = page.after_given, more
        if page.trim is not None and len(rows) > page.trim:
            rows = rows[len(rows) - page.trim :] if page.trim else []
            has_previous = True
    edges = [Edge(cursor=encode_cursor(page.keys, row) if cursors else "", node=make(row)) for row in rows]
    info = PageInfo(
        has_next_page=has_next,
        has_previous_page=has_previous,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    connection: Connection[T] = kind(
        nodes=[e.node for e in edges], edges=edges, page_info=info, total=total, summarize=summarize
    )
    return connection
