"""Reader.stream_counted and Reader.planned_count (added for the REST layer's Content-Range)."""

from __future__ import annotations

import json

from sqlalchemy import text

from api.plan import Condition, OrderTerm, ReadPlan
from api.store.reads import Reader


async def test_stream_counted_gives_the_total_then_the_page(reader: Reader) -> None:
    async with reader.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO actors (id, actor_type, name) "
                "SELECT 'p-' || g, 'person', 'P' || g FROM generate_series(1, 30) AS g"
            )
        )
    plan = ReadPlan("actor", where=Condition("name", "like", "P1%"), order=(OrderTerm("id"),), limit=3, offset=2)
    items = [item async for item in reader.stream_counted(plan)]
    assert items[0] == 11  # P1, P10..P19: the whole filter, not the page
    assert [json.loads(row)["id"] for row in items[1:]] == ["p-11", "p-12", "p-13"]


async def test_planned_count_is_the_planner_estimate(reader: Reader) -> None:
    async with reader.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO actors (id, actor_type, name) "
                "SELECT 'p-' || g, 'person', 'P' || g FROM generate_series(1, 500) AS g"
            )
        )
        await conn.execute(text("ANALYZE actors"))
    assert await reader.planned_count(ReadPlan("actor")) == 500
    estimate = await reader.planned_count(ReadPlan("actor", where=Condition("id", "eq", "p-7")))
    assert 0 <= estimate <= 5


async def test_in_timezone_renders_timestamps_there(reader: Reader) -> None:
    async with reader.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO goal_stories (id, title, created_at) VALUES ('g-1', 'T', '2026-03-05T15:15:00Z')")
        )
    plan = ReadPlan("goal_story")
    assert json.loads(await reader.json_array(plan))[0]["created_at"] == "2026-03-05T15:15:00+00:00"
    chicago = reader.in_timezone("America/Chicago")
    assert json.loads(await chicago.json_array(plan))[0]["created_at"] == "2026-03-05T09:15:00-06:00"
    text_, total = await chicago.page(plan, with_count=True)
    assert (json.loads(text_)[0]["created_at"], total) == ("2026-03-05T09:15:00-06:00", 1)
    streamed = [row async for row in chicago.stream(plan)]
    assert json.loads(streamed[0])["created_at"] == "2026-03-05T09:15:00-06:00"
    # the setting does not outlive the read: the pool's connections stay in UTC
    assert json.loads(await reader.json_array(plan))[0]["created_at"] == "2026-03-05T15:15:00+00:00"


async def test_in_takes_more_values_than_the_protocol_takes_parameters(reader: Reader) -> None:
    # PostgreSQL's protocol takes at most 32767 parameters: `in` binds its list as one array.
    async with reader.engine.begin() as conn:
        await conn.execute(text("INSERT INTO actors (id, actor_type, name) VALUES ('p-7', 'person', 'P')"))
    ids = [f"p-{i}" for i in range(40_000)]
    rows = json.loads(await reader.json_array(ReadPlan("actor", where=Condition("id", "in", ids))))
    assert [r["id"] for r in rows] == ["p-7"]
    dates = ReadPlan("team_checkin", where=Condition("date", "in", ["2026-01-01", "2026-01-02"]))
    assert json.loads(await reader.json_array(dates)) == []
