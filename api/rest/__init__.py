"""The REST compatibility layer: PostgREST's URL and header dialect over the shared plan and write service.

`routes()` gives the Starlette routes: Swagger UI at /docs, then one route
that answers every other path as PostgREST would (mount it last).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from api.entities import BY_RESOURCE
from api.errors import DatabaseFault, DomainError
from api.rest import docs, errors, views
from api.rest.errors import RestError
from api.rest.headers import negotiate
from api.rest.openapi import document
from api.rest.reading import read
from api.rest.repeated import Shapes
from api.rest.reply import VARY, Reply
from api.rest.request import api_request
from api.rest.response import CORS_EXPOSED, error_response
from api.rest.writing import write

log = logging.getLogger("coco.rest")
CORS_RAW = [(b"access-control-allow-origin", b"*"), (b"access-control-expose-headers", CORS_EXPOSED.encode())]

__all__ = ["RestApp", "endpoint", "resource_paths", "resource_route", "routes"]


async def endpoint(request: Request, shapes: Shapes | None = None) -> Response | Reply:
    """The answer to any REST request; GETs of a shape in `shapes` skip parsing and planning."""
    # Preflights never get here: the edge answers them for every front end (api/edge/cors.py).
    cors = any(name == b"origin" for name, _ in request.scope["headers"])
    response = await _answer(request, shapes)
    if isinstance(response, Reply):
        if not response.error:
            response.headers.append(VARY)
        if cors:
            response.headers += CORS_RAW
        return response
    if "proxy-status" not in response.headers:
        # PostgREST's hint to caches: the answer depends on these request headers too.
        response.headers["Vary"] = "Accept, Prefer, Range"
    if cors:
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED
    return response


async def _answer(request: Request, shapes: Shapes | None) -> Response | Reply:
    try:
        services = request.app.state.services
        settings = services.settings
        if shapes is not None and settings.rest_shapes:
            known = await shapes.answer(request, services.reader, settings.max_rows, settings.rest_aggregates)
            if known is not None:
                return known
        if views.is_view_path(request.scope["path"]):
            return await views.answer(request, services.reader)
        api = api_request(request)
        match api.action:
            case "read":
                return await read(api, services.reader, max_rows=settings.max_rows, aggregates=settings.rest_aggregates)
            case "create" | "update" | "upsert" | "delete":
                return await write(
                    api,
                    request,
                    services.writer,
                    aggregates=settings.rest_aggregates,
                    plans=shapes.write_plans if shapes is not None else None,
                )
            case "info":
                assert api.entity is not None
                allow = "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE" if api.entity.writable else "OPTIONS,GET,HEAD"
                return _info(allow)
            case "schema_info":
                return _info("OPTIONS,GET,HEAD")
            case "schema":
                negotiate(api.accepts, ("openapi", "json"))
                body = b"" if api.headers_only else json.dumps(document(aggregates=settings.rest_aggregates)).encode()
                return Response(body, media_type="application/openapi+json; charset=utf-8")
    except RestError as error:
        return error_response(error)
    except DomainError as error:
        return error_response(errors.from_domain(error))
    except DatabaseFault as error:
        log.info("database refused %s %s: %s", request.method, request.url.path, error.message)
        return error_response(errors.from_fault(error))
    except Exception:
        log.exception("unexpected failure answering %s %s", request.method, request.url.path)
        return error_response(RestError(500, "XX000", "Internal server error"))
    raise AssertionError("unreachable")


def _info(allow: str) -> Response:
    return Response(b"", headers={"Allow": allow, "Access-Control-Allow-Origin": "*"})


class RestApp:
    """The endpoint as a plain ASGI app, so that every method reaches it (PostgREST answers unknown ones).

    One per app: it keeps the shapes of the app's recent GETs (api/rest/repeated.py)."""

    def __init__(self, shapes: Shapes | None = None) -> None:
        self.shapes = shapes if shapes is not None else Shapes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive), self.shapes)
        await response(scope, receive, send)


def resource_paths() -> frozenset[str]:
    """The resources' own paths (/actors, ...)."""
    return frozenset(f"/{resource}" for resource in BY_RESOURCE)


class ResourceRoute(BaseRoute):
    """The resources' own paths: answered at once, without trying every other route first (the edge,
    api/edge/edge.py, already sends them straight to the REST app; this route serves an app without it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths = resource_paths()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["path"] in self.paths:
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def resource_route(app: RestApp) -> BaseRoute:
    """Mount this first: the most requested paths then cost one set lookup to route."""
    return ResourceRoute(app)


def routes(app: RestApp) -> list[BaseRoute]:
    """Swagger UI, then PostgREST's dialect on every other path; mount these last."""
    return [*docs.routes(), Route("/{path:path}", app)]
