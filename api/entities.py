"""The six CoCo 1.0.0 entities as data: fields, references and relations.

Everything that needs to know the shape of an entity (the tables, the write
service, the query plan, the GraphQL and REST front ends, the OpenAPI document)
reads it from here, so the shape is stated once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    ID = "id"
    TEXT = "text"
    ENUM = "enum"
    DATE = "date"
    TIMESTAMP = "timestamp"
    INTEGER = "integer"
    TEXT_LIST = "text_list"
    TIMEFRAME = "timeframe"  # {start, end}, stored as two date columns


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    description: str
    required: bool = False
    # Entity whose id this field holds (a list of ids for TEXT_LIST).
    references: str | None = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    # The schema lets this optional field be null in a full representation.
    nullable_in_schema: bool = False
    # Filled in by the server when the client leaves it out.
    server_default: bool = False
    timezone: bool = False
    # Stored under another column name than the field's.
    column: str | None = None
    # Served by the server but not part of the CoCo document (never in a full representation).
    internal: bool = False

    @property
    def is_list(self) -> bool:
        return self.kind is Kind.TEXT_LIST

    @property
    def columns(self) -> tuple[str, ...]:
        if self.kind is Kind.TIMEFRAME:
            return (f"{self.name}_start", f"{self.name}_end")
        return (self.column or self.name,)


class RelationKind(StrEnum):
    # This row holds the target's id in a scalar column.
    TO_ONE = "to_one"
    # Target rows hold this row's id in a scalar column.
    TO_MANY = "to_many"
    # This row holds an ordered list of target ids.
    LIST_TO_MANY = "list_to_many"
    # Target rows hold this row's id inside a list column.
    LIST_REVERSE = "list_reverse"


@dataclass(frozen=True)
class Relation:
    name: str
    kind: RelationKind
    target: str
    # The column that carries the link: on this entity for TO_ONE and
    # LIST_TO_MANY, on the target for TO_MANY and LIST_REVERSE.
    via: str
    # (field, value) on the row that holds `via`: the link holds only where that field has that value.
    # An event's reference_id names a check-in or an update, and ids are unique per table only.
    only_when: tuple[str, str] | None = None

    @property
    def many(self) -> bool:
        return self.kind is not RelationKind.TO_ONE


@dataclass(frozen=True)
class Entity:
    name: str
    resource: str
    title: str
    description: str
    fields: tuple[Field, ...]
    relations: tuple[Relation, ...] = ()
    # Writing this entity records a coordination event of this type.
    event_type: str | None = None
    writable: bool = True
    # The field by which rows of this entity name their parent, making a tree: no row may become its own
    # ancestor (the write service's hierarchy rule, api/store/rules.py).
    parent_field: str | None = None
    _by_name: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({f.name: f for f in self.fields})

    def field(self, name: str) -> Field | None:
        return self._by_name.get(name)

    def relation(self, name: str) -> Relation | None:
        return next((r for r in self.relations if r.name == name), None)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for f in self.fields for c in f.columns)


ACTOR_TYPES = ("person", "agent")
GOAL_STORY_STATUSES = ("on_track", "at_risk", "off_track", "completed", "paused")
EVENT_TYPES = ("team_checkin", "goal_story_update")

_ID = Field("id", Kind.ID, "Unique identifier; the server generates a UUID when the client gives none.", required=True)


def _created_at(what: str) -> Field:
    return Field(
        "created_at",
        Kind.TIMESTAMP,
        f"Timestamp when this {what} was created (RFC 3339); defaults to the time of the write.",
        server_default=True,
    )


ACTOR = Entity(
    name="actor",
    resource="actors",
    title="Actor",
    description="A participant in one or more coordination loops: a person or an agent.",
    fields=(
        _ID,
        Field("actor_type", Kind.ENUM, "A human person or an automated agent.", required=True, choices=ACTOR_TYPES),
        Field("name", Kind.TEXT, "Display name.", required=True),
        Field("role", Kind.TEXT, "Job title or role within the organization."),
        Field("timezone", Kind.TEXT, "IANA timezone identifier (e.g. America/New_York).", timezone=True),
    ),
    relations=(
        Relation("teams", RelationKind.LIST_REVERSE, "team", "member_ids"),
        Relation("team_checkins", RelationKind.TO_MANY, "team_checkin", "actor_id"),
        Relation("goal_story_updates", RelationKind.TO_MANY, "goal_story_update", "actor_id"),
        Relation("goal_stories", RelationKind.LIST_REVERSE, "goal_story", "actor_ids"),
        Relation("coordination_events", RelationKind.TO_MANY, "coordination_event", "actor_id"),
    ),
)

TEAM = Entity(
    name="team",
    resource="teams",
    title="Team",
    description="A group of actors who coordinate together.",
    fields=(
        _ID,
        Field("name", Kind.TEXT, "Team name.", required=True),
        Field("description", Kind.TEXT, "What this team does or is responsible for."),
        Field("member_ids", Kind.TEXT_LIST, "IDs of actors who belong to this team, in order.", references="actor"),
    ),
    relations=(
        Relation("members", RelationKind.LIST_TO_MANY, "actor", "member_ids"),
        Relation("team_checkins", RelationKind.TO_MANY, "team_checkin", "team_id"),
        Relation("goal_stories", RelationKind.LIST_REVERSE, "goal_story", "team_ids"),
    ),
)

TEAM_CHECKIN = Entity(
    name="team_checkin",
    resource="team_checkins",
    title="Team check-in",
    description="An actor's update to their team: what they did, what they do next, what blocks them.",
    fields=(
        _ID,
        Field("actor_id", Kind.ID, "ID of the actor who provided this check-in.", required=True, references="actor"),
        Field("team_id", Kind.ID, "ID of the team this check-in is for.", required=True, references="team"),
        Field("date", Kind.DATE, "The date this check-in covers.", required=True),
        Field("next", Kind.TEXT_LIST, "Intentions: what this actor plans to work on, one bullet each."),
        Field("previously", Kind.TEXT_LIST, "Progress since the last check-in, one bullet each."),
        Field("blockers", Kind.TEXT_LIST, "Anything preventing progress, one bullet each."),
        _created_at("team check-in"),
    ),
    relations=(
        Relation("actor", RelationKind.TO_ONE, "actor", "actor_id"),
        Relation("team", RelationKind.TO_ONE, "team", "team_id"),
        Relation(
            "coordination_events",
            RelationKind.TO_MANY,
            "coordination_event",
            "reference_id",
            only_when=("event_type", "team_checkin"),
        ),
    ),
    event_type="team_checkin",
)

GOAL_STORY = Entity(
    name="goal_story",
    resource="goal_stories",
    title="Goal story",
    description="A project, objective or initiative; goal stories nest through parent_id.",
    fields=(
        _ID,
        Field("title", Kind.TEXT, "Short, descriptive title.", required=True),
        Field("description", Kind.TEXT, "Context about what this goal story is and why it matters."),
        Field("actor_ids", Kind.TEXT_LIST, "IDs of actors involved with this goal story.", references="actor"),
        Field("team_ids", Kind.TEXT_LIST, "IDs of teams involved with this goal story.", references="team"),
        Field(
            "parent_id",
            Kind.ID,
            "ID of the parent goal story, or null for a root.",
            references="goal_story",
            nullable_in_schema=True,
        ),
        Field("timeframe", Kind.TIMEFRAME, "Time period this goal story covers: {start, end} dates."),
        _created_at("goal story"),
    ),
    relations=(
        Relation("parent", RelationKind.TO_ONE, "goal_story", "parent_id"),
        Relation("children", RelationKind.TO_MANY, "goal_story", "parent_id"),
        Relation("goal_story_updates", RelationKind.TO_MANY, "goal_story_update", "goal_story_id"),
        Relation("teams", RelationKind.LIST_TO_MANY, "team", "team_ids"),
        Relation("actors", RelationKind.LIST_TO_MANY, "actor", "actor_ids"),
    ),
    parent_field="parent_id",
)

GOAL_STORY_UPDATE = Entity(
    name="goal_story_update",
    resource="goal_story_updates",
    title="Goal story update",
    description="A written progress update on a goal story: headline, narrative, status and progress.",
    fields=(
        _ID,
        Field("actor_id", Kind.ID, "ID of the actor who provided this update.", required=True, references="actor"),
        Field(
            "goal_story_id", Kind.ID, "ID of the goal story this update is for.", required=True, references="goal_story"
        ),
        Field("date", Kind.DATE, "The date of this update.", required=True),
        Field("title", Kind.TEXT, "A short headline: the essential takeaway in one line.", required=True),
        Field("content", Kind.TEXT, "Narrative update: where things stand and why.", required=True),
        Field("status", Kind.ENUM, "Goal story status as of this update.", choices=GOAL_STORY_STATUSES),
        Field("progress_percent", Kind.INTEGER, "Numeric progress, 0 to 100.", minimum=0, maximum=100),
        _created_at("goal story update"),
    ),
    relations=(
        Relation("actor", RelationKind.TO_ONE, "actor", "actor_id"),
        Relation("goal_story", RelationKind.TO_ONE, "goal_story", "goal_story_id"),
        Relation(
            "coordination_events",
            RelationKind.TO_MANY,
            "coordination_event",
            "reference_id",
            only_when=("event_type", "goal_story_update"),
        ),
    ),
    event_type="goal_story_update",
)

COORDINATION_EVENT = Entity(
    name="coordination_event",
    resource="coordination_events",
    title="Coordination event",
    description="A record of an actor giving input to a coordination loop; written only by the server.",
    fields=(
        _ID,
        Field("actor_id", Kind.ID, "ID of the actor who provided input.", required=True, references="actor"),
        Field("event_type", Kind.ENUM, "The kind of input provided.", required=True, choices=EVENT_TYPES),
        Field("reference_id", Kind.ID, "ID of the team check-in or goal story update.", required=True),
        Field("occurred_at", Kind.TIMESTAMP, "When the input was given (RFC 3339).", required=True),
        Field(
            "cursor",
            Kind.INTEGER,
            "Position in commit order: every later-committed event has a greater cursor; resume after it.",
            column="seq",
            internal=True,
            server_default=True,
        ),
    ),
    relations=(
        Relation("actor", RelationKind.TO_ONE, "actor", "actor_id"),
        # What the event refers to: the check-in or the update (reference_id holds
        # either, so pair these with the event_type; neither exists once deleted).
        Relation("team_checkin", RelationKind.TO_ONE, "team_checkin", "reference_id", ("event_type", "team_checkin")),
        Relation(
            "goal_story_update",
            RelationKind.TO_ONE,
            "goal_story_update",
            "reference_id",
            ("event_type", "goal_story_update"),
        ),
    ),
    writable=False,
)

ENTITIES: dict[str, Entity] = {
    e.name: e for e in (ACTOR, TEAM, TEAM_CHECKIN, GOAL_STORY, GOAL_STORY_UPDATE, COORDINATION_EVENT)
}
BY_RESOURCE: dict[str, Entity] = {e.resource: e for e in ENTITIES.values()}


def entity(name: str) -> Entity:
    return ENTITIES[name]


def referrers(target: str) -> list[tuple[Entity, Field]]:
    """Every (entity, field) that can hold an id of `target`."""
    return [(e, f) for e in ENTITIES.values() for f in e.fields if f.references == target]
