"""Shared subscription payloads (api/graphql/fanout.py) against the resolvers, in process on the live feed:
the same documents through both give the same frames, and subscribers sharing a selection share its reads."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from api.graphql import fanout
from api.graphql.connections import Limits
from api.graphql.context import Context
from api.graphql.schema import make_schema
from api.live import LiveFeed
from api.store import Reader
from api.store.writes import WriteService

from .helpers import seed, until_subscribers

SCHEMA = make_schema()
LIMITS = Limits(max_page_size=100, default_page_size=20)

# Each document, its variables, and how many events it sends from the start in the test's world (4 check-ins,
# 2 of them in t-1, and an update of t-1's goal story; then 3 check-ins in t-1 and an update, live).
DOCUMENTS: list[tuple[str, dict[str, Any], int]] = [
    (
        """subscription($after: String) { coordinationEvents(after: $after) {
          id cursor eventType actorId referenceId occurredAt
          reference { __typename ... on TeamCheckin { id teamId next team { id name } }
                      ... on GoalStoryUpdate { id title goalStory { id title teamIds } } } } }""",
        {},
        9,
    ),
    (
        """subscription S($after: String, $type: CoordinationEventType!, $more: Boolean!) {
          events: coordinationEvents(after: $after, where: {eventType: {eq: $type}}) {
            ...E kind: eventType nodeId __typename actor @include(if: $more) { id name actorType } } }
        fragment E on CoordinationEvent { key: id cursor occurredAt }""",
        {"type": "TEAM_CHECKIN", "more": True},
        7,
    ),
    (
        """subscription($after: String) { coordinationEvents(after: $after, teamId: "t-1") {
          cursor actor { name teams(first: 5) { totalCount nodes { id } } } } }""",
        {},
        7,
    ),
    # Not compiled (one response key with two sub-selections, which graphql-core merges): the resolvers answer.
    (
        """subscription($after: String) { coordinationEvents(after: $after) {
          cursor actor { id } actor { name } } }""",
        {},
        9,
    ),
]


def frame(result: Any) -> str:
    """The `next` frame a subscriber is sent for a result (as the route encodes it)."""
    message = {"id": "1", "type": "next", "payload": {"data": result.data}}
    if result.errors:
        message["payload"]["errors"] = [e.formatted for e in result.errors]
    spliced = fanout.frame(message)
    # Key order included: a client sees the same text either way.
    return json.dumps(json.loads(spliced if spliced is not None else json.dumps(message)))


async def _write_world(writer: WriteService) -> None:
    await seed(writer)
    await writer.create("goal_story", [{"id": "g-1", "title": "Goal", "team_ids": ["t-1"]}])
    await writer.create(
        "team_checkin",
        [
            {"actor_id": f"a-{i % 2}", "team_id": f"t-{i % 2}", "date": "2026-05-22", "next": [f"n{i}"]}
            for i in range(4)
        ],
    )
    await writer.create(
        "goal_story_update",
        [{"actor_id": "a-0", "goal_story_id": "g-1", "date": "2026-05-22", "title": "Up", "content": "fine"}],
    )


async def _subscribe(
    feed: LiveFeed, reader: Reader, document: str, variables: dict[str, Any], *, resolvers: bool
) -> tuple[Any, asyncio.Queue[str]]:
    context = Context(reader=reader, writer=None, limits=LIMITS, live=feed, resolvers_only=resolvers)
    stream = await SCHEMA.subscribe(document, variable_values=variables, context_value=context)
    queue: asyncio.Queue[str] = asyncio.Queue()

    async def pump() -> None:
        async for result in stream:  # type: ignore[union-attr]
            await queue.put(frame(result))

    return asyncio.create_task(pump()), queue


async def _take(queue: asyncio.Queue[str], n: int) -> list[str]:
    async with asyncio.timeout(60):
        return [await queue.get() for _ in range(n)]


UNPLANNABLE = len(DOCUMENTS) - 1


@pytest.mark.parametrize("index", range(len(DOCUMENTS)))
async def test_shared_and_resolved_frames_are_identical(
    feed: LiveFeed, reader: Reader, writer: WriteService, index: int
) -> None:
    document, variables, expected = DOCUMENTS[index]
    await _write_world(writer)
    reads_before = fanout.RENDERS.reads
    # Replayed from the table (each subscriber's own pages), then live (the feed's batches, shared).
    subscribers = [
        await _subscribe(feed, reader, document, {**variables, "after": "0"}, resolvers=resolvers)
        for resolvers in (True, False, False)
    ]
    live_from = feed.position
    await writer.create(
        "team_checkin",
        [{"actor_id": "a-1", "team_id": "t-1", "date": "2026-05-23", "previously": [f"p{i}"]} for i in range(3)],
    )
    await writer.create(
        "goal_story_update",
        [{"actor_id": "a-1", "goal_story_id": "g-1", "date": "2026-05-23", "title": "Again", "content": "ok"}],
    )
    try:
        resolved, *shared = [await _take(queue, expected) for _, queue in subscribers]
    finally:
        for task, _ in subscribers:
            task.cancel()
    # The two shared subscribers read through the compiled path (replayed pages each, live batches once),
    # unless the selection does not compile.
    assert live_from is not None
    assert (fanout.RENDERS.reads > reads_before) is (index != UNPLANNABLE)
    for other in shared:
        assert other == resolved
    # Nothing more than asked for came to anyone (no event twice).
    assert all(queue.empty() for _, queue in subscribers)


async def test_subscribers_of_one_selection_share_each_batch_read(
    feed: LiveFeed, reader: Reader, writer: WriteService
) -> None:
    document, _, _ = DOCUMENTS[0]
    await _write_world(writer)
    subscribers = [await _subscribe(feed, reader, document, {}, resolvers=False) for _ in range(5)]
    reads_before, feed_before = fanout.RENDERS.reads, feed.reads
    await writer.create(
        "team_checkin",
        [{"actor_id": "a-1", "team_id": "t-1", "date": "2026-05-23", "next": [f"x{i}"]} for i in range(4)],
    )
    try:
        received = [await _take(queue, 4) for _, queue in subscribers]
    finally:
        for task, _ in subscribers:
            task.cancel()
    assert all(frames == received[0] for frames in received)
    feed_reads = feed.reads - feed_before
    # One statement per batch the feed read, not one per subscriber (nor per event).
    assert 1 <= fanout.RENDERS.reads - reads_before <= feed_reads < 5


def test_a_frame_differs_only_by_its_id() -> None:
    payload = fanout.Rendered('{"data":{"e":{"id":"x"}}}')
    one = fanout.frame({"id": "1", "type": "next", "payload": {"data": payload}})
    two = fanout.frame({"type": "data", "id": "sub-2", "payload": {"data": payload}})
    assert json.loads(one) == {"id": "1", "type": "next", "payload": {"data": {"e": {"id": "x"}}}}
    assert json.loads(two) == {"type": "data", "id": "sub-2", "payload": {"data": {"e": {"id": "x"}}}}
    assert fanout.frame({"id": "1", "type": "next", "payload": {"data": {"e": 1}}}) is None


class CountingReader:
    """Answers a batch's read with one row per cursor asked for, counting the reads."""

    def __init__(self) -> None:
        self.reads = 0

    async def json_array(self, plan: Any) -> str:
        self.reads += 1
        [cursors] = [c.value for c in [plan.where]]
        return json.dumps([{"cursor": str(c)} for c in cursors])


async def test_kept_payloads_are_bounded_in_events_and_a_batch_read_again_once_forgotten() -> None:
    events = fanout.compile_events(SCHEMA, *_operation("subscription { coordinationEvents { cursor } }"), LIMITS)
    renders = fanout.Renders(size=3)
    reader = CountingReader()
    first, second = [{"cursor": 1}, {"cursor": 2}], [{"cursor": 3}, {"cursor": 4}]
    one = await asyncio.gather(*(renders.texts(events, "f", first, reader) for _ in range(10)))
    assert reader.reads == 1 and one[0] == ['{"data":{"coordinationEvents":{"cursor":"1"}}}', one[0][1]]
    assert all(texts is one[0] for texts in one)
    await renders.texts(events, "f", second, reader)  # 4 events kept > 3: the first batch is forgotten
    await renders.texts(events, "f", second, reader)
    assert reader.reads == 2
    await renders.texts(events, "f", first, reader)
    assert reader.reads == 3
    # Another selection or scope (another fingerprint) never takes a batch's payloads read for this one.
    await renders.texts(events, "g", first, reader)
    assert reader.reads == 4


def _operation(document: str) -> tuple[Any, Any, Any]:
    from graphql import parse
    from graphql.execution.values import get_variable_values

    from api.graphql.strawberry_adapter import graphql_schema

    [operation] = parse(document).definitions
    return operation, {}, get_variable_values(graphql_schema(SCHEMA), (), {})


# The same data asked for by a document that compiles and by one that does not (graphql-core merges `actor`).
OVER_THE_WIRE = (
    "subscription { coordinationEvents { cursor eventType actor { id name } "
    "reference { __typename ... on TeamCheckin { id next team { id } } } } }",
    "subscription { coordinationEvents { cursor eventType actor { id } actor { id name } "
    "reference { __typename ... on TeamCheckin { id next team { id } } } } }",
)


async def _frames_over(url: str, protocol: str, document: str, n: int, opened: asyncio.Event) -> list[Any]:
    """The payloads of the first n events of a subscription over one protocol, as raw frames read."""
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"
    async with websockets.connect(url, subprotocols=[protocol], ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        while json.loads(await ws.recv())["type"] != "connection_ack":
            pass
        await ws.send(json.dumps({"id": "s-1", "type": start, "payload": {"query": document}}))
        opened.set()
        got: list[Any] = []
        while len(got) < n:
            message = json.loads(await ws.recv())
            if message["type"] in ("next", "data"):
                assert message["id"] == "s-1" and set(message) == {"id", "type", "payload"}, message
                got.append(message["payload"])
            elif message["type"] not in ("ka", "ping", "pong"):
                raise AssertionError(message)
        return got


async def test_over_both_protocols_compiled_frames_are_the_resolvers_frames(
    live_servers: tuple[str, str], writer: WriteService
) -> None:
    base = live_servers[0]
    url = base.replace("http://", "ws://") + "/graphql"
    await seed(writer)
    await until_subscribers(base, 0)
    openings = [asyncio.Event() for _ in range(4)]
    tasks = [
        asyncio.create_task(_frames_over(url, protocol, document, 3, openings[i * 2 + j]))
        for i, protocol in enumerate(("graphql-transport-ws", "graphql-ws"))
        for j, document in enumerate(OVER_THE_WIRE)
    ]
    try:
        await until_subscribers(base, 4, unless=lambda: any(t.done() for t in tasks))
        await writer.create(
            "team_checkin",
            [{"actor_id": "a-1", "team_id": "t-1", "date": "2026-05-23", "next": [f"w{i}"]} for i in range(3)],
        )
        compiled_ws, resolved_ws, compiled_legacy, resolved_legacy = await asyncio.wait_for(asyncio.gather(*tasks), 60)
    finally:
        for task in tasks:
            task.cancel()
    assert compiled_ws == resolved_ws == compiled_legacy == resolved_legacy
    assert [p["data"]["coordinationEvents"]["reference"]["next"] for p in compiled_ws] == [["w0"], ["w1"], ["w2"]]
