"""The schema, assembled with its protection: depth, token and alias limits, parser and validation caches."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.types import ExecutionContext

from api.config import Settings
from api.graphql.compiled import CompiledExecution
from api.graphql.errors import ErrorCodes
from api.graphql.mutations import Mutation
from api.graphql.observed import OperationMetrics
from api.graphql.persisted import TrustedDocuments, manifest_of
from api.graphql.queries import Query
from api.graphql.subscriptions import Subscription


class Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # ErrorCodes logs what is unexpected; domain errors and bad documents are the client's, not ours.
        pass


def make_schema(settings: Settings | None = None, subscription: Any = Subscription) -> Schema:
    """The GraphQL schema (with `subscription=None`, one without subscriptions)."""
    settings = settings or Settings()
    manifest = manifest_of(settings)
    # Trusted documents only: anything else is refused before it runs (api/graphql/persisted.py).
    trusted: list[Any] = [] if manifest is None else [lambda: TrustedDocuments(manifest)]
    introspection: list[Any] = [] if settings.graphql_introspection else [DisableIntrospection]
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
            # After validation: an untrusted document's errors become one refusal.
            *trusted,
            lambda: QueryDepthLimiter(max_depth=settings.graphql_max_depth),
            lambda: MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases),
            *introspection,
            OperationMetrics,
            # Last: plannable queries are answered by one statement for the whole `data`, the rest by the resolvers.
            CompiledExecution,
        ],
    )
