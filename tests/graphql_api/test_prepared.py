"""A query answered once through the compiled path is answered again from its recorded plan, in the route.

The second answer skips Strawberry entirely, so these tests check that what the
client sees does not change: the same JSON (key order included), the same
metrics, the same refusals of bad documents and variables, and nothing but
queries recorded.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from graphql_helpers import counts
from sqlalchemy.ext.asyncio import AsyncEngine

from api.graphql.compiled import UNPLANNABLE, Prepared, PreparedWrite

NESTED = """query PreparedNested($first: Int) {
  goalStories(first: $first, orderBy: [{field: TITLE}]) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { title createdAt parent { id } latestUpdate { status actor { actorType name } } } }
    nodes { t: title children { nodes { id teams { name members { name } } } } }
  }
}"""


def _recorded(served: tuple[str, Any], query: str, operation_name: str | None) -> list[Any]:
    """What the served app recorded for the document and operation name."""
    [cache] = served[1].state.caches.named("graphql_requests")
    return [entry for key, entry in cache.items() if key[1] == query and key[2] == operation_name]


def _ordered(response: httpx.Response) -> Any:
    """The body with every object as its list of pairs, so that key order counts."""
    return json.loads(response.content, object_pairs_hook=list)


async def _operations_counted(client: httpx.AsyncClient, name: str) -> float:
    text = (await client.get("/metrics")).text
    found = re.search(r'^coco_graphql_operations_total\{[^}]*name="' + name + r'"[^}]*\} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_a_repeated_query_gets_the_same_json_from_its_recorded_plan(
    gql, world: AsyncEngine, served: tuple[str, Any]
) -> None:
    server_url = served[0]
    body = {"query": NESTED, "variables": {"first": 3}, "operationName": "PreparedNested"}
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        counted = await _operations_counted(client, "PreparedNested")
        first = await client.post("/graphql", json=body)
        assert [type(e) for e in _recorded(served, NESTED, "PreparedNested")] == [Prepared]
        second = await client.post("/graphql", json=body)
        third = await client.post("/graphql", json={**body, "variables": {"first": 1}})
        assert await _operations_counted(client, "PreparedNested") == counted + 3
    assert first.status_code == second.status_code == 200
    assert second.headers["content-type"] == first.headers["content-type"] == "application/json"
    # PostgreSQL's own spelling of the JSON (json.dumps would write '": '): the text passed through.
    assert b'"totalCount" : ' in second.content and b'"totalCount" : ' not in first.content
    assert _ordered(first) == _ordered(second)
    data = second.json()["data"]["goalStories"]
    assert data["totalCount"] == 4 and [e["node"]["title"] for e in data["edges"]] == ["API", "Launch", "Marketing"]
    assert data["pageInfo"]["hasNextPage"] is True and data["pageInfo"]["endCursor"] == data["edges"][-1]["cursor"]
    # Other variables: another request, recorded on its own.
    assert third.json()["data"]["goalStories"]["totalCount"] == 4
    assert len(third.json()["data"]["goalStories"]["edges"]) == 1
    assert len(_recorded(served, NESTED, "PreparedNested")) == 2


async def test_bad_variables_of_a_recorded_query_are_refused_as_before(
    gql, world: AsyncEngine, served: tuple[str, Any]
) -> None:
    await gql(NESTED, {"first": 2})
    await gql(NESTED, {"first": 2})
    for _ in range(2):
        assert await gql.code(NESTED, {"first": "two"}) == "BAD_USER_INPUT"
        assert await gql.code(NESTED, {"first": 1000}) == "BAD_USER_INPUT"
    # Only the good variables were recorded.
    assert [type(entry) for entry in _recorded(served, NESTED, None)] == [Prepared]


async def test_refused_documents_are_never_recorded(gql, world: AsyncEngine, served: tuple[str, Any]) -> None:
    deep = "{ goalStories { nodes { " + "children { nodes { " * 15 + "id" + " } }" * 15 + " } } }"
    aliased = "{ " + " ".join(f"a{i}: actors {{ totalCount }}" for i in range(40)) + " }"
    for query in (deep, aliased, "{ actors { nodes { nosuchfield } } }"):
        first, second = await gql.errors(query), await gql.errors(query)
        assert first == second and first[0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert _recorded(served, query, None) == []


async def test_each_operation_of_a_document_is_recorded_on_its_own(gql, world: AsyncEngine) -> None:
    document = 'query A { actor(id: "a-1") { name actorType } } query B { team(id: "t-1") { name __typename } }'
    for _ in range(2):
        response_a = await gql.http.post("/graphql", json={"query": document, "operationName": "A"})
        response_b = await gql.http.post("/graphql", json={"query": document, "operationName": "B"})
        assert response_a.json() == {"data": {"actor": {"name": "Ada", "actorType": "PERSON"}}}
        assert response_b.json() == {"data": {"team": {"name": "Backend", "__typename": "Team"}}}
    for _ in range(2):  # without a name, no operation is chosen (the spec's GetOperation)
        errors = await gql.errors(document)
        assert errors[0]["message"] == "Must provide operation name if query contains multiple operations."


async def test_what_cannot_be_compiled_is_remembered_and_answered_by_the_resolvers(
    gql, world: AsyncEngine, served: tuple[str, Any]
) -> None:
    query = "{ actors(first: 1) { nodes { teams { totalCount } teams { totalCount } } } }"
    for _ in range(2):
        assert await gql(query) == {"actors": {"nodes": [{"teams": {"totalCount": 1}}]}}
    assert _recorded(served, query, None) == [UNPLANNABLE]


async def test_a_recorded_mutation_writes_again(gql, fresh_world: AsyncEngine, served: tuple[str, Any]) -> None:
    mutation = """mutation { createActor(input: {id: "p-new", actorType: PERSON, name: "New"}) { actor { id } } }"""
    before = await counts(fresh_world)
    assert await gql(mutation) == {"createActor": {"actor": {"id": "p-new"}}}
    [recorded] = _recorded(served, mutation, None)
    assert isinstance(recorded, PreparedWrite)
    # Its repeat writes again: the id is taken now, so the write service refuses it and the resolvers say so.
    assert await gql.code(mutation) == "CONFLICT"
    after = await counts(fresh_world)
    assert after["actors"] == before["actors"] + 1
    assert after["coordination_events"] == before["coordination_events"]
    assert _recorded(served, mutation, None) == [recorded]
