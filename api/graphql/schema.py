"""The schema, assembled with its protection: depth, token and alias limits, the cost of the expanded
document, filter sizes, an execution deadline, parser and validation caches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, MaxTokensLimiter, ParserCache, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from api.config import Settings
from api.graphql.aggregates import SCALAR_MAP
from api.graphql.compiled import CompiledExecution, RecentPlans
from api.graphql.connections import Limits
from api.graphql.cost import Budget, Measures, Protection
from api.graphql.errors import ErrorCodes
from api.graphql.fanout import SharedExecutor
from api.graphql.mutations import Mutation
from api.graphql.observed import OperationMetrics
from api.graphql.persisted import TrustedDocuments, manifest_of
from api.graphql.queries import Query
from api.graphql.subscriptions import Subscription
from api.graphql.views import ViewQueries
from api.graphql.webhooks import WebhookMutations, WebhookQueries


def _with(base: type, extra: type) -> type:
    """`base` with the fields of `extra` after its own, under base's name and description."""
    definition = base.__strawberry_definition__  # type: ignore[attr-defined]
    return strawberry.type(type(definition.name, (extra, base), {}), description=definition.description)


# Webhook management (api/graphql/webhooks.py) and the coordination views (api/graphql/views.py) join the
# entity reads and writes.
ROOT_QUERY = _with(_with(Query, WebhookQueries), ViewQueries)
ROOT_MUTATION = _with(Mutation, WebhookMutations)

# The deadline of the operation being executed in this task (see `Schema.execute`).
_DEADLINE: ContextVar[asyncio.Timeout | None] = ContextVar("graphql_deadline", default=None)


class Schema(strawberry.Schema):
    # Seconds a query may run, from the moment it arrives (None: no deadline).
    deadline_s: float | None = None
    # What is known of recent documents (api/graphql/cost.py), set by `make_schema`.
    measures: Measures | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Requests this schema validated and answered through the compiled path (api/graphql/compiled.py).
        self.recent = RecentPlans()

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # ErrorCodes logs what is unexpected; domain errors and bad documents are the client's, not ours.
        pass

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        """Strawberry's execution, ended once a query passes its deadline (`Deadline` sets it when the
        operation turns out to be a query: a mutation is never cut short, or its answer could be an
        error for a write that committed). The deadline bounds the waits (reads, the loop's turns); the
        cost limit bounds the work between them."""
        deadline = asyncio.timeout(None)
        try:
            async with deadline:
                token = _DEADLINE.set(deadline)
                try:
                    return await super().execute(*args, **kwargs)
                finally:
                    _DEADLINE.reset(token)
        except TimeoutError:
            if not deadline.expired():
                raise
        return ExecutionResult(
            data=None,
            errors=[
                GraphQLError(
                    f"the query ran past its deadline of {self.deadline_s or 0:g} s and was stopped; "
                    "ask for less (smaller pages, fewer nested lists)",
                    extensions={"code": "TIMEOUT"},
                )
            ],
        )


class Deadline(SchemaExtension):
    """Starts the deadline of a query once its operation is known (see `Schema.execute`)."""

    def __init__(self) -> None:
        # Made as the operation begins, so the deadline counts parsing and validation too.
        self.started = time.monotonic()

    def on_execute(self) -> Iterator[None]:
        deadline = _DEADLINE.get()
        seconds = getattr(self.execution_context.schema, "deadline_s", None)
        if (
            deadline is not None
            and seconds is not None
            and self.execution_context.operation_type is OperationType.QUERY
        ):
            left = seconds - (time.monotonic() - self.started)
            deadline.reschedule(asyncio.get_running_loop().time() + left)
        yield


def make_schema(settings: Settings | None = None, subscription: Any = Subscription) -> Schema:
    """The GraphQL schema (with `subscription=None`, one without subscriptions)."""
    settings = settings or Settings()
    budget = Budget(
        max_cost=settings.graphql_max_cost,
        max_depth=settings.graphql_max_depth,
        max_aliases=settings.graphql_max_aliases,
        max_filter_nodes=settings.graphql_max_filter_nodes,
        limits=Limits(
            max_page_size=settings.graphql_max_page_size, default_page_size=settings.graphql_default_page_size
        ),
    )
    # One per schema, shared by the per-request extension instances (as Strawberry's caches are).
    measures = Measures(settings.graphql_cache_size)
    manifest = manifest_of(settings)
    # Trusted documents only: anything else is refused before it runs (api/graphql/persisted.py).
    trusted: list[Any] = [] if manifest is None else [lambda: TrustedDocuments(manifest)]
    introspection: list[Any] = [] if settings.graphql_introspection else [DisableIntrospection]
    schema = Schema(
        query=ROOT_QUERY,
        mutation=ROOT_MUTATION,
        subscription=subscription,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=[
            # First, so that it sees the errors of every other extension.
            ErrorCodes,
            Deadline,
            lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
            # The caches live at module level, shared by the per-request extension instances.
            lambda: ParserCache(maxsize=settings.graphql_cache_size),
            # The operation, depth, alias, filter and cost checks (linear in the document however much its
            # fragments expand), then validation (cached) unless they refused.
            lambda: Protection(budget, measures, maxsize=settings.graphql_cache_size),
            # After it: an untrusted document's errors, if any, become one refusal.
            *trusted,
            # Adds its rule to those Protection validates with.
            *introspection,
            OperationMetrics,
            # Last: plannable queries are answered by one statement for the whole `data`, the rest by the resolvers.
            CompiledExecution,
        ],
    )
    # Subscriptions' events read once per batch for all subscribers sharing them (api/graphql/fanout.py).
    schema.execution_context_class = SharedExecutor.bound(schema)
    # No document holds a worker longer than a statement may run.
    schema.deadline_s = settings.statement_timeout_ms / 1000
    schema.measures = measures
    return schema
