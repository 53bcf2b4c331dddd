"""Responses as PostgREST shapes them: status, Content-Range, bodies in the negotiated media type."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

from starlette.responses import Response, StreamingResponse

from api.entities import Entity
from api.entities import entity as entity_named
from api.plan import ReadPlan
from api.rest.errors import RestError, singular
from api.rest.headers import MediaType
from api.rest.reply import Reply, error_reply

# The headers PostgREST's CORS middleware exposes to scripts (preflights: api/edge/cors.py).
CORS_EXPOSED = (
    "Content-Encoding, Content-Location, Content-Range, Content-Type, Date, Location, Server, "
    "Transfer-Encoding, Range-Unit"
)


def content_range(lower: int, upper: int, total: int | None) -> str:
    """PostgREST's Content-Range: `first-last/total`, `*` where the range is empty or the total unknown."""
    shown = f"{lower}-{upper}" if total != 0 and lower <= upper else "*"
    return f"{shown}/{'*' if total is None else total}"


def range_status(offset: int, rows: int, total: int | None) -> tuple[int, str]:
    """Status and Content-Range of a read: 206 for a part of a known total, 416 past its end."""
    header = content_range(offset, offset + rows - 1, total)
    if total is None:
        return 200, header
    if offset > total:
        return 416, header
    if rows < total:
        return 206, header
    return 200, header


def error_response(error: RestError, extra: dict[str, str] | None = None) -> Reply:
    return error_reply(error.status, error.code, {**error.headers, **(extra or {})}, error.encode())


def single_object(array_text: str) -> bytes:
    """The one element of a JSON array, or 406 PGRST116 naming how many there were."""
    rows = json.loads(array_text)
    if len(rows) != 1:
        raise singular(len(rows))
    return json.dumps(rows[0]).encode()


def render(array_text: str, media: MediaType, ent: Entity, plan: ReadPlan) -> bytes:
    """A JSON array from PostgreSQL in the negotiated media type (JSON passes through as it came)."""
    if media.kind == "object":
        return single_object(array_text)
    if media.kind == "csv":
        return csv_text(json.loads(array_text), csv_header(ent, plan), embeds=_embed_keys(plan)).encode()
    return array_text.encode()


def csv_header(ent: Entity, plan: ReadPlan) -> list[str]:
    if plan.layout is not None:  # every key, in order (a plan with aggregates or spreads)
        return list(plan.layout)
    names = [f.name for f in ent.fields if not f.internal] if plan.columns is None else [c.key for c in plan.columns]
    return names + [e.key for e in plan.embeds] + [c.key for c in plan.counts]


def _embed_keys(plan: ReadPlan) -> frozenset[str]:
    """The keys holding JSON (embeds, a to-many spread's arrays), written in CSV as JSON, as PostgreSQL writes
    jsonb."""
    keys = {e.key for e in plan.embeds}
    ent = entity_named(plan.entity)
    for spread in plan.spreads:
        relation = ent.relation(spread.relation)
        if relation is not None and relation.many:
            keys.update(spread.plan.layout or ())
        else:
            keys |= _embed_keys(spread.plan)
    return frozenset(keys)


def csv_text(
    rows: Iterable[dict[str, Any]], header: list[str], *, with_header: bool = True, embeds: frozenset[str] = frozenset()
) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if with_header:
        writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_value(row.get(name), embedded=name in embeds) for name in header])
    return out.getvalue()


def _csv_value(value: Any, *, embedded: bool = False) -> str:
    # As PostgreSQL prints values: NULL empty, arrays as {a,b}, objects (and embedded rows) as JSON.
    if value is None:
        return ""
    if embedded:
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and all(isinstance(v, str) or v is None for v in value):
        return "{" + ",".join(_array_element(v) for v in value) + "}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _array_element(value: str | None) -> str:
    if value is None:
        return "NULL"
    if value == "" or any(c in value for c in ',{}"\\ ') or value.upper() == "NULL":
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


async def json_stream(rows: AsyncIterator[int | str]) -> AsyncIterator[bytes]:
    """A JSON array written row by row as PostgreSQL hands the rows over."""
    yield b"["
    first = True
    async for row in rows:
        yield (b"" if first else b",") + str(row).encode()
        first = False
    yield b"]"


async def csv_stream(rows: AsyncIterator[int | str], header: list[str], plan: ReadPlan) -> AsyncIterator[bytes]:
    yield csv_text([], header).encode()
    batch: list[dict[str, Any]] = []
    async for row in rows:
        batch.append(json.loads(str(row)))
        if len(batch) >= 500:
            yield csv_text(batch, header, with_header=False, embeds=_embed_keys(plan)).encode()
            batch = []
    if batch:
        yield csv_text(batch, header, with_header=False, embeds=_embed_keys(plan)).encode()


def streaming(body: AsyncIterator[bytes], status: int, headers: dict[str, str], media: MediaType) -> Response:
    return StreamingResponse(body, status_code=status, headers=headers, media_type=media.content_type)
