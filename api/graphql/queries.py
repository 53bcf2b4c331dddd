"""The Query type: each entity by id, and each entity as a connection, as `relations.ROOTS` declares them."""

from __future__ import annotations

import asyncio
import json
from inspect import Parameter
from typing import Any

import strawberry
from strawberry import Info

from api.errors import InvalidInput, InvalidReason
from api.graphql.connections import Connection, build
from api.graphql.context import Context
from api.graphql.loaders import summary_page
from api.graphql.nodes import Node, decode
from api.graphql.relations import ROOTS, Root, Shape
from api.graphql.types import (
    TYPES,
    connection_class,
    connection_named,
    make,
    named,
    one,
    page,
    paging_parameters,
    resolver,
)
from api.plan import Bundle, ReadPlan, Summary


def _root_field(root: Root) -> Any:
    entity_name = root.entity

    async def by_id(info: Info, parent: Any, id: str) -> Any:
        return await one(info, TYPES[entity_name], entity_name, id)

    async def listed(info: Info, parent: Any, **arguments: Any) -> Connection[Any]:
        context: Context = info.context
        planned, condition, plan = page(info, entity_name, **arguments)
        rows = json.loads(await context.reader.json_array(plan))

        async def total() -> int:
            return await context.reader.count(ReadPlan(entity_name, where=condition))

        async def summarize(summary: Summary) -> Any:
            found = json.loads(
                await context.reader.json_object(Bundle((summary_page("s", None, entity_name, condition, summary),)))
            )
            return found["s"]["s"]

        return build(
            planned,
            rows,
            make(TYPES[entity_name], entity_name),
            total,
            summarize=summarize,
            kind=connection_class(entity_name),
        )

    if root.shape is Shape.ONE:
        parameters = [Parameter("id", Parameter.KEYWORD_ONLY, annotation=strawberry.ID)]
        return resolver(root.name, root.description, parameters, named(entity_name) | None, by_id)
    assert root.shape is Shape.CONNECTION
    connection = connection_named(entity_name)
    return resolver(root.name, root.description, paging_parameters(entity_name), connection, listed)


async def _node(info: Info, node_id: str, argument: str = "nodeId") -> Any:
    found = decode(node_id, argument)
    if found is None:
        return None
    entity_name, id = found
    return await one(info, TYPES[entity_name], entity_name, id)


async def node(info: Info, parent: Any, node_id: str) -> Any:
    return await _node(info, node_id)


async def nodes(info: Info, parent: Any, node_ids: list[str]) -> list[Any]:
    context: Context = info.context
    if len(node_ids) > context.limits.max_page_size:
        raise InvalidInput(
            f"nodeIds takes at most {context.limits.max_page_size} ids, not {len(node_ids)}",
            field="nodeIds",
            reason=InvalidReason.RULE,
        )
    # Batched: the rows of each entity are read together.
    return list(await asyncio.gather(*(_node(info, node_id, "nodeIds") for node_id in node_ids)))


NODE_ROOTS = {
    "node": resolver(
        "node",
        "The object with this global id (any type implementing Node), or null.",
        [Parameter("node_id", Parameter.KEYWORD_ONLY, annotation=strawberry.ID)],
        Node | None,
        node,
    ),
    "nodes": resolver(
        "nodes",
        "The objects with these global ids, in their order (null where there is none).",
        [Parameter("node_ids", Parameter.KEYWORD_ONLY, annotation=list[strawberry.ID])],
        list[Node | None],
        nodes,
    ),
}


class _Query:
    pass


for _root in ROOTS.values():
    setattr(_Query, _root.name, _root_field(_root))
for _name, _field in NODE_ROOTS.items():
    setattr(_Query, _name, _field)

Query = strawberry.type(
    _Query,
    name="Query",
    description="Reads. Lists are connections: filter with `where`, sort with `orderBy` (id breaks "
    "ties; events default to commit order), page with first/after or last/before.",
)
