"""What compiled execution takes from Strawberry beyond its public API (api/graphql/strawberry_adapter.py).

If an upgrade of Strawberry moves any of it, these fail, rather than every query quietly
going to the resolvers (or failing) in the compiled path.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator
from enum import Enum

import strawberry
from graphql import Executor, FieldNode, GraphQLSchema, OperationDefinitionNode, parse
from graphql.execution.values import get_argument_values
from strawberry.extensions import SchemaExtension

from api.graphql import make_schema
from api.graphql.strawberry_adapter import (
    LegacyWSHandler,
    StrawberryExecutor,
    TransportWSHandler,
    field_arguments,
    graphql_schema,
    operation_open,
    provided_operation_name,
)


@strawberry.enum
class Color(Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.input
class Where:
    color: Color
    times: int = 1


SEEN: list[tuple[str | None, str | None]] = []


class Capture(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        SEEN.append((provided_operation_name(self.execution_context), self.execution_context.operation_name))
        yield


@strawberry.type
class Query:
    @strawberry.field
    def pick(self, where: Where, first: int | None = None) -> str:
        return f"{where.color.value} x{where.times} ({first})"


SCHEMA = strawberry.Schema(Query, extensions=[Capture])


def test_the_graphql_core_schema_is_the_one_strawberry_executes_against() -> None:
    built = graphql_schema(make_schema())
    assert isinstance(built, GraphQLSchema)
    assert built.query_type is not None and built.query_type.name == "Query"
    assert {"GoalStory", "CoordinationEvent"} <= set(built.type_map)
    assert graphql_schema(SCHEMA).query_type.fields["pick"].args.keys() == {"where", "first"}  # type: ignore[union-attr]


def test_the_operation_name_the_request_gave_and_none_when_it_gave_none() -> None:
    SEEN.clear()
    document = "query A { pick(where: {color: RED}) } query B { pick(where: {color: BLUE}) }"
    assert SCHEMA.execute_sync(document, operation_name="B").data == {"pick": "blue x1 (None)"}
    assert SCHEMA.execute_sync("query Only { pick(where: {color: RED}) }").data == {"pick": "red x1 (None)"}
    # `operation_name` names the document's operation; only the adapter says the request named none.
    assert SEEN == [("B", "B"), (None, "Only")]


def test_arguments_as_the_resolver_gets_them() -> None:
    field = graphql_schema(SCHEMA).query_type.fields["pick"]  # type: ignore[union-attr]
    operation = parse("{ pick(where: {color: BLUE, times: 3}, first: 2) }").definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    node = operation.selection_set.selections[0]
    assert isinstance(node, FieldNode)

    arguments = field_arguments(SCHEMA, field, get_argument_values(field, node))

    assert arguments == {"where": Where(color=Color.BLUE, times=3), "first": 2}
    assert isinstance(arguments["where"], Where) and arguments["where"].color is Color.BLUE


def test_the_executor_strawberry_runs_with_unless_told_otherwise() -> None:
    # Shared subscription payloads (api/graphql/fanout.py) extend it, keeping the resolve infos Strawberry builds.
    assert issubclass(StrawberryExecutor, Executor)
    assert SCHEMA.execution_context_class is StrawberryExecutor
    ours = make_schema().execution_context_class
    assert ours is not None and issubclass(ours, StrawberryExecutor)


def test_the_protocol_handlers_the_view_runs_and_what_fanout_extends_of_them() -> None:
    from strawberry.asgi import GraphQL

    from api.graphql.route import GraphQLApp

    # (named with their type parameters there)
    assert typing.get_origin(GraphQL.graphql_transport_ws_handler_class) is TransportWSHandler
    assert typing.get_origin(GraphQL.graphql_ws_handler_class) is LegacyWSHandler
    assert issubclass(GraphQLApp.graphql_transport_ws_handler_class, TransportWSHandler)
    assert issubclass(GraphQLApp.graphql_ws_handler_class, LegacyWSHandler)
    # Each operation runs in a task of its own, started from these; messages go out through `send_message`.
    assert inspect.iscoroutinefunction(TransportWSHandler.run_operation)
    assert list(inspect.signature(LegacyWSHandler.handle_async_results).parameters)[:2] == ["self", "operation_id"]
    assert inspect.iscoroutinefunction(TransportWSHandler.send_message)
    assert inspect.iscoroutinefunction(LegacyWSHandler.send_message)


def test_whether_a_graphql_transport_ws_operation_still_runs() -> None:
    from datetime import timedelta

    from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation

    # Frames written below Strawberry's send (api/graphql/fanout.py `Pushed`) ask the handler's registry of
    # operations, which it keeps by id and forgets an operation from once it completed, failed or was completed.
    handler = TransportWSHandler(None, None, None, None, make_schema(), timedelta(seconds=1), None)  # type: ignore[arg-type]
    operation = Operation(handler, "1", "subscription { x }", None, None)
    assert not operation_open(handler, operation)
    handler.operations[operation.id] = operation
    assert operation_open(handler, operation)
    again = Operation(handler, "1", "subscription { x }", None, None)
    assert not operation_open(handler, again)  # the same id, another operation
    handler.forget_id(operation.id)
    assert not operation_open(handler, operation)
