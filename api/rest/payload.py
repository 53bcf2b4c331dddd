"""The request body as documents: JSON, CSV or a url-encoded form, as PostgREST accepts them.

CSV and form values arrive as text; PostgREST leaves PostgreSQL to cast them,
so here each is read as its field's kind would be written in SQL (an integer,
an array literal such as {a,b}, a JSON object), and the write service then
validates the result like any other document.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from urllib.parse import parse_qsl

from api import jsonbody
from api.entities import Entity, Kind
from api.rest import errors
from api.rest.grammar import parse_array_literal, whole_number


def parse_payload(raw: bytes, content_type: str | None, ent: Entity) -> Any:
    mime = (content_type or "application/json").split(";")[0].strip().lower()
    match mime:
        case "application/json" | "application/vnd.pgrst.object+json" | "application/vnd.pgrst.array+json":
            return _json(raw)
        case "text/csv":
            return _csv(raw, ent)
        case "application/x-www-form-urlencoded":
            text = _text(raw)
            return {key: _typed(ent, key, value) for key, value in parse_qsl(text, keep_blank_values=True)}
    raise errors.invalid_body(f"Content-Type not acceptable: {mime}")


def _json(raw: bytes) -> Any:
    if not raw.strip():
        raise errors.invalid_body("Empty or invalid json")
    try:
        return jsonbody.loads(raw)
    except jsonbody.TooDeep as error:
        raise errors.invalid_body(f"Invalid json: {error}") from None
    except (ValueError, UnicodeDecodeError):
        raise errors.invalid_body("Empty or invalid json") from None


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.invalid_body("The body is not valid UTF-8") from None


def _csv(raw: bytes, ent: Entity) -> list[dict[str, Any]]:
    rows = list(csv.reader(io.StringIO(_text(raw))))
    if not rows:
        return []
    header, lines = rows[0], [r for r in rows[1:] if r]
    if any(len(line) != len(header) for line in lines):
        raise errors.invalid_body("All lines must have same number of fields")
    # PostgREST reads the unquoted word NULL as null; every other value is text.
    return [
        {key: None if value == "NULL" else _typed(ent, key, value) for key, value in zip(header, line, strict=True)}
        for line in lines
    ]


def _typed(ent: Entity, key: str, value: str) -> Any:
    f = ent.field(key)
    if f is None:
        return value
    number = whole_number(value) if f.kind is Kind.INTEGER else None
    if number is not None:
        return number
    if f.kind is Kind.TEXT_LIST:
        listed = parse_array_literal(value)
        return value if listed is None else listed
    if f.kind is Kind.TIMEFRAME:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
