"""LiveFeed in process: replay, filters, the seam between replay and live, overflow."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import InvalidInput
from api.live import LiveFeed, SubscriberOverflow
from api.plan import Condition, Or
from api.store import Reader
from api.store.writes import WriteService

from .helpers import caught_up, checkins, seed, table_cursors, take


async def test_an_event_committed_after_subscribing_arrives(feed: LiveFeed, writer: WriteService) -> None:
    await seed(writer)
    events = feed.subscribe()
    written = await checkins(writer, 1)
    [got] = await take(events, 1)
    assert set(got) == {"id", "actor_id", "event_type", "reference_id", "occurred_at", "cursor"}
    assert {k: got[k] for k in ("id", "actor_id", "event_type", "reference_id")} == {
        k: written[0][k] for k in ("id", "actor_id", "event_type", "reference_id")
    }
    assert got["cursor"] == written[0]["seq"]
    assert datetime.fromisoformat(got["occurred_at"]) == written[0]["occurred_at"]


async def test_without_after_nothing_earlier_is_replayed(feed: LiveFeed, writer: WriteService) -> None:
    await seed(writer)
    earlier = await checkins(writer, 3)
    # Without `after`, a subscription starts where the feed is: once it has fanned out the
    # earlier events, they are not replayed.
    await caught_up(feed, earlier[-1]["seq"])
    events = feed.subscribe()
    later = await checkins(writer, 2)
    got = await take(events, 2)
    assert [e["cursor"] for e in got] == [e["seq"] for e in later]


async def test_without_subscribers_the_feed_follows_the_table_end_without_reading_events(
    feed: LiveFeed, writer: WriteService, clean: AsyncEngine
) -> None:
    await seed(writer)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(clean.sync_engine, "before_cursor_execute", seen)
    try:
        # More events than one replay page: reading them would take several statements.
        written = await checkins(writer, 1200)
        await caught_up(feed, written[-1]["seq"])
    finally:
        event.remove(clean.sync_engine, "before_cursor_execute", seen)
    reads = [s for s in statements if "coordination_events" in s and "INSERT" not in s]
    # The notification announced the last cursor: at most the start's probe of the table's end
    # (the last cursor only), never the events' documents.
    assert len(reads) <= 1 and not any("'reference_id'" in s for s in reads), reads
    assert feed.position == written[-1]["seq"]
    # A subscriber that comes now starts there and gets exactly what commits later.
    events = feed.subscribe()
    later = await checkins(writer, 2)
    assert [e["cursor"] for e in await take(events, 2)] == [e["seq"] for e in later]


async def test_without_subscribers_what_no_notification_announced_is_found_after_a_reconnect(
    feed: LiveFeed, writer: WriteService, clean: AsyncEngine
) -> None:
    await seed(writer)
    announced = await checkins(writer, 1)
    await caught_up(feed, announced[-1]["seq"])
    # An event whose notification never came (as one committed while the LISTEN connection
    # was down): only the table knows it, and a new LISTEN connection must look there.
    async with clean.begin() as conn:
        silent = (
            await conn.execute(
                text(
                    "INSERT INTO coordination_events (id, seq, actor_id, event_type, reference_id, occurred_at) "
                    "VALUES (gen_random_uuid()::text, nextval('coordination_event_seq'), "
                    "'a-0', 'team_checkin', 'x', now()) "
                    "RETURNING seq"
                )
            )
        ).scalar_one()
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'coco-live' AND datname = current_database()"
            )
        )
    await caught_up(feed, silent)
    assert feed.position == silent


async def test_after_replays_then_goes_live_without_gap_or_duplicate(
    feed: LiveFeed, writer: WriteService, engine: AsyncEngine
) -> None:
    await seed(writer)
    before = await checkins(writer, 30)
    after = before[9]["seq"]
    events = feed.subscribe(after=after)

    async def write(n: int) -> None:
        for _ in range(n):
            await checkins(writer, 2)

    # Ten writers keep committing while the subscriber replays and crosses to live.
    writers = asyncio.gather(*(write(5) for _ in range(10)))
    got = await take(events, 20 + 100)
    await writers
    cursors = [e["cursor"] for e in got]
    assert cursors == await table_cursors(engine, after)
    assert len(set(e["id"] for e in got)) == len(got)


async def test_after_beyond_the_feed_position_skips_up_to_it(feed: LiveFeed, writer: WriteService) -> None:
    await seed(writer)
    first = await checkins(writer, 1)
    # A client that saw cursor first+5 elsewhere (say, on another server) resumes here.
    events = feed.subscribe(after=first[0]["seq"] + 5)
    later = await checkins(writer, 8)
    got = await take(events, 3)
    assert [e["cursor"] for e in got] == [e["seq"] for e in later if e["seq"] > first[0]["seq"] + 5][:3]


async def test_where_filters_replay_and_live_alike(feed: LiveFeed, writer: WriteService) -> None:
    await seed(writer)
    start = (await checkins(writer, 1))[0]["seq"]
    mine = await checkins(writer, 3, actor="a-1")
    await checkins(writer, 3, actor="a-0")
    events = feed.subscribe(where=Condition("actor_id", "eq", "a-1"), after=start)
    assert [e["cursor"] for e in await take(events, 3)] == [e["seq"] for e in mine]
    await checkins(writer, 2, actor="a-0")
    live = await checkins(writer, 2, actor="a-1")
    got = await take(events, 2)
    assert [e["cursor"] for e in got] == [e["seq"] for e in live]
    assert all(e["actor_id"] == "a-1" for e in got)


async def test_team_filter_follows_the_reference_to_its_team(feed: LiveFeed, writer: WriteService) -> None:
    await seed(writer, teams=3)
    await writer.create(
        "goal_story",
        [{"id": "g-a", "title": "A", "team_ids": ["t-0", "t-2"]}, {"id": "g-b", "title": "B", "team_ids": ["t-1"]}],
    )
    start = (await checkins(writer, 1, team="t-1"))[0]["seq"]

    async def update(goal: str) -> int:
        result = await writer.create(
            "goal_story_update",
            [{"actor_id": "a-0", "goal_story_id": goal, "date": "2026-05-22", "title": "t", "content": "c"}],
        )
        return result.events[0]["seq"]

    expected = [(await checkins(writer, 1, team="t-0"))[0]["seq"]]
    await checkins(writer, 1, team="t-1")
    expected.append(await update("g-a"))
    await update("g-b")
    events = feed.subscribe(after=start, team_id="t-0")
    assert [e["cursor"] for e in await take(events, 2)] == expected
    # Live too; and the filter combines with `where`.
    await update("g-b")
    live = [await update("g-a"), (await checkins(writer, 1, team="t-0"))[0]["seq"]]
    assert [e["cursor"] for e in await take(events, 2)] == live
    combined = feed.subscribe(after=start, team_id="t-0", where=Condition("event_type", "eq", "team_checkin"))
    got = await take(combined, 2)
    assert [e["cursor"] for e in got] == [expected[0], live[1]]


async def test_many_subscribers_with_different_filters_share_reads(feed: LiveFeed, writer: WriteService) -> None:
    await seed(writer, actors=3)
    streams = {
        actor: [feed.subscribe(where=Condition("actor_id", "eq", actor)) for _ in range(3)]
        for actor in ("a-0", "a-1", "a-2")
    }
    either = feed.subscribe(where=Or((Condition("actor_id", "eq", "a-0"), Condition("actor_id", "eq", "a-2"))))
    written = {actor: await checkins(writer, 2, actor=actor) for actor in ("a-0", "a-1", "a-2")}
    for actor, subscribers in streams.items():
        for events in subscribers:
            got = await take(events, 2)
            assert [e["cursor"] for e in got] == [e["seq"] for e in written[actor]]
    got = await take(either, 4)
    assert [e["cursor"] for e in got] == [e["seq"] for e in written["a-0"] + written["a-2"]]


async def test_a_subscriber_that_falls_behind_gets_overflow_and_resumes(
    database_url: str, clean: AsyncEngine, writer: WriteService, engine: AsyncEngine
) -> None:
    small = LiveFeed(database_url, Reader(clean), queue_size=4)
    await small.start()
    try:
        await seed(writer)
        start = small.position
        slow = small.subscribe()
        keeping_up = small.subscribe()
        written = []
        for _ in range(10):
            written += await checkins(writer, 1)
            # The one that keeps up reads as events come; the slow one reads nothing.
            [event] = await take(keeping_up, 1)
            assert event["cursor"] == written[-1]["seq"]
        with pytest.raises(SubscriberOverflow) as overflow:
            await anext(slow)
        assert overflow.value.last_cursor == start
        assert "resume with after=" in str(overflow.value)
        resumed = small.subscribe(after=overflow.value.last_cursor)
        got = await take(resumed, 10)
        assert [e["cursor"] for e in got] == [e["seq"] for e in written] == await table_cursors(engine, start)
    finally:
        await small.stop()


async def test_a_filter_the_database_refuses_closes_only_its_subscriber(feed: LiveFeed, writer: WriteService) -> None:
    await seed(writer)
    bad = feed.subscribe(where=Condition("actor_id", "match", "(unclosed"))
    good = feed.subscribe()
    written = await checkins(writer, 1)
    [event] = await take(good, 1)
    assert event["cursor"] == written[0]["seq"]
    with pytest.raises(InvalidInput):
        await anext(bad)
    more = await checkins(writer, 1)
    [event] = await take(good, 1)
    assert event["cursor"] == more[0]["seq"]


async def test_subscribing_before_start_is_refused(database_url: str, engine: AsyncEngine) -> None:
    with pytest.raises(RuntimeError, match="not running"):
        LiveFeed(database_url, Reader(engine)).subscribe()


async def test_a_feed_started_while_the_database_is_unreachable_refuses_subscribers_until_it_is(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    nowhere = f"postgresql://postgres@/coco?host={tmp_path}&port=5432"  # no server on this socket
    live = LiveFeed(nowhere, Reader(engine))
    await live.start()  # does not fail the app's start-up; keeps trying in the background
    try:
        with pytest.raises(RuntimeError, match="not running"):
            live.subscribe()
    finally:
        await live.stop()
