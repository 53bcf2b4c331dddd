"""Compiled execution: a query whose whole selection can be planned runs as one plan per root field.

Strawberry still parses and validates the document (with its caches); then,
instead of graphql-core's walk of every field through its resolver, the
selection tree becomes a `ReadPlan` tree (each nested relation an `Embed` with
its own filter, order and page, each nested totalCount a `Count`) that
PostgreSQL answers in one statement per root field, and a small shaper turns
the rows into the response, spelling values exactly as the resolvers do.

The resolvers stay the reference semantics. Anything outside the subset below
raises `NotPlannable` and the operation runs through them, as does any
operation whose compiled run fails (bad input then gets the resolvers' errors
with their paths). The subset: query operations; fields, aliases, fragments
(named and inline) on the field's own type, variables, @include/@skip,
__typename; root fields by id and connections (with totalCount, also at the
root, where it costs a second statement); nested to-one relations, id lists
(members, teams, actors), connections (where, orderBy, first/after,
last/before, nodes and edges with cursors, pageInfo, totalCount) and latestUpdate.
and an event's `reference` union (inline or named fragments on its members).
Not compiled: a response key selected twice with a sub-selection or arguments (graphql-core merges
those; the same leaf field twice is compiled).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLObjectType,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
)
from graphql.execution.values import get_argument_values, get_directive_values, get_variable_values
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult
from strawberry.types.arguments import convert_arguments

from ..entities import ENTITIES, Entity, Kind
from ..plan import Condition, Count, Embed, Filter, ReadPlan, all_of
from .connections import Limits, Page, build, plan_page
from .context import Context
from .enums import CHOICES
from .filters import to_filter
from .names import camel, type_name
from .ordering import order_keys
from .rows import COLUMNS


class NotPlannable(Exception):
    """The selection uses something compiled execution does not cover; the resolvers answer instead."""


# ---------------------------------------------------------------- the GraphQL fields of each entity

@dataclass(frozen=True)
class Nested:
    kind: str  # "one" | "list" | "connection" | "latest"
    relation: str
    extra: Filter | None = None


def _events_of(event_type: str) -> Filter:
    return Condition("event_type", "eq", event_type)


# Mirrors the resolvers in `types`: GraphQL field -> the relation it reads and how.
NESTED: dict[str, dict[str, Nested]] = {
    "actor": {"teams": Nested("connection", "teams"), "checkins": Nested("connection", "team_checkins"),
              "goalStoryUpdates": Nested("connection", "goal_story_updates"),
              "goalStories": Nested("connection", "goal_stories"),
              "coordinationEvents": Nested("connection", "coordination_events")},
    "team": {"members": Nested("list", "members"), "checkins": Nested("connection", "team_checkins"),
             "goalStories": Nested("connection", "goal_stories")},
    "team_checkin": {"actor": Nested("one", "actor"), "team": Nested("one", "team"),
                     "coordinationEvents": Nested("connection", "coordination_events", _events_of("team_checkin"))},
    "goal_story": {"parent": Nested("one", "parent"), "children": Nested("connection", "children"),
                   "updates": Nested("connection", "goal_story_updates"),
                   "latestUpdate": Nested("latest", "goal_story_updates"),
                   "teams": Nested("list", "teams"), "actors": Nested("list", "actors")},
    "goal_story_update": {"actor": Nested("one", "actor"), "goalStory": Nested("one", "goal_story"),
                          "coordinationEvents": Nested("connection", "coordination_events",
                                                       _events_of("goal_story_update"))},
    "coordination_event": {"actor": Nested("one", "actor")},
}
SCALARS: dict[str, dict[str, str]] = {name: {camel(f.name): f.name for f in ent.fields}
                                      for name, ent in ENTITIES.items()}
# Root fields: camelCase entity (by id) and its plural (connection).
ROOTS: dict[str, tuple[str, str]] = {}
for _name, _ent in ENTITIES.items():
    ROOTS[camel(_name)] = ("one", _name)
    ROOTS[camel(_ent.resource)] = ("connection", _name)


def _latest_first() -> tuple[Any, ...]:
    from .types import LATEST_FIRST  # the resolvers' definition of "latest", shared
    return LATEST_FIRST


# ---------------------------------------------------------------- shapes

Shaper = Callable[[Any], Any]


@dataclass
class Level:
    """One object level of the selection: what to read for it and how to shape each row."""

    entity: str
    embeds: list[Embed] = field(default_factory=list)
    counts: list[Count] = field(default_factory=list)
    items: list[tuple[str, Shaper]] = field(default_factory=list)

    def shape(self, row: dict[str, Any]) -> dict[str, Any]:
        return {key: shaper(row) for key, shaper in self.items}

    def plan(self, where: Filter | None = None, order: tuple[Any, ...] = (), limit: int | None = None) -> ReadPlan:
        return ReadPlan(self.entity, where=where, order=order, limit=limit, columns=COLUMNS[self.entity],
                        embeds=tuple(self.embeds), counts=tuple(self.counts))


def _scalar(ent: Entity, name: str) -> Shaper:
    f = ent.field(name)
    assert f is not None
    enum = CHOICES.get((ent.name, f.name))
    if enum is not None:
        return lambda row: None if row.get(name) is None else enum(row[name]).name
    if f.kind is Kind.TIMESTAMP:
        # As the resolvers serve it: PostgreSQL drops trailing zeros of the fraction, Python keeps six digits.
        return lambda row: None if row.get(name) is None else dt.datetime.fromisoformat(row[name]).isoformat()
    if f.kind is Kind.INTEGER and f.internal:
        return lambda row: None if row.get(name) is None else str(row[name])
    return lambda row: row.get(name)


# ---------------------------------------------------------------- compiling a selection


class Compiler:
    def __init__(self, schema: Any, fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any],
                 limits: Limits) -> None:
        self.schema = schema
        self.graphql_schema = schema._schema
        self.fragments = fragments
        self.variables = variables
        self.limits = limits

    def fields(self, parent: GraphQLObjectType, selection_set: SelectionSetNode | None,
               union: str | None = None) -> list[FieldNode]:
        """The fields selected on `parent`, fragments inlined, @include/@skip applied.

        Under a union, the selection holds fragments on each member: those on other members are left out."""
        if selection_set is None:
            raise NotPlannable("no selection")
        found: list[FieldNode] = []
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                found.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if selection.type_condition is None or self._applies(selection.type_condition.name.value,
                                                                     parent, union):
                    found.extend(self.fields(parent, selection.selection_set, union))
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments[selection.name.value]
                if self._applies(fragment.type_condition.name.value, parent, union):
                    found.extend(self.fields(parent, fragment.selection_set, union))
        # The same response key twice: the same leaf field is one field; anything else graphql-core merges.
        unique: dict[str, FieldNode] = {}
        for node in found:
            seen = unique.setdefault(_key(node), node)
            if seen is not node and not (seen.name.value == node.name.value and seen.selection_set is None
                                         and node.selection_set is None and not seen.arguments
                                         and not node.arguments):
                raise NotPlannable("merged fields")
        return list(unique.values())

    @staticmethod
    def _applies(condition: str, parent: GraphQLObjectType, union: str | None) -> bool:
        if condition == parent.name or condition == union:
            return True
        if union is None:
            raise NotPlannable("fragment on another type")
        return False

    def _included(self, node: Any) -> bool:
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip.get("if"):
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include is not None and not include.get("if"))

    def arguments(self, parent: GraphQLObjectType, node: FieldNode) -> dict[str, Any]:
        definition = parent.fields[node.name.value]
        raw = get_argument_values(definition, node, self.variables)
        strawberry_field = definition.extensions["strawberry-definition"]
        return convert_arguments(raw, strawberry_field.arguments,
                                 scalar_registry=self.schema.schema_converter.scalar_registry,
                                 config=self.schema.config)

    def level(self, entity_name: str, object_type: GraphQLObjectType, selection_set: SelectionSetNode | None,
              level: Level | None = None, union: str | None = None) -> Level:
        ent = ENTITIES[entity_name]
        level = level or Level(entity_name)
        for node in self.fields(object_type, selection_set, union):
            name, key = node.name.value, _key(node)
            if name == "__typename":
                level.items.append((key, _constant(object_type.name)))
            elif name == "timeframe" and entity_name == "goal_story":
                level.items.append((key, self._timeframe(object_type, node)))
            elif name in SCALARS[entity_name]:
                if node.selection_set is not None:
                    raise NotPlannable("selection on a scalar")
                level.items.append((key, _scalar(ent, SCALARS[entity_name][name])))
            elif name in NESTED[entity_name]:
                level.items.append((key, self._nested(level, object_type, node, NESTED[entity_name][name])))
            elif name == "reference" and entity_name == "coordination_event":
                level.items.append((key, self._reference(level, object_type, node)))
            else:
                raise NotPlannable(f"field {name}")
        return level

    def _reference(self, level: Level, object_type: GraphQLObjectType, node: FieldNode) -> Shaper:
        """The union of an event's row: both to-one relations read, the event's type picks one (as the resolver)."""
        union = get_named_type(object_type.fields[node.name.value].type)
        members: dict[str, tuple[str, Level]] = {}
        for member in ("team_checkin", "goal_story_update"):
            member_type = self.graphql_schema.type_map[type_name(ENTITIES[member])]
            child = self.level(member, member_type, node.selection_set, union=union.name)
            embed_key = f"~{len(level.embeds) + len(level.counts)}"
            level.embeds.append(Embed(embed_key, member, child.plan()))
            members[member] = (embed_key, child)

        def shape(row: dict[str, Any]) -> Any:
            embed_key, child = members["team_checkin" if row.get("event_type") == "team_checkin"
                                       else "goal_story_update"]
            value = row.get(embed_key)
            return None if value is None else child.shape(value)
        return shape

    def _timeframe(self, object_type: GraphQLObjectType, node: FieldNode) -> Shaper:
        inner = get_named_type(object_type.fields["timeframe"].type)
        parts: list[tuple[str, Shaper]] = []
        for sub in self.fields(inner, node.selection_set):
            name = sub.name.value
            if name == "__typename":
                parts.append((_key(sub), _constant(inner.name)))
            elif name in ("start", "end"):
                parts.append((_key(sub), lambda value, name=name: value.get(name)))
            else:
                raise NotPlannable(f"timeframe field {name}")

        def shape(row: dict[str, Any]) -> Any:
            value = row.get("timeframe")
            return None if value is None else {key: part(value) for key, part in parts}
        return shape

    def _nested(self, level: Level, object_type: GraphQLObjectType, node: FieldNode, nested: Nested) -> Shaper:
        relation = ENTITIES[level.entity].relation(nested.relation)
        assert relation is not None
        target = relation.target
        field_type = get_named_type(object_type.fields[node.name.value].type)
        embed_key = f"~{len(level.embeds) + len(level.counts)}"
        if nested.kind == "connection":
            arguments = self.arguments(object_type, node)
            condition = all_of(to_filter(target, arguments.get("where")), nested.extra)
            page = self._page(target, condition, arguments)
            connection = self.connection(target, field_type, node.selection_set)
            level.embeds.append(Embed(embed_key, relation.name, connection.child.plan(page.where, page.order,
                                                                                      page.limit)))
            count_key = None
            if connection.counted:
                count_key = embed_key + "#"
                level.counts.append(Count(count_key, relation.name, condition))
            return lambda row: connection.shape(page, row.get(embed_key) or [],
                                                None if count_key is None else row.get(count_key, 0))
        child = self.level(target, field_type, node.selection_set)
        if nested.kind == "one":
            level.embeds.append(Embed(embed_key, relation.name, child.plan()))
            return lambda row: None if row.get(embed_key) is None else child.shape(row[embed_key])
        if nested.kind == "list":
            level.embeds.append(Embed(embed_key, relation.name, child.plan()))
            return lambda row: [child.shape(r) for r in row.get(embed_key) or []]
        assert nested.kind == "latest"
        level.embeds.append(Embed(embed_key, relation.name, child.plan(order=_latest_first(), limit=1)))
        return lambda row: child.shape(row[embed_key][0]) if row.get(embed_key) else None

    def _page(self, entity_name: str, condition: Filter | None, arguments: dict[str, Any]) -> Page:
        return plan_page(order_keys(entity_name, arguments.get("order_by")), condition, self.limits,
                         first=arguments.get("first"), after_cursor=arguments.get("after"),
                         last=arguments.get("last"), before_cursor=arguments.get("before"))

    def connection(self, entity_name: str, connection_type: GraphQLObjectType,
                   selection_set: SelectionSetNode | None) -> ConnectionShape:
        """A connection's selection: its nodes' level and how to lay out nodes, edges, pageInfo, totalCount."""
        child: Level | None = None
        parts: list[tuple[str, str, Any]] = []

        def node_level(selection: SelectionSetNode | None, node_type: GraphQLObjectType) -> Level:
            nonlocal child
            # nodes and edges.node read the same rows: each selection shapes them its own way, and the
            # relations both select are read into the same rows under distinct keys.
            view = Level(entity_name) if child is None else Level(entity_name, child.embeds, child.counts)
            self.level(entity_name, node_type, selection, view)
            child = child or view
            return view

        for node in self.fields(connection_type, selection_set):
            name, key = node.name.value, _key(node)
            field_type = get_named_type(connection_type.fields[name].type) if name != "__typename" else None
            if name == "__typename":
                parts.append((key, "constant", connection_type.name))
            elif name == "totalCount":
                parts.append((key, "total", None))
            elif name == "nodes":
                parts.append((key, "nodes", node_level(node.selection_set, field_type)))
            elif name == "edges":
                edge_parts: list[tuple[str, str, Any]] = []
                for sub in self.fields(field_type, node.selection_set):
                    sub_name = sub.name.value
                    if sub_name == "__typename":
                        edge_parts.append((_key(sub), "constant", field_type.name))
                    elif sub_name == "cursor":
                        edge_parts.append((_key(sub), "cursor", None))
                    elif sub_name == "node":
                        edge_parts.append((_key(sub), "node", node_level(
                            sub.selection_set, get_named_type(field_type.fields["node"].type))))
                    else:
                        raise NotPlannable(f"edge field {sub_name}")
                parts.append((key, "edges", edge_parts))
            elif name == "pageInfo":
                info_parts: list[tuple[str, str]] = []
                for sub in self.fields(field_type, node.selection_set):
                    sub_name = sub.name.value
                    info_parts.append((_key(sub), field_type.name if sub_name == "__typename" else
                                       PAGE_INFO.get(sub_name) or _refuse(sub_name)))
                parts.append((key, "pageInfo", info_parts))
            else:
                raise NotPlannable(f"connection field {name}")
        if child is None:
            # Only totalCount or pageInfo: the rows are still read, for pageInfo.
            child = Level(entity_name)
        return ConnectionShape(child, parts)


PAGE_INFO = {"hasNextPage": "has_next_page", "hasPreviousPage": "has_previous_page",
             "startCursor": "start_cursor", "endCursor": "end_cursor"}


def _refuse(name: str) -> str:
    raise NotPlannable(f"pageInfo field {name}")


@dataclass
class ConnectionShape:
    child: Level
    parts: list[tuple[str, str, Any]]

    def __post_init__(self) -> None:
        self.cursors = any(kind in ("edges", "pageInfo") for _, kind, _ in self.parts)

    @property
    def counted(self) -> bool:
        return any(kind == "total" for _, kind, _ in self.parts)

    def shape(self, page: Page, rows: list[dict[str, Any]], total: int | None) -> dict[str, Any]:
        # The resolvers' own paging (trim, reverse, cursors), on the rows read here.
        connection = build(page, rows, lambda row: row, _no_total, cursors=self.cursors)
        out: dict[str, Any] = {}
        for key, kind, extra in self.parts:
            if kind == "constant":
                out[key] = extra
            elif kind == "total":
                out[key] = total
            elif kind == "nodes":
                out[key] = [extra.shape(row) for row in connection.nodes]
            elif kind == "edges":
                out[key] = [{edge_key: (edge_extra if edge_kind == "constant" else edge.cursor
                                        if edge_kind == "cursor" else edge_extra.shape(edge.node))
                             for edge_key, edge_kind, edge_extra in extra} for edge in connection.edges]
            else:
                info = connection.page_info
                out[key] = {info_key: getattr(info, attribute) if attribute in PAGE_INFO.values() else attribute
                            for info_key, attribute in extra}
        return out


async def _no_total() -> int:
    raise AssertionError("totalCount is read in the statement")


def _constant(value: Any) -> Shaper:
    return lambda row: value


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias is not None else node.name.value


# ---------------------------------------------------------------- running an operation


async def run(schema: Any, operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode],
              variables: dict[str, Any], context: Context) -> dict[str, Any]:
    """The `data` of a query operation, read with one plan per root field."""
    if operation.operation is not OperationType.QUERY:
        raise NotPlannable("not a query")
    compiler = Compiler(schema, fragments, variables, context.limits)
    query_type = compiler.graphql_schema.query_type
    steps: list[tuple[str, Callable[[], Any]]] = []
    for node in compiler.fields(query_type, operation.selection_set):
        name, key = node.name.value, _key(node)
        if name == "__typename":
            steps.append((key, _value_step(query_type.name)))
            continue
        if name not in ROOTS:
            raise NotPlannable(f"root field {name}")
        kind, entity_name = ROOTS[name]
        field_type = get_named_type(query_type.fields[name].type)
        arguments = compiler.arguments(query_type, node)
        if kind == "one":
            level = compiler.level(entity_name, field_type, node.selection_set)
            steps.append((key, _one_step(context, level, arguments.get("id"))))
        else:
            condition = to_filter(entity_name, arguments.get("where"))
            page = compiler._page(entity_name, condition, arguments)
            connection = compiler.connection(entity_name, field_type, node.selection_set)
            steps.append((key, _connection_step(context, entity_name, condition, page, connection)))
    return {key: await step() for key, step in steps}


def _value_step(value: Any) -> Callable[[], Any]:
    async def step() -> Any:
        return value
    return step


def _one_step(context: Context, level: Level, id: str | None) -> Callable[[], Any]:
    async def step() -> Any:
        if id is None:
            return None
        rows = json.loads(await context.reader.json_array(level.plan(Condition("id", "eq", id))))
        return level.shape(rows[0]) if rows else None
    return step


def _connection_step(context: Context, entity_name: str, condition: Filter | None, page: Page,
                     connection: ConnectionShape) -> Callable[[], Any]:
    async def step() -> Any:
        rows = json.loads(await context.reader.json_array(connection.child.plan(page.where, page.order, page.limit)))
        total = await context.reader.count(ReadPlan(entity_name, where=condition)) if connection.counted else None
        return connection.shape(page, rows, total)
    return step


class CompiledExecution(SchemaExtension):
    """Answers plannable queries with compiled plans before graphql-core's executor runs (see the module)."""

    async def on_execute(self) -> AsyncIterator[None]:  # type: ignore[override]
        execution_context = self.execution_context
        context = execution_context.context
        document = execution_context.graphql_document
        if isinstance(context, Context) and document is not None and not context.resolvers_only:
            try:
                operation, fragments = _operation(document, execution_context.operation_name)
                schema = execution_context.schema
                variables = get_variable_values(schema._schema, operation.variable_definitions or (),
                                                execution_context.variables or {})
                if isinstance(variables, list):
                    raise NotPlannable("bad variables")
                data = await run(schema, operation, fragments, variables, context)
            except Exception:
                # Not plannable, or failed: the resolvers answer, with their errors where there are any.
                pass
            else:
                execution_context.result = ExecutionResult(data=data, errors=None)
        yield


def _operation(document: Any, operation_name: str | None) -> tuple[OperationDefinitionNode,
                                                                   dict[str, FragmentDefinitionNode]]:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    if operation_name is None:
        if len(operations) != 1:
            raise NotPlannable("which operation")
        return operations[0], fragments
    chosen = [o for o in operations if o.name is not None and o.name.value == operation_name]
    if len(chosen) != 1:
        raise NotPlannable("no such operation")
    return chosen[0], fragments
