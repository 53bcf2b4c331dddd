"""Relation filters in every `where`: to-one relations and picks by the related row's conditions, to-many
relations by some, every and none of their rows; the same answers through the compiled path (one
statement) and the resolvers."""

from __future__ import annotations

import httpx
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport
from sqlalchemy.ext.asyncio import AsyncEngine
from test_nodes import both, resolved

from api.store.writes import WriteService
from tests.statements import statements


async def ids(engine: AsyncEngine, root: str, where: str) -> list[str]:
    data = await both(engine, f"{{ {root}(where: {where}, orderBy: [{{field: ID}}]) {{ nodes {{ id }} }} }}")
    return [node["id"] for node in data[root]["nodes"]]


async def test_to_one_relations(world: AsyncEngine) -> None:
    assert await ids(world, "teamCheckins", '{actor: {name: {eq: "Ada"}}}') == ["c-1", "c-4"]
    assert await ids(world, "teamCheckins", '{actor: {name: {eq: "Ada"}}, team: {name: {eq: "Frontend"}}}') == []
    assert await ids(world, "goalStoryUpdates", '{goalStory: {title: {eq: "API"}}}') == ["u-3", "u-4"]
    # A relation to the same table: the parent's own conditions, not the row's.
    assert await ids(world, "goalStories", '{parent: {title: {eq: "Launch"}}}') == ["g-2", "g-3"]
    assert await ids(world, "goalStories", "{parent: {}}") == ["g-2", "g-3"]
    assert await ids(world, "goalStories", "{not: {parent: {}}}") == ["g-1", "g-4"]
    # Nested: check-ins of actors on a team named Backend.
    nested = '{actor: {teams: {some: {name: {eq: "Backend"}}}}}'
    assert await ids(world, "teamCheckins", nested) == ["c-1", "c-2", "c-4"]


async def test_the_latest_update_is_the_one_that_counts(world: AsyncEngine) -> None:
    # g-1's updates: on track (u-1) then at risk (u-2, the latest); g-2's: none (u-3), then completed (u-4).
    assert await ids(world, "goalStories", "{latestUpdate: {status: {eq: AT_RISK}}}") == ["g-1"]
    assert await ids(world, "goalStories", "{latestUpdate: {status: {eq: ON_TRACK}}}") == []
    assert await ids(world, "goalStories", "{updates: {some: {status: {eq: ON_TRACK}}}}") == ["g-1"]
    assert await ids(world, "goalStories", "{latestUpdate: {progressPercent: {gte: 100}}}") == ["g-2"]
    assert await ids(world, "goalStories", "{latestUpdate: {}}") == ["g-1", "g-2"]


async def test_some_every_none(world: AsyncEngine) -> None:
    assert await ids(world, "teams", '{members: {some: {name: {eq: "Bot"}}}}') == ["t-1"]
    assert await ids(world, "teams", '{members: {none: {name: {eq: "Bot"}}}}') == ["t-2", "t-3"]
    # Every: true for a team without members; a row whose condition is unknown (a null role) does not meet it.
    assert await ids(world, "teams", "{members: {every: {actorType: {eq: PERSON}}}}") == ["t-2", "t-3"]
    assert await ids(world, "teams", "{members: {every: {role: {isNull: false}}}}") == ["t-2", "t-3"]
    assert await ids(world, "teams", '{members: {every: {role: {neq: "nobody"}}}}') == ["t-2", "t-3"]
    assert await ids(world, "goalStories", '{children: {some: {}, none: {title: {eq: "Nope"}}}}') == ["g-1"]
    # g-3, a child of g-1, has no teams.
    assert await ids(world, "goalStories", "{children: {some: {}, none: {teamIds: {isNull: true}}}}") == []
    assert await ids(world, "goalStories", "{children: {every: {updates: {some: {}}}}}") == ["g-2", "g-3", "g-4"]
    both_ways = '{members: {some: {name: {eq: "Ada"}}, every: {actorType: {in: [PERSON, AGENT]}}}}'
    assert await ids(world, "teams", both_ways) == ["t-1"]
    # The rows a declaration bounds: an update's events are its own, not a check-in's of the same id.
    assert await ids(world, "goalStoryUpdates", "{coordinationEvents: {some: {}}}") == ["u-1", "u-2", "u-3", "u-4"]
    assert await ids(world, "teamCheckins", "{coordinationEvents: {every: {eventType: {eq: TEAM_CHECKIN}}}}") == [
        "c-1",
        "c-2",
        "c-3",
        "c-4",
    ]


async def test_relation_filters_on_nested_connections_and_in_one_statement(world: AsyncEngine, server_url: str) -> None:
    query = """{ actors(where: {checkins: {some: {team: {name: {eq: "Backend"}}}}}, orderBy: [{field: ID}]) {
        nodes { id goalStories(where: {latestUpdate: {status: {in: [AT_RISK, OFF_TRACK]}}}) { nodes { id } } } } }"""
    data = await both(world, query)
    assert data == {
        "actors": {
            "nodes": [
                {"id": "a-1", "goalStories": {"nodes": [{"id": "g-1"}]}},
                {"id": "a-2", "goalStories": {"nodes": []}},
            ]
        }
    }
    async with (
        httpx.AsyncClient(base_url=server_url, timeout=30) as client,
        statements(world, excluding="coordination_events") as seen,
    ):
        served = await client.post("/graphql", json={"query": query})
    assert served.json() == {"data": data}
    assert len(seen) == 1, seen


async def test_bad_relation_filters_are_refused(world: AsyncEngine) -> None:
    for where, label in (
        ("{actor: null}", "actor"),
        ("{members: {some: null}}", "members.some"),
    ):
        root = "teamCheckins" if "actor" in where else "teams"
        result = await resolved(world, f"{{ {root}(where: {where}) {{ totalCount }} }}", {})
        assert result.errors, where
        assert result.errors[0].original_error.field == label and "cannot be null" in result.errors[0].message


async def test_a_write_moves_rows_in_and_out(fresh_world: AsyncEngine) -> None:
    await WriteService(fresh_world).create(
        "goal_story_update",
        [
            {
                "id": "u-9",
                "actor_id": "a-2",
                "goal_story_id": "g-1",
                "date": "2026-05-20",
                "title": "Back on track",
                "content": "Vendor delivered",
                "status": "on_track",
            }
        ],
    )
    assert await ids(fresh_world, "goalStories", "{latestUpdate: {status: {eq: AT_RISK}}}") == []
    assert await ids(fresh_world, "goalStories", '{latestUpdate: {actor: {name: {eq: "Bot"}}}}') == ["g-1"]


async def test_subscriptions_filter_by_relations_too(world: AsyncEngine, server_url: str) -> None:
    # Replayed from the table: Ada's events, in commit order (Bot's check-in c-2 comes between them).
    query = """subscription { coordinationEvents(after: "0", where: {actor: {name: {eq: "Ada"}}}) {
        referenceId actorId } }"""
    transport = WebsocketsTransport(url=server_url.replace("http", "ws") + "/graphql")
    seen: list[dict[str, str]] = []
    async with Client(transport=transport) as session:
        async for result in session.subscribe(gql(query)):
            seen.append(result["coordinationEvents"])
            if len(seen) == 4:
                break
    assert [event["referenceId"] for event in seen] == ["c-1", "c-4", "u-1", "u-2"]
    assert {event["actorId"] for event in seen} == {"a-1"}
