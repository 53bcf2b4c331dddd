"""GET and HEAD on a resource: one plan, one statement, JSON from PostgreSQL passed through.

Small results come back as one JSON array built by PostgreSQL. A result
larger than `STREAM_AFTER` rows is streamed instead, row by row through a
server-side cursor, so memory stays flat whatever the table's size.
"""

from __future__ import annotations

import json

from starlette.responses import Response

from api.plan import ReadPlan, replaced
from api.rest import errors
from api.rest.headers import MediaType, negotiate
from api.rest.planner import read_plan
from api.rest.reply import Reply, reply
from api.rest.request import ApiRequest
from api.rest.response import csv_header, csv_stream, error_response, json_stream, range_status, render, streaming
from api.store import Reader

# Results up to this many rows are answered from one JSON array; larger ones are streamed.
STREAM_AFTER = 1000


async def read(
    api: ApiRequest, reader: Reader, *, max_rows: int | None = None, aggregates: bool = True
) -> Response | Reply:
    assert api.entity is not None
    ent = api.entity
    reader = reader.in_timezone(api.prefs.timezone)
    media = negotiate(api.accepts, ("json", "object", "csv"))
    plan, probe = read_plans(api, max_rows, media, aggregates)
    streamable = probe is not plan
    count = api.prefs.count
    exact = count in ("exact", "estimated")
    headers = {"Content-Location": f"/{ent.resource}" + (f"?{api.qs.canonical}" if api.qs.canonical else "")}
    applied = api.prefs.applied()
    if applied:
        headers["Preference-Applied"] = applied

    if api.headers_only:
        matching = await reader.count(plan)
        rows = _page_size(matching, api.offset, api.limit)
        total = matching if exact else await _planned(reader, plan, count)
        return finish(api, b"", rows, total, headers, media, head=True)

    if exact:
        text, total = await reader.page(probe, with_count=True)
        rows = len(json.loads(text))
    else:
        (text, rows), total = await reader.json_rows(probe), None
    if streamable and rows > STREAM_AFTER:
        return await _stream(api, reader, plan, media, headers, exact)
    if count == "planned":
        total = await reader.planned_count(plan)
    body = render(text, media, ent, plan)
    return finish(api, body, rows, total, headers, media)


def read_plans(
    api: ApiRequest, max_rows: int | None, media: MediaType, aggregates: bool = True
) -> tuple[ReadPlan, ReadPlan]:
    """The plan, and the plan of the first read: a read that may be large asks for one row more than
    is answered at once, to learn whether to stream the answer instead (then the two differ).
    `aggregates`: whether aggregate functions may be used in select (else PGRST123)."""
    assert api.entity is not None
    if max_rows:
        # PostgREST's db-max-rows: no answer holds more rows, whatever the client asked for.
        api.limit = max_rows if api.limit is None else min(api.limit, max_rows)
    plan = read_plan(
        api.entity, api.qs, limit=api.limit, offset=api.offset, strip_nulls=media.strip_nulls, aggregates=aggregates
    )
    streamable = media.kind in ("json", "csv") and (api.limit is None or api.limit > STREAM_AFTER)
    return plan, (replaced(plan, limit=STREAM_AFTER + 1) if streamable else plan)


async def _planned(reader: Reader, plan: ReadPlan, count: str | None) -> int | None:
    return await reader.planned_count(plan) if count == "planned" else None


def _page_size(matching: int, offset: int, limit: int | None) -> int:
    rows = max(0, matching - offset)
    return rows if limit is None else min(rows, limit)


def finish(
    api: ApiRequest,
    body: bytes,
    rows: int,
    total: int | None,
    headers: dict[str, str],
    media: MediaType,
    head: bool = False,
) -> Response | Reply:
    status, content_range = range_status(api.offset, rows, total)
    headers["Content-Range"] = content_range
    if status == 416:
        return error_response(errors.out_of_bounds(api.offset, total or 0), headers)
    if media.kind == "object" and head and rows != 1:
        raise errors.singular(rows)
    return reply(status, headers, b"" if head else body, media.content_type)


async def _stream(
    api: ApiRequest, reader: Reader, plan: ReadPlan, media: MediaType, headers: dict[str, str], exact: bool
) -> Response | Reply:
    rows = reader.stream_counted(plan)
    matching = await anext(rows)
    assert isinstance(matching, int)
    total = matching if exact else (await reader.planned_count(plan) if api.prefs.count == "planned" else None)
    status, content_range = range_status(api.offset, _page_size(matching, api.offset, api.limit), total)
    headers["Content-Range"] = content_range
    if status == 416:
        await rows.aclose()
        return error_response(errors.out_of_bounds(api.offset, total or 0), headers)
    assert api.entity is not None
    body = csv_stream(rows, csv_header(api.entity, plan), plan) if media.kind == "csv" else json_stream(rows)
    return streaming(body, status, headers, media)
