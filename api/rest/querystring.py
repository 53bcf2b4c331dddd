"""A PostgREST query string read into its syntax tree: filters, logic trees, select, order, ranges,
columns, on_conflict.

Names are not checked here (the planner resolves them against
`api.entities`). Like PostgREST's QueryParams it is lenient where PostgREST is
(an unparseable `limit` is ignored) and strict where it is (an unknown operator
is a 400 PGRST100).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar
from urllib.parse import quote

from api.rest.errors import BIGINT_MAX, beyond_bigint, query_param
from api.rest.grammar import Cursor, Failure, whole_number
from api.rest.syntax import FieldRef, FilterExpr, OrderItem, QueryString, SelectItem

T = TypeVar("T")

RESERVED = {"select", "columns", "on_conflict"}
RESERVED_EMBEDDABLE = {"order", "limit", "offset", "and", "or"}


def parse(items: list[tuple[str, str]]) -> QueryString:
    """Parse the (key, value) pairs of a query string, in order, repeated keys kept."""
    lookup = {k: v for k, v in reversed(items)}
    qs = QueryString(select=parse_select(lookup.get("select") or "*"))
    qs.canonical = canonical(items)
    if "columns" in lookup:
        qs.columns = tuple(_parse(lookup["columns"], "columns parameter", lambda c: c.columns()))
    if "on_conflict" in lookup:
        qs.on_conflict = tuple(_parse(lookup["on_conflict"], "on_conflict parameter", lambda c: c.columns()))
    for key, value in items:
        last = key.rsplit(".", 1)[-1]
        if key in RESERVED:
            continue
        if last in RESERVED_EMBEDDABLE:
            _parse_embeddable(qs, key, last, value)
            continue
        path, ref = _tree_path(key)
        expr = _parse(value, "filter", lambda c: c.op_expr(logic=False))
        qs.filters.append((path, FilterExpr(ref, expr)))
        if not path:
            qs.filter_fields.add(ref.name)
    return qs


def canonical(items: list[tuple[str, str]]) -> str:
    """The query string as PostgREST's Content-Location gives it back: sorted by key, each part quoted."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(items, key=lambda i: i[0]))


def _parse_embeddable(qs: QueryString, key: str, last: str, value: str) -> None:
    if last in ("and", "or"):
        words = _parse(key, "logic path", lambda c: c.dotted_names())
        negated = "not" in words[:-1]
        path = tuple(w for w in words[:-1] if w != "not")
        text = ("not." if negated else "") + last + value
        qs.logic.append((path, _parse(text, "logic tree", lambda c: c.logic_tree(), shown=value)))
    elif last == "order":
        path = tuple(_parse(key, "tree path", lambda c: c.dotted_names())[:-1])
        qs.order.append((path, list(_order(value))))
    else:
        path = tuple(_parse(key, "tree path", lambda c: c.dotted_names())[:-1])
        # PostgREST ignores a limit or offset that is not an integer.
        number = whole_number(value)
        if number is not None:
            if number > BIGINT_MAX:
                raise beyond_bigint(last)
            (qs.limits if last == "limit" else qs.offsets)[path] = number


# Clients send the same few select lists and filtered names again and again (the values differ);
# their syntax trees are immutable, so each text is parsed once.
@lru_cache(maxsize=1024)
def parse_select(text: str) -> tuple[SelectItem, ...]:
    return tuple(_parse(text, "select parameter", lambda c: c.forest()))


@lru_cache(maxsize=1024)
def _order(text: str) -> tuple[OrderItem, ...]:
    return tuple(_parse(text, "order", lambda c: c.order()))


@lru_cache(maxsize=1024)
def _tree_path(key: str) -> tuple[tuple[str, ...], FieldRef]:
    return _parse(key, "tree path", lambda c: c.tree_path())


def _parse(text: str, what: str, rule: Callable[[Cursor], T], shown: str | None = None) -> T:
    cursor = Cursor(text)
    try:
        result = rule(cursor)
        cursor.end()
    except Failure as failure:
        label = f'"failed to parse {what} ({shown if shown is not None else text})"'
        raise query_param(f"{label} (line 1, column {failure.position + 1})", failure.details) from None
    return result
