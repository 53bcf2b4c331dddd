"""GraphQL operations counted for /metrics, by type and name, once they pass validation."""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from api import metrics


class OperationMetrics(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        try:
            kind = context.operation_type.value
        except RuntimeError:  # no operation could be chosen; validation has said why
            kind = "unknown"
        metrics.graphql_operation(kind, context.operation_name)
        yield
