"""Aggregates on every connection, by @graphile/pg-aggregates' names: `aggregates { sum { ... } ... }` and
`groupedAggregates(groupBy: [...], having: ...) { keys ... }`, over the rows the connection's `where` selects
(its paging aside), and a goal story connection's `latestUpdates` (the latest update of each of its stories).

Declared here once, from `api.entities`: which aggregate applies to which field (`SPECS`), the group-by enum
and the having input of each entity, and each entity's connection type with these fields. Both ways of answering
read the same declarations: the compiled path (api/graphql/compiled.py) builds a `Summary` of the selection,
the resolvers one of every aggregate the type offers (`every_aggregate`); api/store/select.py renders both.

Where this departs from pg-aggregates, and why: min and max also apply to dates and timestamps (the latest
update's date is a dashboard's first question); `keys` may hold null (a group of rows without a value, common
here: updates without a status); groups come in the order of their keys, nulls last; the having filter of an
aggregate is that of its result's type (a distinct count compares with a BigInt); dates group by week and month
as well as timestamps by hour, day, week and month.
"""

from __future__ import annotations

import datetime as dt
import decimal
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from inspect import Parameter
from typing import Any, NewType

import strawberry
from graphql import IntValueNode, StringValueNode, ValueNode
from strawberry import UNSET, Info

from api.entities import ENTITIES, Entity, Field, Kind
from api.errors import InvalidInput, InvalidReason
from api.graphql.connections import Connection
from api.graphql.enums import CHOICES
from api.graphql.names import camel, type_name
from api.graphql.relations import LATEST_FIRST
from api.graphql.types import TYPES, resolver
from api.plan import (
    Aggregate,
    AggregateCondition,
    And,
    GroupKey,
    Keys,
    Nest,
    Or,
    Related,
    Spelling,
    Summary,
)

# ---------------------------------------------------------------- scalars (PostGraphile's, as strings)


def _big_int(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"BigInt takes an integer (or its decimal text), not {value!r}")
    try:
        return str(int(value))
    except ValueError:
        raise ValueError(f"BigInt takes an integer (or its decimal text), not {value!r}") from None


def _big_float(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"BigFloat takes a number (or its decimal text), not {value!r}")
    try:
        number = decimal.Decimal(str(value))
    except decimal.InvalidOperation:
        raise ValueError(f"BigFloat takes a number (or its decimal text), not {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"BigFloat takes a finite number, not {value!r}")
    return str(number)


def _literal(parse: Callable[[Any], str]) -> Callable[..., str]:
    def parse_literal(node: ValueNode, variables: Any = None) -> str:
        if isinstance(node, (IntValueNode, StringValueNode)) or hasattr(node, "value"):
            return parse(getattr(node, "value", None))
        raise ValueError("expected a number or its text")

    return parse_literal


BigInt = NewType("BigInt", str)
BigFloat = NewType("BigFloat", str)
# How each is served and read: the schema's `StrawberryConfig.scalar_map` (api/graphql/schema.py).
SCALAR_MAP: dict[object, Any] = {
    BigInt: strawberry.scalar(
        name="BigInt",
        description="A signed integer of any size, as its decimal text (as PostGraphile's BigInt).",
        serialize=str,
        parse_value=_big_int,
        parse_literal=_literal(_big_int),
    ),
    BigFloat: strawberry.scalar(
        name="BigFloat",
        description="A decimal number of any precision, as its text (as PostGraphile's BigFloat).",
        serialize=str,
        parse_value=_big_float,
        parse_literal=_literal(_big_float),
    ),
}


# ---------------------------------------------------------------- which aggregate applies to which field


def _numeric(f: Field) -> bool:
    return f.kind is Kind.INTEGER and not f.internal


def _ordered(f: Field) -> bool:
    return _numeric(f) or f.kind in (Kind.DATE, Kind.TIMESTAMP)


def _any(f: Field) -> bool:
    return True


@dataclass(frozen=True)
class Spec:
    """One aggregate of pg-aggregates: its field name (snake_case), the plan's function, the fields it applies
    to, its result type (given the field; None: the field's own type) and how the result is spelled."""

    name: str
    function: str
    applies: Callable[[Field], bool]
    about: str
    result: Any = None
    text: bool = False
    otherwise: Any = None
    distinct: bool = False

    @property
    def key(self) -> str:
        return camel(self.name)


SPECS: tuple[Spec, ...] = (
    Spec("sum", "sum", _numeric, "Sum", BigInt, text=True, otherwise=0),
    Spec("distinct_count", "count", _any, "Distinct count", BigInt, text=True, distinct=True),
    Spec("min", "min", _ordered, "Minimum"),
    Spec("max", "max", _ordered, "Maximum"),
    Spec("average", "avg", _numeric, "Mean average", BigFloat, text=True),
    Spec("stddev_sample", "stddev_samp", _numeric, "Sample standard deviation", BigFloat, text=True),
    Spec("stddev_population", "stddev_pop", _numeric, "Population standard deviation", BigFloat, text=True),
    Spec("variance_sample", "var_samp", _numeric, "Sample variance", BigFloat, text=True),
    Spec("variance_population", "var_pop", _numeric, "Population variance", BigFloat, text=True),
)
SPEC_BY_KEY = {spec.key: spec for spec in SPECS}


def fields_of(ent: Entity, spec: Spec) -> list[Field]:
    return [f for f in ent.fields if spec.applies(f)]


def _own_type(f: Field) -> Any:
    match f.kind:
        case Kind.INTEGER:
            return int
        case Kind.DATE:
            return dt.date
        case Kind.TIMESTAMP:
            return dt.datetime
    raise AssertionError(f"min and max do not apply to {f.name}")


def spelling(spec: Spec, f: Field) -> Spelling | None:
    """How an aggregate's value is written: big numbers as text, timestamps as the resolvers write them."""
    if spec.text:
        return Spelling.TEXT
    return Spelling.ISO_TIMESTAMP if f.kind is Kind.TIMESTAMP else None


def aggregate(spec: Spec, f: Field, key: str) -> Aggregate:
    return Aggregate(
        key, spec.function, f.name, distinct=spec.distinct, spelling=spelling(spec, f), otherwise=spec.otherwise
    )


# ---------------------------------------------------------------- group by


def _truncations(f: Field) -> tuple[str, ...]:
    if f.kind is Kind.TIMESTAMP:
        return ("hour", "day", "week", "month")
    if f.kind is Kind.DATE:
        return ("week", "month")
    return ()


def _groupable(f: Field) -> bool:
    # Not a unique field (a group per row), a list or a timeframe.
    return f.name != "id" and not f.internal and f.kind not in (Kind.TEXT_LIST, Kind.TIMEFRAME)


def _group_by_enum(ent: Entity) -> type[Enum]:
    members: dict[str, str] = {}
    for f in ent.fields:
        if not _groupable(f):
            continue
        members[f.name.upper()] = f.name
        for unit in _truncations(f):
            members[f"{f.name}_truncated_to_{unit}".upper()] = f"{f.name}:{unit}"
    enum = Enum(f"{type_name(ent)}GroupBy", members)  # type: ignore[misc]
    return strawberry.enum(
        enum,
        description=f"What {ent.resource.replace('_', ' ')} can be grouped by: a field's value, or a date or "
        "timestamp truncated to the start of its hour, day, week (Monday) or month (in UTC).",
    )


def group_key(entity_name: str, member: Enum) -> GroupKey:
    """The plan's group key for a group-by enum member; keys are spelled as the field's values are."""
    name, _, unit = str(member.value).partition(":")
    f = ENTITIES[entity_name].field(name)
    assert f is not None
    key_spelling = (
        Spelling.UPPER
        if (entity_name, name) in CHOICES
        else Spelling.ISO_TIMESTAMP
        if f.kind is Kind.TIMESTAMP
        else None
    )
    return GroupKey(name, unit or None, key_spelling)


# ---------------------------------------------------------------- having

HAVING_OPERATORS = {
    "equal_to": "eq",
    "not_equal_to": "neq",
    "greater_than": "gt",
    "greater_than_or_equal_to": "gte",
    "less_than": "lt",
    "less_than_or_equal_to": "lte",
}


def _having_filter(name: str, value_type: Any, what: str) -> type:
    annotations = {attribute: value_type | None for attribute in HAVING_OPERATORS}
    namespace: dict[str, Any] = {"__module__": __name__, "__annotations__": annotations}
    for attribute in HAVING_OPERATORS:
        namespace[attribute] = strawberry.field(default=UNSET)
    return strawberry.input(
        type(name, (), namespace), description=f"Conditions on an aggregate that is {what}; every one given must hold."
    )


HavingIntFilter = _having_filter("HavingIntFilter", int, "an integer")
HavingBigintFilter = _having_filter("HavingBigintFilter", BigInt, "a BigInt")
HavingBigfloatFilter = _having_filter("HavingBigfloatFilter", BigFloat, "a BigFloat")
HavingDatetimeFilter = _having_filter("HavingDatetimeFilter", dt.datetime, "a timestamp")
HavingDateFilter = _having_filter("HavingDateFilter", dt.date, "a date")


def _having_filter_of(spec: Spec, f: Field) -> type:
    if spec.result is BigInt:
        return HavingBigintFilter
    if spec.result is BigFloat:
        return HavingBigfloatFilter
    return {Kind.INTEGER: HavingIntFilter, Kind.DATE: HavingDateFilter, Kind.TIMESTAMP: HavingDatetimeFilter}[f.kind]


def _having_input(ent: Entity) -> type:
    name = f"{type_name(ent)}HavingInput"
    annotations: dict[str, Any] = {"and_": f"list[{name}] | None", "or_": f"list[{name}] | None"}
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__annotations__": annotations,
        "and_": strawberry.field(name="AND", default=UNSET, description="Every one of these holds."),
        "or_": strawberry.field(name="OR", default=UNSET, description="At least one of these holds."),
    }
    for spec in SPECS:
        fields = fields_of(ent, spec)
        if not fields:
            continue
        spec_name = f"{type_name(ent)}Having{spec.key[0].upper()}{spec.key[1:]}Input"
        spec_namespace: dict[str, Any] = {
            "__module__": __name__,
            "__annotations__": {f.name: _having_filter_of(spec, f) | None for f in fields},
        }
        for f in fields:
            spec_namespace[f.name] = strawberry.field(default=UNSET)
        spec_input = strawberry.input(
            type(spec_name, (), spec_namespace),
            description=f"Conditions on the {spec.about.lower()} of fields of each group.",
        )
        annotations[spec.name] = spec_input | None
        namespace[spec.name] = strawberry.field(default=UNSET)
    return strawberry.input(
        type(name, (), namespace),
        description=f"Conditions on aggregates of each group of {ent.resource.replace('_', ' ')}; every one "
        "given must hold.",
    )


def to_having(entity_name: str, having: Any) -> Any:
    """The plan's condition on aggregates a having input means (None for none)."""
    if having is None or having is UNSET:
        return None
    ent = ENTITIES[entity_name]
    parts: list[Any] = []
    for spec in SPECS:
        given = getattr(having, spec.name, UNSET)
        if given is UNSET:
            continue
        if given is None:
            raise _null(spec.key)
        for f in fields_of(ent, spec):
            operators = getattr(given, f.name)
            if operators is UNSET:
                continue
            if operators is None:
                raise _null(f"{spec.key}.{camel(f.name)}")
            for attribute, op in HAVING_OPERATORS.items():
                value = getattr(operators, attribute)
                if value is UNSET:
                    continue
                if value is None:
                    raise _null(f"{spec.key}.{camel(f.name)}.{camel(attribute)}")
                parts.append(AggregateCondition(aggregate(spec, f, ""), op, _wire(value)))
    for attribute, combine, label in (("and_", And, "AND"), ("or_", Or, "OR")):
        items = getattr(having, attribute)
        if items is UNSET:
            continue
        if items is None:
            raise _null(label)
        parts.append(combine(tuple(to_having(entity_name, item) or And(()) for item in items)))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _wire(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _null(label: str) -> InvalidInput:
    return InvalidInput(f"having.{label} cannot be null; leave it out", field=label, reason=InvalidReason.FORMAT)


def grouping(entity_name: str, group_by: Any, having: Any) -> tuple[tuple[GroupKey, ...], Any]:
    """groupedAggregates' arguments as the plan's group keys and condition on aggregates."""
    keys = tuple(group_key(entity_name, member) for member in group_by or ())
    condition = to_having(entity_name, having)
    if condition is not None and not keys:
        raise InvalidInput(
            "having needs groupBy: give at least one key to group by", field="having", reason=InvalidReason.RULE
        )
    return keys, condition


# ---------------------------------------------------------------- output types


def _spec_type(ent: Entity, spec: Spec) -> type | None:
    fields = fields_of(ent, spec)
    if not fields:
        return None
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": __name__, "__annotations__": annotations}
    for f in fields:
        result = spec.result or _own_type(f)
        annotations[f.name] = result if spec.otherwise is not None else result | None
        namespace[f.name] = strawberry.field(
            description=f"{spec.about} of {camel(f.name)} across the matching rows.", default=None
        )
    name = f"{type_name(ent)}{spec.key[0].upper()}{spec.key[1:]}Aggregates"
    return strawberry.type(type(name, (), namespace))


def _aggregates_type(ent: Entity, specs: dict[str, type]) -> type:
    annotations: dict[str, Any] = {"keys": list[str | None] | None}
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__annotations__": annotations,
        "keys": strawberry.field(
            default=None,
            description="The values this group was grouped by, one per groupBy key, as text (null for no value); "
            "empty for the aggregates of the whole connection.",
        ),
    }
    for spec in SPECS:
        if spec.name in specs:
            annotations[spec.name] = specs[spec.name] | None
            namespace[spec.name] = strawberry.field(
                default=None,
                description=f"{spec.about} aggregates across the matching rows "
                "(ignoring before/after/first/last and orderBy).",
            )
    return strawberry.type(
        type(f"{type_name(ent)}Aggregates", (), namespace),
        description=f"Aggregates over {ent.resource.replace('_', ' ')}: of a whole connection, or of one group.",
    )


@dataclass(frozen=True)
class Declared:
    """An entity's aggregate types."""

    specs: dict[str, type]
    aggregates: type
    group_by: type[Enum]
    having: type


def _declare(ent: Entity) -> Declared:
    specs = {spec.name: t for spec in SPECS if (t := _spec_type(ent, spec)) is not None}
    return Declared(specs, _aggregates_type(ent, specs), _group_by_enum(ent), _having_input(ent))


DECLARED: dict[str, Declared] = {name: _declare(ent) for name, ent in ENTITIES.items()}
for _declared in DECLARED.values():
    for _type in (_declared.aggregates, _declared.group_by, _declared.having, *_declared.specs.values()):
        globals()[_type.__name__] = _type


# ---------------------------------------------------------------- the resolvers' summaries


def every_aggregate(entity_name: str, group_by: tuple[GroupKey, ...] | None = None, having: Any = None) -> Summary:
    """Every aggregate the entity's type offers, under the Python names of its fields (what the resolvers read)."""
    ent = ENTITIES[entity_name]
    fields: list[Any] = [Keys("keys")]
    for spec in SPECS:
        applied = fields_of(ent, spec)
        if applied:
            fields.append(Nest(spec.name, tuple(aggregate(spec, f, f.name) for f in applied)))
    return Summary(tuple(fields), group_by, having)


def made(entity_name: str, value: dict[str, Any]) -> Any:
    """The aggregates object of a summary's JSON value (from `every_aggregate`)."""
    ent = ENTITIES[entity_name]
    declared = DECLARED[entity_name]
    parts: dict[str, Any] = {"keys": value.get("keys")}
    for spec in SPECS:
        if spec.name not in declared.specs:
            continue
        numbers = value.get(spec.name) or {}
        parts[spec.name] = declared.specs[spec.name](
            **{f.name: _python(f, spec, numbers.get(f.name)) for f in fields_of(ent, spec)}
        )
    return declared.aggregates(**parts)


def _python(f: Field, spec: Spec, value: Any) -> Any:
    if value is None or spec.result is not None:
        return value
    if f.kind is Kind.DATE:
        return dt.date.fromisoformat(value)
    if f.kind is Kind.TIMESTAMP:
        return dt.datetime.fromisoformat(value)
    return value


# A summary's JSON value, given the summary: what a connection's resolvers read aggregates with.
Summarize = Callable[[Summary], Awaitable[Any]]


def _summarize_of(connection: Any) -> Summarize:
    summarize: Summarize | None = connection.summarize
    if summarize is None:
        raise AssertionError("a connection without its summaries")
    return summarize


async def _aggregates(connection: Any, info: Info, entity_name: str, through: Related | None = None) -> Any:
    summary = every_aggregate(entity_name)
    if through is not None:
        summary = Summary(summary.fields, through=through)
    return made(entity_name, await _summarize_of(connection)(summary))


async def _grouped(
    connection: Any, info: Info, entity_name: str, group_by: Any, having: Any, through: Related | None = None
) -> list[Any]:
    keys, condition = grouping(entity_name, group_by, having)
    summary = every_aggregate(entity_name, keys, condition)
    if through is not None:
        summary = Summary(summary.fields, summary.group_by, summary.having, through)
    return [made(entity_name, value) for value in await _summarize_of(connection)(summary)]


def _fields(entity_name: str, through: Related | None, owner: str) -> dict[str, Any]:
    """`aggregates` and `groupedAggregates` over the rows of `entity_name` (reached `through`, when given)."""
    declared = DECLARED[entity_name]
    rows = ENTITIES[entity_name].resource.replace("_", " ")

    async def aggregates(info: Info, parent: Any) -> Any:
        return await _aggregates(parent, info, entity_name, through)

    async def grouped(info: Info, parent: Any, group_by: list[Any], having: Any = None) -> list[Any]:
        return await _grouped(parent, info, entity_name, group_by, having, through)

    parameters = [
        Parameter("group_by", Parameter.KEYWORD_ONLY, annotation=list[declared.group_by]),  # type: ignore[name-defined]
        Parameter("having", Parameter.KEYWORD_ONLY, default=None, annotation=declared.having | None),
    ]
    return {
        "aggregates": resolver(
            "aggregates",
            f"Aggregates across the {rows} {owner} (ignoring before/after/first/last and orderBy).",
            [],
            declared.aggregates | None,
            aggregates,
        ),
        "grouped_aggregates": resolver(
            "grouped_aggregates",
            f"Aggregates of each group of the {rows} {owner}, grouped by `groupBy` (in the order of their keys, "
            "nulls last), kept when `having` holds.",
            parameters,
            list[declared.aggregates] | None,  # type: ignore[name-defined]
            grouped,
        ),
    }


# ---------------------------------------------------------------- connection types

LATEST_UPDATES = Related("goal_story_updates", None, LATEST_FIRST)


def _latest_updates_type() -> type:
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__annotations__": {"summarize": strawberry.Private[Any]},  # type: ignore[misc]
        **_fields("goal_story_update", LATEST_UPDATES, "that are the latest of each goal story"),
    }
    return strawberry.type(
        type("GoalStoryLatestUpdates", (), namespace),
        description="The latest update of each goal story of a connection (latest date, then latest createdAt; "
        "stories without updates have none), to aggregate: e.g. the average progress of a goal's sub-goals.",
    )


GoalStoryLatestUpdates = _latest_updates_type()


def _connection_type(entity_name: str) -> type:
    ent = ENTITIES[entity_name]
    namespace: dict[str, Any] = {"__module__": __name__, **_fields(entity_name, None, "matching `where`")}
    if entity_name == "goal_story":

        async def latest_updates(info: Info, parent: Any) -> Any:
            return GoalStoryLatestUpdates(summarize=_summarize_of(parent))

        namespace["latest_updates"] = resolver(
            "latest_updates",
            "The latest update of each goal story matching `where`, to aggregate.",
            [],
            GoalStoryLatestUpdates,
            latest_updates,
        )
    base = Connection[TYPES[entity_name]]  # type: ignore[valid-type]
    # new_class: the base is a generic alias, which type() does not resolve.
    cls = types.new_class(f"{type_name(ent)}Connection", (base,), {}, lambda body: body.update(namespace))
    return strawberry.type(
        cls,
        description=f"One page of {ent.resource.replace('_', ' ')}, with its paging information and aggregates.",
    )


CONNECTIONS: dict[str, type] = {name: _connection_type(name) for name in ENTITIES}
for _connection in CONNECTIONS.values():
    globals()[_connection.__name__] = _connection
