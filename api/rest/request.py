"""ApiRequest: everything a PostgREST request says, read from the HTTP request before any database work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_plus

from starlette.requests import Request

from api.entities import BY_RESOURCE, Entity
from api.rest import errors
from api.rest.headers import MediaType, Preferences, parse_accept, parse_prefer, parse_range
from api.rest.querystring import parse
from api.rest.syntax import QueryString

Action = Literal["read", "create", "update", "upsert", "delete", "info", "schema", "schema_info"]


@dataclass
class ApiRequest:
    method: str
    action: Action
    entity: Entity | None
    qs: QueryString
    prefs: Preferences
    accepts: list[MediaType]
    headers_only: bool
    # The top-level page: offset and limit (None for no limit).
    offset: int = 0
    limit: int | None = None


def api_request(request: Request) -> ApiRequest:
    method = request.method.upper()
    path = request.scope["path"]  # not request.url: building the whole URL costs more than the rest
    segments = path.strip("/").split("/") if path.strip("/") else []
    if not segments:
        entity = None
        root: dict[str, Action] = {"GET": "schema", "HEAD": "schema", "OPTIONS": "schema_info"}
        if method not in root:
            raise errors.unsupported_method(method)
        action = root[method]
    elif len(segments) == 2 and segments[0] == "rpc":
        raise errors.no_function(segments[1])
    elif len(segments) != 1 or path.endswith("/"):
        raise errors.invalid_path()
    else:
        entity = BY_RESOURCE.get(segments[0])
        if entity is None:
            raise errors.table_not_found(segments[0])
        actions: dict[str, Action] = {
            "GET": "read",
            "HEAD": "read",
            "POST": "create",
            "PATCH": "update",
            "PUT": "upsert",
            "DELETE": "delete",
            "OPTIONS": "info",
        }
        if method not in actions:
            raise errors.unsupported_method(method)
        action = actions[method]

    # One schema is exposed; PostgREST refuses a profile naming another (writes name it in Content-Profile).
    profile = request.headers.get(
        "content-profile" if method in ("POST", "PATCH", "PUT", "DELETE") else "accept-profile"
    )
    if profile is not None and profile != errors.SCHEMA:
        raise errors.unacceptable_schema(profile)
    prefs = parse_prefer(request.headers.getlist("prefer"))
    qs = parse(query_items(request.scope.get("query_string", b""))) if entity is not None else parse([])
    if prefs.invalid and prefs.strict and action not in ("info", "schema_info"):
        raise errors.invalid_preferences(prefs.invalid)
    api = ApiRequest(
        method=method,
        action=action,
        entity=entity,
        qs=qs,
        prefs=prefs,
        accepts=parse_accept(request.headers.get("accept")),
        headers_only=method == "HEAD",
    )
    if entity is not None and action != "info":
        api.offset, api.limit = _top_range(method, qs, request.headers.get("range"))
    return api


def query_items(raw: bytes) -> list[tuple[str, str]]:
    """The query string's pairs in order; a key without `=` is left out, as PostgREST leaves it out."""
    text = raw.decode("latin-1")
    return [
        (unquote_plus(k, errors="replace"), unquote_plus(v, errors="replace"))
        for k, sep, v in (part.partition("=") for part in text.split("&"))
        if sep
    ]


def _top_range(method: str, qs: QueryString, range_header: str | None) -> tuple[int, int | None]:
    """Intersect limit/offset with the Range header (read on GET and HEAD), as PostgREST's getRanges does."""
    limit = qs.limits.get(())
    offset = qs.offsets.get(())
    lower = offset if offset is not None else 0
    upper = None if limit is None else lower + limit - 1
    # HEAD answers as GET would, without the body.
    header = parse_range(range_header) if method in ("GET", "HEAD") else None
    header_empty = False
    if header is not None:
        first, last = header
        header_empty = last is not None and last < first
        lower = max(lower, first)
        if last is not None and last <= errors.BIGINT_MAX:  # beyond, the range is open-ended
            upper = last if upper is None else min(upper, last)
    if method == "PUT" and (limit is not None or offset is not None):
        raise errors.put_limit()
    if limit == 0:
        return 0, 0
    if upper is not None and upper < lower:
        raise errors.invalid_range(
            "The lower boundary must be lower than or equal to the upper boundary in the Range header."
            if header_empty
            else "Limit should be greater than or equal to zero."
        )
    if lower < 0:
        raise errors.RestError(400, "2201X", "OFFSET must not be negative")
    if lower > errors.BIGINT_MAX:
        raise errors.beyond_bigint("offset")
    return lower, None if upper is None else upper - lower + 1
