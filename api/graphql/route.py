"""`/graphql` on the Starlette app: POST and GET, GraphiQL for browsers (ide.py), subscriptions over WebSocket
(both of Strawberry's protocols: graphql-transport-ws and the legacy graphql-ws).

An HTTP request goes through one pipeline: its media type is negotiated and its parameters checked
(http.py), a persisted document it names by id is looked up (persisted.py), then a query answered before
through the compiled path is answered from its recorded plan, and anything else is executed by
Strawberry; both answers take the negotiated media type and status, and on GET the headers of a cache
(caching.py)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from api import jsonbody, metrics
from api.config import Settings
from api.errors import DomainError
from api.graphql import caching, fanout, http, ide, persisted
from api.graphql.compiled import Prepared, PreparedWrite
from api.graphql.compiled_views import PreparedViews
from api.graphql.connections import Limits
from api.graphql.context import Context
from api.graphql.errors import with_code
from api.graphql.schema import make_schema
from api.graphql.subscriptions import Subscription

PATH = "/graphql"

log = logging.getLogger("coco.graphql")


class GraphQLApp(GraphQL):
    # Compiled subscriptions send their frames themselves (api/graphql/fanout.py).
    graphql_transport_ws_handler_class = fanout.DirectTransportWSHandler
    graphql_ws_handler_class = fanout.DirectLegacyWSHandler

    def __init__(self, settings: Settings, subscription: Any = Subscription) -> None:
        schema = make_schema(settings, subscription)
        # The requests its schema answered through the compiled path, which this route answers again.
        self.recent = schema.recent
        # What its schema measured of recent documents (api/graphql/cost.py).
        self.measures = schema.measures
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphql_ide else None,
            keep_alive=True,
            keep_alive_interval=settings.graphql_keepalive_s,
            max_subscriptions_per_connection=settings.graphql_max_subscriptions_per_connection,
        )
        self.limits = Limits(
            max_page_size=settings.graphql_max_page_size, default_page_size=settings.graphql_default_page_size
        )
        self.persisted = persisted.Persisted(settings)
        self.cache_policy = caching.Policy.of(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # Compiled subscriptions write their frames to the connection's send (api/graphql/fanout.py).
            token = fanout.SOCKET_SEND.set(send)
            try:
                await super().__call__(scope, receive, send)
            finally:
                fanout.SOCKET_SEND.reset(token)
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        media = http.JSON
        try:
            if request.method not in ("GET", "POST"):
                raise http.method_not_allowed("GET, POST", "GraphQL over HTTP takes GET and POST requests")
            if (
                request.method == "GET"
                and self.graphql_ide
                and self.should_render_graphql_ide(self.request_adapter_class(request))
            ):
                response = await self.render_graphql_ide(request)
            else:
                negotiated = http.negotiate(request.headers.get("accept"))
                if negotiated is None:
                    raise http.not_acceptable()
                media = negotiated
                response = await self.answer(request, await self.params(request), media)
        except http.RequestError as error:
            response = _json_response(http.refusal(error), error.status, media, error.headers)
        await response(scope, receive, send)

    async def answer(self, request: Request, params: http.Params, media: str) -> Response:
        """A request's answer: its document found (when it names a persisted one), then answered from a
        recorded plan or by Strawberry, registered when it is a new persisted one, and on GET given the
        headers a cache needs."""
        documents = getattr(request.app.state.services, "documents", None)
        try:
            found = await self.persisted.resolve(params, documents)
        except persisted.Refused as refused:
            status, body = http.answer({"data": None, "errors": [refused.as_error()]}, media, executed=False)
            # Not found is not for keeping: the client registers the document next.
            return _json_response(body, status, media, {"Cache-Control": "no-store"})
        params = found.params
        answered = await self.answer_prepared(request, params, media)
        if answered is None:
            answered = await self.execute(request, params, media)
        if found.register and answered.executed:
            assert params.query is not None
            await self.persisted.register(params.query, documents)
        if request.method == "GET":
            return caching.cached(request, answered.response, answered.clean, self.cache_policy)
        return answered.response

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET naming a persisted document (documentId, extensions) is a query, not a browser's visit.
        return super().should_render_graphql_ide(request) and not any(
            name in request.query_params for name in http.PARAMETERS
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        # Our own page: its assets come from this server (ide.py), never from a CDN.
        return ide.response(PATH)

    async def params(self, request: Request) -> http.Params:
        if request.method == "GET":
            return http.from_query_string(request.query_params.multi_items())
        return http.from_body(request.headers.get("content-type"), await request.body())

    async def execute(self, request: Request, params: http.Params, media: str) -> Answered:
        """The full path: Strawberry parses, validates (with the schema's limits and caches) and executes."""
        # GET never changes anything; subscriptions are served over WebSocket only.
        allowed = {OperationType.QUERY} if request.method == "GET" else {OperationType.QUERY, OperationType.MUTATION}
        try:
            result = await self.schema.execute(
                params.query,
                variable_values=params.variables,
                context_value=await self.get_context(request),
                operation_name=params.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=params.extensions,
            )
        except InvalidOperationTypeError as error:
            if error.operation_type is OperationType.MUTATION:
                raise http.method_not_allowed(
                    "POST", "a GET request cannot run a mutation: send it with POST"
                ) from error
            raise http.RequestError(
                400, f"subscriptions are served over WebSocket at {PATH} (graphql-transport-ws or graphql-ws)"
            ) from error
        except CannotGetOperationTypeError as error:
            # The operation cannot be chosen: a GraphQL request error, as a document that does not validate.
            result = ExecutionResult(data=None, errors=[GraphQLError(error.as_http_error_reason())])
        response = await self.process_result(request, result)
        executed = http.executed(result.data, result.errors)
        status, body = http.answer(dict(response), media, executed)
        return Answered(_json_response(body, status, media), executed, clean=executed and not result.errors)

    async def answer_prepared(self, request: Request, params: http.Params, media: str) -> Answered | None:
        """The answer to a query Strawberry already parsed, validated and answered through the compiled path
        (same document, operation and variables): its read runs again, and PostgreSQL's JSON text becomes the
        body as it is. Anything else, or any failure, is left to Strawberry (None)."""
        if params.query is None:
            return None
        prepared = self.recent.get(self.recent.key(self.limits, params.query, params.operation_name, params.variables))
        if isinstance(prepared, PreparedWrite):
            return await self.answer_write(request, prepared, media) if request.method == "POST" else None
        if not isinstance(prepared, Prepared | PreparedViews):
            return None
        reader = request.app.state.services.reader
        try:
            if isinstance(prepared, PreparedViews):
                text = await prepared.planned.text(reader)
            else:
                text = await reader.json_object(prepared.bundle)
        except DomainError as error:
            # The database failed it: Strawberry answers instead, through the compiled path again or the resolvers
            # (a fallback it counts).
            log.debug("the recorded plan of query %s failed: %s", prepared.operation_name or "(anonymous)", error)
            return None
        except Exception:
            log.warning("the recorded plan of query %s failed", prepared.operation_name or "(anonymous)", exc_info=True)
            return None
        metrics.graphql_operation("query", prepared.operation_name)
        response = Response(b'{"data":' + text.encode() + b"}", media_type=http.content_type(media))
        return Answered(response, executed=True, clean=True)

    async def answer_write(self, request: Request, prepared: PreparedWrite, media: str) -> Answered | None:
        """A mutation Strawberry already parsed, validated and answered through the compiled path, made again:
        its write runs with its payload rendered inside it, and the texts PostgreSQL rendered become the body.
        A write the service refuses (or cannot make) wrote nothing, and is left to Strawberry (None), which
        answers it with the resolvers' errors."""
        planned = prepared.planned
        try:
            written = await planned.run(request.app.state.services.writer)
        except DomainError as error:
            log.debug("the recorded mutation %s failed: %s", prepared.operation_name or "(anonymous)", error)
            return None
        except Exception:
            log.warning("the recorded mutation %s failed", prepared.operation_name or "(anonymous)", exc_info=True)
            return None
        metrics.graphql_operation("mutation", prepared.operation_name)
        body = b'{"data":' + planned.text(written).encode() + b"}"
        return Answered(Response(body, media_type=http.content_type(media)), executed=True, clean=True)

    def encode_json(self, data: object) -> str | bytes:
        # A subscription's shared payload goes into each subscriber's frame as it is (api/graphql/fanout.py).
        spliced = fanout.frame(data)
        return spliced if spliced is not None else super().encode_json(data)

    def decode_json(self, data: str | bytes) -> object:
        # Strawberry's own parsing (WebSocket messages): too deep is a message it cannot parse.
        try:
            return jsonbody.loads(data)
        except jsonbody.TooDeep as error:
            raise json.JSONDecodeError(str(error), "", 0) from None

    async def get_context(self, request: Any, response: Response | None = None) -> Context:  # type: ignore[override]
        services = request.app.state.services
        return Context(
            reader=services.reader,
            writer=services.writer,
            limits=self.limits,
            live=getattr(request.app.state, "live", None),
            webhooks=getattr(services, "webhooks", None),
        )

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Syntax errors end the operation before the schema's extensions see its result.
        if result.errors:
            result.errors = [with_code(e) for e in result.errors]
        return await super().process_result(request, result)


@dataclass(frozen=True)
class Answered:
    """A response, whether execution started (the document parsed and validated), and whether it ran
    without an error (so that a cache may keep it)."""

    response: Response
    executed: bool
    clean: bool


def _json_response(body: Any, status: int, media: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        headers=headers,
        media_type=http.content_type(media),
    )


def graphql_app(settings: Settings) -> GraphQLApp:
    return GraphQLApp(settings)


__all__ = ["PATH", "GraphQLApp", "graphql_app"]
