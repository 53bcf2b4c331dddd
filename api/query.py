"""Render a `ReadPlan` to one SQL statement that returns JSON built by PostgreSQL.

Every level of a plan becomes a subquery over its table (filtered, ordered
and paged) and a JSON_OBJECT over that subquery's columns; related rows are
correlated subqueries aggregated with json_agg. One statement answers the
whole tree, whatever its depth or the number of rows, and the JSON text
passes to the client untouched.

Identifiers come only from `api.entities`; every client value is a bound
parameter, cast by PostgreSQL to the column's type, so that a malformed
value fails exactly as it would in PostgREST (and is mapped to a 4xx).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    FromClause,
    Integer,
    Numeric,
    Select,
    Text,
    and_,
    any_,
    all_,
    bindparam,
    case,
    cast,
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
from sqlalchemy.dialects.postgresql import JSON, JSONB, REGCONFIG, aggregate_order_by, array as pg_array
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement, ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeEngine

from .entities import Entity, Field, Kind, Relation, RelationKind, entity as entity_named
from .errors import InvalidInput, InvalidReason
from .models import TABLES
from .plan import (
    COMPARISONS,
    FULL_TEXT,
    LIST_OPERATORS,
    PATTERNS,
    And,
    Column,
    Condition,
    Filter,
    Not,
    Or,
    OrderTerm,
    ReadPlan,
    Related,
    Slot,
    parameterized,
)

EMPTY_ARRAY = literal_column("'[]'::json", JSON)
JSON_NULL = literal_column("'null'::json", JSON)
ORDINAL = "__ordinal"

# The casts `select=field::type` may ask for; anything else is refused.
CASTS: dict[str, TypeEngine] = {
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
}


class JsonObject(ColumnElement):
    """PostgreSQL's JSON_OBJECT(k : v, ... [ABSENT ON NULL]); keys are our own names.

    Cacheable: the keys, the null rule and the values all take part in the cache
    key, so a plan shape compiles once and two shapes that differ only in their
    output keys never share a compiled statement."""

    inherit_cache = True
    type = JSON()
    _traverse_internals = [
        ("json_keys", InternalTraversal.dp_string_list),
        ("json_values", InternalTraversal.dp_clauseelement_list),
        ("absent_on_null", InternalTraversal.dp_boolean),
    ]

    def __init__(self, pairs: list[tuple[str, ColumnElement]], absent_on_null: bool) -> None:
        self.json_keys = tuple(key for key, _ in pairs)
        self.json_values = tuple(value for _, value in pairs)
        self.absent_on_null = absent_on_null

    @property
    def pairs(self) -> list[tuple[str, ColumnElement]]:
        return list(zip(self.json_keys, self.json_values))

    @property
    def _from_objects(self) -> list[FromClause]:
        return [source for value in self.json_values for source in value._from_objects]


@compiles(JsonObject)
def _compile_json_object(element: JsonObject, compiler: Any, **kw: Any) -> str:
    items = ", ".join(f"{_sql_string(key)} : {compiler.process(value, **kw)}"
                      for key, value in zip(element.json_keys, element.json_values))
    suffix = " ABSENT ON NULL" if element.absent_on_null else ""
    return f"JSON_OBJECT({items}{suffix})"


def _sql_string(text: str) -> str:
    if "\x00" in text:
        raise InvalidInput("names cannot contain a NUL character", reason=InvalidReason.FORMAT)
    return "'" + text.replace("'", "''") + "'"


# ---------------------------------------------------------------- statements


def array_statement(plan: ReadPlan) -> Select:
    """One row, one column: the JSON array of every row the plan selects, as text (values bound in it)."""
    return _array(plan)


def _array(plan: ReadPlan) -> Select:
    source = _rows(plan, depth=0).subquery("s0")
    return select(cast(_json_array(plan, source), Text), func.count())


@dataclass(frozen=True, eq=False)
class Prepared:
    """A statement built once for a plan's shape; each plan of that shape runs it with its own values.

    `parameters` names, for each bound parameter that holds a client value, the
    plan's slot it comes from and how the value is turned into the parameter
    (the same checks and conversions the statement was built with)."""

    statement: Select
    parameters: tuple[tuple[str, int, Callable[[Any], Any]], ...]

    def arguments(self, values: list[Any]) -> dict[str, Any]:
        return {name: convert(values[index]) for name, index, convert in self.parameters}


def prepared_array(plan: ReadPlan) -> tuple[Prepared, dict[str, Any]]:
    """`array_statement` for the plan's shape, and the plan's own values for its parameters.

    The statement answers one row of two columns: the JSON array as text, and its number of
    rows. Building a nested statement costs milliseconds of Python, more than compiling it once
    it is in SQLAlchemy's cache, so the statements of recent shapes are kept. A shape is the
    plan with its values left out (`plan.parameterized`)."""
    shape, values = parameterized(plan)
    key: Any = shape
    try:
        prepared = _STATEMENTS.get(key)
    except TypeError:  # something outside the conditions that cannot be hashed: the repr tells shapes apart
        key = repr(shape)
        prepared = _STATEMENTS.get(key)
    if prepared is None:
        parameters: list[tuple[str, int, Callable[[Any], Any]]] = []
        token = _PARAMETERS.set(parameters)
        try:
            statement = _array(shape)
        finally:
            _PARAMETERS.reset(token)
        prepared = _STATEMENTS[key] = Prepared(statement, tuple(parameters))
        if len(_STATEMENTS) > STATEMENT_CACHE_SIZE:
            _STATEMENTS.popitem(last=False)
        # Built from this very plan: its values are the statement's own.
        return prepared, {}
    _STATEMENTS.move_to_end(key)
    return prepared, prepared.arguments(values)


STATEMENT_CACHE_SIZE = 256
_STATEMENTS: OrderedDict[Any, Prepared] = OrderedDict()
# While a shape's statement is built: its client-value parameters, in the order they are bound.
_PARAMETERS: ContextVar[list[tuple[str, int, Callable[[Any], Any]]] | None] = ContextVar("parameters", default=None)


def rows_statement(plan: ReadPlan) -> Select:
    """One row per result row, each a JSON object as text, in the plan's order (for streaming)."""
    source = _rows(plan, depth=0).subquery("s0")
    ent = entity_named(plan.entity)
    return select(cast(_row_json(plan, ent, source, depth=0), Text)).order_by(*_order(ent, source, plan.order))


def count_statement(plan: ReadPlan) -> Select:
    """The number of rows matching the plan's filter, ignoring its page."""
    ent = entity_named(plan.entity)
    table = TABLES[ent.name]
    statement = select(func.count()).select_from(table)
    clause = _where(plan, ent, table, depth=0)
    return statement.where(clause) if clause is not None else statement


class Explain(Executable, ClauseElement):
    """EXPLAIN (FORMAT JSON) of a statement, its bound values kept as parameters."""

    inherit_cache = False

    def __init__(self, statement: Select) -> None:
        self.statement = statement


@compiles(Explain)
def _compile_explain(element: Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


def explain_statement(plan: ReadPlan) -> Explain:
    """The planner's view of the rows matching the plan's filter (its estimate of their number, at the top)."""
    ent = entity_named(plan.entity)
    table = TABLES[ent.name]
    statement = select(table.c.id)
    clause = _where(plan, ent, table, depth=0)
    return Explain(statement.where(clause) if clause is not None else statement)


def filter_clause(entity_name: str, where: Filter | None, source: FromClause | None = None) -> ColumnElement | None:
    """The SQL condition for `where` over the entity's table (for the write service)."""
    ent = entity_named(entity_name)
    return _filter(ent, source if source is not None else TABLES[ent.name], where) if where is not None else None


# ---------------------------------------------------------------- one level


def _rows(plan: ReadPlan, depth: int, relation: Relation | None = None,
          parent: FromClause | None = None) -> Select:
    """The rows of one level: the table's columns, filtered, ordered, paged, linked to the parent row."""
    ent = entity_named(plan.entity)
    table: FromClause = TABLES[ent.name]
    if parent is table:
        # A relation of a table to itself (parent, children) read against the table itself, as
        # the EXISTS of !inner does: the related rows need their own name.
        table = table.alias(f"t{depth}")
    order = _order(ent, table, plan.order)
    if relation is not None and relation.kind is RelationKind.LIST_TO_MANY:
        assert parent is not None
        listed = (func.unnest(parent.c[relation.via]).table_valued("id", with_ordinality=ORDINAL)
                  .render_derived(name=f"u{depth}"))
        statement = select(table, listed.c[ORDINAL]).select_from(listed.join(table, table.c.id == listed.c.id))
        order = order or [listed.c[ORDINAL]]
    else:
        statement = select(table)
        if relation is not None:
            statement = statement.where(_link(relation, table, parent))
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


def _where(plan: ReadPlan, ent: Entity, table: FromClause, depth: int) -> ColumnElement | None:
    clauses = [] if plan.where is None else [_filter(ent, table, plan.where)]
    for embed in plan.embeds:
        if embed.inner or embed.empty:
            relation = _relation(ent, embed.relation)
            inner = _rows(embed.plan, depth + 1, relation, table).limit(None).offset(None).order_by(None)
            related = exists(inner.with_only_columns(literal(1)).scalar_subquery())
            clauses.append(related if embed.inner else not_(related))
    return and_(*clauses) if clauses else None


def _link(relation: Relation, target: FromClause, parent: FromClause | None) -> ColumnElement:
    assert parent is not None
    match relation.kind:
        case RelationKind.TO_ONE:
            return target.c.id == parent.c[relation.via]
        case RelationKind.TO_MANY:
            return target.c[relation.via] == parent.c.id
        case RelationKind.LIST_TO_MANY:
            return target.c.id == any_(parent.c[relation.via])
        case RelationKind.LIST_REVERSE:
            # ARRAY[parent.id] names this parent's id only (an ARRAY(SELECT ...) would not correlate
            # and would ask for every parent's id at once); @> can use the list column's GIN index.
            return target.c[relation.via].contains(cast(pg_array([parent.c.id]), ARRAY(Text)))
    raise AssertionError(relation.kind)


def _json_array(plan: ReadPlan, source: FromClause, depth: int = 0) -> ColumnElement:
    ent = entity_named(plan.entity)
    row = _row_json(plan, ent, source, depth)
    order = _order(ent, source, plan.order)
    if not order and ORDINAL in source.c:
        order = [source.c[ORDINAL]]
    aggregated = func.json_agg(aggregate_order_by(row, *order)) if order else func.json_agg(row)
    return func.coalesce(aggregated, EMPTY_ARRAY)


def _row_json(plan: ReadPlan, ent: Entity, source: FromClause, depth: int) -> ColumnElement:
    full = plan.columns is None
    if full:
        pairs = [(f.name, _field_value(f, source)) for f in ent.fields if not f.internal]
    else:
        pairs = [(c.key, _column_value(ent, source, c)) for c in plan.columns]
    for embed in plan.embeds:
        value = _embed_value(ent, source, embed.relation, embed.plan, depth)
        # In a full representation nulls are left out, but an embed the client named stays.
        pairs.append((embed.key, func.coalesce(value, JSON_NULL) if full and not plan.strip_nulls else value))
    for count in plan.counts:
        relation = _relation(ent, count.relation)
        target = entity_named(relation.target)
        counted = ReadPlan(entity=target.name, where=count.where)
        inner = _rows(counted, depth + 1, relation, source).subquery(f"c{depth + 1}")
        pairs.append((count.key, select(func.count()).select_from(inner).scalar_subquery()))
    for match in plan.matches:
        pairs.append((match.key, case((_filter(ent, source, match.where), true()), else_=false())))
    return JsonObject(pairs, absent_on_null=full or plan.strip_nulls)


def _embed_value(ent: Entity, source: FromClause, name: str, plan: ReadPlan, depth: int) -> ColumnElement:
    relation = _relation(ent, name)
    if plan.entity != relation.target:
        raise AssertionError(f"embed {name} selects {plan.entity}, not {relation.target}")
    inner = _rows(plan, depth + 1, relation, source).subquery(f"s{depth + 1}")
    if relation.many:
        return select(_json_array(plan, inner, depth + 1)).scalar_subquery()
    target = entity_named(relation.target)
    return select(_row_json(plan, target, inner, depth + 1)).limit(1).scalar_subquery()


def _relation(ent: Entity, name: str) -> Relation:
    relation = ent.relation(name)
    if relation is None:
        raise InvalidInput(f"{ent.resource} has no relationship {name!r}", field=name,
                           reason=InvalidReason.UNKNOWN_RELATION, entity=ent.name)
    return relation


# ---------------------------------------------------------------- fields


def _field(ent: Entity, name: str) -> Field:
    f = ent.field(name)
    if f is None:
        raise InvalidInput(f"{ent.resource} has no field {name!r}", field=name,
                           reason=InvalidReason.UNKNOWN_FIELD, entity=ent.name)
    return f


def _field_value(f: Field, source: FromClause) -> ColumnElement:
    """A field's value as it appears in a document."""
    if f.kind is Kind.TIMEFRAME:
        start, end = (source.c[c] for c in f.columns)
        return case((and_(start.is_(None), end.is_(None)), null()),
                    else_=JsonObject([("start", start), ("end", end)], absent_on_null=True))
    return source.c[f.columns[0]]


def _column_value(ent: Entity, source: FromClause, column: Column) -> ColumnElement:
    if column.relation is not None:
        return _related_value(ent, source, column)
    f = _field(ent, column.field)
    value = _path_value(f, source, column.path, column.path_as_text) if column.path else _field_value(f, source)
    if column.cast is None:
        return value
    target = CASTS.get(column.cast.lower())
    if target is None:
        raise InvalidInput(f"cannot cast to {column.cast!r}; known types: {', '.join(sorted(CASTS))}",
                           field=column.field, reason=InvalidReason.RULE, entity=ent.name)
    return cast(value, target)


def _related_value(ent: Entity, source: FromClause, column: Column) -> ColumnElement:
    """A field of the row a to-one relation points at, as a scalar subquery (null when there is none)."""
    relation = _relation(ent, column.relation or "")
    if relation.kind is not RelationKind.TO_ONE:
        raise InvalidInput(f"only fields of a to-one relation can be columns of {ent.resource}, not {relation.name}",
                           field=relation.name, reason=InvalidReason.RULE, entity=ent.name)
    other = entity_named(relation.target)
    related = TABLES[other.name].alias(f"r_{relation.name}")
    value = _column_value(other, related, Column(column.key, column.field, column.path, column.path_as_text,
                                                  column.cast))
    return select(value).where(related.c.id == source.c[relation.via]).scalar_subquery()


def _path_value(f: Field, source: FromClause, path: tuple[str, ...], as_text: bool) -> ColumnElement:
    """The value at `path` inside an object field; null where there is none (as jsonb paths in PostgreSQL)."""
    if f.kind is not Kind.TIMEFRAME or len(path) != 1 or path[0] not in ("start", "end"):
        return null() if as_text else cast(null(), JSON)
    value = source.c[f"{f.name}_{path[0]}"]
    return cast(value, Text) if as_text else func.to_json(value)


def _sql_type(f: Field, source: FromClause) -> TypeEngine:
    return source.c[f.columns[0]].type


# ---------------------------------------------------------------- filters


def _filter(ent: Entity, source: FromClause, where: Filter) -> ColumnElement:
    match where:
        case Condition():
            return _condition(ent, source, where)
        case And(items):
            return and_(true(), *(_filter(ent, source, item) for item in items))
        case Or(items):
            return or_(false(), *(_filter(ent, source, item) for item in items))
        case Not(item):
            return not_(_filter(ent, source, item))
        case Related(name, item):
            return _related(ent, source, name, item)
    raise AssertionError(f"not a filter: {where!r}")


def _related(ent: Entity, source: FromClause, name: str, where: Filter | None) -> ColumnElement:
    """EXISTS a row through the relation (matching `where`), correlated to the row in `source`."""
    relation = _relation(ent, name)
    target = entity_named(relation.target)
    # Aliased, so that a relation from a table to itself still correlates to the outer row.
    table = TABLES[target.name].alias()
    inner = select(literal(1)).select_from(table).where(_link(relation, table, source))
    if where is not None:
        inner = inner.where(_filter(target, table, where))
    return exists(inner.correlate(source).scalar_subquery())


def _condition(ent: Entity, source: FromClause, cond: Condition) -> ColumnElement:
    f = _field(ent, cond.field)

    def refuse(why: str) -> InvalidInput:
        return InvalidInput(f"operator {cond.op} {why}", field=cond.field, reason=InvalidReason.RULE,
                            entity=ent.name)

    if cond.path:
        column = _path_value(f, source, cond.path, cond.path_as_text)
        sql_type: TypeEngine = Text() if cond.path_as_text else JSONB()
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
        return {"cs": column.contains, "cd": column.contained_by, "ov": column.overlap}[op](operand)
    if op in FULL_TEXT:
        if not (is_text or is_list):
            raise refuse("applies to text fields only")
        document = func.array_to_string(column, " ") if is_list else column
        query_function = {"fts": func.to_tsquery, "plfts": func.plainto_tsquery,
                          "phfts": func.phraseto_tsquery, "wfts": func.websearch_to_tsquery}[op]
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


def _compare(column: ColumnElement, sql_operator: str, cond: Condition, sql_type: TypeEngine,
             refuse: Callable[[str], InvalidInput]) -> ColumnElement:
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
        return value.isoformat()
    raise refuse(f"cannot compare with {type(value).__name__}")


def _bind(value: Any, sql_type: TypeEngine, pick: Callable[[Any], Any] | None = None) -> ColumnElement:
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


def _value(value: Any, sql_type: TypeEngine, convert: Callable[[Any], Any]) -> ColumnElement:
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


def _order(ent: Entity, source: FromClause, terms: tuple[OrderTerm, ...]) -> list[ColumnElement]:
    clauses: list[ColumnElement] = []
    for term in terms:
        if term.relation is not None:
            relation = _relation(ent, term.relation)
            if relation.kind is not RelationKind.TO_ONE:
                raise InvalidInput(f"{ent.resource} can be ordered only by a to-one relation, not {relation.name}",
                                   field=relation.name, reason=InvalidReason.RULE, entity=ent.name)
            other = entity_named(relation.target)
            related = TABLES[other.name].alias(f"o{len(clauses)}")
            f = _field(other, term.field)
            value = _path_value(f, related, term.path, term.path_as_text) if term.path else related.c[f.columns[0]]
            targets = [select(value).where(related.c.id == source.c[relation.via]).scalar_subquery()]
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
