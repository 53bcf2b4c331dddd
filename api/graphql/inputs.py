"""Mutation inputs, generated from `api.entities`, and their translation to write-service documents.

Create inputs require what the entity requires; update inputs take every
field as optional, where a field left out stays as it is and an explicit null
clears it (Strawberry's UNSET versus None).
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

import strawberry
from strawberry import UNSET

from api.entities import ENTITIES, Entity, Field, Kind
from api.graphql.enums import CHOICES
from api.graphql.names import type_name


@strawberry.input(description="A period of dates; end is not before start.")
class TimeframeInput:
    start: dt.date | None = strawberry.field(default=None, description="First day of the period.")
    end: dt.date | None = strawberry.field(default=None, description="Last day of the period.")


def _python_type(ent: Entity, f: Field) -> Any:
    if (ent.name, f.name) in CHOICES:
        return CHOICES[ent.name, f.name]
    return {
        Kind.ID: strawberry.ID,
        Kind.TEXT: str,
        Kind.DATE: dt.date,
        Kind.TIMESTAMP: dt.datetime,
        Kind.INTEGER: int,
        Kind.TEXT_LIST: list[str],
        Kind.TIMEFRAME: TimeframeInput,
    }[f.kind]


def _input(ent: Entity, *, update: bool) -> type:
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": __name__, "__annotations__": annotations}
    for f in ent.fields:
        if f.internal or (update and f.name == "id"):
            continue
        python_type = _python_type(ent, f)
        if f.required and f.name != "id" and not update:
            annotations[f.name] = python_type
            namespace[f.name] = strawberry.field(description=f.description)
        else:
            annotations[f.name] = python_type | None
            namespace[f.name] = strawberry.field(default=UNSET, description=f.description)
    verb = "Update" if update else "Create"
    what = ent.title.lower()
    about = (
        f"Changes to a {what}: fields left out stay as they are; an explicit null clears an optional field."
        if update
        else f"A new {what}."
    )
    return strawberry.input(type(f"{verb}{type_name(ent)}Input", (), namespace), description=about)


WRITABLE = [e for e in ENTITIES.values() if e.writable]
CREATE: dict[str, type] = {e.name: _input(e, update=False) for e in WRITABLE}
UPDATE: dict[str, type] = {e.name: _input(e, update=True) for e in WRITABLE}


def document(entity_name: str, given: Any) -> dict[str, Any]:
    """The write-service document of an input: wire names, plain values, fields left out absent."""
    out: dict[str, Any] = {}
    for f in ENTITIES[entity_name].fields:
        value = getattr(given, f.name, UNSET)
        if value is UNSET:
            continue
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, TimeframeInput):
            value = {"start": value.start, "end": value.end}
        out[f.name] = value
    return out
