"""LiveFeed batches: what waits for a subscriber comes in one turn, the queue bound still
counts events, and one read per write serves every subscriber however many there are."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from api.live import LiveFeed, SubscriberOverflow
from api.plan import Condition
from api.store import Reader
from api.store.writes import WriteService

from .helpers import caught_up, checkins, seed, take


@pytest.fixture
async def small(database_url: str, clean: AsyncEngine) -> AsyncIterator[LiveFeed]:
    """A feed whose subscribers queue at most four events."""
    feed = LiveFeed(database_url, Reader(clean), queue_size=4)
    await feed.start()
    yield feed
    await feed.stop()


async def test_events_waiting_for_a_subscriber_come_in_one_batch_in_cursor_order(
    feed: LiveFeed, writer: WriteService
) -> None:
    await seed(writer)
    batches = feed.subscribe_batches()
    written = []
    for _ in range(3):  # three writes, three reads of the feed, three queued batches
        written += await checkins(writer, 1)
        await caught_up(feed, written[-1]["seq"])

    batch = await asyncio.wait_for(anext(batches), 60)

    assert [e["cursor"] for e in batch] == [e["seq"] for e in written]
    more = await checkins(writer, 2)
    assert [e["cursor"] for e in await asyncio.wait_for(anext(batches), 60)] == [e["seq"] for e in more]
    await batches.aclose()  # type: ignore[attr-defined]
    assert feed.subscriber_count == 0


async def test_a_replay_and_the_live_events_queued_behind_it_come_without_repeat(
    feed: LiveFeed, writer: WriteService
) -> None:
    await seed(writer)
    before = await checkins(writer, 5)
    await caught_up(feed, before[-1]["seq"])
    batches = feed.subscribe_batches(after=before[1]["seq"])
    live = await checkins(writer, 2)
    await caught_up(feed, live[-1]["seq"])

    got: list[int] = []
    while len(got) < 5:
        got += [e["cursor"] for e in await asyncio.wait_for(anext(batches), 60)]

    assert got == [e["seq"] for e in before[2:] + live]
    await batches.aclose()  # type: ignore[attr-defined]


async def test_the_queue_bound_counts_events_not_batches(small: LiveFeed, writer: WriteService) -> None:
    await seed(writer)
    start = small.position
    drained, slow = small.subscribe_batches(), small.subscribe_batches()
    first = await checkins(writer, 2) + await checkins(writer, 2)
    await caught_up(small, first[-1]["seq"])
    # Four events fill a queue of four exactly: nobody overflows yet.
    assert [e["cursor"] for e in await asyncio.wait_for(anext(drained), 60)] == [e["seq"] for e in first]
    [fifth] = await checkins(writer, 1)
    await caught_up(small, fifth["seq"])

    with pytest.raises(SubscriberOverflow) as overflow:
        await anext(slow)
    assert overflow.value.last_cursor == start
    assert [e["cursor"] for e in await asyncio.wait_for(anext(drained), 60)] == [fifth["seq"]]
    await drained.aclose()  # type: ignore[attr-defined]


async def test_one_read_per_write_serves_hundreds_of_subscribers(feed: LiveFeed, writer: WriteService) -> None:
    ids = await seed(writer)
    everything = [feed.subscribe() for _ in range(300)]
    one_actor = [feed.subscribe(where=Condition("actor_id", "eq", ids["actors"][1])) for _ in range(100)]
    one_team = [feed.subscribe(team_id=ids["teams"][0]) for _ in range(100)]
    reads = feed.reads

    written = []
    for actor in (ids["actors"][0], ids["actors"][1], ids["actors"][0]):
        [event] = await checkins(writer, 1, actor=actor)
        written.append(event)
        await caught_up(feed, event["seq"])

    assert feed.reads - reads == 3
    for got in await asyncio.gather(*(take(events, 3) for events in everything)):
        assert [e["cursor"] for e in got] == [e["seq"] for e in written]
    for got in await asyncio.gather(*(take(events, 1) for events in one_actor)):
        assert [e["cursor"] for e in got] == [written[1]["seq"]]
    for got in await asyncio.gather(*(take(events, 3) for events in one_team)):
        assert [e["cursor"] for e in got] == [e["seq"] for e in written]


def test_an_event_stream_encodes_a_shared_batch_once() -> None:
    from api.sse.stream import Frames

    frames = Frames()
    shared = ({"cursor": 1, "id": "a"}, {"cursor": 2, "id": "b"})

    joined = frames.batch(shared)

    assert joined == frames(shared[0]) + frames(shared[1])
    assert joined.startswith(b"id: 1\nevent: coordination_event\ndata: {") and joined.endswith(b"}\n\n")
    assert frames.batch(shared) is joined  # the next stream offered the same batch
    assert frames.batch(list(shared)) == joined and frames.batch(shared[:1]) == frames(shared[0])


class Client:
    """One stream's end of the connection, as uvicorn's send behaves: a write waits while the
    client is not reading (flow control), then goes out."""

    def __init__(self, reading: bool = True) -> None:
        self.readable = asyncio.Event()
        if reading:
            self.readable.set()
        self.waiting = asyncio.Event()  # a send is waiting for the client
        self.written: list[bytes] = []
        self.arrived = asyncio.Event()

    async def send(self, message: dict) -> None:
        if not self.readable.is_set():
            self.waiting.set()
            await self.readable.wait()
        self.written.append(message["body"])
        self.arrived.set()

    async def next_write(self) -> bytes:
        while not self.written:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 10)
        return self.written.pop(0)


def _streams(*clients: Client) -> list:
    from api.sse.stream import Frames, Streaming, Writer

    frames, writer = Frames(), Writer()
    streams = [Streaming(client.send, frames=frames, writer=writer) for client in clients]
    for streaming in streams:
        streaming.started = True  # as once its response has begun
    return streams


async def test_a_client_that_is_not_reading_holds_back_no_other_stream() -> None:
    stuck, first, second = Client(reading=False), Client(), Client()
    on_stuck, on_first, on_second = _streams(stuck, first, second)
    batch, later = ({"cursor": 1},), ({"cursor": 2},)
    frame = on_first.frames(batch[0])

    assert [s.hand_over(batch) for s in (on_stuck, on_first, on_second)] == [True, True, True]
    assert await first.next_write() == frame and await second.next_write() == frame
    await asyncio.wait_for(stuck.waiting.wait(), 10)
    assert stuck.written == [] and on_stuck.busy

    # The stuck stream takes nothing more from the feed (its own task writes it, after the first);
    # the others carry on.
    assert on_stuck.hand_over(later) is False
    assert on_first.hand_over(later) is True
    assert await first.next_write() == on_first.frames(later[0])
    behind = asyncio.create_task(on_stuck.write(on_stuck.frames.batch(later)))
    stuck.readable.set()
    await asyncio.wait_for(behind, 10)
    assert stuck.written == [frame, on_stuck.frames(later[0])]
    assert not on_stuck.busy and on_stuck.hand_over(({"cursor": 3},)) is True
    assert await stuck.next_write() == frame and await stuck.next_write() == on_stuck.frames(later[0])
    assert await stuck.next_write() == on_stuck.frames({"cursor": 3})


async def test_a_write_waiting_on_its_client_is_cancelled_with_its_stream() -> None:
    stuck, other = Client(reading=False), Client()
    on_stuck, on_other = _streams(stuck, other)
    writer = on_stuck.writer
    assert on_stuck.hand_over(({"cursor": 1},)) is True
    await asyncio.wait_for(stuck.waiting.wait(), 10)
    carrier = on_stuck.carrier
    assert carrier is not None

    on_stuck.started = False  # as its response ends
    writer.abandon(on_stuck)
    await asyncio.gather(carrier, return_exceptions=True)
    stuck.readable.set()

    assert carrier.cancelled() and stuck.written == [] and not on_stuck.busy
    assert on_other.hand_over(({"cursor": 2},)) is True  # the writer goes on for the others
    assert await other.next_write() == on_other.frames({"cursor": 2})
    assert not writer.waiting


async def test_a_stream_whose_write_fails_ends(feed: LiveFeed) -> None:
    from api.sse.stream import Beats, Frames, Streaming, Writer

    sent: list[dict] = []
    ended = asyncio.Event()

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body" and message["body"].startswith(b"id: "):
            raise OSError("connection reset")
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            ended.set()

    async def receive() -> dict:
        await asyncio.Event().wait()  # the client never says it left
        raise AssertionError

    writer = Writer()
    streaming = Streaming(send, frames=Frames(), writer=writer)
    streaming.events = feed.attach(sink=streaming.hand_over, wake=streaming.wake)
    running = asyncio.create_task(streaming.run(receive, Beats(60, writer)))  # type: ignore[arg-type]
    for _ in range(1000):  # its response begins within a few turns of the loop
        if streaming.started:
            break
        await asyncio.sleep(0)
    assert streaming.hand_over(({"cursor": 1},)) is True

    await asyncio.wait_for(running, 10)
    assert ended.is_set() and sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert feed.subscriber_count == 0


class Connection(Client):
    """A client of a whole response: what `run` receives (the request, then its leaving) and writes."""

    def __init__(self, reading: bool = True) -> None:
        super().__init__(reading)
        self.inbox: asyncio.Queue[dict] = asyncio.Queue()
        self.inbox.put_nowait({"type": "http.request", "body": b"", "more_body": False})
        self.ended = asyncio.Event()

    async def receive(self) -> dict:
        return await self.inbox.get()

    async def send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            return
        if not message.get("more_body", False):
            self.ended.set()
        await super().send(message)

    def leave(self) -> None:
        self.inbox.put_nowait({"type": "http.disconnect"})

    async def events(self, n: int) -> list[int]:
        """The cursors of the next `n` events written (comments skipped)."""
        got: list[int] = []
        while len(got) < n:
            body = await self.next_write()
            got += [int(line[4:]) for line in body.decode().splitlines() if line.startswith("id: ")]
        return got


async def _running(feed: LiveFeed, connections: Sequence[Connection], **attach: Any) -> tuple[list, list]:
    """A `Streaming` per connection, attached to the feed and running as a request would, each begun."""
    from api.sse.stream import Beats, Frames, Streaming, Writer

    frames, writer = Frames(), Writer()
    beats = Beats(60, writer)
    streams, tasks = [], []
    for connection in connections:
        streaming = Streaming(connection.send, frames=frames, writer=writer)
        streaming.events = feed.attach(sink=streaming.hand_over, wake=streaming.wake, **attach)
        streams.append(streaming)
        tasks.append(asyncio.create_task(streaming.run(connection.receive, beats)))  # type: ignore[arg-type]
    await until(lambda: all(s.waiting for s in streams))  # each one's task waits for its client to leave
    for connection in connections:
        assert (await connection.next_write()).startswith(b": coordination events")
    return streams, tasks


async def test_a_held_stream_has_one_task_and_its_subscriber_goes_when_the_client_leaves(
    feed: LiveFeed, writer: WriteService
) -> None:
    await seed(writer)
    before = len(asyncio.all_tasks())
    connections = [Connection() for _ in range(20)]
    streams, tasks = await _running(feed, connections)
    assert feed.subscriber_count == 20

    [event] = await checkins(writer, 1)
    for connection in connections:
        assert await connection.events(1) == [event["seq"]]
    # The requests' own, and the keep-alive timer shared by all (the writer's round has finished):
    # nothing per stream besides its request.
    await until(lambda: not writer_rounds(streams[0]))
    assert len(asyncio.all_tasks()) - before == 20 + 1
    assert all(s.waiting for s in streams)  # the events came without waking them

    for connection in connections:
        connection.leave()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert all(c.ended.is_set() for c in connections)
    assert feed.subscriber_count == 0


async def until(condition: Callable[[], bool]) -> None:
    """Wait for a condition on objects that announce nothing (polled)."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def writer_rounds(streaming: Any) -> bool:
    return streaming.writer.round is not None or bool(streaming.writer.waiting)


async def test_events_that_find_a_stream_busy_are_written_by_its_task_in_order(
    feed: LiveFeed, writer: WriteService
) -> None:
    """A batch the writer cannot take (the stream's last write waits on its client) wakes the stream's
    task, which writes it after that write; then the stream waits again and the writer takes the next."""
    await seed(writer)
    slow = Connection()
    [streaming], [task] = await _running(feed, [slow])
    slow.readable.clear()  # the client stops reading

    [first] = await checkins(writer, 1)
    await asyncio.wait_for(slow.waiting.wait(), 10)  # the writer's send of it waits on the client
    assert streaming.busy
    second = await checkins(writer, 2)
    await caught_up(feed, second[-1]["seq"])
    assert streaming.pulling and not streaming.waiting  # woken: its task waits for the writer's send

    slow.readable.set()
    assert await slow.events(3) == [first["seq"], *(e["seq"] for e in second)]
    await until(lambda: streaming.waiting)
    [third] = await checkins(writer, 1)
    assert await slow.events(1) == [third["seq"]]
    assert streaming.waiting and not task.done()

    slow.leave()
    await asyncio.wait_for(task, 10)
    assert feed.subscriber_count == 0


async def test_a_stream_replays_after_its_cursor_then_goes_live(feed: LiveFeed, writer: WriteService) -> None:
    await seed(writer)
    old = await checkins(writer, 3)
    await caught_up(feed, old[-1]["seq"])
    connection = Connection()
    [_], [task] = await _running(feed, [connection], after=old[0]["seq"])
    assert await connection.events(2) == [e["seq"] for e in old[1:]]
    [new] = await checkins(writer, 1)
    assert await connection.events(1) == [new["seq"]]
    connection.leave()
    await asyncio.wait_for(task, 10)


async def test_a_stream_ends_with_an_error_when_its_client_falls_a_queue_behind(
    small: LiveFeed, writer: WriteService
) -> None:
    await seed(writer)
    stuck = Connection()
    _, [task] = await _running(small, [stuck])
    stuck.readable.clear()
    first = await checkins(writer, 1)
    await asyncio.wait_for(stuck.waiting.wait(), 10)
    for _ in range(5):  # 10 events: more than the queue holds behind the waiting one
        later = await checkins(writer, 2)
    await caught_up(small, later[-1]["seq"])
    stuck.readable.set()
    await asyncio.wait_for(task, 10)
    written = b"".join(stuck.written).decode()
    assert f"id: {first[0]['seq']}\n" in written
    assert "event: error" in written and "subscriber_overflow" in written
    assert stuck.ended.is_set() and small.subscriber_count == 0


async def test_events_a_sink_takes_are_counted_as_delivered_once_per_batch(
    feed: LiveFeed, writer: WriteService
) -> None:
    """The delivered counter counts each subscriber's events whichever way they went: through the
    sink of an idle subscriber (counted once per batch by the feed) or through its iterator."""
    await seed(writer)
    taken: list[list[int]] = []

    def sink(batch: Sequence[dict[str, Any]]) -> bool:
        taken.append([e["cursor"] for e in batch])
        return True

    with_sink = [feed.subscribe_batches(sink=sink) for _ in range(3)]
    # The sink is offered only a batch the subscriber is waiting for: each one waits.
    waiting = [asyncio.ensure_future(anext(batches)) for batches in with_sink]
    plain = feed.subscribe_batches()
    await asyncio.sleep(0)  # one turn of the loop: each waiting iterator runs up to its wait
    before = delivered_count()

    [event] = await checkins(writer, 1)
    await caught_up(feed, event["seq"])
    assert [e["cursor"] for e in await asyncio.wait_for(anext(plain), 60)] == [event["seq"]]

    assert taken == [[event["seq"]]] * 3 and not any(w.done() for w in waiting)
    assert delivered_count() - before == 4
    for w in waiting:
        w.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    for batches in [*with_sink, plain]:
        await batches.aclose()  # type: ignore[attr-defined]


def delivered_count() -> float:
    return REGISTRY.get_sample_value("coco_live_events_delivered_total") or 0.0
