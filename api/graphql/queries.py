"""The Query type: each entity by id, and each entity as a connection."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import strawberry
from strawberry import Info

from api.graphql.connections import Connection, build, plan_page
from api.graphql.context import Context
from api.graphql.filters import (
    ActorWhere,
    CoordinationEventWhere,
    GoalStoryUpdateWhere,
    GoalStoryWhere,
    TeamCheckinWhere,
    TeamWhere,
    to_filter,
)
from api.graphql.ordering import (
    ActorOrderBy,
    CoordinationEventOrderBy,
    GoalStoryOrderBy,
    GoalStoryUpdateOrderBy,
    TeamCheckinOrderBy,
    TeamOrderBy,
    order_keys,
)
from api.graphql.rows import COLUMNS
from api.graphql.types import (
    Actor,
    After,
    Before,
    CoordinationEvent,
    First,
    GoalStory,
    GoalStoryUpdate,
    Last,
    Team,
    TeamCheckin,
    make,
    one,
)
from api.plan import ReadPlan

T = TypeVar("T")


async def _list(
    info: Info,
    cls: type[T],
    entity_name: str,
    where: Any,
    order_by: list[Any] | None,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Connection[T]:
    context: Context = info.context
    condition = to_filter(entity_name, where)
    page = plan_page(
        order_keys(entity_name, order_by),
        condition,
        context.limits,
        first=first,
        after_cursor=after,
        last=last,
        before_cursor=before,
    )
    plan = ReadPlan(entity_name, where=page.where, order=page.order, limit=page.limit, columns=COLUMNS[entity_name])
    rows = json.loads(await context.reader.json_array(plan))

    async def total() -> int:
        return await context.reader.count(ReadPlan(entity_name, where=condition))

    return build(page, rows, make(cls, entity_name), total)


@strawberry.type(
    description="Reads. Lists are connections: filter with `where`, sort with `orderBy` (id breaks "
    "ties; events default to commit order), page with first/after or last/before."
)
class Query:
    @strawberry.field(description="One actor by id, or null.")
    async def actor(self, info: Info, id: strawberry.ID) -> Actor | None:
        return await one(info, Actor, "actor", id)

    @strawberry.field(description="Actors: people and agents.")
    async def actors(
        self,
        info: Info,
        where: ActorWhere | None = None,
        order_by: list[ActorOrderBy] | None = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Actor]:
        return await _list(info, Actor, "actor", where, order_by, first, after, last, before)

    @strawberry.field(description="One team by id, or null.")
    async def team(self, info: Info, id: strawberry.ID) -> Team | None:
        return await one(info, Team, "team", id)

    @strawberry.field(description="Teams.")
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
        return await _list(info, Team, "team", where, order_by, first, after, last, before)

    @strawberry.field(description="One team check-in by id, or null.")
    async def team_checkin(self, info: Info, id: strawberry.ID) -> TeamCheckin | None:
        return await one(info, TeamCheckin, "team_checkin", id)

    @strawberry.field(description="Team check-ins.")
    async def team_checkins(
        self,
        info: Info,
        where: TeamCheckinWhere | None = None,
        order_by: list[TeamCheckinOrderBy] | None = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[TeamCheckin]:
        return await _list(info, TeamCheckin, "team_checkin", where, order_by, first, after, last, before)

    @strawberry.field(description="One goal story by id, or null.")
    async def goal_story(self, info: Info, id: strawberry.ID) -> GoalStory | None:
        return await one(info, GoalStory, "goal_story", id)

    @strawberry.field(description="Goal stories (all levels; filter parentId isNull for the roots).")
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
        return await _list(info, GoalStory, "goal_story", where, order_by, first, after, last, before)

    @strawberry.field(description="One goal story update by id, or null.")
    async def goal_story_update(self, info: Info, id: strawberry.ID) -> GoalStoryUpdate | None:
        return await one(info, GoalStoryUpdate, "goal_story_update", id)

    @strawberry.field(description="Goal story updates.")
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
        return await _list(info, GoalStoryUpdate, "goal_story_update", where, order_by, first, after, last, before)

    @strawberry.field(description="One coordination event by id, or null.")
    async def coordination_event(self, info: Info, id: strawberry.ID) -> CoordinationEvent | None:
        return await one(info, CoordinationEvent, "coordination_event", id)

    @strawberry.field(description="Coordination events; in commit order unless orderBy says otherwise.")
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
        return await _list(info, CoordinationEvent, "coordination_event", where, order_by, first, after, last, before)
