"""From a parsed PostgREST request to the shared query plan (`api.plan`).

Every name the client wrote is resolved here against `api.entities`; what
does not resolve is refused with the error PostgREST gives for it, so that
nothing unchecked reaches the query layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.entities import Entity, Field, Kind, Relation, RelationKind
from api.entities import entity as entity_named
from api.plan import (
    CASTS,
    Aggregate,
    And,
    Column,
    Condition,
    Embed,
    Filter,
    Not,
    Or,
    OrderTerm,
    ReadPlan,
    Spread,
    all_of,
    replaced,
)
from api.rest import errors
from api.rest.errors import RestError
from api.rest.grammar import parse_array_literal
from api.rest.syntax import (
    EmbedPath,
    FieldRef,
    FilterExpr,
    LogicTree,
    OpExpr,
    OrderItem,
    QueryString,
    SelectField,
    SelectItem,
    SelectRelation,
)

PG_TYPES = {
    Kind.ID: "text",
    Kind.TEXT: "text",
    Kind.ENUM: "text",
    Kind.DATE: "date",
    Kind.TIMESTAMP: "timestamp with time zone",
    Kind.INTEGER: "integer",
    Kind.TEXT_LIST: "text[]",
    Kind.TIMEFRAME: "jsonb",
}
PATTERN_SQL = {"like": "~~", "ilike": "~~*", "match": "~", "imatch": "~*"}
LIST_SQL = {"cs": "@>", "cd": "<@", "ov": "&&"}
RANGE_SQL = {"sl": "<<", "sr": ">>", "nxr": "&<", "nxl": "&>", "adj": "-|-"}
# PostgreSQL's names of the types a field or a cast gives an aggregate, and the types each aggregate takes.
CAST_PG_TYPES = {
    "varchar": "character varying",
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "bool": "boolean",
    "float8": "double precision",
    "float4": "real",
}
NUMBERS = frozenset({"integer", "bigint", "numeric", "double precision", "real"})
ORDERED = NUMBERS | {"text", "character varying", "date", "timestamp with time zone", "timestamp without time zone"}
AGGREGATE_TYPES = {"sum": NUMBERS, "avg": NUMBERS, "min": ORDERED | {"text[]"}, "max": ORDERED | {"text[]"}}


@dataclass
class _Planning:
    qs: QueryString
    strip_nulls: bool
    # The embed paths the select reaches (filters, orders and ranges elsewhere are refused).
    used: set[EmbedPath]


def read_plan(
    ent: Entity,
    qs: QueryString,
    *,
    limit: int | None,
    offset: int | None,
    strip_nulls: bool = False,
    aggregates: bool = True,
) -> ReadPlan:
    """The whole read: select tree, filters, logic, order and ranges at every level. `aggregates`: whether
    aggregate functions may be used (PostgREST's db-aggregates-enabled); else they are refused (PGRST123)."""
    if not aggregates:
        # As PostgREST: the relationships are resolved before aggregates are refused.
        _refuse_aggregates(ent, qs.select)
    planning = _Planning(qs, strip_nulls, set())
    plan = _level(ent, qs.select, (), planning)
    _check_paths(qs, planning.used)
    return replaced(plan, limit=limit, offset=offset or None)


def write_filter(ent: Entity, qs: QueryString) -> Filter | None:
    """The rows an update or delete touches: the top-level filters and logic trees."""
    conditions = [_filter_expr(ent, f) for path, f in qs.filters if not path]
    conditions += [_logic(ent, tree) for path, tree in qs.logic if not path]
    return all_of(*conditions)


def order_terms(ent: Entity, qs: QueryString) -> tuple[OrderTerm, ...]:
    return tuple(_order(ent, item) for path, items in qs.order if not path for item in items)


# ---------------------------------------------------------------- one level


def _level(
    ent: Entity, items: tuple[SelectItem, ...], path: EmbedPath, planning: _Planning, spread: bool = False
) -> ReadPlan:
    """One level of the select tree. In a spread, the fields are always listed (the keys to lift)."""
    qs = planning.qs
    planning.used.add(path)
    # Columns, aggregates and stars as selected; then embeds and spreads (PostgREST's order of the keys).
    selected: list[Column | Aggregate | None] = []
    embeds: list[Embed] = []
    spreads: list[Spread] = []
    related: list[str] = []
    for item in items:
        if isinstance(item, SelectRelation) and item.spread:
            spreads.append(_spread(ent, item, path, planning))
            related += spreads[-1].plan.layout or ()
        elif isinstance(item, SelectRelation):
            embeds.append(_embed(ent, item, path, planning))
            related.append(embeds[-1].key)
        elif item.aggregate is not None:
            selected.append(_aggregate(ent, item))
        elif item.field.name == "*":
            selected.append(None)
        else:
            selected.append(_column(ent, item))
    star = None in selected
    columns = [c for c in selected if isinstance(c, Column)]
    aggregates = [a for a in selected if isinstance(a, Aggregate)]
    listed = spread or bool(columns or aggregates or spreads)
    if star and listed:
        # Every field, where the star stands.
        every = [Column(f.name, f.name) for f in ent.fields if not f.internal]
        selected = [c for item in selected for c in (every if item is None else [item])]
        columns = [c for c in selected if isinstance(c, Column)]
    own = [item.key for item in selected if item is not None]
    chosen = None if (star or not items) and not listed else tuple(columns)

    keys = {e.key: e for e in embeds}
    conditions: list[Filter] = []
    for filter_path, f in qs.filters:
        if filter_path != path:
            continue
        embed = keys.get(f.field.name) if not f.field.path else None
        if embed is not None and ent.field(f.field.name) is None:
            keys[embed.key] = _null_filter(embed, f.expr)
            continue
        conditions.append(_filter_expr(ent, f))
    conditions += [_logic(ent, tree) for logic_path, tree in qs.logic if logic_path == path]
    order = tuple(_order(ent, item) for order_path, items_ in qs.order if order_path == path for item in items_)
    limit = offset = None
    if path:
        limit = qs.limits.get(path)
        offset = qs.offsets.get(path)
        if limit is not None and limit < 0:
            raise errors.invalid_range("Limit should be greater than or equal to zero.")
        if offset is not None and offset < 0:
            raise RestError(400, "2201X", "OFFSET must not be negative")
    return ReadPlan(
        entity=ent.name,
        where=all_of(*conditions),
        order=order,
        limit=limit,
        offset=offset or None,
        columns=chosen,
        embeds=tuple(keys.values()),
        strip_nulls=planning.strip_nulls,
        aggregates=tuple(aggregates),
        spreads=tuple(spreads),
        layout=(*own, *related) if spread or aggregates or spreads else None,
    )


def _spread(ent: Entity, item: SelectRelation, path: EmbedPath, planning: _Planning) -> Spread:
    """`...rel(a,b)`: the keys of related rows lifted into this row (to-many: arrays of their values)."""
    relation = resolve_relation(ent, item.name, item.hint)
    target = entity_named(relation.target)
    plan = _level(target, item.children, (*path, item.name), planning, spread=True)
    if relation.many and _aggregated(plan, target):
        raise errors.not_implemented("Aggregates are not implemented for one-to-many or many-to-many spreads.")
    return Spread(relation.name, plan, inner=item.inner)


def _aggregated(plan: ReadPlan, ent: Entity) -> bool:
    """The plan has aggregates of its own, or hoisted from a to-one spread."""
    return bool(plan.aggregates) or any(
        not relation.many and _aggregated(s.plan, entity_named(relation.target))
        for s in plan.spreads
        for relation in [resolve_relation(ent, s.relation, None)]
    )


def _refuse_aggregates(ent: Entity, items: tuple[SelectItem, ...]) -> None:
    """PGRST123 for a select with an aggregate anywhere, once every relationship in it is resolved."""

    def resolve(ent: Entity, items: tuple[SelectItem, ...]) -> bool:
        found = False
        for item in items:
            if isinstance(item, SelectRelation):
                found |= resolve(entity_named(resolve_relation(ent, item.name, item.hint).target), item.children)
            else:
                found |= item.aggregate is not None
        return found

    if resolve(ent, items):
        raise errors.aggregates_not_allowed()


def _embed(ent: Entity, item: SelectRelation, path: EmbedPath, planning: _Planning) -> Embed:
    relation = resolve_relation(ent, item.name, item.hint)
    key = item.alias or item.name
    target = entity_named(relation.target)
    plan = _level(target, item.children, (*path, key), planning)
    return Embed(key=key, relation=relation.name, plan=plan, inner=item.inner)


def _null_filter(embed: Embed, expr: OpExpr) -> Embed:
    """`rel=not.is.null` keeps the rows that have related rows (as `!inner` does), `rel=is.null` those without."""
    if expr.op == "is" and expr.value in ("null", "not_null"):
        related = (expr.value == "null") == expr.negated
        return Embed(embed.key, embed.relation, embed.plan, inner=related, empty=not related)
    raise errors.unacceptable_filter(embed.key)


def resolve_relation(ent: Entity, name: str, hint: str | None) -> Relation:
    """An embed by relation name or by the target's resource name, narrowed by a `!hint`."""
    candidates = [r for r in ent.relations if r.name == name]
    if not candidates:
        candidates = [r for r in ent.relations if entity_named(r.target).resource == name]
    if hint is not None:
        candidates = [r for r in candidates if hint in (r.name, r.via, f"{_holder(ent, r).resource}_{r.via}_fkey")]
    if not candidates:
        raise errors.no_relationship(ent.resource, name, hint)
    if len(candidates) > 1:
        raise errors.ambiguous_relationship(ent.resource, name, [r.name for r in candidates])
    return candidates[0]


def _holder(ent: Entity, relation: Relation) -> Entity:
    """The entity whose column carries the link."""
    if relation.kind in (RelationKind.TO_ONE, RelationKind.LIST_TO_MANY):
        return ent
    return entity_named(relation.target)


def _check_paths(qs: QueryString, used: set[EmbedPath]) -> None:
    paths = (
        [p for p, _ in qs.filters]
        + [p for p, _ in qs.logic]
        + [p for p, _ in qs.order]
        + list(qs.limits)
        + list(qs.offsets)
    )
    for path in paths:
        if path and path not in used:
            raise errors.not_embedded(path[-1])


# ---------------------------------------------------------------- fields


def field_of(ent: Entity, name: str) -> Field:
    f = ent.field(name)
    if f is None:
        raise errors.undefined_column(ent.resource, name)
    return f


def _column(ent: Entity, item: SelectField) -> Column:
    f = field_of(ent, item.field.name)
    _check_cast(item.cast)
    keys, as_text = _path(item.field)
    key = item.alias or (keys[-1] if keys else f.name)
    return Column(key=key, field=f.name, path=keys, path_as_text=as_text, cast=item.cast)


def _check_cast(cast: str | None) -> None:
    if cast is not None and cast.lower() not in CASTS:
        raise RestError(400, "42704", f'type "{cast}" does not exist')


def _aggregate(ent: Entity, item: SelectField) -> Aggregate:
    """`field.sum()`, `count()`...: keyed by the function's name unless aliased (as PostgreSQL names it)."""
    function = item.aggregate
    assert function is not None
    key = item.alias or function
    _check_cast(item.cast)
    _check_cast(item.aggregate_cast)
    if item.field.name == "*":
        return Aggregate(key=key, function="count", result_cast=item.aggregate_cast)
    f = field_of(ent, item.field.name)
    keys, as_text = _path(item.field)
    if item.cast is not None:
        pg_type = CAST_PG_TYPES.get(item.cast.lower(), item.cast.lower())
    elif keys:
        pg_type = "text" if as_text else "jsonb"
    else:
        pg_type = PG_TYPES[f.kind]
    if function in AGGREGATE_TYPES and pg_type not in AGGREGATE_TYPES[function]:
        raise RestError(
            404,
            "42883",
            f"function {function}({pg_type}) does not exist",
            hint="No function matches the given name and argument types. You might need to add explicit type casts.",
        )
    return Aggregate(
        key=key,
        function=function,
        field=f.name,
        path=keys,
        path_as_text=as_text,
        cast=item.cast,
        result_cast=item.aggregate_cast,
    )


def _path(ref: FieldRef) -> tuple[tuple[str, ...], bool]:
    if not ref.path:
        return (), False
    return tuple(key for _, key in ref.path), ref.path[-1][0] == "->>"


def _order(ent: Entity, item: OrderItem) -> OrderTerm:
    relation_name = None
    owner = ent
    if item.relation is not None:
        relation = resolve_relation(ent, item.relation, None)
        if relation.many:
            raise errors.related_order_not_to_one(ent.resource, item.relation)
        relation_name = relation.name
        owner = entity_named(relation.target)
    f = field_of(owner, item.field.name)
    keys, as_text = _path(item.field)
    nulls = None if item.nulls is None else item.nulls == "first"
    return OrderTerm(
        field=f.name,
        descending=bool(item.descending),
        nulls_first=nulls,
        path=keys,
        path_as_text=as_text if keys else True,
        relation=relation_name,
    )


# ---------------------------------------------------------------- filters


def _logic(ent: Entity, tree: LogicTree) -> Filter:
    items = tuple(_logic(ent, i) if isinstance(i, LogicTree) else _filter_expr(ent, i) for i in tree.items)
    combined: Filter = And(items) if tree.op == "and" else Or(items)
    return Not(combined) if tree.negated else combined


def _filter_expr(ent: Entity, f: FilterExpr) -> Filter:
    field = field_of(ent, f.field.name)
    expr = f.expr
    keys, as_text = _path(f.field)
    _check_operator(ent, field, expr, bool(keys))
    value: Any = expr.value
    if expr.op in ("like", "ilike"):
        value = _patterns(value)
    if expr.quantifier is not None:
        listed = parse_array_literal(value) if isinstance(value, str) else value
        if listed is None:
            raise RestError(
                400,
                "22P02",
                f'malformed array literal: "{value}"',
                'Array value must start with "{" or dimension information.',
            )
        value = listed
    condition = Condition(
        field=field.name,
        op=expr.op,
        value=value,
        path=keys,
        path_as_text=as_text if keys else True,
        quantifier=expr.quantifier,
        language=expr.language,
    )
    return Not(condition) if expr.negated else condition


def _patterns(value: str | list[str]) -> str | list[str]:
    # PostgREST lets * stand for % in like patterns, since % is awkward in URLs.
    if isinstance(value, list):
        return [v.replace("*", "%") for v in value]
    return value.replace("*", "%")


def _check_operator(ent: Entity, f: Field, expr: OpExpr, has_path: bool) -> None:
    """Refuse, as PostgreSQL would through PostgREST, operators that the field's type lacks."""
    pg_type = "text" if has_path else PG_TYPES[f.kind]
    op = expr.op

    def missing(sql: str) -> RestError:
        return RestError(
            404,
            "42883",
            f"operator does not exist: {pg_type} {sql} unknown",
            hint="No operator matches the given name and argument types. You might need to add explicit type casts.",
        )

    if op in RANGE_SQL:
        raise missing(RANGE_SQL[op])
    if op == "is" and expr.value in ("true", "false", "unknown"):
        raise RestError(400, "42804", f"argument of IS {expr.value.upper()} must be type boolean, not type {pg_type}")
    if f.kind is Kind.TIMEFRAME and not has_path and not (op == "is"):
        raise RestError(
            400,
            "22P02",
            "invalid input syntax for type json",
            "Filter on timeframe->>start or timeframe->>end, e.g. timeframe->>start=gte.2026-01-01",
        )
    if op in PATTERN_SQL and pg_type != "text":
        raise missing(PATTERN_SQL[op])
    if op in LIST_SQL and (has_path or not f.is_list):
        raise missing(LIST_SQL[op])
    if op in ("fts", "plfts", "phfts", "wfts") and pg_type not in ("text", "text[]"):
        raise RestError(
            404,
            "42883",
            f"function to_tsvector({pg_type}) does not exist",
            hint="No function matches the given name and argument types. You might need to add explicit type casts.",
        )
