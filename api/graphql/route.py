"""`/graphql` on the Starlette app: POST and GET, GraphiQL for browsers, subscriptions over WebSocket
(both of Strawberry's protocols: graphql-transport-ws and the legacy graphql-ws)."""

from __future__ import annotations

import json
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from api import jsonbody, metrics
from api.config import Settings
from api.graphql.compiled import RECENT, Prepared
from api.graphql.connections import Limits
from api.graphql.context import Context
from api.graphql.errors import with_code
from api.graphql.schema import make_schema
from api.graphql.subscriptions import Subscription

PATH = "/graphql"


class GraphQLApp(GraphQL):
    def __init__(self, settings: Settings, subscription: Any = Subscription) -> None:
        super().__init__(
            make_schema(settings, subscription),
            graphql_ide="graphiql" if settings.graphql_ide else None,
            keep_alive=True,
            keep_alive_interval=settings.graphql_keepalive_s,
            max_subscriptions_per_connection=settings.graphql_max_subscriptions_per_connection,
        )
        self.limits = Limits(
            max_page_size=settings.graphql_max_page_size, default_page_size=settings.graphql_default_page_size
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        response = await self.answer_prepared(request)
        if response is None:
            try:
                response = await self.run(request)
            except HTTPException as e:
                response = PlainTextResponse(e.reason, status_code=e.status_code)
        await response(scope, receive, send)

    async def answer_prepared(self, request: Request) -> Response | None:
        """The answer to a query Strawberry already parsed, validated and answered through the compiled path
        (same document, operation and variables): its read runs again, and PostgreSQL's JSON text becomes the
        body as it is. Anything else, or any failure, is left to Strawberry (None)."""
        if not request.headers.get("content-type", "").startswith("application/json"):
            return None
        try:
            body = jsonbody.loads(await request.body())
        except ValueError:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return None
        variables, operation_name = body.get("variables"), body.get("operationName")
        if not (variables is None or isinstance(variables, dict)) or not (
            operation_name is None or isinstance(operation_name, str)
        ):
            return None
        prepared = RECENT.get(RECENT.key(self.schema, self.limits, body["query"], operation_name, variables))
        if not isinstance(prepared, Prepared):
            return None
        try:
            text = await request.app.state.services.reader.json_object(prepared.bundle)
        except Exception:
            return None  # the resolvers answer, with their errors
        metrics.graphql_operation("query", prepared.operation_name)
        return Response(b'{"data":' + text.encode() + b"}", media_type="application/json")

    def decode_json(self, data: str | bytes) -> object:
        # Strawberry answers a JSONDecodeError as a body it cannot parse (400), on HTTP and WebSocket alike.
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
        )

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Syntax errors end the operation before the schema's extensions see its result.
        if result.errors:
            result.errors = [with_code(e) for e in result.errors]
        return await super().process_result(request, result)


def graphql_app(settings: Settings) -> GraphQLApp:
    return GraphQLApp(settings)


__all__ = ["PATH", "GraphQLApp", "graphql_app"]
