"""The syntax tree of a PostgREST query string, as the grammar reads it (names not yet checked)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class FieldRef:
    name: str
    # JSON path steps: ("->" or "->>", key).
    path: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class OpExpr:
    negated: bool
    op: str
    value: str | list[str]
    quantifier: Literal["any", "all"] | None = None
    language: str | None = None


@dataclass(frozen=True)
class FilterExpr:
    field: FieldRef
    expr: OpExpr


@dataclass(frozen=True)
class LogicTree:
    negated: bool
    op: Literal["and", "or"]
    items: tuple[LogicTree | FilterExpr, ...]


@dataclass(frozen=True)
class SelectField:
    field: FieldRef
    alias: str | None = None
    # The field's cast (`amount::int`), applied before an aggregate.
    cast: str | None = None
    aggregate: str | None = None
    # The aggregate's cast (`amount.sum()::text`).
    aggregate_cast: str | None = None


@dataclass(frozen=True)
class SelectRelation:
    name: str
    alias: str | None
    hint: str | None
    inner: bool
    children: tuple[SelectItem, ...]
    spread: bool = False


SelectItem = SelectField | SelectRelation


@dataclass(frozen=True)
class OrderItem:
    field: FieldRef
    relation: str | None = None
    descending: bool | None = None
    nulls: Literal["first", "last"] | None = None


EmbedPath = tuple[str, ...]


@dataclass
class QueryString:
    select: tuple[SelectItem, ...]
    filters: list[tuple[EmbedPath, FilterExpr]] = field(default_factory=list)
    logic: list[tuple[EmbedPath, LogicTree]] = field(default_factory=list)
    order: list[tuple[EmbedPath, list[OrderItem]]] = field(default_factory=list)
    # Per embed path: (limit, offset) as given; None when absent.
    limits: dict[EmbedPath, int] = field(default_factory=dict)
    offsets: dict[EmbedPath, int] = field(default_factory=dict)
    columns: tuple[str, ...] | None = None
    on_conflict: tuple[str, ...] | None = None
    canonical: str = ""
    # The set of top-level names filters apply to (PUT checks it).
    filter_fields: set[str] = field(default_factory=set)
