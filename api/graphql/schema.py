"""The schema, assembled with its protection: depth, token and alias limits, parser and validation caches."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.types import ExecutionContext

from api.config import Settings
from api.graphql.compiled import CompiledExecution, RecentPlans
from api.graphql.errors import ErrorCodes
from api.graphql.mutations import Mutation
from api.graphql.observed import OperationMetrics
from api.graphql.queries import Query
from api.graphql.subscriptions import Subscription


class Schema(strawberry.Schema):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Requests this schema validated and answered through the compiled path (api/graphql/compiled.py).
        self.recent = RecentPlans()

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # ErrorCodes logs what is unexpected; domain errors and bad documents are the client's, not ours.
        pass


def make_schema(settings: Settings | None = None, subscription: Any = Subscription) -> Schema:
    """The GraphQL schema (with `subscription=None`, one without subscriptions)."""
    settings = settings or Settings()
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=subscription,
        extensions=[
            # First, so that it sees the errors of every other extension.
            ErrorCodes,
            lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
            # The caches live at module level, shared by the per-request extension instances.
            lambda: ParserCache(maxsize=settings.graphql_cache_size),
            lambda: ValidationCache(maxsize=settings.graphql_cache_size),
            lambda: QueryDepthLimiter(max_depth=settings.graphql_max_depth),
            lambda: MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases),
            OperationMetrics,
            # Last: plannable queries are answered by one statement for the whole `data`, the rest by the resolvers.
            CompiledExecution,
        ],
    )
