"""`where` inputs: one operator input per field type, one where input per entity, compiled to a plan Filter.

The where inputs are generated from `api.entities`, so every field of every
entity is filterable and the filters cannot drift from the entities; and from
the relation fields `relations` declares, so every relation a type serves can
be filtered on too: a to-one relation (or a pick, as latestUpdate) by the
related row's own where input (it exists and matches), a to-many relation by
`some`, `every` and `none` of its rows, as PostGraphile's connection filter
names them. Each becomes an EXISTS in the same one statement.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeAlias

import strawberry
from strawberry import UNSET

from api.entities import ENTITIES, Entity, Kind
from api.errors import InvalidInput, InvalidReason
from api.graphql.enums import CHOICES, ActorType, CoordinationEventType, GoalStoryStatus
from api.graphql.names import camel, type_name
from api.graphql.relations import FIELDS, Related, Shape
from api.plan import And, Condition, Filter, Not, Or, Unmet, all_of
from api.plan import Related as RelatedRows


@strawberry.input(
    description="Conditions on a text field; every condition given must hold. "
    "like/ilike take SQL patterns (% any run, _ one character)."
)
class StringFilter:
    eq: str | None = UNSET
    neq: str | None = UNSET
    in_: list[str] | None = strawberry.field(name="in", default=UNSET)
    not_in: list[str] | None = UNSET
    gt: str | None = UNSET
    gte: str | None = UNSET
    lt: str | None = UNSET
    lte: str | None = UNSET
    like: str | None = UNSET
    ilike: str | None = UNSET
    is_null: bool | None = strawberry.field(default=UNSET, description="true: no value; false: a value.")


@strawberry.input(description="Conditions on an id field; every condition given must hold.")
class IDFilter:
    eq: strawberry.ID | None = UNSET
    neq: strawberry.ID | None = UNSET
    in_: list[strawberry.ID] | None = strawberry.field(name="in", default=UNSET)
    not_in: list[strawberry.ID] | None = UNSET
    gt: strawberry.ID | None = UNSET
    gte: strawberry.ID | None = UNSET
    lt: strawberry.ID | None = UNSET
    lte: strawberry.ID | None = UNSET
    like: str | None = UNSET
    ilike: str | None = UNSET
    is_null: bool | None = strawberry.field(default=UNSET, description="true: no value; false: a value.")


@strawberry.input(description="Conditions on a date field; every condition given must hold.")
class DateFilter:
    eq: dt.date | None = UNSET
    neq: dt.date | None = UNSET
    in_: list[dt.date] | None = strawberry.field(name="in", default=UNSET)
    not_in: list[dt.date] | None = UNSET
    gt: dt.date | None = UNSET
    gte: dt.date | None = UNSET
    lt: dt.date | None = UNSET
    lte: dt.date | None = UNSET
    is_null: bool | None = strawberry.field(default=UNSET, description="true: no value; false: a value.")


@strawberry.input(description="Conditions on a timestamp field; every condition given must hold.")
class DateTimeFilter:
    eq: dt.datetime | None = UNSET
    neq: dt.datetime | None = UNSET
    in_: list[dt.datetime] | None = strawberry.field(name="in", default=UNSET)
    not_in: list[dt.datetime] | None = UNSET
    gt: dt.datetime | None = UNSET
    gte: dt.datetime | None = UNSET
    lt: dt.datetime | None = UNSET
    lte: dt.datetime | None = UNSET
    is_null: bool | None = strawberry.field(default=UNSET, description="true: no value; false: a value.")


@strawberry.input(description="Conditions on an integer field; every condition given must hold.")
class IntFilter:
    eq: int | None = UNSET
    neq: int | None = UNSET
    in_: list[int] | None = strawberry.field(name="in", default=UNSET)
    not_in: list[int] | None = UNSET
    gt: int | None = UNSET
    gte: int | None = UNSET
    lt: int | None = UNSET
    lte: int | None = UNSET
    is_null: bool | None = strawberry.field(default=UNSET, description="true: no value; false: a value.")


@strawberry.input(
    description="Conditions on an event cursor (a decimal number in text); every condition given must hold."
)
class CursorFilter:
    eq: str | None = UNSET
    neq: str | None = UNSET
    in_: list[str] | None = strawberry.field(name="in", default=UNSET)
    not_in: list[str] | None = UNSET
    gt: str | None = UNSET
    gte: str | None = UNSET
    lt: str | None = UNSET
    lte: str | None = UNSET


@strawberry.input(description="Conditions on a list of strings; every condition given must hold.")
class StringListFilter:
    contains: list[str] | None = strawberry.field(default=UNSET, description="Holds every one of these.")
    contained_by: list[str] | None = strawberry.field(default=UNSET, description="Holds nothing but these.")
    overlaps: list[str] | None = strawberry.field(default=UNSET, description="Holds at least one of these.")
    is_null: bool | None = strawberry.field(default=UNSET, description="true: no value; false: a value.")


@strawberry.input(description="Conditions on a timeframe: on its start date, its end date, or its presence.")
class TimeframeFilter:
    start: DateFilter | None = UNSET
    end: DateFilter | None = UNSET
    is_null: bool | None = strawberry.field(default=UNSET, description="true: no timeframe; false: a timeframe.")


_BY_KIND: dict[Kind, type] = {
    Kind.ID: IDFilter,
    Kind.TEXT: StringFilter,
    Kind.DATE: DateFilter,
    Kind.TIMESTAMP: DateTimeFilter,
    Kind.INTEGER: IntFilter,
    Kind.TEXT_LIST: StringListFilter,
    Kind.TIMEFRAME: TimeframeFilter,
}


def _enum_filter(choice: type[Enum], noun: str) -> type:
    """`<Enum>Filter`: the same operators for every enum a field takes its values from."""
    name = choice.__name__
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__annotations__": {
            "eq": f"{name} | None",
            "neq": f"{name} | None",
            "in_": f"list[{name}] | None",
            "not_in": f"list[{name}] | None",
            "is_null": "bool | None",
        },
        "eq": UNSET,
        "neq": UNSET,
        "in_": strawberry.field(name="in", default=UNSET),
        "not_in": UNSET,
        "is_null": strawberry.field(default=UNSET, description="true: no value; false: a value."),
    }
    cls = type(f"{name}Filter", (), namespace)
    return strawberry.input(cls, description=f"Conditions on {noun}; every condition given must hold.")


_ENUM_FILTERS: dict[type[Enum], type] = {
    ActorType: _enum_filter(ActorType, "an actor type"),
    GoalStoryStatus: _enum_filter(GoalStoryStatus, "a goal story status"),
    CoordinationEventType: _enum_filter(CoordinationEventType, "a coordination event type"),
}
# The where inputs name them as module globals, as they name each other.
globals().update({cls.__name__: cls for cls in _ENUM_FILTERS.values()})
# Operator input attribute -> the plan's (PostgREST) operator.
_OPERATORS = {
    "eq": "eq",
    "neq": "neq",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
    "like": "like",
    "ilike": "ilike",
    "in_": "in",
    "contains": "cs",
    "contained_by": "cd",
    "overlaps": "ov",
}


def _operator_input(ent: Entity, field_name: str) -> type:
    f = ent.field(field_name)
    assert f is not None
    if (ent.name, f.name) in CHOICES:
        return _ENUM_FILTERS[CHOICES[ent.name, f.name]]
    if f.internal and f.name == "cursor":
        return CursorFilter
    return _BY_KIND[f.kind]


# The relation fields a where input filters on: those reading rows of one entity (a union's are not).
RELATIONS: dict[str, list[Related]] = {
    name: [f for f in fields.values() if isinstance(f, Related)] for name, fields in FIELDS.items()
}
TO_ONE = frozenset({Shape.ONE, Shape.PICK})


def _relation_about(field: Related) -> str:
    if field.shape in TO_ONE:
        return f"{field.description} Matches when there is one and it meets these conditions."
    return f"{field.description} Conditions on some, every or none of them."


def _to_many_input(ent: Entity) -> type:
    """`<Entity>ToManyWhere`: conditions on the rows of a to-many relation."""
    target = f"{type_name(ent)}Where"
    rows = ent.resource.replace("_", " ")
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__annotations__": {"some": f"{target} | None", "every": f"{target} | None", "none": f"{target} | None"},
        "some": strawberry.field(default=UNSET, description=f"At least one of the {rows} meets these conditions."),
        "every": strawberry.field(
            default=UNSET, description=f"Every one of the {rows} meets these conditions (true when there is none)."
        ),
        "none": strawberry.field(default=UNSET, description=f"None of the {rows} meets these conditions."),
    }
    cls = type(f"{type_name(ent)}ToManyWhere", (), namespace)
    return strawberry.input(cls, description=f"Conditions on related {rows}: some, every or none of them.")


def _where_input(ent: Entity) -> type:
    """`<Entity>Where`: an operator input per field, one per relation field, and and/or/not over further
    where inputs."""
    name = f"{type_name(ent)}Where"
    annotations: dict[str, str] = {}
    namespace: dict[str, Any] = {"__module__": __name__, "__annotations__": annotations}
    for f in ent.fields:
        annotations[f.name] = f"{_operator_input(ent, f.name).__name__} | None"
        namespace[f.name] = strawberry.field(default=UNSET, description=f.description)
    for relation in RELATIONS[ent.name]:
        assert relation.name not in annotations, f"{name}.{relation.key} is a field already"
        target = type_name(ENTITIES[relation.target])
        annotations[relation.name] = (
            f"{target}Where | None" if relation.shape in TO_ONE else f"{target}ToManyWhere | None"
        )
        namespace[relation.name] = strawberry.field(default=UNSET, description=_relation_about(relation))
    annotations["and_"] = f"list[{name}] | None"
    namespace["and_"] = strawberry.field(name="and", default=UNSET, description="Every one of these holds.")
    annotations["or_"] = f"list[{name}] | None"
    namespace["or_"] = strawberry.field(name="or", default=UNSET, description="At least one of these holds.")
    annotations["not_"] = f"{name} | None"
    namespace["not_"] = strawberry.field(name="not", default=UNSET, description="This does not hold.")
    cls = type(name, (), namespace)
    return strawberry.input(
        cls, description=f"Conditions on {ent.resource.replace('_', ' ')}; every condition given must hold."
    )


WHERE: dict[str, type] = {}
TO_MANY: dict[str, type] = {}
for _ent in ENTITIES.values():
    WHERE[_ent.name] = globals()[f"{type_name(_ent)}Where"] = _where_input(_ent)
    TO_MANY[_ent.name] = globals()[f"{type_name(_ent)}ToManyWhere"] = _to_many_input(_ent)
if TYPE_CHECKING:
    # Built above from the entities: to a type checker, any input object.
    ActorWhere: TypeAlias = Any
    TeamWhere: TypeAlias = Any
    TeamCheckinWhere: TypeAlias = Any
    GoalStoryWhere: TypeAlias = Any
    GoalStoryUpdateWhere: TypeAlias = Any
    CoordinationEventWhere: TypeAlias = Any
else:
    ActorWhere = WHERE["actor"]
    TeamWhere = WHERE["team"]
    TeamCheckinWhere = WHERE["team_checkin"]
    GoalStoryWhere = WHERE["goal_story"]
    GoalStoryUpdateWhere = WHERE["goal_story_update"]
    CoordinationEventWhere = WHERE["coordination_event"]


# ---------------------------------------------------------------- compile


def to_filter(entity_name: str, where: Any) -> Filter | None:
    """The plan Filter a where input means (None for no condition)."""
    if where is None or where is UNSET:
        return None
    ent = ENTITIES[entity_name]
    parts: list[Filter | None] = []
    for f in ent.fields:
        operators = getattr(where, f.name)
        if operators is UNSET:
            continue
        if operators is None:
            raise _null(f.name)
        parts.extend(_conditions(f.name, operators, ()))
    for relation in RELATIONS[entity_name]:
        value = getattr(where, relation.name)
        if value is UNSET:
            continue
        if value is None:
            raise _null(relation.key)
        parts.extend(_relation_conditions(relation, value))
    if where.and_ is not UNSET:
        parts.append(And(tuple(_required(entity_name, item, "and") for item in _listed(where.and_, "and"))))
    if where.or_ is not UNSET:
        parts.append(Or(tuple(_required(entity_name, item, "or") for item in _listed(where.or_, "or"))))
    if where.not_ is not UNSET:
        parts.append(Not(_required(entity_name, where.not_, "not")))
    return all_of(*parts)


def _relation_conditions(relation: Related, value: Any) -> list[Filter]:
    """A relation field's conditions: on its one row (or pick), or on some, every or none of its rows. The
    declaration's own condition (events of this kind only) bounds the rows reached."""
    target = relation.target
    if relation.shape in TO_ONE:
        inner = _required(target, value, relation.key)
        return [RelatedRows(relation.relation, all_of(relation.extra, inner), pick=relation.pick)]
    found: list[Filter] = []
    for quantifier in ("some", "every", "none"):
        rows = getattr(value, quantifier)
        if rows is UNSET:
            continue
        inner = _required(target, rows, f"{relation.key}.{quantifier}")
        match quantifier:
            case "some":
                found.append(RelatedRows(relation.relation, all_of(relation.extra, inner)))
            case "none":
                found.append(Not(RelatedRows(relation.relation, all_of(relation.extra, inner))))
            case "every":
                found.append(Not(RelatedRows(relation.relation, all_of(relation.extra, Unmet(inner)))))
    return found


def _required(entity_name: str, where: Any, name: str) -> Filter:
    if where is None:
        raise _null(name)
    # An empty where input matches every row.
    return to_filter(entity_name, where) or And(())


def _listed(items: list[Any] | None, name: str) -> list[Any]:
    if items is None:
        raise _null(name)
    return items


def _conditions(field: str, operators: Any, path: tuple[str, ...]) -> list[Filter]:
    found: list[Filter] = []
    for attribute in dataclasses.fields(operators):
        value = getattr(operators, attribute.name)
        if value is UNSET:
            continue
        label = ".".join((field, *path, camel(attribute.name.rstrip("_"))))
        if value is None:
            raise _null(label)
        if attribute.name == "is_null":
            found.append(Condition(field, "is", "null" if value else "not_null", path=path))
        elif attribute.name in ("start", "end"):
            found.extend(_conditions(field, value, (attribute.name,)))
        elif attribute.name == "not_in":
            found.append(Not(Condition(field, "in", [_wire(v, label) for v in value], path=path)))
        elif attribute.name in ("in_", "contains", "contained_by", "overlaps"):
            found.append(Condition(field, _OPERATORS[attribute.name], [_wire(v, label) for v in value], path=path))
        else:
            found.append(Condition(field, _OPERATORS[attribute.name], _wire(value, label), path=path))
    return found


def _wire(value: Any, label: str) -> Any:
    """A filter value as the plan takes it: text for dates and timestamps (PostgreSQL casts), enum values."""
    if value is None:
        raise _null(label)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _null(label: str) -> InvalidInput:
    return InvalidInput(
        f"where.{label} cannot be null; leave it out, or use isNull", field=label, reason=InvalidReason.FORMAT
    )
