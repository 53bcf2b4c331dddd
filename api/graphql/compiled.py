"""Compiled execution: a query whose whole selection can be planned is answered by one statement.

Strawberry parses and validates the document (with its caches) the first time;
then, instead of graphql-core's walk of every field through its resolver, the
selection tree becomes a `Bundle` of plans (each root field a `Lookup` or a
`Paged` page object; nested relations `Embed`s, connections `Paged` with
nodes, edges and cursors, pageInfo and totalCount under the client's keys;
enum names, timestamps and cursors spelled in SQL exactly as the resolvers
spell them) and PostgreSQL returns the JSON text of the whole `data` object.
The request is then recorded (`Schema.recent`): the route answers the same document,
operation and variables again from the recorded plan, before Strawberry, and
passes PostgreSQL's text through as the body.

The resolvers stay the reference semantics, and both read what each field
means from the same declarations (`relations`). Anything outside the subset
below raises `NotPlannable` and the operation runs through them, as does any
operation whose compiled run fails (bad input then gets the resolvers' errors
with their paths); each such query is logged at debug with its reason and
counted (`coco_graphql_fallbacks_total{reason}`). The subset: query
operations; fields, aliases, fragments (named and inline) on the field's own
type or on Node, variables, @include/@skip, __typename, nodeId; root fields by
id, `node(nodeId:)` (fragments on the type its id names) and connections;
every relation field `relations` declares: to-one, id lists,
connections (where, orderBy, first/after, last/before, nodes and edges with
cursors, pageInfo, totalCount), picks (latestUpdate), and unions (an event's
`reference`, with inline or named fragments on its members).
Not compiled: a response key selected twice with a sub-selection or arguments (graphql-core merges
those; the same leaf field twice is compiled); `nodes(nodeIds:)`. The coordination views have their own
compiled path, recorded here as the queries are (api/graphql/compiled_views.py).

Mutations: an operation of one entity mutation (create, bulk create, update, delete; __typename
beside it) becomes a `PlannedWrite`: the write-service call with the documents the resolver would pass,
and its payload's selection as plans (`api.store.Shown`: the rows' and the events' selections, compiled
as above). The write service renders them with the query planner before it commits (a create that is
one statement renders them in that statement), and the payload is the texts PostgreSQL rendered, laid
out under the client's keys; recorded, a repeat skips Strawberry as a query does, and writes again. A
write the service refuses wrote nothing, so the resolvers answer it with their errors and paths (a
fallback, `refused`). Operations of several mutations are left to the resolvers: each commits on its
own, and a failure of the second could not send the operation back without running the first twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import Enum
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
from graphql.execution.values import (
    VariableValues,
    get_argument_values,
    get_directive_values,
    get_variable_values,
)
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult

from api import metrics
from api.cache import BoundedCache
from api.entities import ENTITIES, Entity, Kind
from api.errors import DomainError, InvalidInput, StatementTimeout, Unavailable
from api.graphql.aggregates import LATEST_UPDATES, SPEC_BY_KEY, aggregate, grouping
from api.graphql.connections import Limits, plan_page
from api.graphql.context import Context
from api.graphql.enums import CHOICES
from api.graphql.filters import to_filter
from api.graphql.inputs import WRITABLE, document
from api.graphql.names import camel, type_name
from api.graphql.nodes import decode
from api.graphql.ordering import order_keys
from api.graphql.relations import FIELDS, ROOTS, Either, Related, Shape
from api.graphql.strawberry_adapter import field_arguments, graphql_schema, provided_operation_name
from api.plan import (
    Bundle,
    Choice,
    Column,
    Composite,
    Condition,
    Constant,
    Embed,
    Filter,
    GroupKey,
    Keys,
    Lookup,
    Nest,
    NodeKey,
    OrderTerm,
    Paged,
    PageField,
    Position,
    ReadPlan,
    Spelling,
    Summary,
    Window,
    all_of,
)
from api.plan import Related as RelatedRows
from api.store import Shown, WriteResult, WriteService

log = logging.getLogger("coco.graphql.compiled")


# The interface `node(nodeId:)` answers: fragments on it apply to every type.
NODE = "Node"


class NotPlannable(Exception):
    """The selection uses something compiled execution does not cover; the resolvers answer instead."""


# ---------------------------------------------------------------- the GraphQL fields of each entity

# Each entity's own fields by GraphQL name; its relation fields are `relations.FIELDS`, the resolvers' too.
SCALARS: dict[str, dict[str, str]] = {
    name: {camel(f.name): f.name for f in ent.fields} for name, ent in ENTITIES.items()
}


# ---------------------------------------------------------------- value spellings


def _spelling(ent: Entity, name: str) -> Spelling | None:
    """How the resolvers serve a field's value, where PostgreSQL's JSON spells it otherwise."""
    f = ent.field(name)
    assert f is not None
    if (ent.name, f.name) in CHOICES:
        return Spelling.UPPER
    if f.kind is Kind.TIMESTAMP:
        # PostgreSQL drops trailing zeros of the fraction, Python keeps six digits.
        return Spelling.ISO_TIMESTAMP
    if f.kind is Kind.INTEGER and f.internal:
        return Spelling.TEXT
    return None


# Choices are served as enum members named by their value in upper case (Spelling.UPPER relies on it).
assert all(member.name == member.value.upper() for enum in CHOICES.values() for member in enum)


# ---------------------------------------------------------------- compiling a selection


@dataclass
class View:
    """One object level of the selection: the keys it renders, in the client's order."""

    entity: str
    columns: list[Column] = field(default_factory=list)
    constants: list[Constant] = field(default_factory=list)
    composites: list[Composite] = field(default_factory=list)
    embeds: list[Embed] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)
    pages: list[Paged] = field(default_factory=list)
    node_keys: list[NodeKey] = field(default_factory=list)
    layout: list[str] = field(default_factory=list)

    def plan(self, where: Filter | None = None, order: tuple[Any, ...] = (), limit: int | None = None) -> ReadPlan:
        return ReadPlan(
            self.entity,
            where=where,
            order=order,
            limit=limit,
            columns=tuple(self.columns),
            embeds=tuple(self.embeds),
            constants=tuple(self.constants),
            composites=tuple(self.composites),
            choices=tuple(self.choices),
            pages=tuple(self.pages),
            node_keys=tuple(self.node_keys),
            layout=tuple(self.layout),
        )


class Compiler:
    def __init__(
        self,
        schema: Any,
        fragments: dict[str, FragmentDefinitionNode],
        variables: VariableValues,
        limits: Limits,
    ) -> None:
        self.schema = schema
        self.graphql_schema = graphql_schema(schema)
        self.fragments = fragments
        self.variables = variables
        self.limits = limits
        # The fields of each selection already inlined: a fragment spread many times (fragments
        # spreading each other twice over) is inlined once, so compiling is linear in the document.
        self.inlined: dict[tuple[int, str, str | None], list[FieldNode]] = {}

    def fields(
        self, parent: GraphQLObjectType, selection_set: SelectionSetNode | None, union: str | None = None
    ) -> list[FieldNode]:
        """The fields selected on `parent`, fragments inlined, @include/@skip applied.

        Under a union, the selection holds fragments on each member: those on other members are left out."""
        if selection_set is None:
            raise NotPlannable("no selection")
        key = (id(selection_set), parent.name, union)
        known = self.inlined.get(key)
        if known is None:
            known = self.inlined[key] = self._inline(parent, selection_set, union)
        return known

    def _inline(self, parent: GraphQLObjectType, selection_set: SelectionSetNode, union: str | None) -> list[FieldNode]:
        found: list[FieldNode] = []
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                found.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if selection.type_condition is None or self._applies(
                    selection.type_condition.name.value, parent, union
                ):
                    found.extend(self.fields(parent, selection.selection_set, union))
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments[selection.name.value]
                if self._applies(fragment.type_condition.name.value, parent, union):
                    found.extend(self.fields(parent, fragment.selection_set, union))
        # The same response key twice: the same leaf field is one field; anything else graphql-core merges.
        unique: dict[str, FieldNode] = {}
        for node in found:
            seen = unique.setdefault(_key(node), node)
            if seen is not node and not (
                seen.name.value == node.name.value
                and seen.selection_set is None
                and node.selection_set is None
                and not seen.arguments
                and not node.arguments
            ):
                raise NotPlannable("merged fields")
        return list(unique.values())

    @staticmethod
    def _applies(condition: str, parent: GraphQLObjectType, union: str | None) -> bool:
        if condition == parent.name or condition == union or any(i.name == condition for i in parent.interfaces):
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
        return field_arguments(self.schema, definition, get_argument_values(definition, node, self.variables))

    def view(
        self,
        entity_name: str,
        object_type: GraphQLObjectType,
        selection_set: SelectionSetNode | None,
        union: str | None = None,
    ) -> View:
        ent = ENTITIES[entity_name]
        view = View(entity_name)
        for node in self.fields(object_type, selection_set, union):
            name, key = node.name.value, _key(node)
            view.layout.append(key)
            related = FIELDS[entity_name].get(name)
            if name == "__typename":
                view.constants.append(Constant(key, object_type.name))
            elif name == "nodeId":
                view.node_keys.append(NodeKey(key, ent.resource))
            elif name in SCALARS[entity_name]:
                f = ent.field(SCALARS[entity_name][name])
                assert f is not None
                if f.kind is Kind.TIMEFRAME:
                    view.composites.append(self._timeframe(object_type, node, f.name))
                elif node.selection_set is not None:
                    raise NotPlannable("selection on a scalar")
                else:
                    view.columns.append(Column(key, f.name, spelling=_spelling(ent, f.name)))
            elif isinstance(related, Related):
                self._related(view, object_type, node, related)
            elif isinstance(related, Either):
                view.choices.append(self._either(object_type, node, related))
            else:
                raise NotPlannable(f"field {name}")
        return view

    def _either(self, object_type: GraphQLObjectType, node: FieldNode, either: Either) -> Choice:
        """A union of to-one relations: the row's value of `either.by` picks the one read (as the resolver)."""
        union = get_named_type(object_type.fields[node.name.value].type)
        members = {member.name: member for member in union.types}
        choices = either.choices
        if len(choices) != 2:
            raise NotPlannable("a union of other than two relations")
        embeds = [
            Embed(
                _key(node),
                link.name,
                self.view(
                    link.target, members[type_name(ENTITIES[link.target])], node.selection_set, union=union.name
                ).plan(),
            )
            for _, link in choices
        ]
        return Choice(_key(node), Condition(either.by, "eq", choices[0][0]), embeds[0], embeds[1])

    def _timeframe(self, object_type: GraphQLObjectType, node: FieldNode, field_name: str) -> Composite:
        inner = get_named_type(object_type.fields[node.name.value].type)
        parts: list[Column | Constant] = []
        for sub in self.fields(inner, node.selection_set):
            name = sub.name.value
            if name == "__typename":
                parts.append(Constant(_key(sub), inner.name))
            elif name in ("start", "end"):
                parts.append(Column(_key(sub), field_name, path=(name,)))
            else:
                raise NotPlannable(f"timeframe field {name}")
        return Composite(_key(node), field_name, tuple(parts))

    def _related(self, view: View, object_type: GraphQLObjectType, node: FieldNode, related: Related) -> None:
        """A relation field, read as its declaration says (the resolvers read the same declaration)."""
        target = related.target
        field_type = get_named_type(object_type.fields[node.name.value].type)
        key = _key(node)
        if related.shape is Shape.CONNECTION:
            arguments = self.arguments(object_type, node)
            condition = all_of(to_filter(target, arguments.get("where")), related.extra)
            view.pages.append(
                self.connection(key, related.relation, target, field_type, node.selection_set, condition, arguments)
            )
            return
        child = self.view(target, field_type, node.selection_set)
        if related.shape is Shape.PICK:
            plan = child.plan(where=related.extra, order=related.pick, limit=1)
            view.embeds.append(Embed(key, related.relation, plan, single=True))
            return
        view.embeds.append(Embed(key, related.relation, child.plan(where=related.extra)))

    def connection(
        self,
        key: str,
        relation: str | None,
        entity_name: str,
        connection_type: GraphQLObjectType,
        selection_set: SelectionSetNode | None,
        condition: Filter | None,
        arguments: dict[str, Any],
    ) -> Paged:
        """A connection: a page object with nodes, edges, pageInfo and totalCount under the client's keys."""
        page = plan_page(
            order_keys(entity_name, arguments.get("order_by")),
            condition,
            self.limits,
            first=arguments.get("first"),
            after_cursor=arguments.get("after"),
            last=arguments.get("last"),
            before_cursor=arguments.get("before"),
        )
        fields: list[PageField] = []
        positions = False
        for node in self.fields(connection_type, selection_set):
            name, field_key = node.name.value, _key(node)
            if name == "__typename":
                fields.append(PageField(field_key, "constant", constant=connection_type.name))
                continue
            field_type = get_named_type(connection_type.fields[name].type)
            if name == "totalCount":
                fields.append(PageField(field_key, "total"))
            elif name == "nodes":
                fields.append(
                    PageField(field_key, "rows", view=self.view(entity_name, field_type, node.selection_set).plan())
                )
            elif name == "edges":
                entry: list[PageField] = []
                for sub in self.fields(field_type, node.selection_set):
                    sub_name = sub.name.value
                    if sub_name == "__typename":
                        entry.append(PageField(_key(sub), "constant", constant=field_type.name))
                    elif sub_name == "cursor":
                        entry.append(PageField(_key(sub), "position"))
                        positions = True
                    elif sub_name == "node":
                        node_type = get_named_type(field_type.fields["node"].type)
                        entry.append(
                            PageField(
                                _key(sub), "row", view=self.view(entity_name, node_type, sub.selection_set).plan()
                            )
                        )
                    else:
                        raise NotPlannable(f"edge field {sub_name}")
                fields.append(PageField(field_key, "entries", fields=tuple(entry)))
            elif name in ("aggregates", "groupedAggregates"):
                fields.append(PageField(field_key, "summary", summary=self.summary(entity_name, connection_type, node)))
            elif name == "latestUpdates" and entity_name == "goal_story":
                latest: list[PageField] = []
                for sub in self.fields(field_type, node.selection_set):
                    sub_name = sub.name.value
                    if sub_name == "__typename":
                        latest.append(PageField(_key(sub), "constant", constant=field_type.name))
                    elif sub_name in ("aggregates", "groupedAggregates"):
                        summary = self.summary("goal_story_update", field_type, sub, through=LATEST_UPDATES)
                        latest.append(PageField(_key(sub), "summary", summary=summary))
                    else:
                        raise NotPlannable(f"latestUpdates field {sub_name}")
                fields.append(PageField(field_key, "object", fields=tuple(latest)))
            elif name == "pageInfo":
                info: list[PageField] = []
                for sub in self.fields(field_type, node.selection_set):
                    sub_name = sub.name.value
                    if sub_name == "__typename":
                        info.append(PageField(_key(sub), "constant", constant=field_type.name))
                    elif sub_name in PAGE_INFO:
                        info.append(PageField(_key(sub), PAGE_INFO[sub_name]))
                        positions = positions or sub_name.endswith("Cursor")
                    else:
                        raise NotPlannable(f"pageInfo field {sub_name}")
                fields.append(PageField(field_key, "object", fields=tuple(info)))
            else:
                raise NotPlannable(f"connection field {name}")
        position = (
            Position(tuple(k.label for k in page.keys), tuple((k.field, k.path) for k in page.keys))
            if positions
            else None
        )
        return Paged(
            key,
            relation,
            ReadPlan(entity_name, where=page.where, order=page.order, limit=page.limit),
            Window(page.size, page.backward, page.trim, page.after_given, page.before_given),
            tuple(fields),
            position,
            condition,
        )

    def summary(
        self, entity_name: str, parent: GraphQLObjectType, node: FieldNode, through: RelatedRows | None = None
    ) -> Summary:
        """`aggregates` or `groupedAggregates` (of rows of `entity_name`): the aggregates selected, as the
        resolvers read them (api/graphql/aggregates.py)."""
        name = node.name.value
        aggregates_type = get_named_type(parent.fields[name].type)
        group_by: tuple[GroupKey, ...] | None = None
        having = None
        if name == "groupedAggregates":
            arguments = self.arguments(parent, node)
            group_by, having = grouping(entity_name, arguments.get("group_by"), arguments.get("having"))
        ent = ENTITIES[entity_name]
        fields: list[Any] = []
        for sub in self.fields(aggregates_type, node.selection_set):
            sub_name, key = sub.name.value, _key(sub)
            if sub_name == "__typename":
                fields.append(Constant(key, aggregates_type.name))
            elif sub_name == "keys":
                fields.append(Keys(key))
            elif sub_name in SPEC_BY_KEY:
                spec = SPEC_BY_KEY[sub_name]
                spec_type = get_named_type(aggregates_type.fields[sub_name].type)
                inner: list[Any] = []
                for leaf in self.fields(spec_type, sub.selection_set):
                    if leaf.name.value == "__typename":
                        inner.append(Constant(_key(leaf), spec_type.name))
                        continue
                    f = ent.field(SCALARS[entity_name][leaf.name.value])
                    assert f is not None
                    inner.append(aggregate(spec, f, _key(leaf)))
                fields.append(Nest(key, tuple(inner)))
            else:
                raise NotPlannable(f"aggregates field {sub_name}")
        return Summary(tuple(fields), group_by, having, through)

    def node(self, key: str, query_type: GraphQLObjectType, node: FieldNode) -> Lookup | Constant:
        """`node(nodeId:)`: the row of the entity the id names, its selection read as that entity's type
        (fragments on other types left out), or null."""
        found = decode(self.arguments(query_type, node)["node_id"])
        if found is None:
            return Constant(key, None)
        entity_name, id = found
        object_type = self.graphql_schema.get_type(type_name(ENTITIES[entity_name]))
        assert isinstance(object_type, GraphQLObjectType)
        view = self.view(entity_name, object_type, node.selection_set, union=NODE)
        return Lookup(key, view.plan(Condition("id", "eq", id)))


PAGE_INFO = {
    "hasNextPage": "has_next",
    "hasPreviousPage": "has_previous",
    "startCursor": "first_position",
    "endCursor": "last_position",
}


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias is not None else node.name.value


# ---------------------------------------------------------------- running an operation


def compile_operation(
    schema: Any,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: VariableValues,
    limits: Limits,
) -> Bundle:
    """The read answering a query operation's `data`: one object, one key per root field."""
    if operation.operation is not OperationType.QUERY:
        raise NotPlannable("not a query")
    compiler = Compiler(schema, fragments, variables, limits)
    query_type = compiler.graphql_schema.query_type
    if query_type is None:
        raise NotPlannable("a schema without queries")
    items: list[Lookup | Paged | Constant] = []
    for node in compiler.fields(query_type, operation.selection_set):
        name, key = node.name.value, _key(node)
        if name == "__typename":
            items.append(Constant(key, query_type.name))
            continue
        if name == "node":
            items.append(compiler.node(key, query_type, node))
            continue
        root = ROOTS.get(name)
        if root is None:
            raise NotPlannable(f"root field {name}")
        entity_name = root.entity
        field_type = get_named_type(query_type.fields[name].type)
        arguments = compiler.arguments(query_type, node)
        if root.shape is Shape.ONE:
            view = compiler.view(entity_name, field_type, node.selection_set)
            id = arguments.get("id")
            items.append(Constant(key, None) if id is None else Lookup(key, view.plan(Condition("id", "eq", id))))
        else:
            condition = to_filter(entity_name, arguments.get("where"))
            items.append(
                compiler.connection(key, None, entity_name, field_type, node.selection_set, condition, arguments)
            )
    return Bundle(tuple(items))


# The Subscription field whose events compile (api/graphql/subscriptions.py).
EVENTS_FIELD = "coordinationEvents"
EVENT_ENTITY = "coordination_event"


@dataclass(frozen=True)
class EventsView:
    """A subscription's selection of each event, compiled: `read(cursors)` reads a batch of events with their
    nested selections in one statement; `key` is the response key of the one root field."""

    key: str
    view: View

    def read(self, cursors: list[int]) -> ReadPlan:
        return self.view.plan(where=Condition("cursor", "in", cursors), order=(OrderTerm("cursor"),))


def compile_events(
    schema: Any,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: VariableValues,
    limits: Limits,
) -> EventsView:
    """The read of a `coordinationEvents` subscription's selection, for any batch of its events."""
    if operation.operation is not OperationType.SUBSCRIPTION:
        raise NotPlannable("not a subscription")
    compiler = Compiler(schema, fragments, variables, limits)
    subscription_type = compiler.graphql_schema.subscription_type
    if subscription_type is None:
        raise NotPlannable("a schema without subscriptions")
    nodes = compiler.fields(subscription_type, operation.selection_set)
    if len(nodes) != 1 or nodes[0].name.value != EVENTS_FIELD:
        raise NotPlannable("root field of the subscription")
    event_type = get_named_type(subscription_type.fields[EVENTS_FIELD].type)
    return EventsView(_key(nodes[0]), compiler.view(EVENT_ENTITY, event_type, nodes[0].selection_set))


async def run_text(
    schema: Any,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: VariableValues,
    context: Context,
) -> str:
    """The JSON text of a query operation's `data`, built by PostgreSQL in one statement."""
    return await context.reader.json_object(compile_operation(schema, operation, fragments, variables, context.limits))


async def run(
    schema: Any,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: VariableValues,
    context: Context,
) -> dict[str, Any]:
    """The `data` of a query operation, read with one statement."""
    data: dict[str, Any] = json.loads(await run_text(schema, operation, fragments, variables, context))
    return data


# ---------------------------------------------------------------- mutations


class WriteKind(Enum):
    CREATE = "create"
    CREATE_MANY = "create_many"
    UPDATE = "update"
    DELETE = "delete"


# Each entity mutation by its GraphQL name (api/graphql/mutations.py): what it does, and to which entity.
WRITES: dict[str, tuple[WriteKind, Entity]] = {}
for _ent in WRITABLE:
    WRITES[camel(f"create_{_ent.name}")] = (WriteKind.CREATE, _ent)
    WRITES[camel(f"create_{_ent.resource}")] = (WriteKind.CREATE_MANY, _ent)
    WRITES[camel(f"update_{_ent.name}")] = (WriteKind.UPDATE, _ent)
    WRITES[camel(f"delete_{_ent.name}")] = (WriteKind.DELETE, _ent)

# What a payload key holds: the row(s) written, the event(s) recorded, or a value known before the write.
ROWS, EVENTS, VALUE = "rows", "events", "value"


@dataclass(frozen=True)
class PlannedWrite:
    """A mutation operation of one entity mutation (besides __typename): the write-service call it makes, and
    its payload's selection as the query planner renders it (`Shown`), laid out under the client's keys."""

    key: str
    kind: WriteKind
    entity: str
    # The documents of a create (one, or many), the changes of an update.
    documents: tuple[dict[str, Any], ...] = ()
    id: str | None = None
    shown: Shown | None = None
    # (key, ROWS | EVENTS | VALUE, the value's JSON text)
    layout: tuple[tuple[str, str, str], ...] = ()
    # Keys of the operation's `data` before and after the mutation's (__typename), as JSON text.
    before: str = ""
    after: str = ""

    async def run(self, writer: WriteService) -> WriteResult:
        """The write, with what its payload shows rendered inside it."""
        match self.kind:
            case WriteKind.CREATE | WriteKind.CREATE_MANY:
                return await writer.create(self.entity, self.documents, shown=self.shown)
            case WriteKind.UPDATE:
                assert self.id is not None
                return await writer.update_one(self.entity, self.id, self.documents[0], shown=self.shown)
            case WriteKind.DELETE:
                assert self.id is not None
                return await writer.delete_one(self.entity, self.id, shown=self.shown)

    def text(self, result: WriteResult) -> str:
        """The JSON text of the operation's `data`: the texts PostgreSQL rendered, put in the payload's layout."""
        many = self.kind is WriteKind.CREATE_MANY
        parts: list[str] = []
        for key, what, value in self.layout:
            if what == ROWS:
                rows = [result.shown_rows[r["id"]] for r in result.rows]
                value = "[" + ",".join(rows) + "]" if many else rows[0]
            elif what == EVENTS:
                events = [result.shown_events[e["id"]] for e in result.events]
                value = "[" + ",".join(events) + "]" if many else (events[-1] if events else "null")
            parts.append(_json(key) + ":" + value)
        return "{" + self.before + _json(self.key) + ":{" + ",".join(parts) + "}" + self.after + "}"


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def compile_mutation(
    schema: Any,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: VariableValues,
    limits: Limits,
) -> PlannedWrite:
    """The write and payload of a mutation operation that makes one entity mutation. An operation of several
    mutations is left to the resolvers: each commits on its own, so a failure in the second could not send the
    operation back to them without running the first twice."""
    compiler = Compiler(schema, fragments, variables, limits)
    mutation_type = compiler.graphql_schema.mutation_type
    if mutation_type is None:
        raise NotPlannable("a schema without mutations")
    selected = compiler.fields(mutation_type, operation.selection_set)
    writes = [node for node in selected if node.name.value != "__typename"]
    if len(writes) != 1:
        raise NotPlannable("an operation of other than one mutation")
    node = writes[0]
    found = WRITES.get(node.name.value)
    if found is None:
        raise NotPlannable(f"mutation {node.name.value}")
    kind, ent = found
    position = selected.index(node)
    typename = [_json(_key(n)) + ":" + _json(mutation_type.name) for n in selected if n is not node]
    before, after = typename[:position], typename[position:]
    arguments = compiler.arguments(mutation_type, node)
    payload = get_named_type(mutation_type.fields[node.name.value].type)
    row_key = camel(ent.resource if kind is WriteKind.CREATE_MANY else ent.name)
    event_key = "coordinationEvents" if kind is WriteKind.CREATE_MANY else "coordinationEvent"
    layout: list[tuple[str, str, str]] = []
    rows: ReadPlan | None = None
    events: ReadPlan | None = None
    for sub in compiler.fields(payload, node.selection_set):
        name, key = sub.name.value, _key(sub)
        sub_type = get_named_type(payload.fields[name].type) if name in payload.fields else None
        if name == "__typename":
            layout.append((key, VALUE, _json(payload.name)))
        elif name == row_key and rows is None and isinstance(sub_type, GraphQLObjectType):
            rows = compiler.view(ent.name, sub_type, sub.selection_set).plan()
            layout.append((key, ROWS, ""))
        elif (
            name == event_key
            and ent.event_type is not None
            and kind is not WriteKind.DELETE
            and events is None
            and isinstance(sub_type, GraphQLObjectType)
        ):
            events = compiler.view("coordination_event", sub_type, sub.selection_set).plan()
            layout.append((key, EVENTS, ""))
        elif name == "deletedId" and kind is WriteKind.DELETE:
            layout.append((key, VALUE, _json(str(arguments["id"]))))
        else:
            raise NotPlannable(f"payload field {name}")
    documents: tuple[dict[str, Any], ...] = ()
    if kind is WriteKind.CREATE_MANY:
        documents = tuple(document(ent.name, i) for i in arguments["input"])
    elif kind is not WriteKind.DELETE:
        documents = (document(ent.name, arguments["input"]),)
    return PlannedWrite(
        key=_key(node),
        kind=kind,
        entity=ent.name,
        documents=documents,
        id=None if kind in (WriteKind.CREATE, WriteKind.CREATE_MANY) else str(arguments["id"]),
        shown=Shown(rows or ReadPlan(ent.name, columns=()), events),
        layout=tuple(layout),
        before="".join(t + "," for t in before),
        after="".join("," + t for t in after),
    )


# ---------------------------------------------------------------- plans of recent requests


@dataclass(frozen=True)
class Prepared:
    """A request already answered through the compiled path: its read, and the operation's name."""

    bundle: Bundle
    operation_name: str | None


@dataclass(frozen=True)
class PreparedWrite:
    """A mutation request already answered through the compiled path: its write and payload, and the
    operation's name. Answered again, it writes again (a new row for a create), as a repeated request would."""

    planned: PlannedWrite
    operation_name: str | None


# A request whose operation cannot be compiled: the resolvers answer it.
UNPLANNABLE = object()


REQUESTS_KEPT = 256


class RecentPlans:
    """Compiled reads of recent requests, by limits, document, operation name and variables; each schema
    has its own (`Schema.recent`), since it is the schema that parsed and validated them.

    A request is recorded only once Strawberry has parsed, validated (with its limits) and answered it
    through the compiled path, so a request found here may skip all of that."""

    def __init__(self, size: int = REQUESTS_KEPT) -> None:
        self.cache: BoundedCache[tuple[Any, ...], Any] = BoundedCache("graphql_requests", size)

    @staticmethod
    def key(
        limits: Limits, query: str, operation_name: str | None, variables: dict[str, Any] | None
    ) -> tuple[Any, ...] | None:
        try:
            encoded = json.dumps(variables or {}, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            return None
        return (limits, query, operation_name, encoded)

    def get(self, key: tuple[Any, ...] | None) -> Any:
        return None if key is None else self.cache.get(key)

    def put(self, key: tuple[Any, ...] | None, entry: Any) -> None:
        if key is not None:
            self.cache.put(key, entry)


def recent_plans(schema: object) -> RecentPlans:
    """The requests `schema` recorded: each schema of api/graphql/schema.py has its own."""
    recent = getattr(schema, "recent", None)
    if not isinstance(recent, RecentPlans):
        raise TypeError("compiled execution runs on the schemas of api.graphql.schema.make_schema")
    return recent


class CompiledExecution(SchemaExtension):
    """Answers plannable queries with compiled plans before graphql-core's executor runs (see the module)."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution_context = self.execution_context
        context = execution_context.context
        document = execution_context.graphql_document
        if isinstance(context, Context) and document is not None and not context.resolvers_only:
            schema = execution_context.schema
            recent = recent_plans(schema)
            key = recent.key(
                context.limits,
                execution_context.query or "",
                provided_operation_name(execution_context),
                execution_context.variables,
            )
            if recent.get(key) is UNPLANNABLE:
                fall_back(NotPlannable("recorded as not plannable"), execution_context.operation_name)
            else:
                await self._compiled(context, recent, key)
        yield

    async def _compiled(self, context: Context, recent: RecentPlans, key: tuple[Any, ...] | None) -> None:
        """The operation answered through the compiled path (`execution_context.result` set), or left to the
        resolvers (a fallback, logged and counted)."""
        execution_context = self.execution_context
        schema = execution_context.schema
        planned: PlannedWrite | None = None
        try:
            # Without a name the document holds one operation (api/graphql/cost.py refuses others).
            operation, fragments = _operation(execution_context.graphql_document, execution_context.operation_name)
            if operation.operation is OperationType.SUBSCRIPTION:
                return  # the resolvers' own: no fallback
            variables = get_variable_values(
                graphql_schema(schema), operation.variable_definitions or (), execution_context.variables or {}
            )
            if isinstance(variables, list):
                # graphql-core says which, to the resolvers' caller: not recorded
                raise InvalidInput("; ".join(error.message for error in variables))
            name = operation.name.value if operation.name else None
            if operation.operation is OperationType.MUTATION:
                planned = compile_mutation(schema, operation, fragments, variables, context.limits)
                # The write service writes all or nothing: a write it refused can go to the resolvers.
                written = await planned.run(context.writer)
            else:
                # The views (api/graphql/compiled_views.py builds on this module, hence imported here).
                from api.graphql.compiled_views import PreparedViews, compile_views

                views = compile_views(schema, operation, fragments, variables, context.limits)
                if views is not None:
                    execution_context.result = ExecutionResult(data=await views.data(context.reader), errors=None)
                    recent.put(key, PreparedViews(views, name))
                    return
                bundle = compile_operation(schema, operation, fragments, variables, context.limits)
                data = json.loads(await context.reader.json_object(bundle))
        except NotPlannable as error:
            recent.put(key, UNPLANNABLE)
            fall_back(error, execution_context.operation_name)
            return
        except Exception as error:
            # Bad input, the database, or a fault here: the resolvers answer, with their errors and paths.
            fall_back(error, execution_context.operation_name)
            return
        if planned is not None:
            # The write has committed: whatever happens now, the resolvers must not run it again.
            execution_context.result = ExecutionResult(data=json.loads(planned.text(written)), errors=None)
            recent.put(key, PreparedWrite(planned, name))
            return
        execution_context.result = ExecutionResult(data=data, errors=None)
        recent.put(key, Prepared(bundle, name))


def fallback_reason(error: Exception) -> str:
    """Why the compiled path left a query to the resolvers: one of `metrics.GRAPHQL_FALLBACK_REASONS`."""
    match error:
        case NotPlannable():
            return "unsupported"
        case InvalidInput():
            return "invalid_input"
        case Unavailable() | StatementTimeout():
            return "unavailable"
        case DomainError():
            return "refused"
    return "unexpected"


def fall_back(error: Exception, operation_name: str | None) -> None:
    """Log and count an operation the resolvers answer because the compiled path did not."""
    reason = fallback_reason(error)
    label = operation_name or "(anonymous)"
    if reason == "unexpected":
        log.warning("operation %s: the compiled path failed, the resolvers answer", label, exc_info=error)
    else:
        log.debug("operation %s falls back to the resolvers (%s): %s", label, reason, error)
    metrics.graphql_fallback(reason)


def _operation(
    document: Any, operation_name: str | None
) -> tuple[OperationDefinitionNode, dict[str, FragmentDefinitionNode]]:
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
