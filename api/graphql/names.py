"""GraphQL spellings of entity and field names."""

from __future__ import annotations

from api.entities import Entity


def camel(name: str) -> str:
    """snake_case -> camelCase, as Strawberry spells fields."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def type_name(ent: Entity) -> str:
    """actor -> Actor, team_checkin -> TeamCheckin."""
    return "".join(part.capitalize() for part in ent.name.split("_"))
