"""The six entity types: their own fields, and the relation fields built from `relations`.

Scalar fields come straight from the row the plan returned. Every relation
field is built from its declaration in `relations` (the compiled renderer
reads the same declarations) and goes through a per-request DataLoader (see
`loaders`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from enum import Enum
from inspect import Parameter, Signature
from typing import Annotated, Any, TypeVar, Union

import strawberry
from strawberry import Info

from api.entities import ENTITIES
from api.graphql.connections import Connection, Page, build, plan_page
from api.graphql.context import Context
from api.graphql.enums import ActorType, CoordinationEventType, GoalStoryStatus
from api.graphql.filters import WHERE, to_filter
from api.graphql.loaders import place
from api.graphql.names import type_name
from api.graphql.nodes import ENTITY_OF, Node
from api.graphql.ordering import ORDER_BY, order_keys
from api.graphql.relations import FIELDS, Either, Related, Shape
from api.graphql.rows import COLUMNS, values
from api.plan import Filter, ReadPlan, Summary, all_of

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
    context: Context = info.context
    return context


def _made(entity_name: str) -> Callable[[dict[str, Any]], Any]:
    return make(TYPES[entity_name], entity_name)


async def one(info: Info, cls: type[T], entity_name: str, id: str | None) -> T | None:
    """The row with this id (null when there is none), batched with the others at the same place."""
    if id is None:
        return None
    row = await _context(info).loaders.by_id(entity_name, place(info.path)).load(id)
    return None if row is None else make(cls, entity_name)(row)


First = Annotated[int | None, strawberry.argument(description=PAGING["first"])]
After = Annotated[str | None, strawberry.argument(description=PAGING["after"])]
Last = Annotated[int | None, strawberry.argument(description=PAGING["last"])]
Before = Annotated[str | None, strawberry.argument(description=PAGING["before"])]


# ---------------------------------------------------------------- resolvers built from declarations


def of(generic: Any, item: Any) -> Any:
    """`generic[item]`, for an item known only when the schema is assembled (mypy reads `list[x]` as a type)."""
    return generic[item]


def named(entity_name: str) -> Any:
    """The entity's GraphQL type, found when the schema is built (the types refer to each other)."""
    return Annotated[type_name(ENTITIES[entity_name]), strawberry.lazy("api.graphql.types")]


def connection_named(entity_name: str) -> Any:
    """The entity's connection type (api/graphql/aggregates.py), found when the schema is built."""
    return Annotated[f"{type_name(ENTITIES[entity_name])}Connection", strawberry.lazy("api.graphql.aggregates")]


def connection_class(entity_name: str) -> Any:
    from api.graphql.aggregates import CONNECTIONS  # built from this module's types

    return CONNECTIONS[entity_name]


def paging_parameters(entity_name: str) -> list[Parameter]:
    """A connection's arguments: where, orderBy, first/after, last/before."""
    annotations: dict[str, Any] = {
        "where": WHERE[entity_name] | None,
        "order_by": of(list, ORDER_BY[entity_name]) | None,
        "first": First,
        "after": After,
        "last": Last,
        "before": Before,
    }
    return [Parameter(name, Parameter.KEYWORD_ONLY, default=None, annotation=a) for name, a in annotations.items()]


def resolver(
    name: str,
    description: str,
    parameters: list[Parameter],
    returns: Any,
    answer: Callable[..., Awaitable[Any]],
) -> Any:
    """A Strawberry field whose resolver takes `parameters` and answers `answer(info, parent, **arguments)`."""

    async def resolve(self: Any, info: Info, **arguments: Any) -> Any:
        return await answer(info, self, **arguments)

    resolve.__name__ = resolve.__qualname__ = name
    # Strawberry reads a resolver's arguments and type from its signature.
    resolve.__signature__ = Signature(  # type: ignore[attr-defined]
        [
            Parameter("self", Parameter.POSITIONAL_OR_KEYWORD),
            Parameter("info", Parameter.KEYWORD_ONLY, annotation=Info),
            *parameters,
        ],
        return_annotation=returns,
    )
    return strawberry.field(resolver=resolve, description=description)


def page(
    info: Info,
    entity_name: str,
    where: Any,
    order_by: list[Any] | None,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    extra: Filter | None = None,
) -> tuple[Page, Filter | None, ReadPlan]:
    """What one page of a connection reads: the page, the condition its total counts, the plan of its rows."""
    condition = all_of(to_filter(entity_name, where), extra)
    planned = plan_page(
        order_keys(entity_name, order_by),
        condition,
        _context(info).limits,
        first=first,
        after_cursor=after,
        last=last,
        before_cursor=before,
    )
    plan = ReadPlan(
        entity_name, where=planned.where, order=planned.order, limit=planned.limit, columns=COLUMNS[entity_name]
    )
    return planned, condition, plan


async def _related_rows(info: Info, field: Related, parent_id: str, plan: ReadPlan) -> list[dict[str, Any]]:
    """The related rows of one parent, as `plan` selects them, batched with the other parents at this place."""
    loader = _context(info).loaders.related(field.entity, field.relation, plan, place(info.path))
    return await loader.load(parent_id)


def _related_field(field: Related) -> Any:
    target = field.target

    async def the_one(info: Info, parent: Any) -> Any:
        return await one(info, TYPES[target], target, getattr(parent, field.link.via))

    async def the_list(info: Info, parent: Any) -> list[Any]:
        plan = ReadPlan(target, where=field.extra, columns=COLUMNS[target])
        return [_made(target)(row) for row in await _related_rows(info, field, parent.id, plan)]

    async def the_pick(info: Info, parent: Any) -> Any:
        plan = ReadPlan(target, where=field.extra, order=field.pick, limit=1, columns=COLUMNS[target])
        rows = await _related_rows(info, field, parent.id, plan)
        return _made(target)(rows[0]) if rows else None

    async def the_page(info: Info, parent: Any, **arguments: Any) -> Connection[Any]:
        planned, condition, plan = page(info, target, extra=field.extra, **arguments)
        rows = await _related_rows(info, field, parent.id, plan)
        at = place(info.path)
        loaders = _context(info).loaders

        async def total() -> int:
            return await loaders.count(field.entity, field.relation, condition, at).load(parent.id)

        async def summarize(summary: Summary) -> Any:
            return await loaders.summary(field.entity, field.relation, condition, summary, at).load(parent.id)

        return build(planned, rows, _made(target), total, summarize=summarize, kind=connection_class(target))

    shapes: dict[Shape, tuple[Any, list[Parameter], Callable[..., Awaitable[Any]]]] = {
        Shape.ONE: (named(target) | None, [], the_one),
        Shape.LIST: (of(list, named(target)), [], the_list),
        Shape.PICK: (named(target) | None, [], the_pick),
        Shape.CONNECTION: (connection_named(target), paging_parameters(target), the_page),
    }
    returns, parameters, answer = shapes[field.shape]
    return resolver(field.name, field.description, parameters, returns, answer)


def _either_field(field: Either) -> Any:
    members = tuple(named(link.target) for _, link in field.choices)
    union = of(Annotated, (of(Union, members), strawberry.union(field.union, description=field.union_description)))

    async def the_chosen(info: Info, parent: Any) -> Any:
        value = getattr(parent, field.by)
        link = field.choose(value.value if isinstance(value, Enum) else value)
        if link is None:
            return None
        return await one(info, TYPES[link.target], link.target, getattr(parent, link.via))

    return resolver(field.name, field.description, [], union | None, the_chosen)


def relations(entity_name: str) -> Callable[[type[T]], type[T]]:
    """Adds the entity's declared relation fields to its type, after the entity's own fields."""

    def add(cls: type[T]) -> type[T]:
        for field in FIELDS[entity_name].values():
            built = _either_field(field) if isinstance(field, Either) else _related_field(field)
            setattr(cls, field.name, built)
        return cls

    return add


# ---------------------------------------------------------------- the types

ACTOR, TEAM, TEAM_CHECKIN = ENTITIES["actor"], ENTITIES["team"], ENTITIES["team_checkin"]
GOAL_STORY, GOAL_STORY_UPDATE = ENTITIES["goal_story"], ENTITIES["goal_story_update"]


@strawberry.type(description=ACTOR.description)
@relations("actor")
class Actor(Node):
    id: strawberry.ID = _field("actor", "id")
    actor_type: ActorType = _field("actor", "actor_type")
    name: str = _field("actor", "name")
    role: str | None = _field("actor", "role")
    timezone: str | None = _field("actor", "timezone")


@strawberry.type(description=TEAM.description)
@relations("team")
class Team(Node):
    id: strawberry.ID = _field("team", "id")
    name: str = _field("team", "name")
    description: str | None = _field("team", "description")
    member_ids: list[str] | None = _field("team", "member_ids")


@strawberry.type(description=TEAM_CHECKIN.description)
@relations("team_checkin")
class TeamCheckin(Node):
    id: strawberry.ID = _field("team_checkin", "id")
    actor_id: strawberry.ID = _field("team_checkin", "actor_id")
    team_id: strawberry.ID = _field("team_checkin", "team_id")
    date: dt.date = _field("team_checkin", "date")
    next: list[str] | None = _field("team_checkin", "next")
    previously: list[str] | None = _field("team_checkin", "previously")
    blockers: list[str] | None = _field("team_checkin", "blockers")
    created_at: dt.datetime | None = _field("team_checkin", "created_at")


@strawberry.type(description=GOAL_STORY.description)
@relations("goal_story")
class GoalStory(Node):
    id: strawberry.ID = _field("goal_story", "id")
    title: str = _field("goal_story", "title")
    description: str | None = _field("goal_story", "description")
    actor_ids: list[str] | None = _field("goal_story", "actor_ids")
    team_ids: list[str] | None = _field("goal_story", "team_ids")
    parent_id: strawberry.ID | None = _field("goal_story", "parent_id")
    timeframe: Timeframe | None = _field("goal_story", "timeframe")
    created_at: dt.datetime | None = _field("goal_story", "created_at")


@strawberry.type(description=GOAL_STORY_UPDATE.description)
@relations("goal_story_update")
class GoalStoryUpdate(Node):
    id: strawberry.ID = _field("goal_story_update", "id")
    actor_id: strawberry.ID = _field("goal_story_update", "actor_id")
    goal_story_id: strawberry.ID = _field("goal_story_update", "goal_story_id")
    date: dt.date = _field("goal_story_update", "date")
    title: str = _field("goal_story_update", "title")
    content: str = _field("goal_story_update", "content")
    status: GoalStoryStatus | None = _field("goal_story_update", "status")
    progress_percent: int | None = _field("goal_story_update", "progress_percent")
    created_at: dt.datetime | None = _field("goal_story_update", "created_at")


@strawberry.type(description=ENTITIES["coordination_event"].description)
@relations("coordination_event")
class CoordinationEvent(Node):
    id: strawberry.ID = _field("coordination_event", "id")
    actor_id: strawberry.ID = _field("coordination_event", "actor_id")
    event_type: CoordinationEventType = _field("coordination_event", "event_type")
    reference_id: strawberry.ID = _field("coordination_event", "reference_id")
    occurred_at: dt.datetime = _field("coordination_event", "occurred_at")
    cursor: str = _field("coordination_event", "cursor")


TYPES: dict[str, type] = {
    "actor": Actor,
    "team": Team,
    "team_checkin": TeamCheckin,
    "goal_story": GoalStory,
    "goal_story_update": GoalStoryUpdate,
    "coordination_event": CoordinationEvent,
}
assert all(type_name(ENTITIES[name]) == cls.__name__ for name, cls in TYPES.items())
ENTITY_OF.update({cls.__name__: name for name, cls in TYPES.items()})
