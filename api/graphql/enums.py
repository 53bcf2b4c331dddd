"""GraphQL enums: the entities' choices in upper case, and the order vocabulary."""

from __future__ import annotations

from enum import Enum

import strawberry

from api.entities import ENTITIES, Entity, Kind
from api.graphql.names import type_name


@strawberry.enum(description="A human person or an automated agent.")
class ActorType(Enum):
    PERSON = "person"
    AGENT = "agent"


@strawberry.enum(description="Goal story status as of an update.")
class GoalStoryStatus(Enum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"
    COMPLETED = "completed"
    PAUSED = "paused"


@strawberry.enum(description="The coordination loop an event belongs to.")
class CoordinationEventType(Enum):
    TEAM_CHECKIN = "team_checkin"
    GOAL_STORY_UPDATE = "goal_story_update"


# (entity, field) -> the enum its values are served as.
CHOICES: dict[tuple[str, str], type[Enum]] = {
    ("actor", "actor_type"): ActorType,
    ("goal_story_update", "status"): GoalStoryStatus,
    ("coordination_event", "event_type"): CoordinationEventType,
}


@strawberry.enum(description="Sort direction.")
class OrderDirection(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.enum(
    description="Where rows without a value sort: PostgreSQL's default is LAST ascending, FIRST descending."
)
class NullsOrder(Enum):
    FIRST = "first"
    LAST = "last"


def _order_fields(ent: Entity) -> dict[str, str]:
    """Sortable fields: every scalar field; a timeframe by its start or end. Values are `field` or `field.key`."""
    members: dict[str, str] = {}
    for f in ent.fields:
        if f.kind is Kind.TEXT_LIST:
            continue
        if f.kind is Kind.TIMEFRAME:
            members[f"{f.name}_start".upper()] = f"{f.name}.start"
            members[f"{f.name}_end".upper()] = f"{f.name}.end"
        else:
            members[f.name.upper()] = f.name
    return members


def _order_field_enum(ent: Entity) -> type[Enum]:
    enum = Enum(f"{type_name(ent)}OrderField", _order_fields(ent))  # type: ignore[misc]
    return strawberry.enum(enum, description=f"The fields {ent.resource.replace('_', ' ')} can be ordered by.")


ORDER_FIELDS: dict[str, type[Enum]] = {name: _order_field_enum(ent) for name, ent in ENTITIES.items()}
ActorOrderField = ORDER_FIELDS["actor"]
TeamOrderField = ORDER_FIELDS["team"]
TeamCheckinOrderField = ORDER_FIELDS["team_checkin"]
GoalStoryOrderField = ORDER_FIELDS["goal_story"]
GoalStoryUpdateOrderField = ORDER_FIELDS["goal_story_update"]
CoordinationEventOrderField = ORDER_FIELDS["coordination_event"]
