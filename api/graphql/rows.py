"""Rows as the plan returns them (JSON built by PostgreSQL) to the values Strawberry serves."""

from __future__ import annotations

import datetime as dt
from typing import Any

from api.entities import ENTITIES, Entity, Field, Kind
from api.graphql.enums import CHOICES
from api.plan import Column

# Every field of each entity under its own name, internal ones (an event's cursor) included;
# explicit columns keep nulls, which GraphQL serves as null.
COLUMNS: dict[str, tuple[Column, ...]] = {
    name: tuple(Column(f.name, f.name) for f in ent.fields) for name, ent in ENTITIES.items()
}


def values(ent: Entity, row: dict[str, Any], timeframe: type | None = None) -> dict[str, Any]:
    """{field name: Python value} for a row of `ent` (JSON values or stored column values)."""
    return {f.name: _value(ent, f, row.get(f.name), timeframe) for f in ent.fields}


def _value(ent: Entity, f: Field, value: Any, timeframe: type | None) -> Any:
    if value is None:
        return None
    if (ent.name, f.name) in CHOICES:
        return CHOICES[ent.name, f.name](value)
    match f.kind:
        case Kind.DATE:
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
        case Kind.TIMESTAMP:
            return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
        case Kind.TIMEFRAME:
            assert timeframe is not None
            start, end = value.get("start"), value.get("end")
            return timeframe(
                start=dt.date.fromisoformat(start) if start else None, end=dt.date.fromisoformat(end) if end else None
            )
        case Kind.INTEGER if f.internal:
            return str(value)
    return value
