"""How many statements a write takes, and the rules kept by the one-statement create.

A statement count is not a timing: it changes only when the code does, so a write that
starts taking one statement per row again fails here, not only in the benchmark.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import Conflict, ConflictReason
from api.plan import Column, Condition, OrderTerm, ReadPlan
from api.store.writes import OnConflict, WriteService, Written

from .conftest import count_rows, table_counts

ID = (Column("id", "id"),)
CHECKIN = {
    "actor_id": "p-1",
    "team_id": "t-1",
    "date": "2026-05-22",
    "previously": ["shipped"],
    "next": ["plan"],
    "blockers": ["review"],
}


@pytest.fixture
async def world(writer: WriteService) -> WriteService:
    await writer.create("actor", [{"id": f"p-{i}", "actor_type": "person", "name": f"P{i}"} for i in range(1, 4)])
    await writer.create(
        "team", [{"id": "t-1", "name": "Product", "member_ids": ["p-1", "p-2"]}, {"id": "t-2", "name": "Platform"}]
    )
    return writer


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The statements sent on `engine` inside the block (BEGIN and COMMIT are not statements here)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def checkins(world: WriteService, n: int) -> list[dict[str, Any]]:
    return [
        {**CHECKIN, "actor_id": f"p-{i % 3 + 1}", "team_id": f"t-{i % 2 + 1}", "next": [f"item {i}"]} for i in range(n)
    ]


async def test_a_create_is_one_statement_however_many_rows(world: WriteService) -> None:
    for n in (1, 1000):
        with statements(world.engine) as sent:
            result = await world.create("team_checkin", await checkins(world, n))
        assert len(sent) == 1, sent
        assert len(result.rows) == n and len(result.events) == n
        assert {e["reference_id"] for e in result.events} == {r["id"] for r in result.rows}
    assert await count_rows(world.engine, "team_checkins") == 1001
    assert await count_rows(world.engine, "coordination_events") == 1001


async def test_a_create_reading_back_adds_only_its_read(world: WriteService) -> None:
    async def returning(written: Written) -> list[str]:
        return [row["id"] for row in json.loads(await written.rows(ReadPlan("team_checkin", columns=ID)))]

    with statements(world.engine) as sent:
        result = await world.create("team_checkin", [CHECKIN], returning=returning)
    assert len(sent) == 2, sent
    assert result.returned == [result.rows[0]["id"]]


async def test_an_update_of_many_rows_is_three_statements(world: WriteService) -> None:
    await world.create("team_checkin", await checkins(world, 30))
    with statements(world.engine) as sent:
        result = await world.update("team_checkin", Condition("team_id", "eq", "t-1"), {"blockers": ["none"]})
    # Lock the matching rows, write them, record their events.
    assert len(sent) == 3, sent
    assert len(result.rows) == 15 and len(result.events) == 15
    assert all(r["blockers"] == ["none"] for r in result.rows)


async def test_a_delete_looks_for_every_referrer_in_one_statement(world: WriteService) -> None:
    await world.create("team_checkin", [CHECKIN])
    with statements(world.engine) as sent, pytest.raises(Conflict) as caught:
        await world.delete_one("actor", "p-1")
    # Lock the row, look in the five tables that can refer to an actor.
    assert len(sent) == 2, sent
    assert set(caught.value.referrers) == {"teams", "team_checkins", "coordination_events"}
    with statements(world.engine) as sent:
        await world.delete_one("actor", "p-3")
    assert len(sent) == 3, sent
    assert await count_rows(world.engine, "actors") == 2


async def test_concurrent_creates_of_one_id_name_it(world: WriteService) -> None:
    async def attempt(n: int) -> Conflict | None:
        try:
            await world.create("team_checkin", [{**CHECKIN, "id": "same", "next": [f"try {n}"]}])
        except Conflict as error:
            return error
        return None

    outcomes = await asyncio.gather(*(attempt(n) for n in range(8)))
    conflicts = [o for o in outcomes if o is not None]
    assert len(conflicts) == 7
    assert all(c.reason is ConflictReason.DUPLICATE and c.ids == ["same"] for c in conflicts)
    assert await count_rows(world.engine, "team_checkins") == 1
    assert await count_rows(world.engine, "coordination_events") == 1


async def test_a_bulk_with_one_missing_reference_names_it_and_writes_nothing(world: WriteService) -> None:
    before = await table_counts(world.engine)
    documents = await checkins(world, 1000)
    documents[500] = {**documents[500], "actor_id": "ghost"}
    with pytest.raises(Conflict) as caught:
        await world.create("team_checkin", documents)
    assert caught.value.reason is ConflictReason.MISSING_REFERENCE
    assert (caught.value.field, caught.value.ids) == ("actor_id", ["ghost"])
    # An array reference has no foreign key: the write service's check is its only guard.
    with pytest.raises(Conflict) as listed:
        await world.create("team", [{"name": "New", "member_ids": ["p-1", "nobody"]}])
    assert (listed.value.field, listed.value.ids) == ("member_ids", ["nobody"])
    assert await table_counts(world.engine) == before


async def test_a_taken_id_among_many_fails_them_all(world: WriteService) -> None:
    first = await world.create("team_checkin", [{**CHECKIN, "id": "c-1"}])
    before = await table_counts(world.engine)
    documents = [{**d, "id": f"c-{i}"} for i, d in enumerate(await checkins(world, 100))]
    with pytest.raises(Conflict) as caught:
        await world.create("team_checkin", documents)
    assert caught.value.reason is ConflictReason.DUPLICATE and caught.value.ids == ["c-1"]
    assert await table_counts(world.engine) == before
    assert (await world.create("team_checkin", documents, on_conflict=OnConflict.IGNORE)).events[0][
        "seq"
    ] > first.events[0]["seq"]


async def test_ignore_records_events_only_for_the_rows_it_inserts(world: WriteService) -> None:
    await world.create("team_checkin", [{**CHECKIN, "id": "c-1"}])
    result = await world.create(
        "team_checkin",
        [{**CHECKIN, "id": "c-1", "next": ["other"]}, {**CHECKIN, "id": "c-2"}],
        on_conflict=OnConflict.IGNORE,
    )
    assert [r["id"] for r in result.rows] == ["c-2"] and result.inserted_ids == ["c-2"]
    assert [e["reference_id"] for e in result.events] == ["c-2"]
    assert await count_rows(world.engine, "coordination_events") == 2


async def test_an_update_or_delete_of_the_first_rows_in_an_order_adds_no_statement(world: WriteService) -> None:
    await world.create("team_checkin", await checkins(world, 30))
    first = (OrderTerm("date"), OrderTerm("id"))
    with statements(world.engine) as sent:
        result = await world.update("team_checkin", None, {"blockers": ["none"]}, order=first, limit=10)
    # Pick and lock the rows, write them, record their events.
    assert len(sent) == 3, sent
    assert len(result.rows) == 10 and len(result.events) == 10
    with statements(world.engine) as sent:
        result = await world.delete("team_checkin", None, order=first, limit=10, offset=10)
    # Pick and lock the rows, delete them (nothing refers to a check-in).
    assert len(sent) == 2, sent
    assert len(result.rows) == 10


async def test_pooled_connections_stay_transactional_after_one_statement_creates(world: WriteService) -> None:
    # Enough one-statement creates, some at once, that every pooled connection has run one.
    await asyncio.gather(*(world.create("team_checkin", [CHECKIN]) for _ in range(12)))
    before = await table_counts(world.engine)

    async def refuse(written: Written) -> None:
        raise RuntimeError("refused after the write")

    for _ in range(12):
        with pytest.raises(RuntimeError):
            await world.create("team_checkin", [CHECKIN], returning=refuse)
        with pytest.raises(RuntimeError):
            await world.update("actor", Condition("id", "eq", "p-1"), {"name": "Changed"}, returning=refuse)
    assert await table_counts(world.engine) == before
    assert await count_rows(world.engine, "actors WHERE name = 'Changed'") == 0


async def test_the_rows_and_events_a_create_returns_are_those_stored(world: WriteService) -> None:
    # The create statement sends back only what the database decided (id, created_at, the
    # event's id and cursor); the rest is rebuilt from what was sent, and must equal the table.
    async def stored(table: str, id: str) -> dict[str, Any]:
        async with world.engine.connect() as conn:
            return dict(
                (await conn.execute(text(f"SELECT * FROM {table} WHERE id = :id"), {"id": id})).mappings().one()
            )

    story = await world.create(
        "goal_story",
        [
            {
                "title": "Ünïcode ✓",
                "team_ids": ["t-2", "t-1"],
                "actor_ids": [],
                "timeframe": {"start": "2026-02-01"},
                "created_at": "2026-01-05T12:00:00.123456-06:00",
            }
        ],
    )
    checkin = await world.create(
        "team_checkin",
        [{**CHECKIN, "blockers": None, "previously": ['a "quoted" \\ item']}, {**CHECKIN, "id": "c-2", "next": []}],
    )
    update = await world.create(
        "goal_story_update",
        [
            {
                "actor_id": "p-2",
                "goal_story_id": story.rows[0]["id"],
                "date": "2026-05-22",
                "title": "T",
                "content": "C",
                "status": "at_risk",
                "progress_percent": 0,
                "created_at": "2026-05-22T10:00:00Z",
            }
        ],
    )
    for table, result in (("goal_stories", story), ("team_checkins", checkin), ("goal_story_updates", update)):
        for row in result.rows:
            assert row == await stored(table, row["id"])
        for recorded in result.events:
            assert recorded == await stored("coordination_events", recorded["id"])
    assert story.rows[0]["timeframe_end"] is None and checkin.rows[0]["blockers"] is None
