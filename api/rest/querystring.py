"""PostgREST's query string grammar: filters, logic trees, select, order, ranges, columns, on_conflict.

This module only reads syntax; names are not checked here (the planner
resolves them against `api.entities`). The grammar follows PostgREST's
QueryParams parser, including where it is lenient (an unparseable `limit` is
ignored) and where it is strict (an unknown operator is a 400 PGRST100).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar
from urllib.parse import quote

from .errors import query_param

T = TypeVar("T")

# ---------------------------------------------------------------- the syntax tree


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
    cast: str | None = None
    aggregate: str | None = None


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


RESERVED = {"select", "columns", "on_conflict"}
RESERVED_EMBEDDABLE = {"order", "limit", "offset", "and", "or"}
QUANT_OPERATORS = ("eq", "gte", "gt", "lte", "lt", "like", "ilike", "match", "imatch")
SIMPLE_OPERATORS = ("neq", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj")
FTS_OPERATORS = ("fts", "plfts", "phfts", "wfts")
IS_VALUES = ("null", "not_null", "true", "false", "unknown")
AGGREGATES = ("sum", "avg", "count", "max", "min")


def parse(items: list[tuple[str, str]]) -> QueryString:
    """Parse the (key, value) pairs of a query string, in order, repeated keys kept."""
    lookup = {k: v for k, v in reversed(items)}
    qs = QueryString(select=parse_select(lookup.get("select") or "*"))
    qs.canonical = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(items, key=lambda i: i[0]))
    if "columns" in lookup:
        qs.columns = tuple(_parse(lookup["columns"], "columns parameter", lambda c: c.columns()))
    if "on_conflict" in lookup:
        qs.on_conflict = tuple(_parse(lookup["on_conflict"], "on_conflict parameter", lambda c: c.columns()))
    for key, value in items:
        last = key.rsplit(".", 1)[-1]
        if key in RESERVED:
            continue
        if last in RESERVED_EMBEDDABLE:
            _parse_embeddable(qs, key, last, value)
            continue
        path, ref = _parse(key, "tree path", lambda c: c.tree_path())
        expr = _parse(value, "filter", lambda c: c.op_expr(logic=False))
        qs.filters.append((path, FilterExpr(ref, expr)))
        if not path:
            qs.filter_fields.add(ref.name)
    return qs


def _parse_embeddable(qs: QueryString, key: str, last: str, value: str) -> None:
    if last in ("and", "or"):
        words = _parse(key, "logic path", lambda c: c.dotted_names())
        negated = "not" in words[:-1]
        path = tuple(w for w in words[:-1] if w != "not")
        text = ("not." if negated else "") + last + value
        qs.logic.append((path, _parse(text, "logic tree", lambda c: c.logic_tree(), shown=value)))
    elif last == "order":
        path = tuple(_parse(key, "tree path", lambda c: c.dotted_names())[:-1])
        qs.order.append((path, _parse(value, "order", lambda c: c.order())))
    else:
        path = tuple(_parse(key, "tree path", lambda c: c.dotted_names())[:-1])
        number = _integer(value)
        if number is not None:
            (qs.limits if last == "limit" else qs.offsets)[path] = number


def parse_select(text: str) -> tuple[SelectItem, ...]:
    return tuple(_parse(text, "select parameter", lambda c: c.forest()))


def _integer(text: str) -> int | None:
    # PostgREST ignores a limit or offset that is not an integer.
    stripped = text.strip()
    if stripped.lstrip("-").isdigit() and stripped.count("-") <= 1 and not stripped.endswith("-"):
        return int(stripped)
    return None


def _parse(text: str, what: str, rule: Callable[[Cursor], T], shown: str | None = None) -> T:
    cursor = Cursor(text)
    try:
        result = rule(cursor)
        cursor.end()
    except _Failure as failure:
        label = f'"failed to parse {what} ({shown if shown is not None else text})"'
        raise query_param(f"{label} (line 1, column {failure.position + 1})", failure.details) from None
    return result


class _Failure(Exception):
    def __init__(self, position: int, details: str) -> None:
        super().__init__(details)
        self.position = position
        self.details = details


IDENTIFIER_EXTRA = set("_ $")
# Nesting beyond this (logic trees, embeds) is refused rather than recursed into.
MAX_DEPTH = 32
JSON_KEY_STOP = set("(-:.,>)")


class Cursor:
    """A recursive-descent reader over one parameter's text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Failure(self.pos, f"nesting deeper than {MAX_DEPTH} levels")

    # ------------------------------------------------------------ basics

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos:self.pos + n]

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def fail(self, expecting: str) -> _Failure:
        found = f'unexpected "{self.text[self.pos]}"' if not self.at_end() else "unexpected end of input"
        return _Failure(self.pos, f"{found} expecting {expecting}")

    def take(self, literal: str) -> bool:
        if self.text.startswith(literal, self.pos):
            self.pos += len(literal)
            return True
        return False

    def expect(self, literal: str, expecting: str | None = None) -> None:
        if not self.take(literal):
            raise self.fail(expecting or f'"{literal}"')

    def spaces(self) -> None:
        while self.peek() in (" ", "\t") and not self.at_end():
            self.pos += 1

    def end(self) -> None:
        if not self.at_end():
            raise self.fail("end of input")

    # ------------------------------------------------------------ names

    def quoted(self) -> str:
        self.expect('"')
        out = []
        while not self.at_end() and self.peek() != '"':
            if self.peek() == "\\":
                self.pos += 1
                if self.at_end():
                    break
            out.append(self.peek())
            self.pos += 1
        self.expect('"')
        return "".join(out)

    def identifier(self) -> str:
        start = self.pos
        while not self.at_end() and (self.peek().isalnum() or self.peek() in IDENTIFIER_EXTRA):
            self.pos += 1
        if self.pos == start:
            raise self.fail("field name (* or [a..z0..9_$])")
        return self.text[start:self.pos].strip()

    def field_name(self) -> str:
        if self.peek() == '"':
            return self.quoted()
        parts = [self.identifier()]
        while self.peek() == "-" and self.peek(2) != "->":
            self.pos += 1
            parts.append(self.identifier())
        return "-".join(parts)

    def json_path(self) -> tuple[tuple[str, str], ...]:
        steps: list[tuple[str, str]] = []
        while True:
            if self.take("->>"):
                arrow = "->>"
            elif self.take("->"):
                arrow = "->"
            else:
                return tuple(steps)
            steps.append((arrow, self.json_key()))

    def json_key(self) -> str:
        if self.peek() == '"':
            return self.quoted()
        parts = [self._json_key_part()]
        while self.peek() == "-" and self.peek(2) != "->":
            self.pos += 1
            parts.append(self._json_key_part())
        return "-".join(parts)

    def _json_key_part(self) -> str:
        start = self.pos
        while not self.at_end() and self.peek() not in JSON_KEY_STOP:
            self.pos += 1
        if self.pos == start:
            raise self.fail("any non reserved character different from: .,>()")
        return self.text[start:self.pos].strip()

    def field(self) -> FieldRef:
        self.spaces()
        ref = FieldRef(self.field_name(), self.json_path())
        self.spaces()
        return ref

    def dotted_names(self) -> list[str]:
        names = [self.field_name()]
        while self.take("."):
            names.append(self.field_name())
        return names

    def tree_path(self) -> tuple[EmbedPath, FieldRef]:
        names = self.dotted_names()
        return tuple(names[:-1]), FieldRef(names[-1], self.json_path())

    def columns(self) -> list[str]:
        names = [self.field_name()]
        while True:
            self.spaces()
            if not self.take(","):
                return names
            self.spaces()
            names.append(self.field_name())

    # ------------------------------------------------------------ filters

    def op_expr(self, *, logic: bool) -> OpExpr:
        negated = self.take("not.")
        value = self.logic_value if logic else self.rest
        for word in ("in", "is", "isdistinct"):
            if self.take(word + "."):
                if word == "in":
                    return OpExpr(negated, "in", self.list_value())
                if word == "is":
                    return OpExpr(negated, "is", self.is_value())
                return OpExpr(negated, "isdistinct", value())
        for op in FTS_OPERATORS:
            mark = self.pos
            if self.take(op):
                language = None
                if self.take("("):
                    language = self.identifier()
                    self.expect(")")
                if self.take("."):
                    return OpExpr(negated, op, value(), language=language)
                self.pos = mark
        for op in SIMPLE_OPERATORS:
            if self.take(op + "."):
                return OpExpr(negated, op, value())
        for op in QUANT_OPERATORS:
            mark = self.pos
            if self.take(op):
                quantifier: Literal["any", "all"] | None = None
                if self.take("(any)"):
                    quantifier = "any"
                elif self.take("(all)"):
                    quantifier = "all"
                if self.take("."):
                    return OpExpr(negated, op, value(), quantifier=quantifier)
                self.pos = mark
        raise self.fail("operator (eq, gt, ...)")

    def rest(self) -> str:
        out = self.text[self.pos:]
        self.pos = len(self.text)
        return out

    def is_value(self) -> str:
        for word in IS_VALUES:
            if self.text[self.pos:self.pos + len(word)].lower() == word:
                self.pos += len(word)
                return word
        raise self.fail("isVal: (null, not_null, true, false, unknown)")

    def list_value(self) -> list[str]:
        self.spaces()
        self.expect("(")
        self.spaces()
        items = [self.list_element()]
        while self.take(","):
            items.append(self.list_element())
        self.spaces()
        self.expect(")", '"," or ")"')
        self.spaces()
        return items

    def list_element(self) -> str:
        if self.peek() == '"':
            mark = self.pos
            text = self.quoted()
            if self.at_end() or self.peek() in ",)":
                return text
            self.pos = mark
        return self.until(",)")

    def until(self, stops: str) -> str:
        start = self.pos
        while not self.at_end() and self.peek() not in stops:
            self.pos += 1
        return self.text[start:self.pos]

    def logic_value(self) -> str:
        if self.peek() == '"':
            mark = self.pos
            text = self.quoted()
            if self.at_end() or self.peek() in ",)":
                return text
            self.pos = mark
        if self.peek() == "{":
            mark = self.pos
            close = self.text.find("}", self.pos)
            inner = self.text[self.pos + 1:close] if close >= 0 else ""
            if close >= 0 and "{" not in inner:
                self.pos = close + 1
                return self.text[mark:self.pos]
        return self.until(",)")

    def logic_tree(self) -> LogicTree:
        self.spaces()
        negated = self.take("not.")
        if self.take("and"):
            op: Literal["and", "or"] = "and"
        elif self.take("or"):
            op = "or"
        else:
            raise self.fail("logic operator (and, or)")
        self.spaces()
        self.expect("(")
        self.nested()
        items: list[LogicTree | FilterExpr] = [self.logic_item()]
        while True:
            self.spaces()
            if not self.take(","):
                break
            items.append(self.logic_item())
        self.spaces()
        self.expect(")", '"," or ")"')
        self.spaces()
        self.depth -= 1
        return LogicTree(negated, op, tuple(items))

    def logic_item(self) -> LogicTree | FilterExpr:
        self.spaces()
        mark = self.pos
        try:
            ref = self.field()
            self.expect(".", "delimiter (.)")
            return FilterExpr(ref, self.op_expr(logic=True))
        except _Failure as failure:
            self.pos = mark
            try:
                return self.logic_tree()
            except _Failure:
                raise failure from None

    # ------------------------------------------------------------ select

    def forest(self) -> list[SelectItem]:
        items: list[SelectItem] = []
        if self.at_end() or self.peek() == ")":
            return items
        items.append(self.select_item())
        while True:
            self.spaces()
            if not self.take(","):
                return items
            self.spaces()
            items.append(self.select_item())

    def select_item(self) -> SelectItem:
        self.spaces()
        if self.take("..."):
            name = self.field_name()
            hint, inner = self.embed_params()
            return SelectRelation(name, None, hint, inner, self.children(), spread=True)
        if self.take("*"):
            self.spaces()
            return SelectField(FieldRef("*"))
        mark = self.pos
        alias = self.alias()
        if self.take("count()"):
            cast = self.cast()
            return SelectField(FieldRef("*"), alias, aggregate="count", cast=cast)
        name_mark = self.pos
        name = self.field_name()
        if name != "count":
            hint, inner = self.embed_params()
            if self.peek() == "(":
                return SelectRelation(name, alias, hint, inner, self.children())
        self.pos = name_mark
        ref = self.field()
        cast = self.cast()
        aggregate = None
        for word in AGGREGATES:
            if self.take(f".{word}()"):
                aggregate = word
                cast = self.cast() or cast
                break
        self.spaces()
        if not (self.at_end() or self.peek() in ",)"):
            self.pos = max(self.pos, mark)
            raise self.fail('"," or ")"')
        return SelectField(ref, alias, cast, aggregate)

    def alias(self) -> str | None:
        mark = self.pos
        try:
            name = self.field_name()
        except _Failure:
            self.pos = mark
            return None
        if self.peek() == ":" and self.peek(2) != "::":
            self.pos += 1
            return name
        self.pos = mark
        return None

    def cast(self) -> str | None:
        if self.take("::"):
            return self.identifier()
        return None

    def embed_params(self) -> tuple[str | None, bool]:
        hint, inner = None, False
        for _ in range(2):
            if not self.take("!"):
                break
            if self.take("inner"):
                inner = True
            elif self.take("left"):
                inner = False
            else:
                hint = self.field_name()
        return hint, inner

    def children(self) -> tuple[SelectItem, ...]:
        self.expect("(")
        self.nested()
        items = self.forest()
        self.spaces()
        self.expect(")", '"," or ")"')
        self.spaces()
        self.depth -= 1
        return tuple(items)

    # ------------------------------------------------------------ order

    def order(self) -> list[OrderItem]:
        items = [self.order_item()]
        while self.take(","):
            items.append(self.order_item())
        return items

    def order_item(self) -> OrderItem:
        self.spaces()
        mark = self.pos
        relation = None
        name = self.field_name()
        if self.take("("):
            relation = name
            ref = self.field()
            self.expect(")")
        else:
            self.pos = mark
            ref = self.field()
        descending = None
        nulls: Literal["first", "last"] | None = None
        if self.take(".asc"):
            descending = False
        elif self.take(".desc"):
            descending = True
        if self.take(".nullsfirst"):
            nulls = "first"
        elif self.take(".nullslast"):
            nulls = "last"
        self.spaces()
        if not (self.at_end() or self.peek() == ","):
            raise self.fail('".asc", ".desc", ".nullsfirst", ".nullslast" or ","')
        return OrderItem(ref, relation, descending, nulls)


def parse_array_literal(text: str) -> list[str] | None:
    """The elements of a PostgreSQL array literal such as {a,"b c"}; None when it is not one."""
    text = text.strip()
    if len(text) < 2 or text[0] != "{" or text[-1] != "}":
        return None
    body = text[1:-1]
    if not body.strip():
        return []
    items: list[str] = []
    i = 0
    while i <= len(body):
        while i < len(body) and body[i] == " ":
            i += 1
        if i < len(body) and body[i] == '"':
            i += 1
            out = []
            while i < len(body) and body[i] != '"':
                if body[i] == "\\" and i + 1 < len(body):
                    i += 1
                out.append(body[i])
                i += 1
            if i >= len(body):
                return None
            i += 1
            items.append("".join(out))
            while i < len(body) and body[i] == " ":
                i += 1
        else:
            end = body.find(",", i)
            end = len(body) if end < 0 else end
            items.append(body[i:end].strip())
            i = end
        if i < len(body) and body[i] != ",":
            return None
        i += 1
    return items

