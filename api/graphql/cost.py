"""What a document asks for, measured before anything runs it: its operation, depth, aliases,
filters and cost.

The token limit counts the document as written; a document whose fragments
spread each other twice over is a few hundred bytes and expands to billions
of fields, and whatever walks it field by field (Strawberry's depth and alias
rules, compiled execution, the executor) takes as long. So before validation,
`Protection` measures the expanded document, each fragment once per page size
it is spread under, in time linear in the size of the document however much it
expands, and refuses it when:

- it holds several operations and the request names none (the spec's
  GetOperation: which one to run is not the server's guess to make);
- an operation is nested deeper than the depth limit, or the document holds
  more aliases than the alias limit (as Strawberry's `QueryDepthLimiter` and
  `MaxAliasesLimiter` had them, same words, without their walk of every
  expansion);
- a `where` argument, as written or as passed in a variable, holds more values
  (objects, lists and scalars) than the filter limit: a filter of twenty
  thousand branches is refused before GraphQL coerces it, Strawberry converts
  it and SQL is built from it;
- its cost passes the cost limit: every field once per time it is selected
  after fragment spreading, times the size of the lists it sits in (a
  connection's page: `first`, else `last`, else the default page size; any
  other list counts once, bounded by the data rather than by the request);
  an aggregates field (`aggregates`, `groupedAggregates`) reads every row its
  connection's where matches, so what it selects counts as a page of the
  maximum page size.

A refusal is a request error with `extensions.code` BAD_USER_INPUT, before
validation and execution. The measures are kept with the document (by its
text; costs by operation and the values of the variables that size pages), so
a client repeating a document does not pay for them again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
)
from strawberry.extensions import ValidationCache

from api.cache import BoundedCache
from api.graphql.connections import Limits
from api.graphql.errors import BAD_USER_INPUT
from api.graphql.strawberry_adapter import graphql_schema, provided_operation_name

PAGE_ARGUMENTS = ("first", "last")
FILTER_ARGUMENT = "where"


@dataclass(frozen=True)
class Budget:
    """The limits a document is measured against."""

    max_cost: int
    max_depth: int
    max_aliases: int
    max_filter_nodes: int
    limits: Limits


class Measured:
    """What is known of one document, kept with it: its operations' depths and aliases, the variables
    its costs depend on, and its costs."""

    def __init__(self, document: DocumentNode) -> None:
        self.operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.page_variables = sorted(_page_variables(document))
        # Sizes of each operation, page sizes aside (known once measured).
        self.shapes: list[Sizes] | None = None
        # (operation name, values of the page variables) -> cost
        self.costs: dict[tuple[Any, ...], int] = {}
        # Every `where` argument's value as written (a literal, or a variable to look up).
        self.filters = [
            argument.value
            for node in _nodes(document)
            if isinstance(node, FieldNode)
            for argument in node.arguments or ()
            if argument.name.value == FILTER_ARGUMENT
        ]


class Measures:
    """The measures of recent documents, by their text: one per schema (api/cache.py)."""

    def __init__(self, maxsize: int) -> None:
        self.cache: BoundedCache[str, Measured] = BoundedCache("graphql_measures", maxsize)

    def of(self, query: str, document: DocumentNode) -> Measured:
        measured = self.cache.get(query)
        return self.cache.put(query, Measured(document)) if measured is None else measured


def refusal(
    schema: GraphQLSchema,
    measured: Measured,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    budget: Budget,
) -> GraphQLError | None:
    """Why the document may not run (None: it may), in terms a client can act on."""
    variables = variables if isinstance(variables, Mapping) else {}
    operations = measured.operations
    if operation_name is None and len(operations) > 1:
        return _refused("Must provide operation name if query contains multiple operations.")
    if measured.shapes is None:
        walk = Costing(schema, measured.fragments, {}, budget.limits)
        measured.shapes = [walk.operation(operation) for operation in operations]
    # As Strawberry's depth and alias limits had it (same words): every operation of the document counts.
    for operation, shape in zip(operations, measured.shapes, strict=True):
        if shape.depth > budget.max_depth:
            name = operation.name.value if operation.name else "anonymous"
            return _refused(f"'{name}' exceeds maximum operation depth of {budget.max_depth}")
    aliases = sum(shape.aliases for shape in measured.shapes)
    if aliases > budget.max_aliases:
        return _refused(f"{aliases} aliases found. Allowed: {budget.max_aliases}")
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    if len(operations) != 1:
        return None  # no such operation: Strawberry and graphql-core say so
    operation = operations[0]
    for value in measured.filters:
        if filter_nodes(value, variables, budget.max_filter_nodes) > budget.max_filter_nodes:
            return _refused(
                f"a where argument holds more than {budget.max_filter_nodes:,} values "
                "(COCO_GRAPHQL_MAX_FILTER_NODES); split the request, or filter with fewer conditions"
            )
    key = (operation_name, *(_hashable(variables.get(name)) for name in measured.page_variables))
    cost = measured.costs.get(key)
    if cost is None:
        walk = Costing(schema, measured.fragments, variables, budget.limits)
        cost = measured.costs[key] = walk.operation(operation).cost
    if cost > budget.max_cost:
        return _refused(
            f"the query costs {cost:,} (every field after fragment spreading, times the page sizes of the lists "
            f"it is in), more than the limit of {budget.max_cost:,} (COCO_GRAPHQL_MAX_COST); ask for smaller "
            "pages (first/last), fewer nested lists, or fewer fields"
        )
    return None


def _refused(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": BAD_USER_INPUT})


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (int, str, float, bool, type(None))) else repr(value)


# ---------------------------------------------------------------- cost


class Sizes(NamedTuple):
    """What a selection amounts to once its fragments are spread."""

    cost: int
    # The nesting of its deepest selection (a field's selections are one level below it).
    depth: int
    aliases: int


NOTHING = Sizes(0, 0, 0)


class Costing:
    """Measures selections, each fragment once per page size it is spread under: linear in the size
    of the document, however much it expands."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        limits: Limits,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.limits = limits
        self.memo: dict[tuple[str, int | None], Sizes] = {}
        self.measuring: set[str] = set()

    def operation(self, operation: OperationDefinitionNode) -> Sizes:
        root = {
            OperationType.QUERY: self.schema.query_type,
            OperationType.MUTATION: self.schema.mutation_type,
            OperationType.SUBSCRIPTION: self.schema.subscription_type,
        }[operation.operation]
        return self.selections(operation.selection_set, root, None)

    def selections(self, selection_set: SelectionSetNode | None, parent: Any, page: int | None) -> Sizes:
        """The sizes of a selection on `parent` (a named type, or None where unknown), inside a
        connection of `page` rows (None: not directly inside a connection)."""
        if selection_set is None:
            return NOTHING
        cost = depth = aliases = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                sizes = self.field(selection, parent, page)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition is not None else parent
                sizes = self.selections(selection.selection_set, inner, page)
            elif isinstance(selection, FragmentSpreadNode):
                sizes = self.fragment(selection.name.value, page)
            else:
                continue
            cost += sizes.cost
            depth = max(depth, sizes.depth)
            aliases += sizes.aliases
        return Sizes(cost, depth, aliases)

    def fragment(self, name: str, page: int | None) -> Sizes:
        key = (name, page)
        known = self.memo.get(key)
        if known is not None:
            return known
        definition = self.fragments.get(name)
        if definition is None or name in self.measuring:
            return NOTHING  # unknown or spread within itself: validation refuses the document
        self.measuring.add(name)
        try:
            sizes = self.selections(
                definition.selection_set, self.schema.get_type(definition.type_condition.name.value), page
            )
        finally:
            self.measuring.discard(name)
        self.memo[key] = sizes
        return sizes

    def field(self, node: FieldNode, parent: Any, page: int | None) -> Sizes:
        alias = 1 if node.alias is not None else 0
        if node.selection_set is None:
            return Sizes(1, 0, alias)
        definition = getattr(parent, "fields", {}).get(node.name.value) if parent is not None else None
        named = get_named_type(definition.type) if definition is not None else None
        paged = definition is not None and any(name in definition.args for name in PAGE_ARGUMENTS)
        inner = self.selections(node.selection_set, named, self.page_size(node) if paged else None)
        depth = 0 if node.name.value.startswith("__") else 1 + inner.depth
        if named is not None and _is_aggregates(named):
            # `aggregates` and each group of `groupedAggregates` read every row matching the connection's
            # where, whatever its page: each counts as a page of the largest size of what it selects.
            return Sizes(1 + self.limits.max_page_size * inner.cost, depth, alias + inner.aliases)
        # The rows of a connection (its nodes and edges) are as many as its page holds; any other list
        # is counted once, as what it holds is bounded by the data rather than by the request. A page of
        # no rows still counts its selection once: what a document expands to is work whatever it reads.
        listed = definition is not None and page is not None and is_list_type(get_nullable_type(definition.type))
        times = max(page, 1) if listed and page is not None else 1
        # Introspection is as deep as the schema, not as the request: its depth does not count.
        return Sizes(1 + times * inner.cost, depth, alias + inner.aliases)

    def page_size(self, node: FieldNode) -> int:
        """The rows a connection reads: `first`, else `last`, else the default page size, at most the maximum."""
        given = {argument.name.value: argument.value for argument in node.arguments or ()}
        for name in PAGE_ARGUMENTS:
            size = self._int(given[name]) if name in given else None
            if size is not None:
                return max(0, min(size, self.limits.max_page_size))
        return self.limits.default_page_size

    def _int(self, value: ValueNode) -> int | None:
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, VariableNode):
            given = self.variables.get(value.name.value)
            return given if isinstance(given, int) and not isinstance(given, bool) else None
        return None


def _is_aggregates(named: Any) -> bool:
    """An aggregates type of api/graphql/aggregates.py (what `aggregates` and `groupedAggregates` return)."""
    return getattr(named, "name", "").endswith("Aggregates") and "keys" in getattr(named, "fields", {})


def _page_variables(document: DocumentNode) -> set[str]:
    return {
        argument.value.name.value
        for node in _nodes(document)
        if isinstance(node, FieldNode)
        for argument in node.arguments or ()
        if argument.name.value in PAGE_ARGUMENTS and isinstance(argument.value, VariableNode)
    }


def _nodes(document: DocumentNode) -> Iterator[Any]:
    """Every selection of the document as written (each fragment once), without recursion."""
    pending: list[Any] = [
        d.selection_set
        for d in document.definitions
        if isinstance(d, (OperationDefinitionNode, FragmentDefinitionNode))
    ]
    while pending:
        selection_set = pending.pop()
        if selection_set is None:
            continue
        for selection in selection_set.selections:
            yield selection
            pending.append(getattr(selection, "selection_set", None))


# ---------------------------------------------------------------- filters


def filter_nodes(value: ValueNode, variables: Mapping[str, Any], limit: int) -> int:
    """The values in a filter (objects, lists and scalars; a variable counted as the value passed for it),
    counted without recursion, and no further than just past `limit`."""
    count = 1
    pending: list[Any] = [_passed(value, variables)]
    while pending:
        item = pending.pop()
        if isinstance(item, ObjectValueNode):
            inner: list[Any] = [_passed(f.value, variables) for f in item.fields]
        elif isinstance(item, ListValueNode):
            inner = [_passed(v, variables) for v in item.values]
        elif isinstance(item, Mapping):
            inner = list(item.values())
        elif isinstance(item, list):
            inner = item
        else:
            continue
        count += len(inner)
        if count > limit:
            break
        pending.extend(inner)
    return count


def _passed(value: Any, variables: Mapping[str, Any]) -> Any:
    """A literal as it is, a variable as the JSON value passed for it."""
    return variables.get(value.name.value) if isinstance(value, VariableNode) else value


# ---------------------------------------------------------------- the extension


class Protection(ValidationCache):
    """Measures the document before it is validated (see the module); a refused document is not validated."""

    def __init__(self, budget: Budget, measures: Measures, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.budget = budget
        self.measures = measures

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            # A document given without its text (none of our routes does that) is measured afresh.
            measured = self.measures.of(context.query, document) if context.query else Measured(document)
            refused = refusal(
                graphql_schema(context.schema),
                measured,
                provided_operation_name(context),
                context.variables,
                self.budget,
            )
            if refused is not None:
                context.pre_execution_errors = [refused]
                yield
                return
        yield from super().on_validate()
