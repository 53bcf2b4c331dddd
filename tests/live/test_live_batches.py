"""LiveFeed batches: what waits for a subscriber comes in one turn, the queue bound still
counts events, and one read per write serves every subscriber however many there are."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.live import LiveFeed, SubscriberOverflow
from api.plan import Condition
from api.store import Reader
from api.store.writes import WriteService

from .helpers import caught_up, checkins, seed, take


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


async def test_the_queue_bound_counts_events_not_batches(
    database_url: str, clean: AsyncEngine, writer: WriteService
) -> None:
    small = LiveFeed(database_url, Reader(clean), queue_size=4)
    await small.start()
    try:
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
    finally:
        await small.stop()


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


async def test_a_direct_write_that_must_wait_finishes_before_any_other_write() -> None:
    """An event stream's send that waits (the client is not reading: the server's flow control
    holds the write back) is carried on by a task, ahead of every later write."""
    from api.sse.stream import Frames, Streaming

    writable = asyncio.Event()
    written: list[bytes] = []

    async def send(message: dict) -> None:
        # What uvicorn does: wait until the transport is writable again, then write.
        if not writable.is_set():
            await writable.wait()
        written.append(message["body"])

    frames = Frames()
    streaming = Streaming(send, keepalive=60, frames=frames)
    streaming.started = True
    first, second = ({"cursor": 1},), ({"cursor": 2},)

    assert streaming.write_now(first) is True  # taken: it is the stream's to finish
    assert written == [] and streaming.unfinished is not None
    assert streaming.write_now(second) is False  # busy: left to the stream's task, behind the first
    for _ in range(3):  # the task carrying the first write starts waiting before the client reads
        await asyncio.sleep(0)
    writable.set()
    await asyncio.wait_for(streaming.write(frames.batch(second)), 10)

    assert written == [frames(first[0]), frames(second[0])]
    assert streaming.unfinished is None and streaming.write_now(({"cursor": 3},)) is True
    assert written[-1] == frames({"cursor": 3})


async def test_a_waiting_direct_write_is_cancelled_with_its_stream() -> None:
    from api.sse.stream import Frames, Streaming

    writable = asyncio.Event()
    written: list[bytes] = []

    async def send(message: dict) -> None:
        await writable.wait()
        written.append(message["body"])

    streaming = Streaming(send, keepalive=60, frames=Frames())
    streaming.started = True
    assert streaming.write_now(({"cursor": 1},)) is True
    await asyncio.sleep(0)
    unfinished = streaming.unfinished
    assert unfinished is not None

    unfinished.cancel()
    await asyncio.gather(unfinished, return_exceptions=True)
    writable.set()
    await asyncio.sleep(0)

    assert unfinished.cancelled() and written == []
    assert not writable._waiters  # type: ignore[attr-defined] - the send's wait was unwound, not left behind
