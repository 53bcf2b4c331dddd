"""The six entity types, with their nested fields in both directions.

Scalar fields come straight from the row the plan returned; every nested
field goes through a per-request DataLoader (see `loaders`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry import Info

from api.entities import ENTITIES, Entity
from api.graphql.connections import Connection, build, plan_page
from api.graphql.context import Context
from api.graphql.enums import ActorType, CoordinationEventType, GoalStoryStatus
from api.graphql.filters import (
    CoordinationEventWhere,
    GoalStoryUpdateWhere,
    GoalStoryWhere,
    TeamCheckinWhere,
    TeamWhere,
    to_filter,
)
from api.graphql.loaders import place
from api.graphql.ordering import (
    CoordinationEventOrderBy,
    GoalStoryOrderBy,
    GoalStoryUpdateOrderBy,
    TeamCheckinOrderBy,
    TeamOrderBy,
    order_keys,
)
from api.graphql.rows import COLUMNS, values
from api.plan import Condition, Filter, OrderTerm, ReadPlan, all_of

T = TypeVar("T")

PAGING = {
    "first": "At most this many rows from the start (after `after`).",
    "after": "Only rows after this cursor.",
    "last": "At most this many rows from the end (before `before`).",
    "before": "Only rows before this cursor.",
}


def _about(entity_name: str, field_name: str) -> str:
    f = ENTITIES[entity_name].field(field_name)
    assert f is not None
    return f.description


def _field(entity_name: str, field_name: str) -> Any:
    return strawberry.field(description=_about(entity_name, field_name))


@strawberry.type(description="The time period a goal story covers.")
class Timeframe:
    start: dt.date | None = strawberry.field(description="First day of the period.")
    end: dt.date | None = strawberry.field(description="Last day of the period; not before start.")


def make(cls: type[T], entity_name: str) -> Callable[[dict[str, Any]], T]:
    """Turn a plan row into an object of `cls`."""
    ent = ENTITIES[entity_name]
    return lambda row: cls(**values(ent, row, Timeframe))


def _context(info: Info) -> Context:
    return info.context


async def one(info: Info, cls: type[T], entity_name: str, id: str | None) -> T | None:
    """The row with this id (null when there is none), batched with the others at the same place."""
    if id is None:
        return None
    row = await _context(info).loaders.by_id(entity_name, place(info.path)).load(id)
    return None if row is None else make(cls, entity_name)(row)


async def _listed(info: Info, cls: type[T], parent: Entity, parent_id: str, relation: str) -> list[T]:
    """A list reference (member_ids, team_ids, actor_ids) as rows, in stored order."""
    target = parent.relation(relation).target  # type: ignore[union-attr]
    plan = ReadPlan(target, columns=COLUMNS[target])
    rows = await _context(info).loaders.related(parent.name, relation, plan, place(info.path)).load(parent_id)
    return [make(cls, target)(row) for row in rows]


async def _connection(
    info: Info,
    cls: type[T],
    parent: Entity,
    parent_id: str,
    relation: str,
    where: Any,
    order_by: list[Any] | None,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    extra: Filter | None = None,
) -> Connection[T]:
    """A reverse relation as a connection, read per parent by the related-rows loader."""
    target = parent.relation(relation).target  # type: ignore[union-attr]
    context = _context(info)
    condition = all_of(to_filter(target, where), extra)
    page = plan_page(
        order_keys(target, order_by),
        condition,
        context.limits,
        first=first,
        after_cursor=after,
        last=last,
        before_cursor=before,
    )
    plan = ReadPlan(target, where=page.where, order=page.order, limit=page.limit, columns=COLUMNS[target])
    at = place(info.path)
    rows = await context.loaders.related(parent.name, relation, plan, at).load(parent_id)

    async def total() -> int:
        return await context.loaders.count(parent.name, relation, condition, at).load(parent_id)

    return build(page, rows, make(cls, target), total)


First = Annotated[int | None, strawberry.argument(description=PAGING["first"])]
After = Annotated[str | None, strawberry.argument(description=PAGING["after"])]
Last = Annotated[int | None, strawberry.argument(description=PAGING["last"])]
Before = Annotated[str | None, strawberry.argument(description=PAGING["before"])]

ACTOR, TEAM, TEAM_CHECKIN = ENTITIES["actor"], ENTITIES["team"], ENTITIES["team_checkin"]
GOAL_STORY, GOAL_STORY_UPDATE = ENTITIES["goal_story"], ENTITIES["goal_story_update"]


@strawberry.type(description=ACTOR.description)
class Actor:
    id: strawberry.ID = _field("actor", "id")
    actor_type: ActorType = _field("actor", "actor_type")
    name: str = _field("actor", "name")
    role: str | None = _field("actor", "role")
    timezone: str | None = _field("actor", "timezone")

    @strawberry.field(description="Teams this actor is a member of.")
    async def teams(
        self,
        info: Info,
        where: TeamWhere | None = None,
        order_by: list[TeamOrderBy] | None = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Team]:
        return await _connection(info, Team, ACTOR, self.id, "teams", where, order_by, first, after, last, before)

    @strawberry.field(description="Team check-ins this actor provided.")
    async def checkins(
        self,
        info: Info,
        where: TeamCheckinWhere | None = None,
        order_by: list[TeamCheckinOrderBy] | None = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[TeamCheckin]:
        return await _connection(
            info, TeamCheckin, ACTOR, self.id, "team_checkins", where, order_by, first, after, last, before
        )

    @strawberry.field(description="Goal story updates this actor provided.")
    async def goal_story_updates(
        self,
        info: Info,
        where: GoalStoryUpdateWhere | None = None,
        order_by: list[GoalStoryUpdateOrderBy] | None = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[GoalStoryUpdate]:
        return await _connection(
            info, GoalStoryUpdate, ACTOR, self.id, "goal_story_updates", where, order_by, first, after, last, before
        )

    @strawberry.field(description="Goal stories this actor is involved with.")
    async def goal_stories(
        self,
        info: Info,
        where: GoalStoryWhere | None = None,
        order_by: list[GoalStoryOrderBy] | None = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[GoalStory]:
        return await _connection(
            info, GoalStory, ACTOR, self.id, "goal_stories", where, order_by, first, after, last, before
        )

    @strawberry.field(description="Coordination events of this actor's input.")
    async def coordination_events(
        self,
        info: Info,
        where: CoordinationEventWhere | None = None,
        order_by: list[CoordinationEventOrderBy] | None = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[CoordinationEvent]:
        return await _connection(
            info, CoordinationEvent, ACTOR, self.id, "coordination_events", where, order_by, first, after, last, before
        )


@strawberry.type(description=TEAM.description)
class Team:
    id: strawberry.ID = _field("team", "id")
    name: str = _field("team", "name")
    description: str | None = _field("team", "description")
    member_ids: list[str] | None = _field("team", "member_ids")

    @strawberry.field(description="The team's members, in the order of memberIds.")
    async def members(self, info: Info) -> list[Actor]:
        return await _listed(info, Actor, TEAM, self.id, "members")

    @strawberry.field(description="Check-ins given to this team.")
    async def checkins(
        self,
        info: Info,
        where: TeamCheckinWhere | None = None,
        order_by: list[TeamCheckinOrderBy] | None = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[TeamCheckin]:
        return await _connection(
            info, TeamCheckin, TEAM, self.id, "team_checkins", where, order_by, first, after, last, before
        )

    @strawberry.field(description="Goal stories this team is involved with.")
    async def goal_stories(
        self,
        info: Info,
        where: GoalStoryWhere | None = None,
        order_by: list[GoalStoryOrderBy] | None = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[GoalStory]:
        return await _connection(
            info, GoalStory, TEAM, self.id, "goal_stories", where, order_by, first, after, last, before
        )


def _events_of(event_type: str) -> Filter:
    # Events name their row by id alone; a check-in and an update may share an id.
    return Condition("event_type", "eq", event_type)


@strawberry.type(description=TEAM_CHECKIN.description)
class TeamCheckin:
    id: strawberry.ID = _field("team_checkin", "id")
    actor_id: strawberry.ID = _field("team_checkin", "actor_id")
    team_id: strawberry.ID = _field("team_checkin", "team_id")
    date: dt.date = _field("team_checkin", "date")
    next: list[str] | None = _field("team_checkin", "next")
    previously: list[str] | None = _field("team_checkin", "previously")
    blockers: list[str] | None = _field("team_checkin", "blockers")
    created_at: dt.datetime | None = _field("team_checkin", "created_at")

    @strawberry.field(description="The actor who provided this check-in.")
    async def actor(self, info: Info) -> Actor | None:
        return await one(info, Actor, "actor", self.actor_id)

    @strawberry.field(description="The team this check-in is for.")
    async def team(self, info: Info) -> Team | None:
        return await one(info, Team, "team", self.team_id)

    @strawberry.field(description="The coordination events this check-in left: its creation and each edit.")
    async def coordination_events(
        self,
        info: Info,
        where: CoordinationEventWhere | None = None,
        order_by: list[CoordinationEventOrderBy] | None = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[CoordinationEvent]:
        return await _connection(
            info,
            CoordinationEvent,
            TEAM_CHECKIN,
            self.id,
            "coordination_events",
            where,
            order_by,
            first,
            after,
            last,
            before,
            extra=_events_of("team_checkin"),
        )


LATEST_FIRST = (
    OrderTerm("date", descending=True, nulls_first=False),
    OrderTerm("created_at", descending=True, nulls_first=False),
    OrderTerm("id", descending=True),
)


@strawberry.type(description=GOAL_STORY.description)
class GoalStory:
    id: strawberry.ID = _field("goal_story", "id")
    title: str = _field("goal_story", "title")
    description: str | None = _field("goal_story", "description")
    actor_ids: list[str] | None = _field("goal_story", "actor_ids")
    team_ids: list[str] | None = _field("goal_story", "team_ids")
    parent_id: strawberry.ID | None = _field("goal_story", "parent_id")
    timeframe: Timeframe | None = _field("goal_story", "timeframe")
    created_at: dt.datetime | None = _field("goal_story", "created_at")

    @strawberry.field(description="The parent goal story, or null for a root.")
    async def parent(self, info: Info) -> GoalStory | None:
        return await one(info, GoalStory, "goal_story", self.parent_id)

    @strawberry.field(description="The goal stories whose parent this is.")
    async def children(
        self,
        info: Info,
        where: GoalStoryWhere | None = None,
        order_by: list[GoalStoryOrderBy] | None = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[GoalStory]:
        return await _connection(
            info, GoalStory, GOAL_STORY, self.id, "children", where, order_by, first, after, last, before
        )

    @strawberry.field(description="The updates written on this goal story.")
    async def updates(
        self,
        info: Info,
        where: GoalStoryUpdateWhere | None = None,
        order_by: list[GoalStoryUpdateOrderBy] | None = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[GoalStoryUpdate]:
        return await _connection(
            info,
            GoalStoryUpdate,
            GOAL_STORY,
            self.id,
            "goal_story_updates",
            where,
            order_by,
            first,
            after,
            last,
            before,
        )

    @strawberry.field(description="The most recent update: latest date, then latest createdAt.")
    async def latest_update(self, info: Info) -> GoalStoryUpdate | None:
        plan = ReadPlan("goal_story_update", order=LATEST_FIRST, limit=1, columns=COLUMNS["goal_story_update"])
        rows = (
            await _context(info)
            .loaders.related("goal_story", "goal_story_updates", plan, place(info.path))
            .load(self.id)
        )
        return make(GoalStoryUpdate, "goal_story_update")(rows[0]) if rows else None

    @strawberry.field(description="The teams involved, in the order of teamIds.")
    async def teams(self, info: Info) -> list[Team]:
        return await _listed(info, Team, GOAL_STORY, self.id, "teams")

    @strawberry.field(description="The actors involved, in the order of actorIds.")
    async def actors(self, info: Info) -> list[Actor]:
        return await _listed(info, Actor, GOAL_STORY, self.id, "actors")


@strawberry.type(description=GOAL_STORY_UPDATE.description)
class GoalStoryUpdate:
    id: strawberry.ID = _field("goal_story_update", "id")
    actor_id: strawberry.ID = _field("goal_story_update", "actor_id")
    goal_story_id: strawberry.ID = _field("goal_story_update", "goal_story_id")
    date: dt.date = _field("goal_story_update", "date")
    title: str = _field("goal_story_update", "title")
    content: str = _field("goal_story_update", "content")
    status: GoalStoryStatus | None = _field("goal_story_update", "status")
    progress_percent: int | None = _field("goal_story_update", "progress_percent")
    created_at: dt.datetime | None = _field("goal_story_update", "created_at")

    @strawberry.field(description="The actor who provided this update.")
    async def actor(self, info: Info) -> Actor | None:
        return await one(info, Actor, "actor", self.actor_id)

    @strawberry.field(description="The goal story this update is for.")
    async def goal_story(self, info: Info) -> GoalStory | None:
        return await one(info, GoalStory, "goal_story", self.goal_story_id)

    @strawberry.field(description="The coordination events this update left: its creation and each edit.")
    async def coordination_events(
        self,
        info: Info,
        where: CoordinationEventWhere | None = None,
        order_by: list[CoordinationEventOrderBy] | None = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[CoordinationEvent]:
        return await _connection(
            info,
            CoordinationEvent,
            GOAL_STORY_UPDATE,
            self.id,
            "coordination_events",
            where,
            order_by,
            first,
            after,
            last,
            before,
            extra=_events_of("goal_story_update"),
        )


Reference = Annotated[
    TeamCheckin | GoalStoryUpdate,
    strawberry.union("CoordinationEventReference", description="The row a coordination event records."),
]


@strawberry.type(description=ENTITIES["coordination_event"].description)
class CoordinationEvent:
    id: strawberry.ID = _field("coordination_event", "id")
    actor_id: strawberry.ID = _field("coordination_event", "actor_id")
    event_type: CoordinationEventType = _field("coordination_event", "event_type")
    reference_id: strawberry.ID = _field("coordination_event", "reference_id")
    occurred_at: dt.datetime = _field("coordination_event", "occurred_at")
    cursor: str = _field("coordination_event", "cursor")

    @strawberry.field(description="The actor who provided the input.")
    async def actor(self, info: Info) -> Actor | None:
        return await one(info, Actor, "actor", self.actor_id)

    @strawberry.field(description="The team check-in or goal story update recorded; null once it is deleted.")
    async def reference(self, info: Info) -> Reference | None:
        if self.event_type is CoordinationEventType.TEAM_CHECKIN:
            return await one(info, TeamCheckin, "team_checkin", self.reference_id)
        return await one(info, GoalStoryUpdate, "goal_story_update", self.reference_id)


TYPES: dict[str, type] = {
    "actor": Actor,
    "team": Team,
    "team_checkin": TeamCheckin,
    "goal_story": GoalStory,
    "goal_story_update": GoalStoryUpdate,
    "coordination_event": CoordinationEvent,
}
