"""`subscription { coordinationEvents }` over both WebSocket protocols, with the `gql` client,
against two real server processes on one database."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from sqlalchemy.ext.asyncio import AsyncEngine

from api.store.writes import WriteService

from .helpers import seed, table_cursors, take, until_subscribers

PROTOCOLS = [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL]
EVENTS = """subscription($where: CoordinationEventWhere, $after: String, $teamId: ID) {
  coordinationEvents(where: $where, after: $after, teamId: $teamId) {
    id cursor eventType actorId referenceId occurredAt
    reference { __typename ... on TeamCheckin { id teamId next } ... on GoalStoryUpdate { id title } }
  }
}"""
# The subscriptions each server holds for the tests of this module.
OPEN: Counter[str] = Counter()


@asynccontextmanager
async def subscribed(base_url: str, protocol: str, **variables: Any) -> AsyncIterator[AsyncIterator[dict]]:
    """A running subscription: events arrive on the returned iterator; the server has accepted it."""
    transport = WebsocketsTransport(
        url=base_url.replace("http://", "ws://") + "/graphql", subprotocols=[protocol], ping_interval=None
    )
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        failed = asyncio.Event()

        async def pump() -> None:
            try:
                request = GraphQLRequest(EVENTS, variable_values=variables)
                async for result in session.subscribe(request):
                    await queue.put(result["coordinationEvents"])
            except Exception as error:  # surfaced to the test through the queue
                failed.set()
                await queue.put(error)

        # The subscriptions of earlier tests have ended (the server notices a closed socket by itself).
        await until_subscribers(base_url, OPEN[base_url])
        task = asyncio.create_task(pump())
        # The server registers the subscription when it starts executing it; events committed from then on
        # reach it. A refused subscription sends its error instead.
        await until_subscribers(base_url, OPEN[base_url] + 1, unless=failed.is_set)
        registered = not failed.is_set()
        OPEN[base_url] += registered

        async def events() -> AsyncIterator[dict]:
            while True:
                item = await queue.get()
                if isinstance(item, Exception):
                    raise item
                yield item

        try:
            yield events()
        finally:
            task.cancel()
            OPEN[base_url] -= registered


def checkin(actor: str = "a-0", team: str = "t-0", note: str = "x") -> dict[str, Any]:
    return {"actor_id": actor, "team_id": team, "date": "2026-05-22", "next": [note]}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_an_event_written_through_rest_on_one_process_reaches_a_subscriber_on_another(
    live_servers: tuple[str, str], writer: WriteService, protocol: str
) -> None:
    a, b = live_servers
    await seed(writer)
    async with subscribed(b, protocol) as events, httpx.AsyncClient(base_url=a) as http:
        response = await http.post(
            "/team_checkins", json=checkin(note="via REST on A"), headers={"Prefer": "return=representation"}
        )
        assert response.status_code == 201, response.text
        row = response.json()[0]
        [event] = await take(events, 1)
    assert event["referenceId"] == row["id"] and event["eventType"] == "TEAM_CHECKIN"
    assert event["actorId"] == "a-0" and int(event["cursor"]) > 0
    assert event["reference"] == {
        "__typename": "TeamCheckin",
        "id": row["id"],
        "teamId": "t-0",
        "next": ["via REST on A"],
    }


async def test_500_events_from_10_concurrent_writers_arrive_once_each_in_cursor_order(
    live_servers: tuple[str, str], writer: WriteService, clean: AsyncEngine
) -> None:
    a, b = live_servers
    await seed(writer)
    start = max(await table_cursors(clean), default=0)
    async with subscribed(b, PROTOCOLS[0]) as on_b, subscribed(a, PROTOCOLS[1]) as on_a:
        async with httpx.AsyncClient(base_url=a, timeout=60) as http:

            async def write(w: int) -> None:
                for i in range(50):
                    r = await http.post("/team_checkins", json=checkin(note=f"writer {w} item {i}"))
                    assert r.status_code == 201, r.text

            await asyncio.gather(*(write(w) for w in range(10)))
        got_b = await take(on_b, 500)
        got_a = await take(on_a, 500)
    expected = await table_cursors(clean, start)
    assert len(expected) == 500
    for got in (got_a, got_b):
        cursors = [int(e["cursor"]) for e in got]
        assert cursors == expected  # every event, once, in cursor (commit) order


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_subscriber_that_resumes_with_after_gets_exactly_what_it_missed(
    live_servers: tuple[str, str], writer: WriteService, clean: AsyncEngine, protocol: str
) -> None:
    a, b = live_servers
    await seed(writer)
    async with subscribed(a, protocol) as events:
        await writer.create("team_checkin", [checkin(note="seen")])
        [seen] = await take(events, 1)
    missed = await writer.create("team_checkin", [checkin(note=f"missed {i}") for i in range(5)])
    async with subscribed(b, protocol, after=seen["cursor"]) as events:
        replayed = await take(events, 5)
        later = await writer.create("team_checkin", [checkin(note="live again")])
        [live] = await take(events, 1)
    assert [e["referenceId"] for e in replayed] == [e["reference_id"] for e in missed.events]
    assert live["referenceId"] == later.events[0]["reference_id"]
    assert [int(e["cursor"]) for e in [*replayed, live]] == await table_cursors(clean, int(seen["cursor"]))


async def test_filters_by_event_type_actor_and_team(live_servers: tuple[str, str], writer: WriteService) -> None:
    a, b = live_servers
    await seed(writer)
    await writer.create("goal_story", [{"id": "g-1", "title": "Goal", "team_ids": ["t-1"]}])
    async with (
        subscribed(b, PROTOCOLS[0], teamId="t-1") as team_events,
        subscribed(b, PROTOCOLS[0], where={"eventType": {"eq": "GOAL_STORY_UPDATE"}}) as updates,
        subscribed(a, PROTOCOLS[1], where={"actorId": {"eq": "a-1"}}) as by_actor,
    ):
        await writer.create("team_checkin", [checkin(team="t-0"), checkin(actor="a-1", team="t-1")])
        await writer.create(
            "goal_story_update",
            [
                {
                    "actor_id": "a-0",
                    "goal_story_id": "g-1",
                    "date": "2026-05-22",
                    "title": "On track",
                    "content": "Going well",
                }
            ],
        )
        team = await take(team_events, 2)
        update = await take(updates, 1)
        actor = await take(by_actor, 1)
    assert [e["eventType"] for e in team] == ["TEAM_CHECKIN", "GOAL_STORY_UPDATE"]
    assert team[0]["actorId"] == "a-1"
    assert update[0]["reference"] == {
        "__typename": "GoalStoryUpdate",
        "id": update[0]["referenceId"],
        "title": "On track",
    }
    assert actor[0]["actorId"] == "a-1" and actor[0]["eventType"] == "TEAM_CHECKIN"


@pytest.mark.parametrize("after", ["yesterday", "²", "-1", "", "9" * 30])
async def test_a_bad_cursor_is_bad_user_input(live_servers: tuple[str, str], after: str) -> None:
    async with subscribed(live_servers[0], PROTOCOLS[0], after=after) as events:
        with pytest.raises(TransportQueryError) as caught:
            await take(events, 1, timeout=10)
    assert caught.value.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert caught.value.errors[0]["extensions"]["field"] == "after"


async def test_a_checkin_posted_by_an_agent_over_mcp_reaches_a_graphql_subscriber(
    live_servers: tuple[str, str], writer: WriteService
) -> None:
    from mcp import Client

    a, b = live_servers
    await seed(writer)
    async with subscribed(b, PROTOCOLS[0]) as events, Client(f"{a}/mcp") as agent:
        posted = await agent.call_tool(
            "post_team_checkin", {"actor_id": "a-0", "team_id": "t-0", "date": "2026-05-22", "next": ["from an agent"]}
        )
        assert not posted.is_error, posted.content
        [event] = await take(events, 1)
    assert event["referenceId"] == posted.structured_content["team_checkin"]["id"]
    assert event["reference"]["next"] == ["from an agent"]
