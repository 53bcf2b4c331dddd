"""PostgREST's query string grammar: a recursive-descent reader for one parameter's text.

It follows PostgREST's QueryParams parser (Parsec), including its error
positions, so that a malformed parameter is reported the way PostgREST does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from api.rest.syntax import (
    EmbedPath,
    FieldRef,
    FilterExpr,
    LogicTree,
    OpExpr,
    OrderItem,
    SelectField,
    SelectItem,
    SelectRelation,
)

QUANT_OPERATORS = ("eq", "gte", "gt", "lte", "lt", "like", "ilike", "match", "imatch")
SIMPLE_OPERATORS = ("neq", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj")
FTS_OPERATORS = ("fts", "plfts", "phfts", "wfts")
PLAIN_OPERATORS = frozenset(QUANT_OPERATORS + SIMPLE_OPERATORS)
IS_VALUES = ("null", "not_null", "true", "false", "unknown")
AGGREGATES = ("sum", "avg", "count", "max", "min")


class Failure(Exception):
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
            raise Failure(self.pos, f"nesting deeper than {MAX_DEPTH} levels")

    # ------------------------------------------------------------ basics

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def fail(self, expecting: str) -> Failure:
        found = f'unexpected "{self.text[self.pos]}"' if not self.at_end() else "unexpected end of input"
        return Failure(self.pos, f"{found} expecting {expecting}")

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
        return self.text[start : self.pos].strip()

    def field_name(self) -> str:
        return self._quoted_or_dashed(self.identifier)

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
        return self._quoted_or_dashed(self._json_key_part)

    def _quoted_or_dashed(self, part: Callable[[], str]) -> str:
        """A quoted name, or parts joined by dashes (a dash before `>` starts an arrow instead)."""
        if self.peek() == '"':
            return self.quoted()
        parts = [part()]
        while self.peek() == "-" and self.peek(2) != "->":
            self.pos += 1
            parts.append(part())
        return "-".join(parts)

    def _json_key_part(self) -> str:
        start = self.pos
        while not self.at_end() and self.peek() not in JSON_KEY_STOP:
            self.pos += 1
        if self.pos == start:
            raise self.fail("any non reserved character different from: .,>()")
        return self.text[start : self.pos].strip()

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
        if not logic:
            # Most filters are `op.value` with a plain operator: read them at once. Reading the
            # operators one by one below gives the same result for these, and the errors for the rest.
            operator, dot, rest = self.text[self.pos :].partition(".")
            if dot and operator in PLAIN_OPERATORS:
                self.pos = len(self.text)
                return OpExpr(negated, operator, rest)
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
        out = self.text[self.pos :]
        self.pos = len(self.text)
        return out

    def is_value(self) -> str:
        for word in IS_VALUES:
            if self.text[self.pos : self.pos + len(word)].lower() == word:
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
        return self.text[start : self.pos]

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
            inner = self.text[self.pos + 1 : close] if close >= 0 else ""
            if close >= 0 and "{" not in inner:
                self.pos = close + 1
                return self.text[mark : self.pos]
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
        except Failure as failure:
            self.pos = mark
            try:
                return self.logic_tree()
            except Failure:
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
        except Failure:
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


def whole_number(text: str) -> int | None:
    """`text` (spaces around it aside) as a whole number: an optional minus and ASCII digits; else None.
    Not `str.isdigit` alone, which holds for "²", which `int` then refuses."""
    stripped = text.strip()
    digits = stripped.removeprefix("-")
    return int(stripped) if digits.isascii() and digits.isdigit() else None
