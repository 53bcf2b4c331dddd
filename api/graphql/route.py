"""`/graphql` on the Starlette app: POST and GET, GraphiQL for browsers, subscriptions over WebSocket
(both of Strawberry's protocols: graphql-transport-ws and the legacy graphql-ws)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from ..config import Settings
from .connections import Limits
from .context import Context
from .errors import with_code
from .schema import make_schema
from .subscriptions import Subscription

PATH = "/graphql"


class GraphQLApp(GraphQL):
    def __init__(self, settings: Settings, subscription: Any = Subscription) -> None:
        super().__init__(make_schema(settings, subscription), graphql_ide="graphiql" if settings.graphql_ide else None,
                         keep_alive=True, keep_alive_interval=settings.graphql_keepalive_s,
                         max_subscriptions_per_connection=settings.graphql_max_subscriptions_per_connection)
        self.limits = Limits(max_page_size=settings.graphql_max_page_size,
                             default_page_size=settings.graphql_default_page_size)

    async def get_context(self, request: Any, response: Response | None = None) -> Context:  # type: ignore[override]
        services = request.app.state.services
        return Context(reader=services.reader, writer=services.writer, limits=self.limits,
                       live=getattr(request.app.state, "live", None))

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Syntax errors end the operation before the schema's extensions see its result.
        if result.errors:
            result.errors = [with_code(e) for e in result.errors]
        return await super().process_result(request, result)


def graphql_app(settings: Settings) -> GraphQLApp:
    return GraphQLApp(settings)


__all__ = ["PATH", "GraphQLApp", "graphql_app"]
