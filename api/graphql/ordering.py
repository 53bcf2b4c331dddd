"""orderBy inputs, and keyset cursors that stay stable under any order.

A cursor holds the values of a row's order keys, with the row's id as the
final tie-breaker, so "after this cursor" is a filter on those values rather
than an offset: rows inserted or deleted elsewhere never shift a page.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import strawberry

from api.entities import ENTITIES
from api.errors import InvalidInput, InvalidReason
from api.graphql.enums import ORDER_FIELDS, NullsOrder, OrderDirection
from api.graphql.names import type_name
from api.plan import Condition, Filter, Or, OrderTerm, all_of


def _order_input(entity_name: str) -> type:
    ent = ENTITIES[entity_name]
    name = f"{type_name(ent)}OrderBy"
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__annotations__": {
            "field": ORDER_FIELDS[entity_name],
            "direction": OrderDirection,
            "nulls": NullsOrder | None,
        },
        "direction": strawberry.field(default=OrderDirection.ASC),
        "nulls": strawberry.field(
            default=None, description="Where rows without a value go; by default LAST ascending and FIRST descending."
        ),
    }
    return strawberry.input(
        type(name, (), namespace),
        description=f"One sort key for {ent.resource.replace('_', ' ')}; later keys break ties of earlier ones.",
    )


ORDER_BY: dict[str, type] = {}
for _name, _ent in ENTITIES.items():
    ORDER_BY[_name] = globals()[f"{type_name(_ent)}OrderBy"] = _order_input(_name)
if TYPE_CHECKING:
    # Built above from the entities: to a type checker, any input object.
    ActorOrderBy: TypeAlias = Any
    TeamOrderBy: TypeAlias = Any
    TeamCheckinOrderBy: TypeAlias = Any
    GoalStoryOrderBy: TypeAlias = Any
    GoalStoryUpdateOrderBy: TypeAlias = Any
    CoordinationEventOrderBy: TypeAlias = Any
else:
    ActorOrderBy = ORDER_BY["actor"]
    TeamOrderBy = ORDER_BY["team"]
    TeamCheckinOrderBy = ORDER_BY["team_checkin"]
    GoalStoryOrderBy = ORDER_BY["goal_story"]
    GoalStoryUpdateOrderBy = ORDER_BY["goal_story_update"]
    CoordinationEventOrderBy = ORDER_BY["coordination_event"]

# Without an orderBy: events in commit order, everything else by id.
DEFAULT_ORDER: dict[str, str] = {"coordination_event": "cursor"}


@dataclass(frozen=True)
class Key:
    """One order key, with its null placement made explicit so that it can be reversed."""

    field: str
    path: tuple[str, ...]
    descending: bool
    nulls_first: bool

    def reversed(self) -> Key:
        return Key(self.field, self.path, not self.descending, not self.nulls_first)

    def term(self) -> OrderTerm:
        return OrderTerm(self.field, self.descending, self.nulls_first, self.path)

    def value(self, row: dict[str, Any]) -> Any:
        value = row.get(self.field)
        for step in self.path:
            value = value.get(step) if isinstance(value, dict) else None
        return value

    @property
    def label(self) -> str:
        return (
            ".".join((self.field, *self.path))
            + (":d" if self.descending else ":a")
            + (":nf" if self.nulls_first else ":nl")
        )


def order_keys(entity_name: str, order_by: list[Any] | None) -> tuple[Key, ...]:
    """The keys of an orderBy argument, ending with id so that every row has a distinct position."""
    if order_by is None:
        order_by = []
    keys: list[Key] = []
    for item in order_by:
        if item is None:
            raise InvalidInput("orderBy cannot hold null", field="orderBy", reason=InvalidReason.FORMAT)
        field, _, key = item.field.value.partition(".")
        descending = item.direction is OrderDirection.DESC
        # PostgreSQL's default: nulls sort as if larger than every value.
        nulls_first = descending if item.nulls is None else item.nulls is NullsOrder.FIRST
        keys.append(Key(field, (key,) if key else (), descending, nulls_first))
    if not keys and entity_name in DEFAULT_ORDER:
        keys.append(Key(DEFAULT_ORDER[entity_name], (), False, False))
    if not any(k.field == "id" and not k.path for k in keys):
        keys.append(Key("id", (), False, False))
    return tuple(keys)


# ---------------------------------------------------------------- cursors


def encode_cursor(keys: tuple[Key, ...], row: dict[str, Any]) -> str:
    payload = json.dumps([[k.label for k in keys], [k.value(row) for k in keys]], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(keys: tuple[Key, ...], cursor: str, argument: str) -> list[Any]:
    """The order-key values in a cursor; a cursor of another list or order is bad input."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        labels, values = json.loads(raw)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInput(
            f"{argument} is not a cursor this API handed out", field=argument, reason=InvalidReason.FORMAT
        ) from None
    if (
        labels != [k.label for k in keys]
        or not isinstance(values, list)
        or len(values) != len(keys)
        or not all(v is None or (isinstance(v, (str, int)) and not isinstance(v, bool)) for v in values)
    ):
        raise InvalidInput(
            f"{argument} is a cursor of another order; use cursors from a page with the same orderBy",
            field=argument,
            reason=InvalidReason.FORMAT,
        )
    return values


def after(keys: tuple[Key, ...], values: list[Any]) -> Filter:
    """Rows strictly after the position `values` in the order `keys`."""
    alternatives: list[Filter] = []
    for i, key in enumerate(keys):
        beyond = _beyond(key, values[i])
        if beyond is None:
            continue
        equal = [_equal(k, v) for k, v in zip(keys[:i], values[:i], strict=True)]
        alternatives.append(all_of(*equal, beyond))  # type: ignore[arg-type]
    return Or(tuple(alternatives))


def before(keys: tuple[Key, ...], values: list[Any]) -> Filter:
    """Rows strictly before the position `values`: after it in the reversed order."""
    return after(tuple(k.reversed() for k in keys), values)


def _equal(key: Key, value: Any) -> Filter:
    if value is None:
        return Condition(key.field, "is", "null", path=key.path)
    return Condition(key.field, "eq", value, path=key.path)


def _beyond(key: Key, value: Any) -> Filter | None:
    if value is None:
        # Past a null: the values, if nulls come first; nothing, if they come last.
        return Condition(key.field, "is", "not_null", path=key.path) if key.nulls_first else None
    greater = Condition(key.field, "lt" if key.descending else "gt", value, path=key.path)
    if key.nulls_first:
        return greater
    return Or((greater, Condition(key.field, "is", "null", path=key.path)))
