"""What compiled execution and the cost measure need from Strawberry beyond its public API, in one place.

Compiled execution (api/graphql/compiled.py) reads the validated document against
graphql-core's schema, turns a field's arguments into Strawberry's Python values as a
resolver would get them, and keys recorded requests by the operation name the client gave;
the cost measure (api/graphql/cost.py) reads the same schema and operation name before
validation. Strawberry keeps the schema and the name to itself (`Schema._schema`,
`ExecutionContext._provided_operation_name`), and the arguments take its field definitions
and converter. Shared subscription payloads (api/graphql/fanout.py) extend the executor Strawberry
runs graphql-core with, which Strawberry does not export, and its two WebSocket protocol handlers, whose
classes the view names in attributes; frames written below Strawberry's send (fanout.Pushed) ask whether the
handler still runs their operation (`operation_open`). tests/graphql_api/test_strawberry_adapter.py
checks each against the installed Strawberry, so that an upgrade that moves any of them fails there, loudly.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLField, GraphQLSchema
from strawberry import Schema
from strawberry.schema.base import BaseSchema
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types import ExecutionContext
from strawberry.types.arguments import convert_arguments

# Where Strawberry keeps its own field (StrawberryField) on each graphql-core field.
FIELD_DEFINITION = "strawberry-definition"

# The graphql-core executor (a `graphql.Executor`) Strawberry executes with by default: its resolve infos
# carry what Strawberry's `Info` reads. A schema's `execution_context_class` may extend it.
StrawberryExecutor = StrawberryGraphQLCoreExecutionContext

# The handlers of graphql-transport-ws and of the legacy graphql-ws, which a view takes from its
# `graphql_transport_ws_handler_class` and `graphql_ws_handler_class`: each runs an operation in a task of its
# own (`run_operation`, `handle_async_results`) and sends its messages with `send_message`.
TransportWSHandler = BaseGraphQLTransportWSHandler
LegacyWSHandler = BaseGraphQLWSHandler


def operation_open(handler: TransportWSHandler, operation: Any) -> bool:
    """Whether a graphql-transport-ws operation still runs: its handler forgets it once it has completed or
    failed, or when the client completed it (`operations`, by id)."""
    return handler.operations.get(operation.id) is operation


def graphql_schema(schema: BaseSchema) -> GraphQLSchema:
    """The graphql-core schema Strawberry built (and validates and executes against)."""
    if not isinstance(schema, Schema):
        raise TypeError(f"not Strawberry's Schema: {type(schema).__name__}")
    built = schema._schema
    if not isinstance(built, GraphQLSchema):
        raise TypeError(f"Strawberry's schema holds {type(built).__name__}, not a graphql-core schema")
    return built


def provided_operation_name(execution_context: ExecutionContext) -> str | None:
    """The operation name the request gave, None when it gave none (unlike `operation_name`,
    which falls back to the document's first operation)."""
    return execution_context._provided_operation_name


def field_arguments(schema: Schema, field: GraphQLField, raw: dict[str, Any]) -> dict[str, Any]:
    """A field's argument values from graphql-core (`get_argument_values`) as its resolver receives them:
    input types as their Strawberry classes, enums as their members, scalars parsed."""
    definition = field.extensions[FIELD_DEFINITION]
    return convert_arguments(
        raw, definition.arguments, scalar_registry=schema.schema_converter.scalar_registry, config=schema.config
    )
