"""POST, PATCH, PUT and DELETE: PostgREST's mutations, carried out by the write service.

The representation a client asks for (`Prefer: return=representation` with
any `select=`, embedding included) is read inside the write's transaction
through the service's `returning` callback, so it shows exactly what was
written; checks that PostgREST makes after the write (a single object,
max-affected) fail inside it too, which rolls the write back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from starlette.requests import Request

from api.cache import BoundedCache
from api.entities import Entity
from api.plan import Filter, OrderTerm, ReadPlan
from api.rest import errors
from api.rest.headers import MediaType, negotiate
from api.rest.payload import parse_payload
from api.rest.planner import order_terms, read_plan, write_filter
from api.rest.reply import Reply, reply
from api.rest.request import ApiRequest
from api.rest.response import content_range, render
from api.store import OnConflict, WriteService, Written


async def write(
    api: ApiRequest,
    request: Request,
    writer: WriteService,
    *,
    aggregates: bool = True,
    plans: BoundedCache[Any, ReadPlan] | None = None,
) -> Reply:
    """`plans`: where the plans of writes without a query string are kept (the app's; None: planned each time)."""
    ent = api.entity
    assert ent is not None
    if not ent.writable:
        raise errors.read_only(
            ent.resource, f"{ent.resource} are written only by the server and cannot be created, changed or deleted"
        )
    media = negotiate(api.accepts, ("json", "object", "csv"))
    plan = _write_plan(api, ent, media, aggregates, plans)
    match api.action:
        case "create":
            return await _create(api, ent, await _body(request, ent), plan, media, writer)
        case "update":
            return await _update(api, ent, await _body(request, ent), plan, media, writer)
        case "upsert":
            return await _upsert(api, ent, await _body(request, ent), plan, media, writer)
        case "delete":
            return await _delete(api, ent, plan, media, writer)
    raise AssertionError(api.action)


def _write_plan(
    api: ApiRequest, ent: Entity, media: MediaType, aggregates: bool, plans: BoundedCache[Any, ReadPlan] | None
) -> ReadPlan:
    # A write without a query string (most creates: `POST /team_checkins`) shows the same of its rows each
    # time: planned once per entity and options, where planning that default select again cost as much
    # Python as the create's own statement did.

    def planned(_: object) -> ReadPlan:
        plan = read_plan(ent, api.qs, limit=None, offset=None, strip_nulls=media.strip_nulls, aggregates=aggregates)
        return dataclasses.replace(plan, where=None)

    if plans is None or api.qs.canonical:
        return planned(None)
    return plans.get_or_build((ent.name, media.strip_nulls, aggregates), planned)


async def _body(request: Request, ent: Entity) -> Any:
    return parse_payload(await request.body(), request.headers.get("content-type"), ent)


# ---------------------------------------------------------------- the four mutations


async def _create(
    api: ApiRequest, ent: Entity, body: Any, plan: ReadPlan, media: MediaType, writer: WriteService
) -> Reply:
    documents = _documents(api, ent, body)
    if api.qs.on_conflict is not None and tuple(api.qs.on_conflict) != ("id",):
        for name in api.qs.on_conflict:
            if ent.field(name) is None:
                raise errors.undefined_column(ent.resource, name)
        raise errors.no_unique_constraint()
    resolution = {"merge-duplicates": OnConflict.MERGE, "ignore-duplicates": OnConflict.IGNORE}
    on_conflict = resolution.get(api.prefs.resolution or "", OnConflict.ERROR)
    returned = _Returned(api, plan, media)
    # Without a representation or a single-object check there is nothing to do inside the
    # transaction, which lets the write service commit the create as its one statement.
    inside = api.prefs.representation == "representation" or media.kind == "object"
    result = await writer.create(ent.name, documents, on_conflict=on_conflict, returning=returned if inside else None)
    rows = len(result.rows)
    status = 200 if on_conflict is OnConflict.MERGE and not result.inserted_ids else 201
    headers = {"Content-Range": content_range(1, 0, rows if _counting(api) else None)}
    if api.prefs.representation == "headers-only" and rows == 1:
        headers["Location"] = f"/{ent.resource}?id=" + quote(f"eq.{result.rows[0]['id']}", safe="")
    return _respond(api, returned, status, headers, ent, plan, media, resolution=True, missing=True)


async def _update(
    api: ApiRequest, ent: Entity, body: Any, plan: ReadPlan, media: MediaType, writer: WriteService
) -> Reply:
    if not isinstance(body, Mapping):
        raise errors.invalid_body("A PATCH body must be one JSON object")
    changes = _documents(api, ent, body)[0]
    returned = _Returned(api, plan, media, check_affected=True)
    # PostgREST updates nothing for an empty object, and answers as for no matching row.
    rows = 0
    if changes:
        where, order, limit, offset = _rows_of(api, ent)
        result = await writer.update(
            ent.name, where, changes, order=order, limit=limit, offset=offset, returning=returned
        )
        rows = len(result.rows)
    returned.check(rows)
    headers = {"Content-Range": content_range(0, rows - 1, rows if _counting(api) else None)}
    status = 200 if api.prefs.representation == "representation" else 204
    return _respond(api, returned, status, headers, ent, plan, media, missing=True, max_affected=True)


async def _upsert(
    api: ApiRequest, ent: Entity, body: Any, plan: ReadPlan, media: MediaType, writer: WriteService
) -> Reply:
    qs = api.qs
    root = [f for path, f in qs.filters if not path]
    if (
        qs.logic
        or qs.filter_fields != {"id"}
        or len(root) != len(qs.filters)
        or not all(
            f.expr.op == "eq" and not f.expr.negated and f.expr.quantifier is None and not f.field.path for f in root
        )
    ):
        raise errors.invalid_put_filters()
    if isinstance(body, list):
        if len(body) != 1:
            raise errors.put_pk_mismatch()
        body = body[0]
    if not isinstance(body, Mapping):
        raise errors.invalid_body("A PUT body must be one JSON object")
    document = _documents(api, ent, body)[0]
    if any(document.get("id") != f.expr.value for f in root):
        raise errors.put_pk_mismatch()
    returned = _Returned(api, plan, media)
    result = await writer.create(ent.name, [document], on_conflict=OnConflict.MERGE, returning=returned)
    status = (201 if result.inserted_ids else 200) if api.prefs.representation == "representation" else 204
    return _respond(api, returned, status, {}, ent, plan, media)


async def _delete(api: ApiRequest, ent: Entity, plan: ReadPlan, media: MediaType, writer: WriteService) -> Reply:
    returned = _Returned(api, plan, media, check_affected=True)
    where, order, limit, offset = _rows_of(api, ent)
    result = await writer.delete(ent.name, where, order=order, limit=limit, offset=offset, returning=returned)
    rows = len(result.rows)
    returned.check(rows)
    headers = {"Content-Range": content_range(1, 0, rows if _counting(api) else None)}
    status = 200 if api.prefs.representation == "representation" else 204
    return _respond(api, returned, status, headers, ent, plan, media, max_affected=True)


# ---------------------------------------------------------------- steps


class _Returned:
    """The `returning` callback: checks made inside the transaction, then the representation."""

    def __init__(self, api: ApiRequest, plan: ReadPlan, media: MediaType, *, check_affected: bool = False) -> None:
        self.api = api
        self.plan = plan
        self.media = media
        self.check_affected = check_affected
        self.text: str | None = None

    def check(self, rows: int) -> None:
        if self.media.kind == "object" and rows != 1:
            raise errors.singular(rows)
        limit = self.api.prefs.max_affected
        if self.check_affected and self.api.prefs.strict and limit is not None and rows > limit:
            raise errors.max_affected(rows)

    async def __call__(self, written: Written) -> str | None:
        self.check(len(written.ids))
        if self.api.prefs.representation == "representation":
            self.text = await written.rows(self.plan, timezone=self.api.prefs.timezone)
        return self.text


def _respond(
    api: ApiRequest,
    returned: _Returned,
    status: int,
    headers: dict[str, str],
    ent: Entity,
    plan: ReadPlan,
    media: MediaType,
    **applies: bool,
) -> Reply:
    applied = api.prefs.applied(representation=True, **applies)
    if applied:
        headers["Preference-Applied"] = applied
    if api.prefs.representation != "representation":
        return reply(status, headers, b"")
    body = render(returned.text or "[]", media, ent, plan)
    return reply(status, headers, body, media.content_type)


def _counting(api: ApiRequest) -> bool:
    return api.prefs.count in ("exact", "estimated")


def _documents(api: ApiRequest, ent: Entity, body: Any) -> list[dict[str, Any]]:
    """The payload as documents for the write service, shaped by `columns=` and `Prefer: missing=`."""
    items = body if isinstance(body, list) else [body]
    if not all(isinstance(item, Mapping) for item in items):
        raise errors.invalid_body("All object keys must match" if isinstance(body, list) else "Empty or invalid json")
    columns = api.qs.columns
    if columns is not None:
        for name in columns:
            if ent.field(name) is None:
                raise errors.column_not_found(ent.resource, name)
        fill = api.prefs.missing != "default"
        return [{name: item.get(name) for name in columns if name in item or fill} for item in items]
    keys = set(items[0]) if items else set()
    for item in items:
        for name in item:
            if ent.field(name) is None:
                raise errors.column_not_found(ent.resource, name)
        if set(item) != keys:
            raise errors.invalid_body("All object keys must match")
    return [dict(item) for item in items]


def _rows_of(api: ApiRequest, ent: Entity) -> tuple[Filter | None, tuple[OrderTerm, ...], int | None, int | None]:
    """Which rows a PATCH or DELETE changes: its filter and, with `limit` or `offset`, that page in
    `order`, picked by the write service inside its transaction."""
    where = write_filter(ent, api.qs)
    if api.limit is None and not api.offset:
        return where, (), None, None
    return where, order_terms(ent, api.qs), api.limit, api.offset or None
