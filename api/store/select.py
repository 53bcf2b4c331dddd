"""Render a `ReadPlan` to one SQL statement that returns JSON built by PostgreSQL.

Every level of a plan becomes a subquery over its table (filtered, ordered
and paged) and a JSON_OBJECT over that subquery's columns; related rows are
correlated subqueries aggregated with json_agg. One statement answers the
whole tree, whatever its depth or the number of rows, and the JSON text
passes to the client untouched. A `Paged` key renders a page object (the rows
numbered over at most size + 1 of them, then aggregated into rows, entries
with their positions, has-next/previous, total); a `Bundle` puts several reads
under the keys of one object. A level with aggregates answers its groups: a GROUP BY
over its filtered rows (by every other output key), ordered and paged as groups; a
spread lifts a related level's keys into the row (to-many: one array per key). The rows of an id-list
relation (a goal's teams) are rendered once per statement, each distinct row however many parents list it,
and taken per parent from there (`_listed_once`).

Identifiers come only from `api.entities`; every client value is a bound
parameter, cast by PostgreSQL to the column's type, so that a malformed
value fails exactly as it would in PostgREST (and is mapped to a 4xx).

A plan (or bundle) reads only the rows its `Scope` may see, wherever an entity's rows
are read: each read of a table here goes through `readable` (or `visible`, its
condition), so a statement built from these pieces inherits the restriction. The
entry points (`Statements`, `rows_statement`, `count_statement`, `explain_statement`,
`bundle_statement`) give a plan without a scope the caller's (`api.store.scoping`),
so no reader can leave it out, and put it in force while they build (`scoped`).
Without a scope the statements are what they were before scopes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, TypeAlias, TypeVar

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Double,
    Float,
    FromClause,
    Integer,
    Numeric,
    Select,
    Text,
    all_,
    and_,
    any_,
    bindparam,
    case,
    cast,
    distinct,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSON, JSONB, REGCONFIG, aggregate_order_by
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement, ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeEngine

from api.cache import BoundedCache
from api.entities import Entity, Field, Kind, Relation, RelationKind
from api.entities import entity as entity_named
from api.errors import InvalidInput, InvalidReason
from api.plan import (
    AGGREGATES,
    CASTS,
    COMPARISONS,
    FULL_TEXT,
    LIST_OPERATORS,
    PATTERNS,
    STATISTICS,
    TRUNCATIONS,
    Aggregate,
    AggregateCondition,
    And,
    Bundle,
    Column,
    Composite,
    Condition,
    Constant,
    Filter,
    GroupKey,
    Keys,
    Nest,
    Not,
    Or,
    OrderTerm,
    Paged,
    PageField,
    Position,
    ReadPlan,
    Related,
    Scope,
    Slot,
    Spelling,
    Spread,
    Summary,
    Unmet,
    Visible,
    parameterized,
    replaced,
    scoped_shape,
)
from api.store.scoping import current_scope
from api.store.tables import TABLES

# A SELECT of any columns (Select is generic in the types of its columns).
AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"

EMPTY_ARRAY = literal_column("'[]'::json", JSON)
JSON_NULL = literal_column("'null'::json", JSON)
ORDINAL = "__ordinal"

# The SQL type of each cast the plan names (`api.plan.CASTS`).
CAST_TYPES: dict[str, TypeEngine[Any]] = {
    "text": Text(),
    "varchar": Text(),
    "int": Integer(),
    "int4": Integer(),
    "integer": Integer(),
    "bigint": BigInteger(),
    "int8": BigInteger(),
    "numeric": Numeric(),
    "date": Date(),
    "timestamptz": DateTime(timezone=True),
    "timestamp": DateTime(timezone=False),
    "boolean": Boolean(),
    "bool": Boolean(),
    "json": JSON(),
    "jsonb": JSONB(),
    "float8": Double(),
    "float4": Float(precision=24),
    "real": Float(precision=24),
}


class JsonObject(ColumnElement[Any]):
    """PostgreSQL's JSON_OBJECT(k : v, ... [ABSENT ON NULL]); keys are our own names.

    Cacheable: the keys, the null rule and the values all take part in the cache
    key, so a plan shape compiles once and two shapes that differ only in their
    output keys never share a compiled statement."""

    inherit_cache = True
    type = JSON()
    # SQLAlchemy declares this per instance (no ClassVar); its traversal reads the class's list.
    _traverse_internals: list[tuple[str, InternalTraversal]] = [  # noqa: RUF012
        ("json_keys", InternalTraversal.dp_string_list),
        ("json_values", InternalTraversal.dp_clauseelement_list),
        ("absent_on_null", InternalTraversal.dp_boolean),
    ]

    def __init__(self, pairs: list[tuple[str, ColumnElement[Any]]], absent_on_null: bool) -> None:
        self.json_keys = tuple(key for key, _ in pairs)
        self.json_values = tuple(value for _, value in pairs)
        self.absent_on_null = absent_on_null

    @property
    def pairs(self) -> list[tuple[str, ColumnElement[Any]]]:
        return list(zip(self.json_keys, self.json_values, strict=True))

    @property
    def _from_objects(self) -> list[FromClause]:
        return [source for value in self.json_values for source in value._from_objects]


@compiles(JsonObject)
def _compile_json_object(element: JsonObject, compiler: SQLCompiler, **kw: Any) -> str:
    items = ", ".join(
        f"{_sql_string(key)} : {compiler.process(value, **kw)}"
        for key, value in zip(element.json_keys, element.json_values, strict=True)
    )
    suffix = " ABSENT ON NULL" if element.absent_on_null else ""
    return f"JSON_OBJECT({items}{suffix})"


def _sql_string(text: str) -> str:
    if "\x00" in text:
        raise InvalidInput("names cannot contain a NUL character", reason=InvalidReason.FORMAT)
    return "'" + text.replace("'", "''") + "'"


# ---------------------------------------------------------------- statements


def _array(plan: ReadPlan) -> AnySelect:
    """One row of two columns: the JSON array of every row the plan selects, as text, and their number."""
    with scoped(plan.scope):
        level = _level(plan, depth=0)
        return select(cast(_json_array(level), Text), func.count()).select_from(level.source)


@dataclass(frozen=True, eq=False)
class Prepared:
    """A statement built once for a plan's shape; each plan of that shape runs it with its own values.

    `parameters` names, for each bound parameter that holds a client value, the
    plan's slot it comes from and how the value is turned into the parameter
    (the same checks and conversions the statement was built with)."""

    statement: AnySelect
    parameters: tuple[tuple[str, int, Callable[[Any], Any]], ...]

    def arguments(self, values: list[Any]) -> dict[str, Any]:
        return {name: convert(values[index]) for name, index, convert in self.parameters}


STATEMENTS_KEPT = 256
# While a shape's statement is built: its client-value parameters, in the order they are bound.
_PARAMETERS: ContextVar[list[tuple[str, int, Callable[[Any], Any]]] | None] = ContextVar("parameters", default=None)
# While a statement is built: whether it renders timestamps for a session TimeZone other than UTC.
_ZONED: ContextVar[bool] = ContextVar("zoned", default=False)
# While a statement is built: what its reads may see (None: every row).
_SCOPE: ContextVar[Scope | None] = ContextVar("scope", default=None)
# While `shown_statement` builds: the rows its top level reads (a write's own, whatever the scope).
_WRITTEN: ContextVar[FromClause | None] = ContextVar("written", default=None)
# While a statement is built: for the rows a level reads (its source, by id), how to read, without any
# parent row, a superset of every row that source holds anywhere in the statement (`_spanning`); built on
# demand (None: not known, and the levels below render per parent row). None outside `scoped`.
_EVERYWHERE: ContextVar[dict[int, tuple[FromClause, Callable[[], FromClause | None]]] | None] = ContextVar(
    "everywhere", default=None
)
# While `_listed_once` renders its distinct rows: the lists below them read for all of those rows in one join
# (`_lists_joined`), each embed's array by (id of the rows' source, relation, id of the embed's plan).
_JOINED: ContextVar[dict[tuple[int, str, int], ColumnElement[Any]] | None] = ContextVar("joined", default=None)


class Statements:
    """The statements of recent plan shapes and bundles: building a nested statement costs
    milliseconds of Python, more than compiling it once it is in SQLAlchemy's cache.

    Each `Reader` (and the write service, for what it reads back) owns one (api/cache.py:
    nothing is shared between apps)."""

    def __init__(self, size: int = STATEMENTS_KEPT) -> None:
        self.shapes: BoundedCache[Any, Prepared] = BoundedCache("plan_statements", size)
        self.bundles: BoundedCache[str, AnySelect] = BoundedCache("bundle_statements", size)

    @property
    def caches(self) -> tuple[BoundedCache[Any, Any], ...]:
        return (self.shapes, self.bundles)

    def array(self, plan: ReadPlan, *, zoned: bool = False) -> tuple[Prepared, dict[str, Any]]:
        """The statement of the plan's shape (one row: the JSON array of the rows as text, and their
        number), and the plan's own values for its parameters. A shape is the plan with its values
        left out (`plan.parameterized`), so plans that differ only in their values share one statement.
        `zoned`: the statement is for a session TimeZone other than UTC (see `rendered_zoned`)."""
        return self.shape(*parameterized(plan), zoned=zoned)

    def shape(self, shape: ReadPlan, values: list[Any], *, zoned: bool = False) -> tuple[Prepared, dict[str, Any]]:
        """`array` of a plan given as its shape and the values of its slots (the caller's scope added to a shape
        without one: its values are slots too, so that every scope shares the statement)."""
        if shape.scope is None:
            shape, values = scoped_shape(shape, values, current_scope())
        # Values outside conditions (constants, choices, pages, composites) stay in the shape as they are;
        # equality would take 1, 1.0 and True for one another there, the repr does not.
        key: Any = (zoned, repr(shape) if _holds_values(shape) else shape)
        try:
            prepared = self.shapes.get(key)
        except TypeError:  # something outside the conditions that cannot be hashed: the repr tells shapes apart
            key = (zoned, repr(shape))
            prepared = self.shapes.get(key)
        if prepared is None:
            parameters: list[tuple[str, int, Callable[[Any], Any]]] = []
            token = _PARAMETERS.set(parameters)
            zoning = _ZONED.set(zoned)
            try:
                statement = _array(shape)
            finally:
                _ZONED.reset(zoning)
                _PARAMETERS.reset(token)
            prepared = self.shapes.put(key, Prepared(statement, tuple(parameters)))
        return prepared, prepared.arguments(values)

    def bundle(self, bundle: Bundle) -> AnySelect:
        """One row, one column: the JSON object of the bundle, as text."""
        # A front end asks again with the same bundle object (those of repeated requests are kept), whose key
        # is worked out once: the repr of a large bundle costs more than the rest of the lookup. The scope's
        # values are bound in a bundle's statement: each scope has its own.
        bundle = _with_scope(bundle)
        key: Any = bundle.key if bundle.scope is None else (bundle.key, bundle.scope)
        statement = self.bundles.get(key)
        return self.bundles.put(key, bundle_statement(bundle)) if statement is None else statement


def _holds_values(plan: ReadPlan) -> bool:
    return (
        bool(plan.constants or plan.choices or plan.pages or plan.composites)
        or any(_holds_values(e.plan) for e in plan.embeds)
        or any(_holds_values(s.plan) for s in plan.spreads)
    )


def bundle_statement(bundle: Bundle) -> AnySelect:
    """One row, one column: the JSON object of the bundle, as text (values bound in it)."""
    bundle = _with_scope(bundle)
    with scoped(bundle.scope):
        return _bundle_statement(bundle)


def _bundle_statement(bundle: Bundle) -> AnySelect:
    pairs: list[tuple[str, ColumnElement[Any]]] = []
    for item in bundle.items:
        if isinstance(item, Constant):
            pairs.append((item.key, _constant(item.value)))
        elif isinstance(item, Paged):
            pairs.append((item.key, _paged_value(item, 0)))
        else:
            level = _level(item.plan, depth=1)
            pairs.append(
                (
                    item.key,
                    select(level.row).select_from(level.source).order_by(*level.order).limit(1).scalar_subquery(),
                )
            )
    return select(cast(JsonObject(pairs, absent_on_null=False), Text))


def rows_statement(plan: ReadPlan, *, zoned: bool = False) -> AnySelect:
    """One row per result row, each a JSON object as text, in the plan's order (for streaming)."""
    plan = _with_scope(plan)
    zoning = _ZONED.set(zoned)
    try:
        with scoped(plan.scope):
            level = _level(plan, depth=0)
            return select(cast(level.row, Text)).select_from(level.source).order_by(*level.order)
    finally:
        _ZONED.reset(zoning)


def shown_statement(plan: ReadPlan, source: FromClause | None = None) -> AnySelect:
    """Each row of the plan's top level as a write shows it: its id and its JSON text as the plan shapes it.
    The top level reads `source` when given (rows of the entity's columns that a write's statement just
    produced, which its own reads of the table cannot see yet), else the entity's table; either way all of
    them, for they are the write's own rows (its `where` says which), while every level below sees only
    what the plan's scope may see, as any read."""
    plan = _with_scope(plan)
    written = _WRITTEN.set(source if source is not None else TABLES[plan.entity])
    try:
        with scoped(plan.scope):
            if source is not None:
                # Each level renders per parent row: a CTE of the levels below, hoisted into the write's
                # statement, could come before the write's own CTEs that it reads.
                _EVERYWHERE.set(None)
            level = _level(plan, depth=0)
    finally:
        _WRITTEN.reset(written)
    return select(level.source.c.id.label("id"), cast(level.row, Text).label("json")).select_from(level.source)


def count_statement(plan: ReadPlan) -> AnySelect:
    """The number of rows matching the plan's filter (of groups, for a plan with aggregates), ignoring its page."""
    plan = _with_scope(plan)
    ent = entity_named(plan.entity)
    if _grouped(plan, ent):
        with scoped(plan.scope):
            return select(func.count()).select_from(_level(replaced(plan, limit=None, offset=None), depth=0).source)
    table = TABLES[ent.name]
    with scoped(plan.scope):
        statement = readable(select(func.count()).select_from(table), ent, table)
        clause = _where(plan, ent, table, depth=0)
    return statement.where(clause) if clause is not None else statement


class Explain(Executable, ClauseElement):
    """EXPLAIN (FORMAT JSON) of a statement, its bound values kept as parameters."""

    inherit_cache = False

    def __init__(self, statement: AnySelect) -> None:
        self.statement = statement


@compiles(Explain)
def _compile_explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


def explain_statement(plan: ReadPlan) -> Explain:
    """The planner's view of the rows matching the plan's filter (its estimate of their number, at the top)."""
    plan = _with_scope(plan)
    ent = entity_named(plan.entity)
    table = TABLES[ent.name]
    with scoped(plan.scope):
        statement = readable(select(table.c.id), ent, table)
        clause = _where(plan, ent, table, depth=0)
    return Explain(statement.where(clause) if clause is not None else statement)


def filter_clause(
    entity_name: str, where: Filter | None, source: FromClause | None = None
) -> ColumnElement[Any] | None:
    """The SQL condition for `where` over the entity's table (for the write service)."""
    ent = entity_named(entity_name)
    return _filter(ent, source if source is not None else TABLES[ent.name], where) if where is not None else None


def order_clauses(
    entity_name: str, terms: tuple[OrderTerm, ...], source: FromClause | None = None
) -> list[ColumnElement[Any]]:
    """The ORDER BY of `terms` over the entity's table or `source` (for the write service)."""
    ent = entity_named(entity_name)
    return _order(ent, source if source is not None else TABLES[ent.name], terms)


# ---------------------------------------------------------------- what a scope sees


PlanOrBundle = TypeVar("PlanOrBundle", ReadPlan, Bundle)


def _with_scope(item: PlanOrBundle) -> PlanOrBundle:
    """The plan or bundle with the caller's scope when it names none (itself when the caller reads all)."""
    if item.scope is not None:
        return item
    scope = current_scope()
    return item if scope is None else replaced(item, scope=scope)


@contextmanager
def scoped(scope: Scope | None) -> Iterator[None]:
    """While building a statement: its reads see only what `scope` may see (every row when None, or when
    its teams are None)."""
    token = _SCOPE.set(None if scope is None or scope.teams is None else scope)
    everywhere = _EVERYWHERE.set({})
    try:
        yield
    finally:
        _EVERYWHERE.reset(everywhere)
        _SCOPE.reset(token)


def visible(ent: Entity, source: FromClause) -> ColumnElement[Any] | None:
    """The condition that keeps the rows of `source` (the entity's table, or an alias of it) the statement
    being built may see; None when it may see every row."""
    scope = _SCOPE.get()
    return None if scope is None else _visible(ent, source, scope)


def readable(statement: AnySelect, ent: Entity, source: FromClause) -> AnySelect:
    """`statement`, which reads the entity's rows from `source`, narrowed to those the statement being built
    may see: the one way a table is read here."""
    clause = visible(ent, source)
    return statement if clause is None else statement.where(clause)


def _visible(ent: Entity, source: FromClause, scope: Scope) -> ColumnElement[Any]:
    """The rows of `source` that `scope` may see (its rules: `api.plan.Scope`). What decides is read by
    subqueries that do not depend on the row (every table in them aliased, so none correlates to `source`):
    PostgreSQL reads each once per statement and probes it per row (a hashed subplan or a semi-join),
    where a correlated EXISTS would look up every row it passes."""

    def teams() -> ColumnElement[Any]:
        return cast(_value(scope.teams, ARRAY(Text), _team_ids), ARRAY(Text))

    def stories() -> AnySelect:
        story = TABLES["goal_story"].alias()
        return select(story.c.id).where(story.c.team_ids.overlap(teams()))

    match ent.name:
        case "team":
            return source.c.id == any_(teams())
        case "team_checkin":
            return source.c.team_id == any_(teams())
        case "goal_story":
            overlaps: ColumnElement[Any] = source.c.team_ids.overlap(teams())
            return overlaps
        case "goal_story_update":
            return source.c.goal_story_id.in_(stories())
        case "coordination_event":
            checkin, update = TABLES["team_checkin"].alias(), TABLES["goal_story_update"].alias()
            checkins = select(checkin.c.id).where(checkin.c.team_id == any_(teams()))
            updates = select(update.c.id).where(update.c.goal_story_id.in_(stories()))
            return or_(
                and_(source.c.event_type == "team_checkin", source.c.reference_id.in_(checkins)),
                and_(source.c.event_type == "goal_story_update", source.c.reference_id.in_(updates)),
            )
        case "actor":
            team = TABLES["team"].alias()
            members = source.c.id.in_(select(func.unnest(team.c.member_ids)).where(team.c.id == any_(teams())))
            actor = scope.actor.value if isinstance(scope.actor, Slot) else scope.actor
            if actor is None:
                return members
            return or_(source.c.id == _value(scope.actor, Text(), _no_nul), members)
    raise AssertionError(f"no scope rule for {ent.name}")


def _team_ids(value: Any) -> list[str]:
    return _strings(list(value))


# ---------------------------------------------------------------- one level


def _rows(plan: ReadPlan, depth: int, relation: Relation | None = None, parent: FromClause | None = None) -> AnySelect:
    """The rows of one level: the table's columns, filtered, ordered, paged, linked to the parent row."""
    ent = entity_named(plan.entity)
    table: FromClause = TABLES[ent.name]
    written = _WRITTEN.get() if depth == 0 and relation is None else None
    if written is not None:
        _WRITTEN.set(None)  # the levels below read their tables
        statement = select(written)
        clause = _where(plan, ent, written, depth)
        return statement if clause is None else statement.where(clause)
    if parent is table or getattr(parent, "name", None) == TABLES[ent.name].name:
        # A relation of a table to itself (parent, children) read against the table itself, as
        # the EXISTS of !inner does, or against rows named as the table (a grouped level's): the
        # related rows need their own name.
        table = table.alias(f"t{depth}")
    order = _order(ent, table, plan.order)
    if relation is not None and relation.kind is RelationKind.LIST_TO_MANY:
        assert parent is not None
        listed = (
            func.unnest(parent.c[relation.via])
            .table_valued("id", with_ordinality=ORDINAL)
            .render_derived(name=f"u{depth}")
        )
        # Each listed id looked up by itself (the OFFSET keeps PostgreSQL from flattening the lookup into a
        # hash join that reads the whole table for every parent row).
        looked_up = readable(select(table).where(table.c.id == listed.c.id), ent, table)
        table = looked_up.offset(literal_column("0")).lateral(f"l{depth}")
        order = _order(ent, table, plan.order) or [listed.c[ORDINAL]]
        statement = select(table, listed.c[ORDINAL]).select_from(listed.join(table, true()))
    else:
        statement = select(table)
        if relation is not None:
            statement = statement.where(_link(relation, table, parent))
        statement = readable(statement, ent, table)
    clause = _where(plan, ent, table, depth)
    if clause is not None:
        statement = statement.where(clause)
    if parent is not None:
        statement = statement.correlate(parent)
    statement = statement.order_by(*order)
    if plan.limit is not None:
        statement = statement.limit(plan.limit)
    if plan.offset:
        statement = statement.offset(plan.offset)
    return statement


def _where(plan: ReadPlan, ent: Entity, table: FromClause, depth: int) -> ColumnElement[Any] | None:
    clauses = [] if plan.where is None else [_filter(ent, table, plan.where)]
    for embed in plan.embeds:
        if embed.inner or embed.empty:
            relation = _relation(ent, embed.relation)
            target = entity_named(relation.target)
            if _grouped(embed.plan, target) and not _keyed(embed.plan, target):
                # Aggregates and nothing to group them by: one row however many related rows (none too).
                if embed.empty:
                    clauses.append(false())
                continue
            related = _exists(embed.plan, depth, relation, table)
            clauses.append(related if embed.inner else not_(related))
    for spread in plan.spreads:
        if spread.inner:
            clauses.append(_exists(spread.plan, depth, _relation(ent, spread.relation), table))
    return and_(*clauses) if clauses else None


def _exists(plan: ReadPlan, depth: int, relation: Relation, table: FromClause) -> ColumnElement[Any]:
    """Some row of `plan` is related to the row of `table` (PostgREST's !inner), its page aside."""
    inner = _rows(plan, depth + 1, relation, table).limit(None).offset(None).order_by(None)
    return exists(inner.with_only_columns(literal(1)).scalar_subquery())


def _link(relation: Relation, target: FromClause, parent: FromClause | None) -> ColumnElement[Any]:
    assert parent is not None
    match relation.kind:
        case RelationKind.TO_ONE:
            return _only_when(relation, parent, target.c.id == parent.c[relation.via])
        case RelationKind.TO_MANY:
            return _only_when(relation, target, target.c[relation.via] == parent.c.id)
        case RelationKind.LIST_TO_MANY:
            return target.c.id == any_(parent.c[relation.via])
        case RelationKind.LIST_REVERSE:
            # ARRAY[parent.id] names this parent's id only (an ARRAY(SELECT ...) would not correlate
            # and would ask for every parent's id at once); @> can use the list column's GIN index.
            return target.c[relation.via].contains(cast(pg_array([parent.c.id]), ARRAY(Text)))
    raise AssertionError(relation.kind)


def _only_when(relation: Relation, holder: FromClause, link: ColumnElement[Any]) -> ColumnElement[Any]:
    """`link`, narrowed to the rows of `holder` (the side holding `via`) that the relation's condition admits."""
    if relation.only_when is None:
        return link
    column, value = relation.only_when
    return and_(link, holder.c[column] == value)


@dataclass(frozen=True)
class Level:
    """One level of a plan rendered: the rows it answers (`source`), each row's JSON over them, their order."""

    source: FromClause
    row: ColumnElement[Any]
    order: list[ColumnElement[Any]]


class Output(NamedTuple):
    """One output key of a row before it becomes JSON: its value, or for an aggregate the value aggregated
    (None: the rows are counted)."""

    key: str
    value: ColumnElement[Any] | None
    aggregate: Aggregate | None = None
    constant: bool = False
    # A field's plain value, and the to-one relation it was spread from: what an order term names.
    origin: tuple[str | None, str] | None = None
    # What groups by it, when not the value itself: a cast field's own columns, as PostgREST groups by the
    # field (so that the field orders the groups).
    group: list[ColumnElement[Any]] | None = None


def _level(plan: ReadPlan, depth: int, relation: Relation | None = None, parent: FromClause | None = None) -> Level:
    """The rows of one level, linked to the parent row: the table's rows (filtered, ordered, paged), or for a
    plan with aggregates its groups (a GROUP BY over the filtered rows, then ordered and paged)."""
    ent = entity_named(plan.entity)
    if not _grouped(plan, ent):
        if relation is not None and relation.kind is RelationKind.LIST_TO_MANY:
            spanning = None if plan.order or parent is None else _everywhere(parent)
            if spanning is not None and parent is not None:
                return _listed_once(plan, ent, depth, relation, parent, spanning)
        rows = _rows(plan, depth, relation, parent)
        source = rows.subquery(f"s{depth}")
        _spans(source, rows, plan, depth, relation, parent)
        order = _order(ent, source, plan.order) or ([source.c[ORDINAL]] if ORDINAL in source.c else [])
        return Level(source, _row_json(plan, ent, source, depth), order)
    # Named as the table at the top, so that PostgreSQL's refusals (an order by a column that is not grouped)
    # name it as PostgREST's do.
    rows = _rows(replaced(plan, order=(), limit=None, offset=None), depth, relation, parent)
    inner = rows.subquery(ent.resource if depth == 0 else f"s{depth}")
    outputs = _outputs(plan, ent, inner, depth)
    values: list[ColumnElement[Any]] = []
    positions: list[ColumnElement[Any]] = []
    for i, output in enumerate(outputs):
        if output.aggregate is not None:
            value = _aggregated(output.aggregate, output.value)
        else:
            assert output.value is not None
            # json has no equality to group by; jsonb has (PostgREST's embeds are jsonb).
            value = cast(output.value, JSONB) if isinstance(output.value.type, JSON) else output.value
            if output.group is not None:
                positions += output.group
            elif not output.constant:
                # By position: an embed or a spread is a subquery, named once.
                positions.append(literal_column(str(i + 1)))
        values.append(value)
    columns = [value.label(f"k{i}") for i, value in enumerate(values)]
    statement = select(*columns).select_from(inner).group_by(*positions)
    order = _grouped_order(ent, inner, plan.order, outputs, values)
    if order:
        statement = statement.add_columns(func.row_number().over(order_by=order).label(ORDINAL)).order_by(*order)
    if plan.limit is not None:
        statement = statement.limit(plan.limit)
    if plan.offset:
        statement = statement.offset(plan.offset)
    grouped = statement.subquery(f"g{depth}")
    # Back to json: JSON_OBJECT with a jsonb value is jsonb, whose keys PostgreSQL reorders.
    grouped_values = [grouped.c[f"k{i}"] for i in range(len(outputs))]
    row = JsonObject(
        [
            (output.key, cast(value, JSON) if isinstance(value.type, JSONB) else value)
            for output, value in zip(outputs, grouped_values, strict=True)
        ],
        absent_on_null=plan.strip_nulls,
    )
    return Level(grouped, row, [grouped.c[ORDINAL]] if order else [])


def _listed_once(
    plan: ReadPlan, ent: Entity, depth: int, relation: Relation, parent: FromClause, spanning: FromClause
) -> Level:
    """The rows of an id-list relation (`LIST_TO_MANY`), each distinct listed row looked up and rendered
    once per statement rather than once per parent row that lists it. The rows are those `spanning` (a
    superset of the parent level's rows everywhere in the statement) lists, read as any read is (`readable`,
    the plan's filter); their JSON texts, by id, make one jsonb object (a MATERIALIZED CTE of one row);
    each parent row's list then takes its rows' texts out of it by id, in list order, an id listed twice
    shown twice, as the per-parent lookup does (and the resolvers). What a row shows depends on the row
    alone, not on the parent that lists it: the same JSON serves every parent. A jsonb object, not a CTE of
    rows joined per parent: a CTE has no index, each parent would read all of it."""
    table = TABLES[ent.name].alias(f"b{depth}")
    keys = select(func.unnest(spanning.c[relation.via]))
    rows = readable(select(table).where(table.c.id.in_(keys)), ent, table)
    clause = _where(plan, ent, table, depth)
    if clause is not None:
        rows = rows.where(clause)
    # Its rows are distinct already, so the levels below render per row of it, not once each: a list below (a
    # team's members) repeats its ids across them less than this one across its parents (in the benchmark's
    # nested query not at all, and rendering them once too cost more than it saved). Such a list is read for
    # all its rows in one join (`_lists_joined`), not looked up id by id.
    base = rows.cte()
    source, joined = _lists_joined(plan, ent, base, depth)
    token = _JOINED.set(joined)
    try:
        texts = func.jsonb_object_agg(base.c.id, cast(_row_json(plan, ent, base, depth), Text))
    finally:
        _JOINED.reset(token)
    rendered = select(texts.label("rows")).select_from(source).cte().prefix_with("MATERIALIZED")
    listed = (
        func.unnest(parent.c[relation.via]).table_valued("id", with_ordinality=ORDINAL).render_derived(name=f"u{depth}")
    )
    # Text out of jsonb, then json again: the very text the row's JSON_OBJECT gave.
    text = rendered.c.rows.op("->>")(listed.c.id)
    statement = (
        select(cast(text, JSON).label("row"), listed.c[ORDINAL])
        .select_from(rendered.join(listed, true()))
        .where(rendered.c.rows.op("?", is_comparison=True)(listed.c.id))
        .correlate(parent)
        .order_by(listed.c[ORDINAL])
    )
    if plan.limit is not None:
        statement = statement.limit(plan.limit)
    if plan.offset:
        statement = statement.offset(plan.offset)
    source = statement.subquery(f"s{depth}")
    return Level(source, source.c.row, [source.c[ORDINAL]])


def _lists_joined(
    plan: ReadPlan, ent: Entity, base: FromClause, depth: int
) -> tuple[FromClause, dict[tuple[int, str, int], ColumnElement[Any]]]:
    """`base` (distinct rows, each rendered once) with the id-lists of its embeds read for all its rows at
    once: each list's ids joined to their table and aggregated per row of `base`, in list order, an id listed
    twice shown twice, an id without a readable row left out, as the per-row lookup does. A join lets
    PostgreSQL read a small table once (a hash join) where a lookup per listed id cost more than the
    rendering (a team's members in the benchmark's nested query: 410 index lookups). Only lists taken whole
    (no order, limit or offset of their own, no aggregates) and as arrays; the others stay per row."""
    source: FromClause = base
    joined: dict[tuple[int, str, int], ColumnElement[Any]] = {}
    for i, embed in enumerate(plan.embeds):
        relation = _relation(ent, embed.relation)
        target = entity_named(relation.target)
        shape = embed.plan
        if (
            relation.kind is not RelationKind.LIST_TO_MANY
            or embed.single
            or shape.order
            or shape.limit is not None
            or shape.offset
            or _grouped(shape, target)
        ):
            continue
        name = f"{depth + 1}_{i}"
        table = TABLES[target.name].alias(f"m{name}")
        ids = func.unnest(base.c[relation.via]).table_valued("id", with_ordinality=ORDINAL)
        listed = ids.render_derived(name=f"v{name}")
        rows = readable(
            select(base.c.id.label("listing_id"), table, listed.c[ORDINAL]).select_from(
                base.join(listed, true()).join(table, table.c.id == listed.c.id)
            ),
            target,
            table,
        )
        clause = _where(shape, target, table, depth + 1)
        if clause is not None:
            rows = rows.where(clause)
        found = rows.subquery(f"n{name}")
        row = _row_json(shape, target, found, depth + 1)
        arrays = (
            select(found.c.listing_id, func.json_agg(aggregate_order_by(row, found.c[ORDINAL])).label("rows"))
            .group_by(found.c.listing_id)
            .subquery(f"w{name}")
        )
        source = source.outerjoin(arrays, arrays.c.listing_id == base.c.id)
        joined[(id(base), embed.relation, id(shape))] = func.coalesce(arrays.c.rows, EMPTY_ARRAY)
    return source, joined


def _span(source: FromClause, build: Callable[[], FromClause | None]) -> None:
    """Record how to read every row `source` holds anywhere in the statement (see `_EVERYWHERE`)."""
    spans = _EVERYWHERE.get()
    if spans is not None:
        spans[id(source)] = (source, build)


def _spans(
    source: FromClause,
    rows: AnySelect,
    plan: ReadPlan,
    depth: int,
    relation: Relation | None,
    parent: FromClause | None,
) -> None:
    """`_span` of a level's `source`, the subquery of `rows` (`_rows` of the other arguments)."""
    if relation is None:
        # A level without a parent reads the same rows wherever it is read.
        _span(source, rows.subquery)
    else:
        _span(source, lambda: _spanning(plan, depth, relation, parent))


def _everywhere(source: FromClause | None) -> FromClause | None:
    """Every row `source` holds anywhere in the statement (a superset, read without a parent row), or None
    when that is not known."""
    spans = _EVERYWHERE.get()
    if spans is None or source is None:
        return None
    entry = spans.get(id(source))
    if entry is None or entry[0] is not source:
        return None
    found = entry[1]()
    spans[id(source)] = (source, lambda: found)
    return found


def _spanning(plan: ReadPlan, depth: int, relation: Relation, parent: FromClause | None) -> FromClause | None:
    """The rows of a level for every row of its parent level anywhere in the statement: the level's rows
    (filtered, ordered, paged per parent row) joined laterally to `_everywhere` of the parent's."""
    outer = _everywhere(parent)
    if outer is None:
        return None
    rows = _rows(plan, depth, relation, outer).lateral(f"r{depth}")
    return select(rows).select_from(outer.join(rows, true())).subquery(f"e{depth}")


def _grouped_order(
    ent: Entity,
    inner: FromClause,
    terms: tuple[OrderTerm, ...],
    outputs: list[Output],
    values: list[ColumnElement[Any]],
) -> list[ColumnElement[Any]]:
    """The ORDER BY of a grouped level. A related row's column (order=actor(name)) is the value a spread of
    it groups by (the same expression), as PostgREST orders by the joined column it groups by."""
    clauses: list[ColumnElement[Any]] = []
    for term in terms:
        found = next(
            (
                i
                for i, output in enumerate(outputs)
                if term.relation is not None and not term.path and output.origin == (term.relation, term.field)
            ),
            None,
        )
        if found is None:
            clauses += _order(ent, inner, (term,))
            continue
        clause = values[found].desc() if term.descending else values[found].asc()
        if term.nulls_first is True:
            clause = clause.nulls_first()
        elif term.nulls_first is False:
            clause = clause.nulls_last()
        clauses.append(clause)
    return clauses


def _grouped(plan: ReadPlan, ent: Entity) -> bool:
    """The plan answers groups: it has aggregates, or a to-one spread in it has (they are this level's)."""
    if plan.aggregates:
        return True
    for spread in plan.spreads:
        relation = _relation(ent, spread.relation)
        if not relation.many and _grouped(spread.plan, entity_named(relation.target)):
            return True
    return False


def _keyed(plan: ReadPlan, ent: Entity) -> bool:
    """The plan has output keys other than aggregates (and constants): its rows are grouped by them."""
    if plan.columns or plan.embeds or plan.counts or plan.matches or plan.composites or plan.choices:
        return True
    if plan.pages or plan.node_keys:
        return True
    for spread in plan.spreads:
        relation = _relation(ent, spread.relation)
        if relation.many or _keyed(spread.plan, entity_named(relation.target)):
            return True
    return False


def _json_array(level: Level) -> ColumnElement[Any]:
    row, order = level.row, level.order
    aggregated = func.json_agg(aggregate_order_by(row, *order)) if order else func.json_agg(row)
    return func.coalesce(aggregated, EMPTY_ARRAY)


def _row_json(plan: ReadPlan, ent: Entity, source: FromClause, depth: int) -> ColumnElement[Any]:
    full = plan.columns is None
    pairs: list[tuple[str, ColumnElement[Any]]] = []
    for output in _outputs(plan, ent, source, depth):
        if output.aggregate is not None or output.value is None:
            raise AssertionError(f"aggregate {output.key} outside a grouped level")
        pairs.append((output.key, output.value))
    return JsonObject(pairs, absent_on_null=full or plan.strip_nulls)


def _outputs(plan: ReadPlan, ent: Entity, source: FromClause, depth: int) -> list[Output]:
    """The output keys of a row of `source`, in the plan's layout."""
    full = plan.columns is None and not _grouped(plan, ent)
    outputs: list[Output] = []
    if full:
        outputs += [Output(f.name, _field_value(f, source)) for f in ent.fields if not f.internal]
    else:
        outputs += [
            Output(c.key, _column_value(ent, source, c), origin=_origin(c), group=_group(ent, source, c))
            for c in plan.columns or ()
        ]
    outputs += [Output(a.key, _aggregate_input(ent, source, a), a) for a in plan.aggregates]
    for embed in plan.embeds:
        value = _embed_value(ent, source, embed.relation, embed.plan, depth, embed.single)
        # In a full representation nulls are left out, but an embed the client named stays.
        outputs.append(Output(embed.key, func.coalesce(value, JSON_NULL) if full and not plan.strip_nulls else value))
    for spread in plan.spreads:
        outputs += _spread_outputs(ent, source, spread, depth)
    for count in plan.counts:
        relation = _relation(ent, count.relation)
        target = entity_named(relation.target)
        counted = ReadPlan(entity=target.name, where=count.where)
        inner = _rows(counted, depth + 1, relation, source).subquery(f"c{depth + 1}")
        outputs.append(Output(count.key, select(func.count()).select_from(inner).scalar_subquery()))
    for match in plan.matches:
        outputs.append(Output(match.key, case((_filter(ent, source, match.where), true()), else_=false())))
    for constant in plan.constants:
        outputs.append(Output(constant.key, _constant(constant.value), constant=True))
    for composite in plan.composites:
        outputs.append(Output(composite.key, _composite_value(ent, source, composite)))
    for choice in plan.choices:
        then, otherwise = choice.then, choice.otherwise
        value = case(
            (
                _filter(ent, source, choice.when),
                _embed_value(ent, source, then.relation, then.plan, depth, then.single),
            ),
            else_=_embed_value(ent, source, otherwise.relation, otherwise.plan, depth, otherwise.single),
        )
        outputs.append(Output(choice.key, value))
    for paged in plan.pages:
        outputs.append(Output(paged.key, _paged_value(paged, depth, ent, source)))
    for node_key in plan.node_keys:
        outputs.append(Output(node_key.key, PositionText(json.dumps(node_key.label), [func.to_json(source.c.id)])))
    if plan.layout is not None:
        # A key may stand twice (a spread's `id` beside the row's own): each takes the next place of its key.
        places: dict[str, list[int]] = {}
        for i, key in enumerate(plan.layout):
            places.setdefault(key, []).append(i)
        last = len(plan.layout)
        outputs.sort(key=lambda output: places[output.key].pop(0) if places.get(output.key) else last)
    return outputs


def _spread_outputs(ent: Entity, source: FromClause, spread: Spread, depth: int) -> list[Output]:
    """The keys of a spread, lifted: each a subquery over the related rows of the row in `source`."""
    relation = _relation(ent, spread.relation)
    target = entity_named(relation.target)
    if spread.plan.entity != relation.target:
        raise AssertionError(f"spread {spread.relation} selects {spread.plan.entity}, not {relation.target}")
    plan = spread.plan
    # Each key's array is read by its own subquery: a total order keeps the arrays in step (and a limit
    # taking the same rows for each). A list's own order (its positions) is one.
    by_list = relation.kind is RelationKind.LIST_TO_MANY and not plan.order
    by_id = any(term.field == "id" and not term.path and term.relation is None for term in plan.order)
    if relation.many and not by_list and not by_id:
        plan = replaced(plan, order=(*plan.order, OrderTerm("id")))
    inner = _rows(plan, depth + 1, relation, source).subquery(f"p{depth + 1}")
    outputs: list[Output] = []
    if relation.many:
        order = _order(target, inner, plan.order) or [inner.c[ORDINAL]]
        for output in _outputs(plan, target, inner, depth + 1):
            if output.aggregate is not None or output.value is None:
                raise InvalidInput(
                    f"aggregates are not possible in a spread of the to-many relation {relation.name}",
                    field=relation.name,
                    reason=InvalidReason.RULE,
                    entity=ent.name,
                )
            values = func.coalesce(func.json_agg(aggregate_order_by(output.value, *order)), EMPTY_ARRAY)
            arrays = select(values).select_from(inner).scalar_subquery()
            outputs.append(output._replace(value=arrays, origin=None, group=None))
        return outputs
    for output in _outputs(plan, target, inner, depth + 1):
        # An aggregate stays one of this level's, of the related row's value (1 when it counts rows: a row
        # counts when it has a related row).
        value = output.value if output.value is not None else literal(1)
        if output.constant:
            outputs.append(output)
            continue
        lifted = select(value).select_from(inner).limit(1).scalar_subquery()
        origin = (spread.relation, output.origin[1]) if output.origin and output.origin[0] is None else None
        outputs.append(output._replace(value=lifted, origin=origin, group=None))
    return outputs


def _group(ent: Entity, source: FromClause, column: Column) -> list[ColumnElement[Any]] | None:
    if column.cast is None or column.key != column.field or column.path or column.relation is not None:
        return None
    return [source.c[name] for name in _field(ent, column.field).columns]


def _origin(column: Column) -> tuple[str | None, str] | None:
    plain = not column.path and column.cast is None and column.spelling is None and column.relation is None
    return (None, column.field) if plain else None


def _aggregate_input(ent: Entity, source: FromClause, aggregate: Aggregate) -> ColumnElement[Any] | None:
    """The value an aggregate takes of each row: the column's own (PostgreSQL's types), cast; None: the row."""
    if aggregate.field is None:
        if aggregate.function != "count" or aggregate.path or aggregate.cast:
            raise InvalidInput(f"{aggregate.function}() needs a field", reason=InvalidReason.RULE, entity=ent.name)
        return None
    f = _field(ent, aggregate.field)
    if aggregate.path:
        value = _path_value(f, source, aggregate.path, aggregate.path_as_text)
        if not aggregate.path_as_text:
            value = cast(value, JSONB)
    elif f.kind is Kind.TIMEFRAME:
        value = cast(_field_value(f, source), JSONB)
    else:
        value = source.c[f.columns[0]]
    return value if aggregate.cast is None else cast(value, _cast_type(aggregate.cast, ent.name, f.name))


def _aggregated(aggregate: Aggregate, value: ColumnElement[Any] | None) -> ColumnElement[Any]:
    """The aggregate function over the group's values, its result cast."""
    if aggregate.function not in AGGREGATES:
        raise InvalidInput(
            f"{aggregate.function!r} is not an aggregate; known: {', '.join(sorted(AGGREGATES))}",
            field=aggregate.field,
            reason=InvalidReason.RULE,
        )
    if value is None:
        result: ColumnElement[Any] = func.count()
    else:
        function = getattr(func, aggregate.function)
        result = function(distinct(value)) if aggregate.distinct else function(value)
    if aggregate.result_cast is not None:
        result = cast(result, _cast_type(aggregate.result_cast, "", aggregate.field or ""))
    if _ZONED.get() and isinstance(result.type, DateTime) and result.type.timezone:
        return rendered_zoned(result)
    return result


def _embed_value(
    ent: Entity, source: FromClause, name: str, plan: ReadPlan, depth: int, single: bool = False
) -> ColumnElement[Any]:
    relation = _relation(ent, name)
    if plan.entity != relation.target:
        raise AssertionError(f"embed {name} selects {plan.entity}, not {relation.target}")
    joined = _JOINED.get()
    if joined is not None and not single and (found := joined.get((id(source), name, id(plan)))) is not None:
        return found
    level = _level(plan, depth + 1, relation, source)
    # select_from: a row rendered from constants alone names no column of the related rows.
    if relation.many and not single:
        return select(_json_array(level)).select_from(level.source).scalar_subquery()
    first = select(level.row).select_from(level.source)
    if single:
        first = first.order_by(*level.order)
    return first.limit(1).scalar_subquery()


def _constant(value: Any) -> ColumnElement[Any]:
    """A JSON value written into the statement (never a bound parameter: its type would be unknown)."""
    if value is None:
        return null()
    if isinstance(value, bool):
        return true() if value else false()
    if isinstance(value, str):
        return literal_column(_sql_string(value) + "::text", Text)
    return literal_column(_sql_string(json.dumps(value)) + "::json", JSON)


def _composite_value(ent: Entity, source: FromClause, composite: Composite) -> ColumnElement[Any]:
    whole = _field_value(_field(ent, composite.field), source)
    pairs = [
        (c.key, _constant(c.value) if isinstance(c, Constant) else _column_value(ent, source, c))
        for c in composite.columns
    ]
    return case((whole.is_(None), null()), else_=JsonObject(pairs, absent_on_null=False))


# ---------------------------------------------------------------- pages

NUMBER = "__n"
READ = "__read"


def _paged_value(
    paged: Paged, depth: int, ent: Entity | None = None, source: FromClause | None = None
) -> ColumnElement[Any]:
    """The page object: rows numbered in reading order (a window over at most size + 1 rows), then
    aggregated into the keys the page asks for. An empty page is an object too (aggregates of no rows)."""
    relation = None if paged.relation is None else _relation(ent, paged.relation)  # type: ignore[arg-type]
    target = entity_named(paged.plan.entity)
    if relation is not None and paged.plan.entity != relation.target:
        raise AssertionError(f"page {paged.relation} selects {paged.plan.entity}, not {relation.target}")
    if _only_rows(paged):
        return _rows_page(paged, depth, target, relation, source)
    selected = _rows(paged.plan, depth + 1, relation, source)
    inner = selected.subquery(f"s{depth + 1}")
    _spans(inner, selected, paged.plan, depth + 1, relation, source)
    order = _order(target, inner, paged.plan.order) or ([inner.c[ORDINAL]] if ORDINAL in inner.c else [inner.c.id])
    rows = select(
        inner, func.row_number().over(order_by=order).label(NUMBER), func.count().over().label(READ)
    ).subquery(f"w{depth + 1}")
    _span(rows, lambda: _everywhere(inner))
    number, read = rows.c[NUMBER], rows.c[READ]
    window = paged.window
    shown = func.least(read, window.size)
    kept = number <= window.size
    if window.trim is not None:
        kept = and_(kept, number > shown - window.trim)
    more = func.coalesce(func.max(read), 0) > window.size
    first_number: ColumnElement[Any]
    last_number: ColumnElement[Any]
    has_next: ColumnElement[bool]
    has_previous: ColumnElement[bool]
    if window.backward:
        first_number, last_number = shown, literal_column("1")
        has_next, has_previous = (true() if window.before_given else false()), more
    else:
        first_number = literal_column("1") if window.trim is None else func.greatest(shown - window.trim, 0) + 1
        last_number = shown
        has_next = more
        has_previous = (
            true()
            if window.after_given
            else (false() if window.trim is None else func.coalesce(func.max(shown), 0) > window.trim)
        )
    in_order = number.desc() if window.backward else number.asc()
    position = _position(target, rows, paged.position) if paged.position is not None else null()

    def row_of(view: ReadPlan | None) -> ColumnElement[Any]:
        assert view is not None and view.entity == target.name
        return _row_json(view, target, rows, depth + 1)

    def per_row(field: PageField) -> ColumnElement[Any]:
        match field.value:
            case "row":
                return row_of(field.view)
            case "position":
                return position
            case "constant":
                return _constant(field.constant)
        raise AssertionError(f"{field.value} is not a value of an entry")

    def value(field: PageField) -> ColumnElement[Any]:
        match field.value:
            case "rows" | "entries":
                item = (
                    row_of(field.view)
                    if field.value == "rows"
                    else JsonObject([(f.key, per_row(f)) for f in field.fields], absent_on_null=False)
                )
                return func.coalesce(func.json_agg(aggregate_order_by(item, in_order)).filter(kept), EMPTY_ARRAY)
            case "object":
                return JsonObject([(f.key, value(f)) for f in field.fields], absent_on_null=False)
            case "first_position" | "last_position":
                at = first_number if field.value == "first_position" else last_number
                return func.max(position).filter(and_(kept, number == at))
            case "has_next":
                return has_next
            case "has_previous":
                return has_previous
            case "total" | "summary":
                return _counted_value(paged, field, depth, target, relation, source)
            case "constant":
                return _constant(field.constant)
        raise AssertionError(f"{field.value} is not a value of a page")

    page = JsonObject([(f.key, value(f)) for f in paged.fields], absent_on_null=False)
    # GROUP BY (): one row of aggregates, also when the page asks for no aggregate at all (only totalCount).
    return select(page).select_from(rows).group_by(literal_column("()")).scalar_subquery()


def _only_rows(paged: Paged) -> bool:
    """A page that asks for its rows alone (and constants, its total, summaries), read forward and not trimmed."""
    window = paged.window
    return (
        not window.backward and window.trim is None and all(f.value == "rows" or _counted_only(f) for f in paged.fields)
    )


def _counted_only(field: PageField) -> bool:
    """A page's value that needs none of its rows: a constant, the total, a summary, an object of those."""
    if field.value == "object":
        return all(_counted_only(f) for f in field.fields)
    return field.value in ("constant", "total", "summary")


def _rows_page(
    paged: Paged, depth: int, target: Entity, relation: Relation | None, source: FromClause | None
) -> ColumnElement[Any]:
    """Such a page needs neither the one more row nor the numbering: the first `size` rows, aggregated
    (none at all when it does not ask for them: a page of totals and summaries)."""
    plan = replace(paged.plan, limit=paged.window.size)
    selected = _rows(plan, depth + 1, relation, source)
    inner = selected.subquery(f"s{depth + 1}")
    _spans(inner, selected, plan, depth + 1, relation, source)
    order = _order(target, inner, plan.order) or ([inner.c[ORDINAL]] if ORDINAL in inner.c else [])
    pairs: list[tuple[str, ColumnElement[Any]]] = []

    def counted(field: PageField) -> ColumnElement[Any]:
        match field.value:
            case "constant":
                return _constant(field.constant)
            case "object":
                return JsonObject([(f.key, counted(f)) for f in field.fields], absent_on_null=False)
        return _counted_value(paged, field, depth, target, relation, source)

    for field in paged.fields:
        if field.value != "rows":
            pairs.append((field.key, counted(field)))
            continue
        assert field.view is not None and field.view.entity == target.name
        row = _row_json(field.view, target, inner, depth + 1)
        aggregated = func.json_agg(aggregate_order_by(row, *order)) if order else func.json_agg(row)
        pairs.append((field.key, func.coalesce(aggregated, EMPTY_ARRAY)))
    page = JsonObject(pairs, absent_on_null=False)
    if not any(f.value == "rows" for f in paged.fields):
        return page
    return select(page).select_from(inner).group_by(literal_column("()")).scalar_subquery()


def _counted_value(
    paged: Paged,
    field: PageField,
    depth: int,
    target: Entity,
    relation: Relation | None,
    source: FromClause | None,
) -> ColumnElement[Any]:
    """A value over every row the page's total counts, its paging aside: the total, or a summary."""
    counted = ReadPlan(entity=target.name, where=paged.total_where)
    every = _rows(counted, depth + 1, relation, source).subquery(f"c{depth + 1}")
    if field.value == "total":
        return select(func.count()).select_from(every).scalar_subquery()
    assert field.summary is not None
    return summary_value(field.summary, target, every, depth + 1)


# ---------------------------------------------------------------- aggregates

# The functions whose argument must be a number (the rest take any field a group can be ordered by).
NUMERIC_AGGREGATES = frozenset({"sum", "avg"}) | STATISTICS
HAVING_OPERATORS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def summary_value(summary: Summary, ent: Entity, rows: FromClause, depth: int) -> ColumnElement[Any]:
    """The summary of `rows` (a FROM of `ent`'s rows): one JSON object, or a JSON array of one per group."""
    if summary.through is not None:
        ent, rows = _reached(summary.through, ent, rows, depth)
    keys = [(key, _group_key(ent, rows, key)) for key in summary.group_by or ()]

    def render(field: Any) -> ColumnElement[Any]:
        match field:
            case Aggregate():
                return _summary_aggregate(ent, rows, field)
            case Keys():
                if not keys:
                    return EMPTY_ARRAY
                return func.json_build_array(*(_key_text(ent, key, value) for key, value in keys))
            case Nest(fields=fields):
                return JsonObject([(f.key, render(f)) for f in fields], absent_on_null=False)
            case Constant(value=value):
                return _constant(value)
        raise AssertionError(f"not a summary field: {field!r}")

    value = JsonObject([(f.key, render(f)) for f in summary.fields], absent_on_null=False)
    grouped = select(value.label("o"), *(v.label(f"k{i}") for i, (_, v) in enumerate(keys))).select_from(rows)
    # GROUP BY (): one row of aggregates also over no rows, and also when the object holds no aggregate.
    grouped = grouped.group_by(*(v for _, v in keys)) if keys else grouped.group_by(literal_column("()"))
    if summary.having is not None:
        grouped = grouped.having(_having(ent, rows, summary.having))
    if summary.group_by is None:
        return grouped.with_only_columns(value).scalar_subquery()
    groups = grouped.subquery(f"g{depth}")
    order = [groups.c[f"k{i}"].asc().nulls_last() for i in range(len(keys))]
    aggregated = func.json_agg(aggregate_order_by(groups.c.o, *order)) if order else func.json_agg(groups.c.o)
    return select(func.coalesce(aggregated, EMPTY_ARRAY)).select_from(groups).scalar_subquery()


def _reached(through: Related, ent: Entity, rows: FromClause, depth: int) -> tuple[Entity, FromClause]:
    """The rows reached through a relation from each of `rows` (with a pick, the first one of each)."""
    relation = _relation(ent, through.relation)
    if not relation.many:
        raise InvalidInput(
            f"a summary reaches rows through a to-many relation, not {relation.name}",
            field=relation.name,
            reason=InvalidReason.RULE,
            entity=ent.name,
        )
    target = entity_named(relation.target)
    plan = ReadPlan(target.name, where=through.where, order=through.pick, limit=1 if through.pick else None)
    reached = _rows(plan, depth + 1, relation, rows).lateral(f"r{depth + 1}")
    joined = select(*reached.c).select_from(rows.join(reached, true())).subquery(f"v{depth + 1}")
    return target, joined


def _group_key(ent: Entity, rows: FromClause, key: GroupKey) -> ColumnElement[Any]:
    f = _field(ent, key.field)
    if f.kind is Kind.TIMEFRAME:
        raise InvalidInput(
            f"rows cannot be grouped by {f.name} as a whole", field=f.name, reason=InvalidReason.RULE, entity=ent.name
        )
    value = rows.c[f.columns[0]]
    if key.truncate is None:
        return value
    if key.truncate not in TRUNCATIONS or f.kind not in (Kind.DATE, Kind.TIMESTAMP):
        raise InvalidInput(
            f"{f.name} cannot be truncated to {key.truncate!r}",
            field=f.name,
            reason=InvalidReason.RULE,
            entity=ent.name,
        )
    # The unit written into the statement: a parameter would make the GROUP BY and the select list differ.
    unit: ColumnElement[Any] = literal_column(_sql_string(key.truncate))
    if f.kind is Kind.DATE:
        return cast(func.date_trunc(unit, value), Date)
    # In UTC whatever the session's TimeZone: a group is the same hour, day, week or month for every client.
    return func.date_trunc(unit, value, literal_column("'UTC'"))


def _key_text(ent: Entity, key: GroupKey, value: ColumnElement[Any]) -> ColumnElement[Any]:
    if key.spelling is Spelling.ISO_TIMESTAMP:
        return _spelled(value, Spelling.ISO_TIMESTAMP)
    text = cast(value, Text)
    return func.upper(text) if key.spelling is Spelling.UPPER else text


def _summary_aggregate(ent: Entity, rows: FromClause, aggregate: Aggregate) -> ColumnElement[Any]:
    value = _summary_aggregated(ent, rows, aggregate)
    if aggregate.otherwise is not None:
        value = func.coalesce(value, _sql_literal(aggregate.otherwise))
    return _spelled(value, aggregate.spelling) if aggregate.spelling is not None else value


def _sql_literal(value: Any) -> ColumnElement[Any]:
    """A number or a string written into the statement, for PostgreSQL to type from its context."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return literal_column(repr(value))
    if isinstance(value, str):
        return literal_column(_sql_string(value))
    raise AssertionError(f"not a number or a string: {value!r}")


def _summary_aggregated(ent: Entity, rows: FromClause, aggregate: Aggregate) -> ColumnElement[Any]:
    """A summary's aggregate over a group of `rows` (its `otherwise` and spelling aside)."""
    function = aggregate.function

    def refuse(why: str) -> InvalidInput:
        return InvalidInput(
            f"aggregate {function} {why}", field=aggregate.field, reason=InvalidReason.RULE, entity=ent.name
        )

    if function not in AGGREGATES | STATISTICS:
        raise refuse(f"is not known; known: {', '.join(sorted(AGGREGATES | STATISTICS))}")
    if aggregate.path or aggregate.cast or aggregate.result_cast:
        raise refuse("of a summary takes a field as it is")
    if aggregate.field is None:
        if function != "count" or aggregate.distinct:
            raise refuse("needs a field")
        return func.count()
    f = _field(ent, aggregate.field)
    if f.kind is Kind.TIMEFRAME:
        if function != "count":
            raise refuse("does not apply to a timeframe")
        # Both ends, as one comparable value (null when the timeframe is).
        value: ColumnElement[Any] = cast(_field_value(f, rows), JSONB)
    else:
        value = rows.c[f.columns[0]]
    if function in NUMERIC_AGGREGATES and f.kind is not Kind.INTEGER:
        raise refuse(f"applies to numbers only, not to {f.name}")
    if function in ("min", "max") and f.kind is Kind.TEXT_LIST:
        raise refuse(f"does not apply to a list ({f.name})")
    result: ColumnElement[Any] = getattr(func, function)(value.distinct() if aggregate.distinct else value)
    return result


def _having(ent: Entity, rows: FromClause, where: Any) -> ColumnElement[Any]:
    match where:
        case AggregateCondition(aggregate=aggregate, op=op, value=given):
            if op not in HAVING_OPERATORS:
                raise InvalidInput(f"operator {op} does not apply to aggregates", reason=InvalidReason.RULE)
            value = _summary_aggregated(ent, rows, aggregate)
            if aggregate.otherwise is not None:
                value = func.coalesce(value, _sql_literal(aggregate.otherwise))
            sql_type: TypeEngine[Any]
            if aggregate.function == "count":
                sql_type = BigInteger()
            elif aggregate.function in NUMERIC_AGGREGATES:
                sql_type = Numeric()
            else:
                sql_type = value.type
            return value.op(HAVING_OPERATORS[op], is_comparison=True)(_bind(given, sql_type))
        case And(items):
            return and_(true(), *(_having(ent, rows, item) for item in items))
        case Or(items):
            return or_(false(), *(_having(ent, rows, item) for item in items))
        case Not(item):
            return not_(_having(ent, rows, item))
    raise AssertionError(f"not a condition on aggregates: {where!r}")


class PositionText(ColumnElement[Any]):
    """`Position` rendered: base64url of the compact JSON [header, [values]], non-ASCII escaped as
    Python's json.dumps escapes it (PostgreSQL already escapes quotes, backslashes and control
    characters the same way)."""

    inherit_cache = True
    type = Text()
    # SQLAlchemy declares this per instance (no ClassVar); its traversal reads the class's list.
    _traverse_internals: list[tuple[str, InternalTraversal]] = [  # noqa: RUF012
        ("header", InternalTraversal.dp_string),
        ("json_values", InternalTraversal.dp_clauseelement_list),
    ]

    def __init__(self, header: str, values: list[ColumnElement[Any]]) -> None:
        self.header = header
        self.json_values = tuple(values)

    @property
    def _from_objects(self) -> list[FromClause]:
        return [source for value in self.json_values for source in value._from_objects]


@compiles(PositionText)
def _compile_position(element: PositionText, compiler: SQLCompiler, **kw: Any) -> str:
    values = " || ',' || ".join(f"COALESCE(({compiler.process(v, **kw)})::text, 'null')" for v in element.json_values)
    payload = f"{_sql_string('[' + element.header + ',[')} || {values or chr(39) * 2} || ']]'"
    escaped_char = (
        "CASE WHEN ascii(ch) < 127 THEN ch "
        "WHEN ascii(ch) < 65536 THEN '\\u' || lpad(to_hex(ascii(ch)), 4, '0') "
        "ELSE '\\u' || lpad(to_hex(55296 + ((ascii(ch) - 65536) >> 10)), 4, '0') "
        "|| '\\u' || lpad(to_hex(56320 + ((ascii(ch) - 65536) & 1023)), 4, '0') END"
    )
    ascii_text = (
        f"CASE WHEN p ~ '[^ -~]' THEN (SELECT string_agg({escaped_char}, '' ORDER BY i) "
        "FROM regexp_split_to_table(p, '') WITH ORDINALITY AS chars(ch, i)) ELSE p END"
    )
    return (
        f"(SELECT translate(encode(convert_to({ascii_text}, 'UTF8'), 'base64'), E'+/=\\n', '-_') "
        f"FROM (SELECT {payload} AS p) AS position_payload)"
    )


def _position(ent: Entity, source: FromClause, position: Position) -> ColumnElement[Any]:
    values: list[ColumnElement[Any]] = []
    for name, path in position.fields:
        f = _field(ent, name)
        values.append(_path_value(f, source, path, as_text=False) if path else func.to_json(source.c[f.columns[0]]))
    return PositionText(json.dumps(list(position.header), separators=(",", ":")), values)


def _relation(ent: Entity, name: str) -> Relation:
    relation = ent.relation(name)
    if relation is None:
        raise InvalidInput(
            f"{ent.resource} has no relationship {name!r}",
            field=name,
            reason=InvalidReason.UNKNOWN_RELATION,
            entity=ent.name,
        )
    return relation


# ---------------------------------------------------------------- fields


def _field(ent: Entity, name: str) -> Field:
    f = ent.field(name)
    if f is None:
        raise InvalidInput(
            f"{ent.resource} has no field {name!r}", field=name, reason=InvalidReason.UNKNOWN_FIELD, entity=ent.name
        )
    return f


def _field_value(f: Field, source: FromClause) -> ColumnElement[Any]:
    """A field's value as it appears in a document."""
    if f.kind is Kind.TIMEFRAME:
        start, end = (source.c[c] for c in f.columns)
        return case(
            (and_(start.is_(None), end.is_(None)), null()),
            else_=JsonObject([("start", start), ("end", end)], absent_on_null=True),
        )
    if f.kind is Kind.TIMESTAMP and _ZONED.get():
        return rendered_zoned(source.c[f.columns[0]])
    return source.c[f.columns[0]]


def rendered_zoned(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A timestamp as RFC 3339 text (JSON) in the session's TimeZone where RFC 3339 can say it, else in UTC.

    PostgreSQL renders an instant in the zone's offset of the day: before standard time a zone's
    offset is its local mean time, with seconds (New York's -04:56:02), and an instant within a day of
    year 1 or 9999 can fall outside years 1-9999 locally (shown with BC, or a fifth digit). RFC 3339
    has neither: such a value is given in UTC, where every value stored lies within years 1-9999
    (api/store/validation.py). In UTC (no Prefer: timezone) every value renders as it is, so only
    statements for another zone carry this."""
    representable = and_(
        func.mod(cast(func.extract("timezone", value), Integer), 60) == 0,
        func.extract("year", value).between(1, 9999),
    )
    in_utc = func.concat(func.to_json(func.timezone("UTC", value)).op("#>>")(literal_column("'{}'")), "+00:00")
    return case((value.is_(None), null()), (representable, func.to_json(value)), else_=func.to_json(in_utc))


def _column_value(ent: Entity, source: FromClause, column: Column) -> ColumnElement[Any]:
    if column.relation is not None:
        return _related_value(ent, source, column)
    f = _field(ent, column.field)
    value = _path_value(f, source, column.path, column.path_as_text) if column.path else _field_value(f, source)
    if column.spelling is not None:
        value = _spelled(value, column.spelling)
    return value if column.cast is None else cast(value, _cast_type(column.cast, ent.name, column.field))


def _cast_type(name: str, entity_name: str, field: str) -> TypeEngine[Any]:
    target = CAST_TYPES.get(name.lower())
    if target is None:
        raise InvalidInput(
            f"cannot cast to {name!r}; known types: {', '.join(sorted(CASTS))}",
            field=field or None,
            reason=InvalidReason.RULE,
            entity=entity_name,
        )
    return target


def _spelled(value: ColumnElement[Any], spelling: Spelling) -> ColumnElement[Any]:
    match spelling:
        case Spelling.UPPER:
            return func.upper(value)
        case Spelling.TEXT:
            return cast(value, Text)
        case Spelling.ISO_TIMESTAMP:

            def formatted(pattern: str) -> ColumnElement[Any]:
                return func.to_char(value, literal_column(_sql_string(pattern)))

            fraction = case(
                (formatted("US") == literal_column("'000000'"), literal_column("''")), else_=formatted(".US")
            )
            return case(
                (value.is_(None), null()),
                else_=func.concat(formatted('YYYY-MM-DD"T"HH24:MI:SS'), fraction, formatted("TZH:TZM")),
            )
    raise AssertionError(spelling)


def _related_value(ent: Entity, source: FromClause, column: Column) -> ColumnElement[Any]:
    """A field of the row a to-one relation points at, as a scalar subquery (null when there is none)."""
    relation = _relation(ent, column.relation or "")
    if relation.kind is not RelationKind.TO_ONE:
        raise InvalidInput(
            f"only fields of a to-one relation can be columns of {ent.resource}, not {relation.name}",
            field=relation.name,
            reason=InvalidReason.RULE,
            entity=ent.name,
        )
    other = entity_named(relation.target)
    related = TABLES[other.name].alias(f"r_{relation.name}")
    value = _column_value(
        other, related, Column(column.key, column.field, column.path, column.path_as_text, column.cast)
    )
    return readable(select(value).where(_link(relation, related, source)), other, related).scalar_subquery()


def _path_value(f: Field, source: FromClause, path: tuple[str, ...], as_text: bool) -> ColumnElement[Any]:
    """The value at `path` inside an object field; null where there is none (as jsonb paths in PostgreSQL)."""
    if f.kind is not Kind.TIMEFRAME or len(path) != 1 or path[0] not in ("start", "end"):
        return null() if as_text else cast(null(), JSON)
    value = source.c[f"{f.name}_{path[0]}"]
    return cast(value, Text) if as_text else func.to_json(value)


# ---------------------------------------------------------------- filters


def _filter(ent: Entity, source: FromClause, where: Filter) -> ColumnElement[Any]:
    match where:
        case Condition():
            return _condition(ent, source, where)
        case And(items):
            return and_(true(), *(_filter(ent, source, item) for item in items))
        case Or(items):
            return or_(false(), *(_filter(ent, source, item) for item in items))
        case Not(item):
            return not_(_filter(ent, source, item))
        case Unmet(item):
            return _filter(ent, source, item).is_not(true())
        case Related(name, item, pick):
            return _related(ent, source, name, item, pick)
        case Visible(scope):
            return true() if scope.teams is None else _visible(ent, source, scope)
    raise AssertionError(f"not a filter: {where!r}")


def _related(
    ent: Entity, source: FromClause, name: str, where: Filter | None, pick: tuple[OrderTerm, ...] = ()
) -> ColumnElement[Any]:
    """EXISTS a row through the relation (matching `where`), correlated to the row in `source`; with
    `pick`, the first row in that order, if it matches."""
    relation = _relation(ent, name)
    target = entity_named(relation.target)
    # Aliased, so that a relation from a table to itself still correlates to the outer row.
    table: FromClause = TABLES[target.name].alias()
    if pick:
        first = (
            readable(select(table).where(_link(relation, table, source)), target, table)
            .order_by(*_order(target, table, pick))
            .limit(1)
            .correlate(source)
        )
        table = first.subquery()
        inner = select(literal(1)).select_from(table)
    else:
        inner = readable(select(literal(1)).select_from(table).where(_link(relation, table, source)), target, table)
    if where is not None:
        inner = inner.where(_filter(target, table, where))
    return exists(inner.correlate(source).scalar_subquery())


def _condition(ent: Entity, source: FromClause, cond: Condition) -> ColumnElement[Any]:
    f = _field(ent, cond.field)

    def refuse(why: str) -> InvalidInput:
        return InvalidInput(f"operator {cond.op} {why}", field=cond.field, reason=InvalidReason.RULE, entity=ent.name)

    if cond.path:
        column = _path_value(f, source, cond.path, cond.path_as_text)
        sql_type: TypeEngine[Any] = Text() if cond.path_as_text else JSONB()
        if not cond.path_as_text:
            column = cast(column, JSONB)
    elif f.kind is Kind.TIMEFRAME:
        if cond.op != "is" or cond.value not in ("null", "not_null"):
            raise refuse("does not apply to timeframe as a whole; filter on timeframe->>start or timeframe->>end")
        start, end = (source.c[c] for c in f.columns)
        both_null = and_(start.is_(None), end.is_(None))
        return both_null if cond.value == "null" else not_(both_null)
    else:
        column = source.c[f.columns[0]]
        sql_type = column.type
    is_list = f.is_list and not cond.path
    is_text = isinstance(sql_type, Text) and not is_list

    op = cond.op
    given = cond.value.value if isinstance(cond.value, Slot) else cond.value
    if op == "is":
        match cond.value:
            case "null":
                return column.is_(None)
            case "not_null":
                return column.is_not(None)
            case "true" | "false" | "unknown":
                raise refuse(f"is.{cond.value} applies to boolean fields only")
        raise refuse("takes null, not_null, true, false or unknown")
    if op == "isdistinct":
        return column.is_distinct_from(_bind(cond.value, sql_type))
    if op == "in":
        values = _as_list(given, refuse)
        if not values:
            return false()
        if is_list:
            return column.in_([_bind(cond.value, sql_type, _item(i)) for i in range(len(values))])
        # One array parameter however long the list: PostgreSQL's protocol takes at most 32767 parameters.
        return _compare(column, "=", Condition(cond.field, "eq", cond.value, quantifier="any"), sql_type, refuse)
    if op in LIST_OPERATORS:
        if not is_list:
            raise refuse("applies to list fields only")
        operand = _bind(cond.value, sql_type)
        compare: Callable[[Any], ColumnElement[bool]] = {
            "cs": column.contains,
            "cd": column.contained_by,
            "ov": column.overlap,
        }[op]
        return compare(operand)
    if op in FULL_TEXT:
        if not (is_text or is_list):
            raise refuse("applies to text fields only")
        document = func.array_to_string(column, " ") if is_list else column
        query_function = {
            "fts": func.to_tsquery,
            "plfts": func.plainto_tsquery,
            "phfts": func.phraseto_tsquery,
            "wfts": func.websearch_to_tsquery,
        }[op]
        if cond.language:
            config = cast(literal(cond.language, Text), REGCONFIG)
            matches = func.to_tsvector(config, document).op("@@", is_comparison=True)
            return matches(query_function(config, _value(cond.value, Text(), lambda v: _text(v, refuse))))
        search = query_function(_value(cond.value, Text(), lambda v: _text(v, refuse)))
        return func.to_tsvector(document).op("@@", is_comparison=True)(search)
    if op in PATTERNS:
        if not is_text:
            raise refuse("applies to text fields only")
        sql_operator = {"like": "LIKE", "ilike": "ILIKE", "match": "~", "imatch": "~*"}[op]
        return _compare(column, sql_operator, cond, Text(), refuse)
    if op in COMPARISONS:
        sql_operator = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        return _compare(column, sql_operator, cond, sql_type, refuse)
    raise refuse("is not known")


def _compare(
    column: ColumnElement[Any],
    sql_operator: str,
    cond: Condition,
    sql_type: TypeEngine[Any],
    refuse: Callable[[str], InvalidInput],
) -> ColumnElement[Any]:
    if cond.quantifier is None:
        return column.op(sql_operator, is_comparison=True)(_bind(cond.value, sql_type))
    texts = _value(cond.value, ARRAY(Text), lambda v: [_text(item, refuse) for item in _as_list(v, refuse)])
    array = cast(texts, ARRAY(sql_type))
    quantified = any_(array) if cond.quantifier == "any" else all_(array)
    return column.op(sql_operator, is_comparison=True)(quantified)


def _as_list(value: Any, refuse: Callable[[str], InvalidInput]) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise refuse("takes a list of values")
    return list(value)


def _text(value: Any, refuse: Callable[[str], InvalidInput]) -> str:
    if isinstance(value, str):
        if "\x00" in value:
            raise refuse("values cannot contain a NUL character")
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    raise refuse(f"cannot compare with {type(value).__name__}")


def _bind(value: Any, sql_type: TypeEngine[Any], pick: Callable[[Any], Any] | None = None) -> ColumnElement[Any]:
    """A bound value of the column's type; text is cast by PostgreSQL, as PostgREST leaves it to do.
    `pick` takes the value out of the condition's value (one item of a list)."""
    pick = pick or _same
    given = pick(value.value if isinstance(value, Slot) else value)
    if isinstance(sql_type, ARRAY) and isinstance(given, (list, tuple)):
        return _value(value, sql_type, lambda v: _strings(pick(v)))
    if isinstance(given, str):
        bound = _value(value, Text(), lambda v: _no_nul(pick(v)))
        return bound if isinstance(sql_type, Text) else cast(bound, sql_type)
    return _value(value, sql_type, pick)


def _value(value: Any, sql_type: TypeEngine[Any], convert: Callable[[Any], Any]) -> ColumnElement[Any]:
    """A client value as a bound parameter. A slot's parameter is named and recorded, so that
    another plan of the same shape can run the statement with its own value, `convert`ed."""
    parameters = _PARAMETERS.get()
    if not isinstance(value, Slot):
        return literal(convert(value), sql_type)
    if parameters is None:
        return literal(convert(value.value), sql_type)
    name = f"v{len(parameters)}"
    parameters.append((name, value.index, convert))
    return bindparam(name, convert(value.value), type_=sql_type)


def _same(value: Any) -> Any:
    return value


def _item(index: int) -> Callable[[Any], Any]:
    return lambda values: values[index]


def _strings(value: Any) -> list[str]:
    if not all(isinstance(v, str) and "\x00" not in v for v in value):
        raise InvalidInput("list values must be strings", reason=InvalidReason.FORMAT)
    return list(value)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise InvalidInput("values cannot contain a NUL character", reason=InvalidReason.FORMAT)
    return value


# ---------------------------------------------------------------- order


def _order(ent: Entity, source: FromClause, terms: tuple[OrderTerm, ...]) -> list[ColumnElement[Any]]:
    clauses: list[ColumnElement[Any]] = []
    for term in terms:
        if term.relation is not None:
            relation = _relation(ent, term.relation)
            if relation.kind is not RelationKind.TO_ONE:
                raise InvalidInput(
                    f"{ent.resource} can be ordered only by a to-one relation, not {relation.name}",
                    field=relation.name,
                    reason=InvalidReason.RULE,
                    entity=ent.name,
                )
            other = entity_named(relation.target)
            related = TABLES[other.name].alias(f"o{len(clauses)}")
            f = _field(other, term.field)
            value = _path_value(f, related, term.path, term.path_as_text) if term.path else related.c[f.columns[0]]
            targets: list[ColumnElement[Any]] = [
                readable(select(value).where(_link(relation, related, source)), other, related).scalar_subquery()
            ]
        else:
            f = _field(ent, term.field)
            if term.path:
                targets = [_path_value(f, source, term.path, term.path_as_text)]
            else:
                targets = [source.c[c] for c in f.columns]
        for target in targets:
            clause = target.desc() if term.descending else target.asc()
            if term.nulls_first is True:
                clause = clause.nulls_first()
            elif term.nulls_first is False:
                clause = clause.nulls_last()
            clauses.append(clause)
    return clauses
