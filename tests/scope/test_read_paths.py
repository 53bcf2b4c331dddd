"""A token limited to a team reads nothing of another team, on every read path: REST (roots, embeds both
ways, counts, Content-Range, lookups by id, the repeated-shape path), GraphQL (nested, totalCount, lookups,
Relay's node), MCP tools, and the live feed (SSE and GraphQL subscriptions, live and replayed).

The token is limited to t-1 and acts as a-4, who belongs to no team: it sees t-1, its check-ins c-1 and
c-2, the goal story g-1 and its update u-1, their events, the members a-1 and a-2, and a-4 itself."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.edge.auth import Caller, current_caller
from api.plan import Embed, ReadPlan
from api.store.reads import count, json_array
from api.store.select import Statements
from api.store.writes import WriteService
from tests.live.helpers import until_subscribers
from tests.live.servers import messages

from .conftest import ACCESS, ADMIN, ADMIN_WITH_TEAMS, UNLIMITED, bearer, seed_world, seen_by, token

T1 = token(["t-1"], actor="a-4")
T9 = token(["t-9"])
NOBODY = token([])
SEEN = {
    "actors": {"a-1", "a-2", "a-4"},
    "teams": {"t-1"},
    "team_checkins": {"c-1", "c-2"},
    "goal_stories": {"g-1"},
    "goal_story_updates": {"u-1"},
}
ALL_IDS = {
    "actors": {"a-1", "a-2", "a-3", "a-4", "a-5"},
    "teams": {"t-1", "t-2", "t-3", "t-9"},
    "team_checkins": {"c-1", "c-2", "c-3", "c-4", "c-5"},
    "goal_stories": {"g-1", "g-2", "g-3", "g-4"},
    "goal_story_updates": {"u-1", "u-2", "u-3", "u-4"},
}
FOREIGN = set().union(*ALL_IDS.values()) - set().union(*SEEN.values())


@pytest.fixture
async def world(clean: AsyncEngine) -> AsyncEngine:
    await seed_world(clean)
    return clean


def ids_in(value: Any) -> set[str]:
    """Every row id in a JSON answer: the `id` of every object, at any depth."""
    found: set[str] = set()
    if isinstance(value, dict):
        if isinstance(value.get("id"), str):
            found.add(value["id"])
        for item in value.values():
            found |= ids_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= ids_in(item)
    return found


async def event_ids(engine: AsyncEngine, references: set[str]) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id FROM coordination_events WHERE reference_id = ANY(:refs)"), {"refs": sorted(references)}
        )
        return {row[0] for row in rows}


# ---------------------------------------------------------------- REST

EMBEDS = {
    "actors": "id,teams(id),team_checkins(id),goal_story_updates(id),goal_stories(id),coordination_events(id)",
    "teams": "id,members(id,teams(id)),team_checkins(id,actor(id)),goal_stories(id,goal_story_updates(id))",
    "team_checkins": "id,actor(id,team_checkins(id)),team(id),coordination_events(id)",
    "goal_stories": "id,parent(id),children(id),teams(id),actors(id),goal_story_updates(id)",
    "goal_story_updates": "id,actor(id),goal_story(id,children(id)),coordination_events(id)",
    "coordination_events": "id,actor(id),team_checkin(id,team(id)),goal_story_update(id,goal_story(id))",
}


async def test_rest_roots_embeds_and_counts_see_only_the_team(scoped_url: str, world: AsyncEngine) -> None:
    seen_events = await event_ids(world, {"c-1", "c-2", "u-1"})
    all_events = await event_ids(world, set().union(*ALL_IDS.values()))
    async with httpx.AsyncClient(base_url=scoped_url, timeout=30) as client:
        for resource, select in EMBEDS.items():
            expected = SEEN.get(resource, seen_events)
            for params in ({}, {"select": select}):
                answer = await client.get(
                    f"/{resource}", params=params, headers={**bearer(T1), "Prefer": "count=exact"}
                )
                assert answer.status_code in (200, 206), answer.text
                rows = answer.json()
                assert {row["id"] for row in rows} == expected, (resource, params)
                assert not ids_in(rows) & (FOREIGN | (all_events - seen_events)), (resource, rows)
                assert answer.headers["content-range"].endswith(f"/{len(expected)}"), answer.headers
            # HEAD and a count alone tell the same number.
            head = await client.head(f"/{resource}", headers={**bearer(T1), "Prefer": "count=exact"})
            assert head.headers["content-range"].endswith(f"/{len(expected)}")
            # The same request unlimited sees more: the difference is the scope's.
            every = await client.get(f"/{resource}", params={"select": select}, headers=bearer(UNLIMITED))
            assert {row["id"] for row in every.json()} == ALL_IDS.get(resource, all_events)


async def test_rest_lookups_filters_and_orders_through_foreign_rows_find_nothing(
    scoped_url: str, world: AsyncEngine
) -> None:
    async with httpx.AsyncClient(base_url=scoped_url, timeout=30, headers=bearer(T1)) as client:
        for resource, ids in ALL_IDS.items():
            for foreign in ids - SEEN[resource]:
                answer = await client.get(f"/{resource}", params={"id": f"eq.{foreign}"})
                assert answer.json() == [], (resource, foreign)
                single = await client.get(
                    f"/{resource}",
                    params={"id": f"eq.{foreign}"},
                    headers={"Accept": "application/vnd.pgrst.object+json"},
                )
                assert single.status_code == 406, single.text
        # a-1 is seen, but its check-in in t-9 is not: a filter through it finds nothing.
        probe = {"select": "id,team_checkins!inner(id)", "team_checkins.previously": "cs.{secret work}"}
        assert (await client.get("/actors", params=probe)).json() == []
        unlimited = await client.get("/actors", params=probe, headers=bearer(UNLIMITED))
        assert [row["id"] for row in unlimited.json()] == ["a-1"]
        # A spread of a foreign row's field, and an order by one, tell nothing of it either.
        ordered = await client.get("/goal_stories", params={"select": "id", "order": "parent(title).desc"})
        assert ordered.json() == [{"id": "g-1"}], ordered.text
        spread = await client.get("/goal_stories", params={"select": "id,...parent(title)", "id": "eq.g-1"})
        assert spread.json() == [{"id": "g-1", "title": None}], spread.text


async def test_the_repeated_shape_path_never_carries_one_tokens_rows_to_another(
    scoped_url: str, world: AsyncEngine
) -> None:
    """The second and later GETs of a shape run its kept statement with new values: the scope is among them."""
    async with httpx.AsyncClient(base_url=scoped_url, timeout=30) as client:
        for _ in range(3):
            for credential, team, expected in (
                (T1, "t-1", {"c-1", "c-2"}),
                (T9, "t-1", set()),
                (T9, "t-9", {"c-4", "c-5"}),
                (T1, "t-9", set()),
                (NOBODY, "t-1", set()),
                (UNLIMITED, "t-9", {"c-4", "c-5"}),
                (ADMIN_WITH_TEAMS, "t-9", {"c-4", "c-5"}),
            ):
                answer = await client.get(
                    "/team_checkins", params={"team_id": f"eq.{team}"}, headers=bearer(credential)
                )
                assert {row["id"] for row in answer.json()} == expected, (credential == T1, team)
                actors = await client.get(
                    "/actors", params={"id": "neq.zz", "select": "id"}, headers=bearer(credential)
                )
                shown = {row["id"] for row in actors.json()}
                want = {T1: {"a-1", "a-2", "a-4"}, T9: {"a-5"}, NOBODY: set()}.get(credential, ALL_IDS["actors"])
                assert shown == want


async def test_a_token_with_no_teams_sees_only_its_actor(scoped_url: str, world: AsyncEngine) -> None:
    alone = token([], actor="a-3")
    async with httpx.AsyncClient(base_url=scoped_url, timeout=30, headers=bearer(alone)) as client:
        for resource in EMBEDS:
            rows = (await client.get(f"/{resource}")).json()
            assert [row["id"] for row in rows] == (["a-3"] if resource == "actors" else []), resource


# ---------------------------------------------------------------- GraphQL

NESTED = """{
  actors { totalCount nodes { id teams { totalCount nodes { id } } checkins { totalCount nodes { id } }
           goalStories { totalCount nodes { id } } goalStoryUpdates { totalCount nodes { id } }
           coordinationEvents { totalCount nodes { id } } } }
  teams { totalCount nodes { id members { id } checkins { totalCount nodes { id actor { id } } }
          goalStories { totalCount nodes { id } } } }
  goalStories { totalCount edges { node { id parent { id } children { totalCount nodes { id } } teams { id }
                actors { id } latestUpdate { id } updates { totalCount nodes { id } } } } }
  teamCheckins { totalCount nodes { id team { id } actor { id } coordinationEvents { totalCount nodes { id } } } }
  goalStoryUpdates { totalCount nodes { id goalStory { id parent { id } } } }
  coordinationEvents { totalCount nodes { id actor { id }
                       reference { __typename ... on TeamCheckin { id } ... on GoalStoryUpdate { id } } } }
}"""
LOOKUPS = """query($a: ID!, $t: ID!, $c: ID!, $g: ID!, $u: ID!) {
  actor(id: $a) { id } team(id: $t) { id } teamCheckin(id: $c) { id } goalStory(id: $g) { id }
  goalStoryUpdate(id: $u) { id }
}"""


async def test_graphql_nested_counts_and_lookups_see_only_the_team(scoped_url: str, world: AsyncEngine) -> None:
    seen_events = await event_ids(world, {"c-1", "c-2", "u-1"})
    async with httpx.AsyncClient(base_url=scoped_url, timeout=30) as client:
        answer = (await client.post("/graphql", json={"query": NESTED}, headers=bearer(T1))).json()
        assert "errors" not in answer, answer
        data = answer["data"]
        assert not ids_in(data) & FOREIGN, ids_in(data) & FOREIGN
        for key, resource in (
            ("actors", "actors"),
            ("teams", "teams"),
            ("teamCheckins", "team_checkins"),
            ("goalStoryUpdates", "goal_story_updates"),
        ):
            assert data[key]["totalCount"] == len(SEEN[resource]), key
            assert {n["id"] for n in data[key]["nodes"]} == SEEN[resource]
        assert data["goalStories"]["totalCount"] == 1
        [story] = data["goalStories"]["edges"]
        assert story["node"]["children"] == {"totalCount": 0, "nodes": []}  # g-2 and g-4 are not seen
        assert story["node"]["actors"] == [{"id": "a-1"}]  # a-5 is named by g-1, but not seen
        assert story["node"]["latestUpdate"] == {"id": "u-1"}
        assert data["coordinationEvents"]["totalCount"] == len(seen_events)
        assert {n["id"] for n in data["coordinationEvents"]["nodes"]} == seen_events
        a1 = next(n for n in data["actors"]["nodes"] if n["id"] == "a-1")
        assert a1["teams"] == {"totalCount": 1, "nodes": [{"id": "t-1"}]}
        assert a1["checkins"] == {"totalCount": 1, "nodes": [{"id": "c-1"}]}  # not c-5, in t-9

        foreign = {"a": "a-5", "t": "t-9", "c": "c-5", "g": "g-2", "u": "u-3"}
        looked_up = (
            await client.post("/graphql", json={"query": LOOKUPS, "variables": foreign}, headers=bearer(T1))
        ).json()
        assert looked_up == {
            "data": {k: None for k in ("actor", "team", "teamCheckin", "goalStory", "goalStoryUpdate")}
        }
        mine = {"a": "a-4", "t": "t-1", "c": "c-2", "g": "g-1", "u": "u-1"}
        looked_up = (
            await client.post("/graphql", json={"query": LOOKUPS, "variables": mine}, headers=bearer(T1))
        ).json()
        assert all(looked_up["data"][k] is not None for k in looked_up["data"]), looked_up

        # Relay's node: ids handed out to an admin name nothing for the team's token.
        admin = await client.post(
            "/graphql",
            json={"query": "{ teams { nodes { id nodeId } } actors { nodes { id nodeId } } }"},
            headers=bearer(ADMIN),
        )
        node_ids = {n["id"]: n["nodeId"] for key in ("teams", "actors") for n in admin.json()["data"][key]["nodes"]}
        query = "query($n: ID!, $m: [ID!]!) { node(nodeId: $n) { __typename } nodes(nodeIds: $m) { __typename } }"
        for foreign_id in ("t-9", "t-2", "a-5", "a-3"):
            variables = {"n": node_ids[foreign_id], "m": [node_ids[foreign_id], node_ids["t-1"]]}
            got = (
                await client.post("/graphql", json={"query": query, "variables": variables}, headers=bearer(T1))
            ).json()
            assert got == {"data": {"node": None, "nodes": [None, {"__typename": "Team"}]}}, got


# ---------------------------------------------------------------- MCP

MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}


async def test_mcp_tools_see_only_the_team(scoped_url: str, world: AsyncEngine) -> None:
    async def call(client: httpx.AsyncClient, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
        answer = await client.post("/mcp", json=body, headers={**MCP_HEADERS, **bearer(T1)})
        result: dict[str, Any] = answer.json()["result"]
        return result

    async with httpx.AsyncClient(base_url=scoped_url, timeout=30) as client:
        listed = {}
        for name in ("list_actors", "list_teams", "list_goal_stories", "get_coordination_events"):
            result = await call(client, name, {})
            assert result.get("isError") is not True, result
            listed[name] = json.loads(result["content"][0]["text"])
            assert not ids_in(listed[name]) & FOREIGN, (name, ids_in(listed[name]) & FOREIGN)
        assert ids_in(listed["list_teams"]) >= {"t-1"}
        assert {row["id"] for row in listed["list_actors"]["actors"]} == SEEN["actors"]
        for name, arguments in (
            ("get_team_checkins", {"team_id": "t-9"}),
            ("get_goal_story", {"goal_story_id": "g-2"}),
        ):
            result = await call(client, name, arguments)
            assert result["isError"] is True, result
            assert result["structuredContent"]["error"]["kind"] == "not_found", result
        mine = await call(client, "get_goal_story", {"goal_story_id": "g-1"})
        assert not ids_in(json.loads(mine["content"][0]["text"])) & FOREIGN


# ---------------------------------------------------------------- live: SSE and GraphQL subscriptions


async def foreign_then_own(writer: WriteService) -> tuple[str, str]:
    """A check-in of t-9, then one of t-1 (committed in that order): the ids of their events' references."""
    foreign = await writer.create("team_checkin", [{"actor_id": "a-5", "team_id": "t-9", "date": "2026-06-01"}])
    own = await writer.create("team_checkin", [{"actor_id": "a-1", "team_id": "t-1", "date": "2026-06-01"}])
    return foreign.rows[0]["id"], own.rows[0]["id"]


async def test_sse_sends_no_foreign_event_replayed_or_live(scoped_url: str, world: AsyncEngine) -> None:
    seen = await seen_by(world, {"t-1"}, "a-4")
    writer = WriteService(world)
    async with (
        httpx.AsyncClient(base_url=scoped_url, timeout=60) as client,
        client.stream(
            "GET", "/coordination_events", params={"after": "0"}, headers={"Accept": "text/event-stream", **bearer(T1)}
        ) as response,
    ):
        assert response.status_code == 200
        received = messages(response)
        replayed = [await asyncio.wait_for(anext(received), 30) for _ in seen["coordination_events"]]
        assert {m.data["id"] for m in replayed} == seen["coordination_events"]
        await until_subscribers(scoped_url, 1)
        _, own = await foreign_then_own(writer)
        live = await asyncio.wait_for(anext(received), 30)
        # The foreign event committed first: had it been sent, it would have come first.
        assert (live.event, live.data["reference_id"]) == ("coordination_event", own), live


async def test_graphql_subscription_sends_no_foreign_event_replayed_or_live(
    scoped_url: str, world: AsyncEngine
) -> None:
    seen = await seen_by(world, {"t-1"}, "a-4")
    writer = WriteService(world)
    transport = WebsocketsTransport(
        url=scoped_url.replace("http://", "ws://") + "/graphql",
        init_payload={"authorization": f"Bearer {T1}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        ping_interval=None,
    )
    request = GraphQLRequest(
        'subscription { coordinationEvents(after: "0") { id referenceId actor { id } '
        "reference { ... on TeamCheckin { id team { id } } ... on GoalStoryUpdate { id goalStory { id } } } } }"
    )
    want = len(seen["coordination_events"]) + 1
    got: list[dict[str, Any]] = []
    async with Client(transport=transport) as session:

        async def listen() -> None:
            async for result in session.subscribe(request):
                got.append(result["coordinationEvents"])
                if len(got) == want:
                    return

        task = asyncio.create_task(listen())
        await until_subscribers(scoped_url, 1, unless=task.done)
        _, own = await foreign_then_own(writer)
        await asyncio.wait_for(task, 30)
    assert {e["id"] for e in got[:-1]} == seen["coordination_events"]
    assert got[-1]["referenceId"] == own
    assert not ids_in(got) & FOREIGN, ids_in(got) & FOREIGN


async def test_two_scopes_subscribed_to_one_document_each_get_only_what_they_may_read(
    scoped_url: str, world: AsyncEngine
) -> None:
    """Subscribers of one document share its reads only within one access scope: an update both may read,
    written by an actor only one of them may read, reaches each as its own token reads it."""
    writer = WriteService(world)
    document = (
        "subscription { coordinationEvents { id referenceId actor { id name } "
        "reference { ... on TeamCheckin { id team { id name } } "
        "... on GoalStoryUpdate { id actor { id } goalStory { id teamIds actors { id } } } } } }"
    )
    # Two subscribers with T1 and two with the unlimited token (one per protocol each): how many events each
    # reads. Over graphql-transport-ws the frame writer reads for both scopes (api/graphql/fanout.py).
    want = {"t1": 1, "t1 legacy": 1, "all": 2, "all ws": 2}
    got: dict[str, list[dict[str, Any]]] = {name: [] for name in want}

    async def listen(name: str, token_: str, protocol: str) -> None:
        transport = WebsocketsTransport(
            url=scoped_url.replace("http://", "ws://") + "/graphql",
            init_payload={"authorization": f"Bearer {token_}"},
            subprotocols=[protocol],
            ping_interval=None,
        )
        async with Client(transport=transport) as session:
            async for result in session.subscribe(GraphQLRequest(document)):
                got[name].append(result["coordinationEvents"])
                if len(got[name]) == want[name]:
                    return

    tasks = [
        asyncio.create_task(listen("t1", T1, WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL)),
        asyncio.create_task(listen("all", UNLIMITED, WebsocketsTransport.APOLLO_SUBPROTOCOL)),
        asyncio.create_task(listen("t1 legacy", T1, WebsocketsTransport.APOLLO_SUBPROTOCOL)),
        asyncio.create_task(listen("all ws", UNLIMITED, WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL)),
    ]
    try:
        await until_subscribers(scoped_url, 4, unless=lambda: any(t.done() for t in tasks))
        foreign = await writer.create("team_checkin", [{"actor_id": "a-5", "team_id": "t-9", "date": "2026-06-02"}])
        update = await writer.create(
            "goal_story_update",
            [{"actor_id": "a-5", "goal_story_id": "g-1", "date": "2026-06-02", "title": "Seen", "content": "by t-1"}],
        )
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    finally:
        for task in tasks:
            task.cancel()
    [update_id] = [row["id"] for row in update.rows]
    # T1 reads the update and its goal story, but not the foreign check-in nor the actor a-5 (in t-9 only).
    limited = got["t1"] + got["t1 legacy"]
    assert [e["referenceId"] for e in limited] == [update_id, update_id]
    for event in limited:
        assert event["actor"] is None and event["reference"]["actor"] is None, event
        assert event["reference"]["goalStory"]["id"] == "g-1"
        assert "a-5" not in {n["id"] for n in event["reference"]["goalStory"]["actors"] if n}
    assert not ids_in(limited) & FOREIGN, ids_in(limited) & FOREIGN
    # The unlimited token reads both, a-5 included, from the same document.
    assert [e["referenceId"] for e in got["all"]] == [foreign.rows[0]["id"], update_id]
    assert got["all"][1]["actor"] == {"id": "a-5", "name": "Eve"}
    assert "a-5" in {n["id"] for n in got["all"][1]["reference"]["goalStory"]["actors"] if n}
    assert got["all ws"] == got["all"]


# ---------------------------------------------------------------- below the reader


async def test_a_statement_built_by_the_renderer_is_limited_whoever_runs_it(world: AsyncEngine) -> None:
    """A read that goes around the `Reader` (as a new kind of read might) still gets the caller's scope:
    the renderer's entry points add it to a plan that names none."""
    plan = ReadPlan("team", embeds=(Embed("goal_stories", "goal_stories", ReadPlan("goal_story")),))
    handle = current_caller.set(Caller(ACCESS.authenticate(f"Bearer {T1}")))
    try:
        async with world.connect() as conn:
            rows = json.loads(await json_array(conn, plan, Statements()))
            assert (await count(conn, ReadPlan("team_checkin")), await count(conn, ReadPlan("actor"))) == (2, 3)
    finally:
        current_caller.reset(handle)
    assert rows == [
        {
            "id": "t-1",
            "name": "Backend",
            "description": "APIs and data",
            "member_ids": ["a-2", "a-1"],
            "goal_stories": [
                {
                    "id": "g-1",
                    "title": "Launch",
                    "actor_ids": ["a-1", "a-5"],
                    "team_ids": ["t-1"],
                    "timeframe": {"start": "2026-01-01", "end": "2026-03-31"},
                    "created_at": rows[0]["goal_stories"][0]["created_at"],
                }
            ],
        }
    ]


async def test_graphql_aggregates_count_only_the_team(scoped_url: str, world: AsyncEngine) -> None:
    """Aggregates are built on the same renderer, and inherit the scope without code of their own."""
    query = """{ goalStoryUpdates { totalCount aggregates { distinctCount { id } sum { progressPercent } }
                   groupedAggregates(groupBy: [STATUS]) { keys distinctCount { id } } }
                 teamCheckins { aggregates { distinctCount { id teamId actorId } } } }"""
    async with httpx.AsyncClient(base_url=scoped_url, timeout=30) as client:
        scoped = (await client.post("/graphql", json={"query": query}, headers=bearer(T1))).json()
        every = (await client.post("/graphql", json={"query": query}, headers=bearer(UNLIMITED))).json()
    assert "errors" not in scoped, scoped
    updates = scoped["data"]["goalStoryUpdates"]
    assert updates["totalCount"] == 1
    assert updates["aggregates"] == {"distinctCount": {"id": "1"}, "sum": {"progressPercent": "10"}}, updates
    assert [group["distinctCount"]["id"] for group in updates["groupedAggregates"]] == ["1"]
    checkins = scoped["data"]["teamCheckins"]["aggregates"]["distinctCount"]
    assert checkins == {"id": "2", "teamId": "1", "actorId": "2"}, checkins
    assert every["data"]["goalStoryUpdates"]["totalCount"] == 4
