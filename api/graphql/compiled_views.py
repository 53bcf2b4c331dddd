"""Compiled execution of the coordination views: `teamCoverage`, `staleGoalStories`, `openBlockers`, `goalRollup`.

Each view is one statement whose answer is JSON text (api/store/views.py). The resolvers (api/graphql/views.py)
turn that text into Strawberry objects, and graphql-core then walks every field of them (four weeks of a team
of ten are some 1,500 fields). Here a query operation whose root fields are all views (and __typename) is
compiled once into a `PlannedViews`: for each root field its read, called with the arguments the resolver would
get, and a projection of the store's JSON onto the selection (response keys and aliases, __typename, GraphQL
field names against the store's keys, enum names, dates and timestamps as the GraphQL scalars serialise
them). Recorded as the compiled queries are (`compiled.RecentPlans`), a repeat skips Strawberry in the route:
the reads run again with the caller's team scope (`current_scope()`, taken at each run), and the projection
gives the body.

Not compiled (the resolvers answer, a fallback counted as `unsupported`): relation fields under a view
(`actor`, `goalStory`, `checkin`: entities the resolvers load, batched), a document mixing views with other
root fields, and what `compiled.Compiler.fields` leaves out (merged fields, fragments on other types). A view
whose read fails (bad arguments, the database) sends the whole operation to the resolvers, so the errors,
their codes and paths are theirs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
)
from graphql.execution.values import VariableValues

from api.graphql.compiled import Compiler, NotPlannable
from api.graphql.connections import Limits
from api.graphql.enums import GoalStoryStatus
from api.graphql.views import STORE_KEYS, VIEW_READS, VIEW_TYPES
from api.store import Reader, Views

Project = Callable[[Any], Any]


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias is not None else node.name.value


def _date(value: str | None) -> str | None:
    return None if value is None else dt.date.fromisoformat(value).isoformat()


def _datetime(value: str | None) -> str | None:
    # The resolvers parse PostgreSQL's spelling and the scalar prints Python's (six digits of fraction).
    return None if value is None else dt.datetime.fromisoformat(value).isoformat()


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


# The view scalars whose JSON spelling differs from the GraphQL one; every other (ID, String, Int, Boolean)
# is the same value in both.
SCALARS: dict[str, Project] = {"Date": _date, "DateTime": _datetime, "Float": _float}

# The enums of the views: the store's value -> the member's name, as Strawberry serialises it.
ENUMS: dict[str, dict[str, str]] = {"GoalStoryStatus": {m.value: m.name for m in GoalStoryStatus}}


def _enum(names: dict[str, str]) -> Project:
    def project(value: str | None) -> str | None:
        return None if value is None else names[value]

    return project


def _listed(project: Project) -> Project:
    def listed(values: list[Any] | None) -> list[Any] | None:
        return None if values is None else [project(v) for v in values]

    return listed


def _nullable(project: Project) -> Project:
    def nullable(value: Any) -> Any:
        return None if value is None else project(value)

    return nullable


def _constant(value: str) -> Project:
    def constant(_: Any) -> str:
        return value

    return constant


def _composed(get: Project, project: Project) -> Project:
    def composed(row: Any) -> Any:
        return project(get(row))

    return composed


class Projector:
    """A view root field's selection, as one function from the store's JSON to the answer's."""

    def __init__(self, compiler: Compiler) -> None:
        self.compiler = compiler

    def value(self, field_type: GraphQLOutputType, selection_set: SelectionSetNode | None) -> Project | None:
        """The projection of a value of `field_type` (None: the value as the store gives it)."""
        if isinstance(field_type, GraphQLNonNull):
            return self.value(field_type.of_type, selection_set)
        if isinstance(field_type, GraphQLList):
            inner = self.value(field_type.of_type, selection_set)
            return None if inner is None else _listed(inner)
        if isinstance(field_type, GraphQLObjectType):
            if field_type.name not in VIEW_TYPES:
                # An entity (a member's actor, a goal story, a check-in): the resolvers load it.
                raise NotPlannable(f"relation to {field_type.name} under a view")
            return _nullable(self.object(field_type, selection_set))
        if selection_set is not None:
            raise NotPlannable("selection on a leaf")
        if isinstance(field_type, GraphQLEnumType):
            return _enum(ENUMS[field_type.name])
        return SCALARS.get(get_named_type(field_type).name)

    def object(self, object_type: GraphQLObjectType, selection_set: SelectionSetNode | None) -> Project:
        parts: list[tuple[str, Project]] = []
        for node in self.compiler.fields(object_type, selection_set):
            name, key = node.name.value, _key(node)
            if name == "__typename":
                parts.append((key, _constant(object_type.name)))
                continue
            field = object_type.fields[name]
            if field.args:
                raise NotPlannable(f"arguments of {object_type.name}.{name}")
            get = itemgetter(STORE_KEYS.get((object_type.name, name), name))
            project = self.value(field.type, node.selection_set)
            parts.append((key, get if project is None else _composed(get, project)))

        def projected(row: dict[str, Any]) -> dict[str, Any]:
            return {key: get(row) for key, get in parts}

        return projected


@dataclass(frozen=True)
class ViewRead:
    """One view root field: its read with the resolver's arguments, and the projection of its answer."""

    key: str
    read: Callable[..., Awaitable[str | None]]
    arguments: dict[str, Any]
    project: Project

    async def text(self, views: Views) -> str | None:
        answer: str | None = await self.read(views, **self.arguments)
        return answer


@dataclass(frozen=True)
class PlannedViews:
    """A query operation of views (and __typename): its root keys in the client's order, each a read or a
    constant."""

    parts: tuple[tuple[str, ViewRead | str], ...]

    async def data(self, reader: Reader) -> dict[str, Any]:
        """The operation's `data`, the views read at once (as graphql-core runs the resolvers of a query)."""
        views = Views(reader)
        reads = [part for _, part in self.parts if isinstance(part, ViewRead)]
        texts = await asyncio.gather(*(read.text(views) for read in reads), return_exceptions=True)
        answers: dict[str, str | None] = {}
        for read, text in zip(reads, texts, strict=True):
            if isinstance(text, BaseException):
                raise text
            answers[read.key] = text
        data: dict[str, Any] = {}
        for key, part in self.parts:
            if isinstance(part, str):
                data[key] = part
                continue
            text = answers[key]
            data[key] = None if text is None else part.project(json.loads(text))
        return data

    async def text(self, reader: Reader) -> str:
        """The JSON text of `data`, spelt as the route spells a response (api/graphql/route.py)."""
        return json.dumps(await self.data(reader), separators=(",", ":"))


@dataclass(frozen=True)
class PreparedViews:
    """A request of views already answered through the compiled path, and the operation's name."""

    planned: PlannedViews
    operation_name: str | None


def compile_views(
    schema: Any,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: VariableValues,
    limits: Limits,
) -> PlannedViews | None:
    """The reads and projections of a query operation of views; None when it selects no view (the entity
    queries' compiler takes it). A view beside another root field is not plannable."""
    if operation.operation is not OperationType.QUERY:
        return None
    compiler = Compiler(schema, fragments, variables, limits)
    query_type = compiler.graphql_schema.query_type
    if query_type is None:
        return None
    selected = compiler.fields(query_type, operation.selection_set)
    if not any(node.name.value in VIEW_READS for node in selected):
        return None
    projector = Projector(compiler)
    parts: list[tuple[str, ViewRead | str]] = []
    for node in selected:
        name, key = node.name.value, _key(node)
        if name == "__typename":
            parts.append((key, query_type.name))
            continue
        read = VIEW_READS.get(name)
        if read is None:
            raise NotPlannable(f"root field {name} beside a view")
        field = query_type.fields[name]
        project = projector.value(field.type, node.selection_set)
        assert project is not None  # a view answers an object or a list of them
        parts.append((key, ViewRead(key, read, compiler.arguments(query_type, node), project)))
    return PlannedViews(tuple(parts))
