"""The GraphQL fields that read rows, declared once: each type's relations, and the Query's roots.

Both ways of answering a query are built from these declarations: the Strawberry
resolvers (`types`, `queries`) and the compiled renderer (`compiled`), so the two
cannot disagree on what a field reads. A field names a relation of `api.entities`;
how it is served (one row, an ordered list, a connection) follows from the
relation's kind, and a declaration adds only what the entities do not say: the
field's name where it differs, its description, and a condition or order of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from api.entities import ENTITIES, Relation, RelationKind
from api.graphql.names import camel
from api.plan import Condition, Filter, OrderTerm


class Shape(Enum):
    # The row a to-one relation points at, or null.
    ONE = "one"
    # The rows of a list of ids, in the list's order.
    LIST = "list"
    # The rows of a to-many relation as a page: where, orderBy, first/after, last/before.
    CONNECTION = "connection"
    # The first row of a to-many relation in a fixed order, or null.
    PICK = "pick"


SHAPES = {
    RelationKind.TO_ONE: Shape.ONE,
    RelationKind.LIST_TO_MANY: Shape.LIST,
    RelationKind.TO_MANY: Shape.CONNECTION,
    RelationKind.LIST_REVERSE: Shape.CONNECTION,
}


@dataclass(frozen=True)
class Related:
    """A field of `entity`'s type that reads the rows of one of its relations."""

    entity: str
    relation: str
    description: str
    # The field's name (snake_case; GraphQL spells it camelCase), when it is not the relation's.
    name: str = ""
    # A condition every row of the field meets, on top of the relation's link.
    extra: Filter | None = None
    # Given: the field is the relation's first row in this order (or null).
    pick: tuple[OrderTerm, ...] = ()

    def __post_init__(self) -> None:
        if ENTITIES[self.entity].relation(self.relation) is None:
            raise ValueError(f"{self.entity} has no relation {self.relation!r}")
        if not self.name:
            object.__setattr__(self, "name", self.relation)
        if self.extra is not None and self.shape is Shape.ONE:
            raise ValueError(f"{self.entity}.{self.name}: a to-one field is read by id, without a condition")

    @property
    def link(self) -> Relation:
        relation = ENTITIES[self.entity].relation(self.relation)
        assert relation is not None
        return relation

    @property
    def target(self) -> str:
        return self.link.target

    @property
    def shape(self) -> Shape:
        return Shape.PICK if self.pick else SHAPES[self.link.kind]

    @property
    def key(self) -> str:
        return camel(self.name)


@dataclass(frozen=True)
class Either:
    """A union field of `entity`'s type: one of several to-one relations, the one the row's `by` names.

    `by` holds an event type; each relation's target is the entity that records events of that type."""

    entity: str
    name: str
    description: str
    by: str
    relations: tuple[str, ...]
    union: str
    union_description: str

    def __post_init__(self) -> None:
        for link in self.links:
            if link.kind is not RelationKind.TO_ONE or ENTITIES[link.target].event_type is None:
                raise ValueError(f"{self.entity}.{link.name} cannot be a member of {self.union}")

    @property
    def links(self) -> tuple[Relation, ...]:
        links = []
        for name in self.relations:
            link = ENTITIES[self.entity].relation(name)
            if link is None:
                raise ValueError(f"{self.entity} has no relation {name!r}")
            links.append(link)
        return tuple(links)

    @property
    def choices(self) -> tuple[tuple[str, Relation], ...]:
        """(value of `by`, the relation it chooses), in declared order."""
        return tuple((ENTITIES[link.target].event_type or "", link) for link in self.links)

    def choose(self, value: str) -> Relation | None:
        return next((link for choice, link in self.choices if choice == value), None)

    @property
    def key(self) -> str:
        return camel(self.name)


def _events_of(entity_name: str) -> Filter:
    # Events name their row by id alone: a check-in and an update may share an id.
    return Condition("event_type", "eq", ENTITIES[entity_name].event_type)


# The most recent goal story update: latest date, then latest createdAt.
LATEST_FIRST = (
    OrderTerm("date", descending=True, nulls_first=False),
    OrderTerm("created_at", descending=True, nulls_first=False),
    OrderTerm("id", descending=True),
)

# Each type's relation fields, in the order the schema lists them (after the entity's own fields).
DECLARED: tuple[Related | Either, ...] = (
    Related("actor", "teams", "Teams this actor is a member of."),
    Related("actor", "team_checkins", "Team check-ins this actor provided.", name="checkins"),
    Related("actor", "goal_story_updates", "Goal story updates this actor provided."),
    Related("actor", "goal_stories", "Goal stories this actor is involved with."),
    Related("actor", "coordination_events", "Coordination events of this actor's input."),
    Related("team", "members", "The team's members, in the order of memberIds."),
    Related("team", "team_checkins", "Check-ins given to this team.", name="checkins"),
    Related("team", "goal_stories", "Goal stories this team is involved with."),
    Related("team_checkin", "actor", "The actor who provided this check-in."),
    Related("team_checkin", "team", "The team this check-in is for."),
    Related(
        "team_checkin",
        "coordination_events",
        "The coordination events this check-in left: its creation and each edit.",
        extra=_events_of("team_checkin"),
    ),
    Related("goal_story", "parent", "The parent goal story, or null for a root."),
    Related("goal_story", "children", "The goal stories whose parent this is."),
    Related("goal_story", "goal_story_updates", "The updates written on this goal story.", name="updates"),
    Related(
        "goal_story",
        "goal_story_updates",
        "The most recent update: latest date, then latest createdAt.",
        name="latest_update",
        pick=LATEST_FIRST,
    ),
    Related("goal_story", "teams", "The teams involved, in the order of teamIds."),
    Related("goal_story", "actors", "The actors involved, in the order of actorIds."),
    Related("goal_story_update", "actor", "The actor who provided this update."),
    Related("goal_story_update", "goal_story", "The goal story this update is for."),
    Related(
        "goal_story_update",
        "coordination_events",
        "The coordination events this update left: its creation and each edit.",
        extra=_events_of("goal_story_update"),
    ),
    Related("coordination_event", "actor", "The actor who provided the input."),
    Either(
        "coordination_event",
        "reference",
        "The team check-in or goal story update recorded; null once it is deleted.",
        by="event_type",
        relations=("team_checkin", "goal_story_update"),
        union="CoordinationEventReference",
        union_description="The row a coordination event records.",
    ),
)

# By entity, then by the field's GraphQL name.
FIELDS: dict[str, dict[str, Related | Either]] = {name: {} for name in ENTITIES}
for _field in DECLARED:
    FIELDS[_field.entity][_field.key] = _field


@dataclass(frozen=True)
class Root:
    """A field of Query: one row of `entity` by id, or its rows as a connection."""

    entity: str
    shape: Shape
    description: str

    @property
    def name(self) -> str:
        ent = ENTITIES[self.entity]
        return ent.name if self.shape is Shape.ONE else ent.resource

    @property
    def key(self) -> str:
        return camel(self.name)


_LISTED = {
    "actor": "Actors: people and agents.",
    "team": "Teams.",
    "team_checkin": "Team check-ins.",
    "goal_story": "Goal stories (all levels; filter parentId isNull for the roots).",
    "goal_story_update": "Goal story updates.",
    "coordination_event": "Coordination events; in commit order unless orderBy says otherwise.",
}

# Each entity by id (`actor`), then all of them as a connection (`actors`).
ROOTS: dict[str, Root] = {
    root.key: root
    for ent in ENTITIES.values()
    for root in (
        Root(ent.name, Shape.ONE, f"One {ent.title.lower()} by id, or null."),
        Root(ent.name, Shape.CONNECTION, _LISTED[ent.name]),
    )
}
