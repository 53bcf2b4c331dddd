"""The query plan: what a read asks for, independent of how it was spelled.

GraphQL arguments and PostgREST URLs both become a `ReadPlan`; `api.store.select`
renders it to one SQL statement whose result PostgreSQL returns as JSON. The
write service uses the same `Filter` to pick the rows an update or delete
touches. Names here are wire names (snake_case fields, relation names from
`api.entities`), never SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Any, Literal, TypeVar

T = TypeVar("T")

# Comparison operators, by PostgREST's names; list operators (cs, cd, ov) work
# on list fields, the full-text family on text and list fields.
COMPARISONS = frozenset({"eq", "neq", "gt", "gte", "lt", "lte"})
PATTERNS = frozenset({"like", "ilike", "match", "imatch"})
LIST_OPERATORS = frozenset({"cs", "cd", "ov"})
FULL_TEXT = frozenset({"fts", "plfts", "phfts", "wfts"})
# The types a column may be cast to (`Column.cast`, PostgREST's `select=field::type`), by PostgreSQL's
# names for them (case aside); any other is refused.
CASTS = frozenset(
    {
        "text",
        "varchar",
        "int",
        "int4",
        "integer",
        "bigint",
        "int8",
        "numeric",
        "date",
        "timestamptz",
        "timestamp",
        "boolean",
        "bool",
        "json",
        "jsonb",
    }
)
# The aggregate functions an `Aggregate` may apply, by PostgreSQL's names for them.
AGGREGATES = frozenset({"count", "sum", "avg", "min", "max"})


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any
    # A key inside an object field, e.g. ("start",) for timeframe->>start.
    path: tuple[str, ...] = ()
    # For a path: compare the text of the value (->>) rather than its JSON (->).
    path_as_text: bool = True
    quantifier: Literal["any", "all"] | None = None
    # Text search configuration for the full-text operators, e.g. "english".
    language: str | None = None


@dataclass(frozen=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    item: Filter


@dataclass(frozen=True)
class Unmet:
    """`item` does not hold: it is false, or unknown (SQL's IS NOT TRUE), where `Not` leaves unknown
    unknown (and the row out). "Every related row matches" is "no related row leaves it unmet"."""

    item: Filter


@dataclass(frozen=True)
class Related:
    """Some row reached through `relation` matches `where` (any row at all when it is None).

    With `pick`, only the first row reached in that order counts (a goal story's latest update)."""

    relation: str
    where: Filter | None = None
    pick: tuple[OrderTerm, ...] = ()


@dataclass(frozen=True)
class Scope:
    """What a caller may read: rows of these teams (by id, sorted), and its own actor when it has one.

    A token limited to teams sees those teams, their check-ins, the goal stories whose team_ids
    overlap them and those stories' updates, the coordination events whose check-in or update it
    sees, and the actors who are members of those teams, and itself. A plan without a scope (a
    trusted caller, an admin, a token without a teams claim) reads what its caller may read; one whose
    `teams` is None reads every row whoever asks. The values may be `Slot`s (a plan's shape): every scope
    then shares one statement."""

    teams: Any
    actor: Any = None


@dataclass(frozen=True)
class Visible:
    """The row is one `scope` may see (the live feed's per-subscriber test of an event)."""

    scope: Scope


Filter = Condition | And | Or | Not | Unmet | Related | Visible


def all_of(*filters: Filter | None) -> Filter | None:
    """AND together the filters that are present."""
    present = tuple(f for f in filters if f is not None)
    if not present:
        return None
    return present[0] if len(present) == 1 else And(present)


@dataclass(frozen=True)
class OrderTerm:
    field: str
    descending: bool = False
    # None keeps PostgreSQL's default: NULLS LAST ascending, NULLS FIRST descending.
    nulls_first: bool | None = None
    path: tuple[str, ...] = ()
    path_as_text: bool = True
    # Order by `field` of the row a to-one relation points at (PostgREST's order=actor(name)).
    relation: str | None = None


class Spelling(Enum):
    """How a column's value is written into the JSON, when not as PostgreSQL writes it."""

    # Text in upper case (choices served as enum names).
    UPPER = "upper"
    # The value's text (a number as a JSON string).
    TEXT = "text"
    # A timestamp as Python's datetime.isoformat() writes it: six fraction digits or none, offset as +HH:MM.
    ISO_TIMESTAMP = "iso_timestamp"


@dataclass(frozen=True)
class Column:
    """One output key holding a field (or a path inside one), optionally cast."""

    key: str
    field: str
    path: tuple[str, ...] = ()
    path_as_text: bool = False
    cast: str | None = None
    # Take the field from the row a to-one relation points at (PostgREST's spread ...actor(name)).
    relation: str | None = None
    spelling: Spelling | None = None


@dataclass(frozen=True)
class Aggregate:
    """One output key holding `function` (one of AGGREGATES) over the rows of a group: of `field`, or of the value
    at `path` inside it, cast to `cast` first (None: count the rows themselves, `count(*)`), the result cast to
    `result_cast`. `distinct`: over the distinct values only.

    In a `Summary`, `function` may also be one of STATISTICS; `otherwise` stands for null (no rows, or only
    nulls), as pg-aggregates' sum is 0 then, and `spelling` says how the result is written."""

    key: str
    function: str
    field: str | None = None
    path: tuple[str, ...] = ()
    path_as_text: bool = False
    cast: str | None = None
    result_cast: str | None = None
    distinct: bool = False
    spelling: Spelling | None = None
    otherwise: Any = None


@dataclass(frozen=True)
class Constant:
    """One output key holding the same JSON value for every row (a string, number, boolean or null)."""

    key: str
    value: Any


@dataclass(frozen=True)
class Composite:
    """One output key holding an object made of the row's own fields; null when `field` is null."""

    key: str
    field: str
    columns: tuple[Column | Constant, ...]


@dataclass(frozen=True)
class NodeKey:
    """One output key holding the row's global id: the unpadded base64url of the compact JSON
    [label, [id]], ASCII only (as a `Position` is spelled)."""

    key: str
    label: str


@dataclass(frozen=True)
class Embed:
    """One output key holding related rows: an object (to-one) or an array."""

    key: str
    relation: str
    plan: ReadPlan
    # Keep only parent rows that have at least one related row (PostgREST's !inner).
    inner: bool = False
    # Keep only parent rows that have no related row (PostgREST's rel=is.null).
    empty: bool = False
    # For a to-many relation: its first row (in the plan's order) as an object, null when there is
    # none, rather than the array.
    single: bool = False


@dataclass(frozen=True)
class Choice:
    """One output key holding `then` for rows matching `when`, `otherwise` for the others."""

    key: str
    when: Filter
    then: Embed
    otherwise: Embed


@dataclass(frozen=True)
class Count:
    """One output key holding the number of related rows matching the plan's filter."""

    key: str
    relation: str
    where: Filter | None = None


@dataclass(frozen=True)
class Match:
    """One output key holding whether the row matches `where` (true or false, never null).

    Lets one read serve many filters at once, e.g. one read of new events for
    every live subscriber's filter."""

    key: str
    where: Filter


@dataclass(frozen=True)
class Window:
    """How a page is cut from rows read in `ReadPlan.order` with `limit` size + 1 (the one more tells
    whether rows follow), and what the reader knows of the rows around it."""

    size: int
    # The rows were read in reverse (the last `size` rows): the page is served in the opposite order.
    backward: bool = False
    # Keep only the last `trim` rows of the page.
    trim: int | None = None
    # Rows are known to precede (follow) the page: it starts after (ends before) a given position.
    after_given: bool = False
    before_given: bool = False


@dataclass(frozen=True)
class Position:
    """A row's position as text: the unpadded base64url of the compact JSON [header, [values]], ASCII only
    (as Python's json.dumps with separators (",", ":")), the values being each (field, path)'s JSON value."""

    header: tuple[str, ...]
    fields: tuple[tuple[str, tuple[str, ...]], ...]


# The aggregate functions a `Summary` may apply besides AGGREGATES (pg-aggregates' statistics), of numbers only.
STATISTICS = frozenset({"stddev_samp", "stddev_pop", "var_samp", "var_pop"})
# The units a group key may be truncated to (PostgreSQL's date_trunc).
TRUNCATIONS = frozenset({"hour", "day", "week", "month", "year"})


@dataclass(frozen=True)
class GroupKey:
    """One key rows are grouped by: a field's value, or its date_trunc to `truncate` (a date stays a date);
    `spelling`: how `Keys` writes it."""

    field: str
    truncate: str | None = None
    spelling: Spelling | None = None


@dataclass(frozen=True)
class Keys:
    """One output key holding the group's keys (an empty array without groups): each key's text, null for a
    null key, spelled as its `GroupKey.spelling` says."""

    key: str


@dataclass(frozen=True)
class Nest:
    """One output key holding an object of further summary fields."""

    key: str
    fields: tuple[SummaryField, ...]


SummaryField = Aggregate | Keys | Nest | Constant


@dataclass(frozen=True)
class AggregateCondition:
    """An aggregate over a group compares (op: eq, neq, gt, gte, lt, lte) with `value`: a HAVING condition,
    combined with `And`, `Or` and `Not` (the aggregate's key and spelling do not count)."""

    aggregate: Aggregate
    op: str
    value: Any


@dataclass(frozen=True)
class Summary:
    """Aggregates over a set of rows, laid out as `fields`: one object, or with `group_by` an array of objects,
    one per group (in the order of their keys, nulls last), kept when `having` holds.

    The rows are those of the read holding it (a page's: its total's condition, its own paging aside);
    `through` a relation, the rows reached from each of them (its pick: only the first reached)."""

    fields: tuple[SummaryField, ...]
    group_by: tuple[GroupKey, ...] | None = None
    having: Any = None
    through: Related | None = None


# The values a `PageField` can hold.
PAGE_VALUES = frozenset(
    {
        "rows",  # an array: each row of the page, rendered by `view`
        "entries",  # an array: for each row of the page, an object of `fields`
        "object",  # an object of `fields`, once
        "row",  # in an entry: the row, rendered by `view`
        "position",  # in an entry: the row's position
        "first_position",  # the position of the page's first row, null when it is empty
        "last_position",  # the position of its last row
        "has_next",  # rows follow the page (true, false)
        "has_previous",  # rows precede the page
        "total",  # the number of rows matching `Paged.total_where`, over all pages
        "constant",  # `value`
        "summary",  # `summary` over the rows `Paged.total_where` counts
    }
)


@dataclass(frozen=True)
class PageField:
    """One key of a page object, or of an object inside it."""

    key: str
    value: str
    view: ReadPlan | None = None
    fields: tuple[PageField, ...] = ()
    constant: Any = None
    summary: Summary | None = None


@dataclass(frozen=True)
class Paged:
    """One output key holding a page object: a page of related rows (of every row when `relation` is None,
    at the top of a `Bundle`) with what surrounds it, laid out as `fields`."""

    key: str
    relation: str | None
    # The rows read: filter (with the page's bounds), order, limit (window.size + 1).
    plan: ReadPlan
    window: Window
    fields: tuple[PageField, ...]
    position: Position | None = None
    total_where: Filter | None = None


@dataclass(frozen=True)
class Lookup:
    """One key of a `Bundle` holding the first row the plan selects, null when there is none."""

    key: str
    plan: ReadPlan


@dataclass(frozen=True)
class Bundle:
    """One JSON object whose keys each hold a read, all answered by one statement."""

    items: tuple[Lookup | Paged | Constant, ...]
    # What every read of the bundle may see (None: every row); see `ReadPlan.scope`.
    scope: Scope | None = None

    @cached_property
    def key(self) -> str:
        """What tells bundles' reads apart (the repr of their items), worked out once per bundle object
        (and kept by `replaced` copies, which is why the scope is not part of it: the statements'
        cache adds it)."""
        return repr(self.items)


@dataclass(frozen=True)
class ReadPlan:
    entity: str
    where: Filter | None = None
    order: tuple[OrderTerm, ...] = ()
    limit: int | None = None
    offset: int | None = None
    # None selects the full representation: every field, optional ones left
    # out when empty, as the CoCo schema wants a document.
    columns: tuple[Column, ...] | None = None
    embeds: tuple[Embed, ...] = ()
    counts: tuple[Count, ...] = ()
    matches: tuple[Match, ...] = ()
    # Leave out keys whose value is null (PostgREST's nulls=stripped).
    strip_nulls: bool = False
    constants: tuple[Constant, ...] = ()
    composites: tuple[Composite, ...] = ()
    choices: tuple[Choice, ...] = ()
    pages: tuple[Paged, ...] = ()
    node_keys: tuple[NodeKey, ...] = ()
    # The output keys in this order (keys not named go after them); None keeps the kinds' order.
    layout: tuple[str, ...] | None = None
    # What the read may see, at every level (roots, embeds, counts, pages, related-row filters,
    # orders), on the top plan only; None: what the caller may see, put here when its statement is
    # built (api/store/select.py, api/store/scoping.py).
    scope: Scope | None = None


# ---------------------------------------------------------------- shapes


class Slot:
    """A client value standing in its condition as a parameter of the plan's shape.

    Two plans that differ only in their values (the actor asked for, the date
    after which) have equal shapes, so they share one built and compiled
    statement; only the values travel. Slots compare by what the statement's
    form depends on: the value's type, and a list's length and item types
    (an item is converted by its position), never the value itself; so 1,
    1.0 and True stay apart where equality would not keep them apart."""

    __slots__ = ("form", "index", "value")

    def __init__(self, index: int, value: Any, *, whole: bool = False) -> None:
        self.index = index
        self.value = value
        # `whole`: a list bound as one array parameter, whatever its length (a scope's teams).
        self.form: tuple[Any, ...] = (
            (index, type(value), tuple(map(type, value)))
            if isinstance(value, (list, tuple)) and not whole
            else (index, type(value))
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Slot) and self.form == other.form

    def __hash__(self) -> int:
        return hash(self.form)

    def __repr__(self) -> str:
        kinds = [kind.__name__ for kind in self.form[2]] if len(self.form) > 2 else None
        if kinds is None:
            return f"Slot({self.index}:{self.form[1].__name__})"
        items = f"{kinds[0]}*{len(kinds)}" if len(set(kinds)) == 1 else ",".join(kinds)
        return f"Slot({self.index}:{self.form[1].__name__}[{items}])"


def replaced(item: T, **changes: Any) -> T:
    """`dataclasses.replace` for the plan's frozen dataclasses, at a fraction of its cost (it runs
    `__init__` again, with its keyword checks, where a copy of the fields does: none of them has a
    `__post_init__`). On every read's path, hence the shortcut."""
    copy = object.__new__(type(item))
    fields = copy.__dict__
    fields.update(item.__dict__)
    fields.update(changes)
    return copy


def parameterized(plan: ReadPlan) -> tuple[ReadPlan, list[Any]]:
    """The plan's shape (each condition's value a `Slot`) and its values, by slot index."""
    values: list[Any] = []
    return _shape(plan, values), values


def scoped_shape(shape: ReadPlan, values: list[Any], scope: Scope | None) -> tuple[ReadPlan, list[Any]]:
    """A plan's shape and values (`parameterized`) reading only what `scope` may see: the scope's
    values become slots after the plan's own, so that every scope shares the shape's statement."""
    if scope is None:
        return shape, values
    values = [*values]
    return replaced(shape, scope=_shape_scope(scope, values)), values


def _shape_scope(scope: Scope, values: list[Any]) -> Scope:
    if isinstance(scope.teams, Slot) or scope.teams is None:
        return scope
    values.append(tuple(scope.teams))
    teams = Slot(len(values) - 1, values[-1], whole=True)
    values.append(scope.actor)
    return Scope(teams, Slot(len(values) - 1, scope.actor))


def _shape(plan: ReadPlan, values: list[Any]) -> ReadPlan:
    changes: dict[str, Any] = {}
    if plan.scope is not None:
        changes["scope"] = _shape_scope(plan.scope, values)
    if plan.where is not None:
        changes["where"] = _shape_filter(plan.where, values)
    if plan.embeds:
        changes["embeds"] = tuple(replaced(e, plan=_shape(e.plan, values)) for e in plan.embeds)
    if plan.counts:
        changes["counts"] = tuple(replaced(c, where=_shape_filter(c.where, values)) for c in plan.counts)
    if plan.matches:
        changes["matches"] = tuple(replaced(m, where=_shape_filter(m.where, values)) for m in plan.matches)
    return replaced(plan, **changes) if changes else plan


def _shape_filter(where: Filter | None, values: list[Any]) -> Any:
    match where:
        case None:
            return None
        case Condition(op="is"):
            return where  # `is` takes a keyword that decides the SQL's form (IS NULL, IS NOT NULL)
        case Condition():
            values.append(where.value)
            slot = Slot(len(values) - 1, where.value)
            return Condition(
                where.field, where.op, slot, where.path, where.path_as_text, where.quantifier, where.language
            )
        case And(items=items):
            return And(tuple(_shape_filter(item, values) for item in items))
        case Or(items=items):
            return Or(tuple(_shape_filter(item, values) for item in items))
        case Not(item=item):
            return Not(_shape_filter(item, values))
        case Unmet(item=item):
            return Unmet(_shape_filter(item, values))
        case Related(where=inner):
            return replaced(where, where=_shape_filter(inner, values))
        case Visible(scope=scope):
            return Visible(_shape_scope(scope, values))
    raise TypeError(f"not a filter: {where!r}")
