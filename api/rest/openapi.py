"""The OpenAPI 3 document of the REST resources, built from `api.entities`.

Like PostgREST's root document it lists every resource with its columns,
types, required fields and enums, and the query parameters each operation
takes: one filter parameter per column (`column=op.value`), select, order,
limit, offset, and the Prefer, Range and Accept headers.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from api import __version__
from api.entities import ENTITIES, Entity, Field, Kind
from api.rest import views

FILTER_PATTERN = (
    r"^(not\.)?(eq|neq|gt|gte|lt|lte|like|ilike|match|imatch|in|is|isdistinct|cs|cd|ov|fts|plfts|"
    r"phfts|wfts)(\((any|all|[a-z_]+)\))?\..*$"
)


def _schema_of(f: Field) -> dict[str, Any]:
    match f.kind:
        case Kind.DATE:
            schema: dict[str, Any] = {"type": "string", "format": "date"}
        case Kind.TIMESTAMP:
            schema = {"type": "string", "format": "date-time"}
        case Kind.INTEGER:
            schema = {"type": "integer"}
            if f.minimum is not None:
                schema["minimum"] = f.minimum
            if f.maximum is not None:
                schema["maximum"] = f.maximum
        case Kind.TEXT_LIST:
            schema = {"type": "array", "items": {"type": "string"}}
        case Kind.TIMEFRAME:
            schema = {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "start": {"type": "string", "format": "date"},
                    "end": {"type": "string", "format": "date"},
                },
            }
        case Kind.ENUM:
            schema = {"type": "string", "enum": list(f.choices)}
        case _:
            schema = {"type": "string"}
    if f.kind is Kind.ID or f.references:
        schema["minLength"] = 1
    if not f.required:
        schema["nullable"] = True
    schema["description"] = f.description + (" Note: this is a Primary Key." if f.name == "id" else "")
    return schema


def _definition(ent: Entity) -> dict[str, Any]:
    fields = [f for f in ent.fields if not f.internal]
    return {
        "type": "object",
        "description": ent.description,
        "required": [f.name for f in fields if f.required and f.name != "id"],
        "properties": {f.name: _schema_of(f) for f in fields},
    }


AGGREGATES_ON = (
    "Aggregate functions are enabled: avg(), count(), max(), min() and sum() appended to a column "
    "(amount.sum(), casts before and after: amount::int.sum()::text), or count() alone, group the rows by the "
    "other selected columns, as in PostgREST, e.g. select=status,count(),progress_percent.avg()."
)
AGGREGATES_OFF = (
    "Aggregate functions (count(), sum(), ...) are disabled on this server (COCO_REST_AGGREGATES=false): "
    "a select using one is refused with PGRST123."
)


def _parameters(aggregates: bool) -> dict[str, Any]:
    def query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": schema or {"type": "string"},
        }

    def header(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "header", "required": False, "description": description, "schema": schema}

    params: dict[str, Any] = {
        "select": query(
            "select",
            "Columns and embedded resources to return, e.g. *,actor:actors(name); spreads lift a related row's "
            "columns into the row (...actor(name)), or for a to-many relation arrays of their values "
            "(...goal_story_updates(status)). " + (AGGREGATES_ON if aggregates else AGGREGATES_OFF),
        ),
        "order": query("order", "Ordering, e.g. date.desc.nullslast,id"),
        "limit": query("limit", "At most this many rows", {"type": "integer", "minimum": 0}),
        "offset": query("offset", "Skip this many rows", {"type": "integer", "minimum": 0}),
        "columns": query("columns", "Which keys of the payload to insert"),
        "on_conflict": query("on_conflict", "Column of the upsert conflict (id)", {"type": "string", "enum": ["id"]}),
        "preferRead": header(
            "Prefer",
            "count=exact|planned|estimated",
            {"type": "string", "enum": ["count=exact", "count=planned", "count=estimated"]},
        ),
        "preferWrite": header(
            "Prefer",
            "return=representation|minimal|headers-only, resolution=..., count=...",
            {
                "type": "string",
                "enum": [
                    "return=representation",
                    "return=minimal",
                    "return=headers-only",
                    "return=representation,resolution=merge-duplicates",
                    "resolution=ignore-duplicates",
                ],
            },
        ),
        "range": header("Range", "Rows to return, e.g. 0-9", {"type": "string", "pattern": r"^\d+-\d*$"}),
        "rangeUnit": header("Range-Unit", "Always items", {"type": "string", "enum": ["items"]}),
    }
    for ent in ENTITIES.values():
        for f in ent.fields:
            if f.internal:
                continue
            params[f"rowFilter.{ent.resource}.{f.name}"] = query(
                f.name,
                f"Filter on {f.name}: op.value, e.g. eq.x, in.(a,b), not.is.null",
                {"type": "string", "pattern": FILTER_PATTERN},
            )
    return params


def _filters(ent: Entity) -> list[dict[str, Any]]:
    return [
        {"$ref": f"#/components/parameters/rowFilter.{ent.resource}.{f.name}"} for f in ent.fields if not f.internal
    ]


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/parameters/{name}"}


def _error() -> dict[str, Any]:
    return {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _path_item(ent: Entity) -> dict[str, Any]:
    body_schema = {"$ref": f"#/components/schemas/{ent.resource}"}
    rows = {"type": "array", "items": body_schema}
    read_params = [
        _ref("select"),
        _ref("order"),
        _ref("limit"),
        _ref("offset"),
        _ref("range"),
        _ref("rangeUnit"),
        _ref("preferRead"),
        *_filters(ent),
    ]
    item: dict[str, Any] = {
        "get": {
            "tags": [ent.resource],
            "summary": f"Read {ent.resource}",
            "description": ent.description,
            "parameters": read_params,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {"schema": rows},
                        "application/vnd.pgrst.object+json": {"schema": body_schema},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                "206": {"description": "Partial Content", "content": {"application/json": {"schema": rows}}},
                "400": _error(),
                "404": _error(),
                "406": _error(),
                "416": _error(),
            },
        },
    }
    if not ent.writable:
        return item
    write_params = [_ref("select"), _ref("preferWrite")]
    body = {
        "required": True,
        "content": {"application/json": {"schema": {"oneOf": [body_schema, {"type": "array", "items": body_schema}]}}},
    }
    item["post"] = {
        "tags": [ent.resource],
        "summary": f"Create {ent.resource} (one object or an array)",
        "parameters": [*write_params, _ref("columns"), _ref("on_conflict")],
        "requestBody": body,
        "responses": {
            "201": {"description": "Created", "content": {"application/json": {"schema": rows}}},
            "200": {"description": "Upserted"},
            "400": _error(),
            "409": _error(),
        },
    }
    patch_schema = {"type": "object", "properties": _definition(ent)["properties"]}
    item["patch"] = {
        "tags": [ent.resource],
        "summary": f"Update the {ent.resource} matching the filters",
        "parameters": [*write_params, *_filters(ent)],
        "requestBody": {"required": True, "content": {"application/json": {"schema": patch_schema}}},
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": rows}}},
            "204": {"description": "No Content"},
            "400": _error(),
            "409": _error(),
        },
    }
    item["delete"] = {
        "tags": [ent.resource],
        "summary": f"Delete the {ent.resource} matching the filters",
        "parameters": [*write_params, *_filters(ent)],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": rows}}},
            "204": {"description": "No Content"},
            "400": _error(),
            "409": _error(),
        },
    }
    return item


@lru_cache(maxsize=2)
def document(*, aggregates: bool = True) -> dict[str, Any]:
    """The document; `aggregates`: whether aggregate functions are enabled (said in the description and in the
    select parameter's)."""
    schemas: dict[str, Any] = {ent.resource: _definition(ent) for ent in ENTITIES.values()}
    schemas["Error"] = {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "details": {"type": "string", "nullable": True},
            "hint": {"type": "string", "nullable": True},
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Continuous Coordination REST API",
            "description": "PostgREST-compatible access to the six CoCo 1.0.0 entities. Filters take the form "
            "column=operator.value; see the PostgREST API reference for the full dialect. "
            + (AGGREGATES_ON if aggregates else AGGREGATES_OFF),
            "version": __version__,
        },
        "paths": {
            "/": {
                "get": {
                    "tags": ["Introspection"],
                    "summary": "This OpenAPI document",
                    "responses": {"200": {"description": "OK"}},
                }
            },
            **{f"/{ent.resource}": _path_item(ent) for ent in ENTITIES.values()},
            **views.paths(),
        },
        "components": {"schemas": schemas, "parameters": _parameters(aggregates)},
    }
