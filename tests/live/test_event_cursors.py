"""Cursors follow commit order (api/store/events.py), checked with interleaved writers."""

from __future__ import annotations

import asyncio
import datetime

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.store.events import PendingEvent, record_events
from api.store.tables import TABLES
from api.store.writes import WriteService

from .helpers import checkins, seed, table_cursors


async def new_checkin(conn: AsyncConnection, id: str) -> PendingEvent:
    await conn.execute(
        insert(TABLES["team_checkin"]).values(id=id, actor_id="a-0", team_id="t-0", date=datetime.date(2026, 5, 22))
    )
    return PendingEvent(actor_id="a-0", event_type="team_checkin", reference_id=id)


async def waiting_for_the_event_lock(engine: AsyncEngine) -> None:
    async with asyncio.timeout(30):
        while True:
            async with engine.connect() as conn:
                waiting = (
                    await conn.execute(
                        text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                    )
                ).scalar_one()
            if waiting:
                return
            await asyncio.sleep(0.01)


async def test_the_first_to_insert_but_last_to_commit_gets_the_later_cursor(
    writer: WriteService, engine: AsyncEngine
) -> None:
    await seed(writer)
    async with engine.connect() as a, engine.connect() as b:
        await a.begin()
        await b.begin()
        first = await new_checkin(a, "c-first")
        second = await new_checkin(b, "c-second")
        [b_event] = await record_events(b, [second])
        await b.commit()
        # A reader that saw B's event resumes after its cursor...
        seen = await table_cursors(engine)
        assert seen == [b_event["seq"]]
        [a_event] = await record_events(a, [first])
        await a.commit()
    # ...and still finds A's, which inserted first but committed last.
    assert a_event["seq"] > b_event["seq"]
    assert await table_cursors(engine, seen[-1]) == [a_event["seq"]]


async def test_a_writer_holding_a_cursor_makes_the_next_wait_until_it_commits(
    writer: WriteService, engine: AsyncEngine
) -> None:
    await seed(writer)
    async with engine.connect() as a, engine.connect() as b:
        await a.begin()
        await b.begin()
        [a_event] = await record_events(a, [await new_checkin(a, "c-a")])
        b_pending = await new_checkin(b, "c-b")
        b_records = asyncio.create_task(record_events(b, [b_pending]))
        await waiting_for_the_event_lock(engine)
        assert not b_records.done()
        # Nothing is visible yet: A's cursor is drawn but not committed, B has none.
        assert await table_cursors(engine) == []
        await a.commit()
        [b_event] = await b_records
        assert await table_cursors(engine) == [a_event["seq"]]
        await b.commit()
    assert await table_cursors(engine) == [a_event["seq"], b_event["seq"]]


async def test_a_rolled_back_cursor_is_a_gap_that_never_fills(writer: WriteService, engine: AsyncEngine) -> None:
    await seed(writer)
    async with engine.connect() as a, engine.connect() as b:
        await a.begin()
        await b.begin()
        [a_event] = await record_events(a, [await new_checkin(a, "c-a")])
        b_records = asyncio.create_task(record_events(b, [await new_checkin(b, "c-b")]))
        await waiting_for_the_event_lock(engine)
        await a.rollback()
        [b_event] = await b_records
        await b.commit()
    assert b_event["seq"] > a_event["seq"]
    assert await table_cursors(engine) == [b_event["seq"]]


async def test_a_reader_following_the_cursor_under_ten_concurrent_writers_misses_nothing(
    writer: WriteService, engine: AsyncEngine
) -> None:
    """What the live feed relies on: reading `cursor > last` again and again, never an
    event appears later below a cursor already read."""
    await seed(writer)
    done = asyncio.Event()
    seen: list[int] = []

    async def follow() -> None:
        last = 0
        while True:
            finished = done.is_set()
            fresh = await table_cursors(engine, last)
            seen.extend(fresh)
            last = fresh[-1] if fresh else last
            if finished:
                return

    async def write() -> None:
        for _ in range(20):
            await checkins(writer, 2)

    follower = asyncio.create_task(follow())
    await asyncio.gather(*(write() for _ in range(10)))
    done.set()
    await follower
    assert len(seen) == 400
    assert seen == await table_cursors(engine)


async def test_the_cursor_sequence_hands_out_values_one_at_a_time(engine: AsyncEngine) -> None:
    """With CACHE > 1 each session would pre-allocate a block of cursors, and a later
    commit could draw a smaller cursor from its block: the lock alone is not enough."""
    async with engine.connect() as conn:
        cache = (
            await conn.execute(
                text("SELECT cache_size FROM pg_sequences WHERE sequencename = 'coordination_event_seq'")
            )
        ).scalar_one()
    assert cache == 1


async def test_one_transaction_records_more_events_than_a_statement_takes_parameters(
    writer: WriteService, engine: AsyncEngine
) -> None:
    """A bulk write of 10,000 check-ins records 10,000 events (asyncpg takes at most 32,767 parameters)."""
    await seed(writer)
    async with engine.begin() as conn:
        recorded = await record_events(conn, [PendingEvent("a-0", "team_checkin", f"c-{i}") for i in range(10_000)])
    cursors = [e["seq"] for e in recorded]
    assert cursors == sorted(cursors) and len(set(cursors)) == 10_000
    assert await table_cursors(engine) == cursors
    assert [e["reference_id"] for e in recorded][:3] == ["c-0", "c-1", "c-2"]
