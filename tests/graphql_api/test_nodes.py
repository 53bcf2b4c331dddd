"""Relay's object identification: every type's global nodeId, node(nodeId:) and nodes(nodeIds:), the same
through the compiled path and the resolvers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, build_schema, parse
from graphql.execution.values import get_variable_values
from sqlalchemy.ext.asyncio import AsyncEngine

from api.config import Settings
from api.graphql.compiled import NotPlannable, run
from api.graphql.connections import Limits
from api.graphql.context import Context
from api.graphql.nodes import encode
from api.graphql.schema import make_schema
from api.store.reads import Reader
from api.store.writes import WriteService

SETTINGS = Settings()
SCHEMA = make_schema(SETTINGS)
# graphql-core's view of it, rebuilt from the SDL: what coerces variables.
GRAPHQL_SCHEMA = build_schema(SCHEMA.as_str())
LIMITS = Limits(max_page_size=SETTINGS.graphql_max_page_size, default_page_size=SETTINGS.graphql_default_page_size)

TYPES = {
    "actor": ("Actor", "a-1"),
    "team": ("Team", "t-1"),
    "team_checkin": ("TeamCheckin", "c-1"),
    "goal_story": ("GoalStory", "g-2"),
    "goal_story_update": ("GoalStoryUpdate", "u-2"),
}


async def resolved(engine: AsyncEngine, query: str, variables: dict[str, Any]) -> Any:
    context = Context(reader=Reader(engine), writer=WriteService(engine), limits=LIMITS, resolvers_only=True)
    return await SCHEMA.execute(query, variable_values=variables, context_value=context)


async def compiled(engine: AsyncEngine, query: str, variables: dict[str, Any]) -> Any:
    """The data the compiled path answers (NotPlannable when it does not)."""
    document = parse(query)
    [operation] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    coerced = get_variable_values(GRAPHQL_SCHEMA, operation.variable_definitions or (), variables)
    assert not isinstance(coerced, list), coerced
    context = Context(reader=Reader(engine), writer=WriteService(engine), limits=LIMITS)
    return await run(SCHEMA, operation, fragments, coerced, context)


async def both(engine: AsyncEngine, query: str, variables: dict[str, Any] | None = None) -> Any:
    """The data of a query, which the compiled path and the resolvers must answer alike."""
    by_resolvers = await resolved(engine, query, variables or {})
    assert by_resolvers.errors is None, by_resolvers.errors
    by_compiled = await compiled(engine, query, variables or {})
    # Compared as the client receives them: key order too.
    assert json.dumps(by_compiled) == json.dumps(by_resolvers.data), (by_compiled, by_resolvers.data)
    return by_compiled


async def test_every_type_has_a_node_id_that_node_reads_back(world: AsyncEngine) -> None:
    for entity_name, (type_name, id) in TYPES.items():
        root = type_name[0].lower() + type_name[1:]
        data = await both(world, f'{{ {root}(id: "{id}") {{ nodeId id __typename }} }}')
        node_id = data[root]["nodeId"]
        assert node_id == encode(entity_name, id)
        # Opaque to clients, but the entity is in it: the same id of two types is two nodes.
        payload = json.loads(base64.urlsafe_b64decode(node_id + "=" * (-len(node_id) % 4)))
        assert payload[1] == [id]
        found = await both(
            world,
            """query N($nodeId: ID!) { node(nodeId: $nodeId) { __typename nodeId ... on Node { id }
                 ... on GoalStory { title latestUpdate { nodeId status } }
                 ... on Actor { name teams { nodes { nodeId name } } }
                 ...Checkin } }
               fragment Checkin on TeamCheckin { date actor { ... on Node { nodeId } name } }""",
            {"nodeId": node_id},
        )
        assert found["node"]["__typename"] == type_name and found["node"]["id"] == id
        assert found["node"]["nodeId"] == node_id
    story = await both(world, f'{{ node(nodeId: "{encode("goal_story", "g-2")}") {{ ... on GoalStory {{ title }} }} }}')
    assert story == {"node": {"title": "API"}}


async def test_unknown_and_malformed_node_ids(world: AsyncEngine) -> None:
    missing = await both(world, f'{{ a: node(nodeId: "{encode("actor", "nope")}") {{ nodeId }} }}')
    assert missing == {"a": None}
    elsewhere = base64.urlsafe_b64encode(b'["people",["a-1"]]').decode().rstrip("=")
    assert await both(world, f'{{ node(nodeId: "{elsewhere}") {{ nodeId }} }}') == {"node": None}
    for malformed in ("not base64!", base64.urlsafe_b64encode(b'{"a": 1}').decode(), "W10"):
        result = await resolved(world, f'{{ node(nodeId: "{malformed}") {{ nodeId }} }}', {})
        assert result.data == {"node": None}
        assert result.errors[0].original_error.reason.value == "format", result.errors


async def test_nodes_in_their_order_with_nulls(world: AsyncEngine) -> None:
    ids = [encode("goal_story_update", "u-3"), encode("actor", "zz"), encode("team", "t-2"), encode("actor", "a-3")]
    query = "query Ns($ids: [ID!]!) { nodes(nodeIds: $ids) { __typename nodeId ... on Team { name } } }"
    answered = await resolved(world, query, {"ids": ids})
    assert answered.errors is None
    assert answered.data["nodes"] == [
        {"__typename": "GoalStoryUpdate", "nodeId": ids[0]},
        None,
        {"__typename": "Team", "nodeId": ids[2], "name": "Frontend"},
        {"__typename": "Actor", "nodeId": ids[3]},
    ]
    # The resolvers answer it (one read per entity).
    with pytest.raises(NotPlannable):
        await compiled(world, query, {"ids": ids})
    too_many = await resolved(world, query, {"ids": ids * (LIMITS.max_page_size // 4 + 1)})
    assert too_many.errors and "at most" in too_many.errors[0].message


async def test_node_ids_of_any_text_are_spelled_alike(fresh_world: AsyncEngine) -> None:
    """The compiled path builds node ids in SQL: non-ASCII (astral too), quotes and backslashes come out
    byte for byte as Python's json.dumps + base64 spell them."""
    ids = ["ü-1", "日本", 'q"uote\\', "emoji \U0001f600"]
    await WriteService(fresh_world).create("actor", [{"id": i, "actor_type": "agent", "name": i} for i in ids])
    data = await both(fresh_world, "{ actors(where: {actorType: {eq: AGENT}}, first: 20) { nodes { id nodeId } } }")
    spelled = {node["id"]: node["nodeId"] for node in data["actors"]["nodes"]}
    for id in ids:
        assert spelled[id] == encode("actor", id)
        again = await both(fresh_world, "query($n: ID!) { node(nodeId: $n) { id } }", {"n": spelled[id]})
        assert again == {"node": {"id": id}}


async def test_node_goes_through_the_schema_too(world: AsyncEngine) -> None:
    from api.graphql.context import Context

    context = Context(reader=Reader(world), writer=WriteService(world), limits=LIMITS)
    node_id = encode("goal_story", "g-1")
    result = await SCHEMA.execute(
        f'{{ node(nodeId: "{node_id}") {{ ... on GoalStory {{ title children {{ totalCount }} }} }} }}',
        context_value=context,
    )
    assert result.errors is None and result.data == {"node": {"title": "Launch", "children": {"totalCount": 2}}}
