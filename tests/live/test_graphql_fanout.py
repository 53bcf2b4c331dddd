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

from . import helpers
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


async def _next_frames(ws: Any, wanted: dict[str, int]) -> dict[str, list[str]]:
    """The events (their references) of the `next` frames read, by subscription id, until each id has its count."""
    got: dict[str, list[str]] = {key: [] for key in wanted}
    async with asyncio.timeout(60):
        while any(len(got[key]) < n for key, n in wanted.items()):
            message = json.loads(await ws.recv())
            if message["type"] == "pong":
                continue
            assert message["type"] == "next" and set(message) == {"id", "type", "payload"}, message
            got[message["id"]].append(message["payload"]["data"]["coordinationEvents"]["referenceId"])
    return got


async def test_a_completed_id_subscribed_again_gets_each_event_once_in_order_and_pings_are_answered_between(
    live_servers: tuple[str, str], writer: WriteService
) -> None:
    base = live_servers[0]
    await seed(writer)
    await until_subscribers(base, 0)
    document = "subscription { coordinationEvents { referenceId } }"

    def subscribe(id_: str) -> str:
        return json.dumps({"id": id_, "type": "subscribe", "payload": {"query": document}})

    async def checkins(n: int) -> list[str]:
        return [event["reference_id"] for event in await helpers.checkins(writer, n, actor="a-1", team="t-1")]

    url = base.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"], ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(subscribe("a"))
        await until_subscribers(base, 1)
        first = await checkins(2)
        assert await _next_frames(ws, {"a": 2}) == {"a": first}
        # Completed by the client, then the same id again and another: the old one's frames never come back.
        await ws.send(json.dumps({"id": "a", "type": "complete"}))
        await until_subscribers(base, 0)
        await ws.send(subscribe("a"))
        await ws.send(subscribe("b"))
        await until_subscribers(base, 2)
        await ws.send(json.dumps({"type": "ping"}))
        second = await checkins(3)
        assert await _next_frames(ws, {"a": 3, "b": 3}) == {"a": second, "b": second}


class _Operation:
    """Stands for Strawberry's graphql-transport-ws operation: an id its handler runs, and its final messages."""

    def __init__(self, handler: _Handler, id_: str) -> None:
        self.handler, self.id, self.sent = handler, id_, []
        self.task: asyncio.Task[None] | None = None
        handler.operations[id_] = self

    async def send_operation_message(self, message: dict[str, Any]) -> None:
        self.handler.operations.pop(self.id, None)
        self.sent.append(message)


class _Handler:
    def __init__(self) -> None:
        self.operations: dict[str, _Operation] = {}


class FailingReader(CountingReader):
    async def json_array(self, plan: Any) -> str:
        from api.errors import Unavailable

        self.reads += 1
        raise Unavailable("the database is down")


async def _pushed(reader: Any, id_: str, fingerprint: str = "f") -> tuple[fanout.Pushed, _Operation, list[str]]:
    events = fanout.compile_events(SCHEMA, *_operation("subscription { coordinationEvents { cursor } }"), LIMITS)
    sent: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        assert message["type"] == "websocket.send"
        sent.append(message["text"])

    handler = _Handler()
    operation = _Operation(handler, id_)
    operation.task = asyncio.create_task(asyncio.Event().wait())
    return fanout.Pushed(handler, operation, send, (events, fingerprint), reader), operation, sent  # type: ignore[arg-type]


async def _until(condition: Any) -> None:
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def test_handed_batches_are_read_once_and_written_per_subscriber_and_a_busy_or_gone_one_takes_none() -> None:
    reader = CountingReader()
    one, _, sent_one = await _pushed(reader, "1")
    two, operation_two, sent_two = await _pushed(reader, "x-2")
    batch = [{"cursor": 41}, {"cursor": 42}]
    assert one.hand_over(batch) and two.hand_over(batch)
    assert not one.hand_over([{"cursor": 43}])  # its frames are not written yet: its task takes this one
    await _until(lambda: not one.busy and not two.busy)
    assert reader.reads == 1
    assert [json.loads(t) for t in sent_one] == [
        {"id": "1", "type": "next", "payload": {"data": {"coordinationEvents": {"cursor": c}}}} for c in ("41", "42")
    ]
    assert [json.loads(t)["id"] for t in sent_two] == ["x-2", "x-2"]
    # Completed by the client: nothing more is taken nor written for it.
    operation_two.handler.operations.clear()
    assert not two.hand_over([{"cursor": 44}])
    await two.write(['{"data":{"coordinationEvents":{"cursor":"44"}}}'])
    assert len(sent_two) == 2


async def test_a_handed_batch_that_cannot_be_read_ends_the_operation_with_where_to_resume() -> None:
    pushed, operation, sent = await _pushed(FailingReader(), "1", fingerprint="failing")
    assert pushed.hand_over([{"cursor": 70}, {"cursor": 71}])
    assert operation.task is not None
    await _until(operation.task.done)
    assert sent == []
    [message] = operation.sent
    assert message["type"] == "error" and message["id"] == "1"
    [error] = message["payload"]
    assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE", "lastCursor": "69"}
    assert operation.task.cancelled() and not pushed.busy
