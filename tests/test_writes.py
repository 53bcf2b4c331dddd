"""The write service: every rule, every error, every event, checked in the tables."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import Conflict, ConflictReason, InvalidInput, InvalidReason, NotFound, ReadOnly
from api.plan import Condition, OrderTerm, ReadPlan
from api.store.writes import OnConflict, WriteService, Written

from .conftest import count_rows, table_counts, until_a_lock_is_awaited


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(text(sql), params)).mappings()]


async def events_of(engine: AsyncEngine, reference_id: str) -> list[dict[str, Any]]:
    return await rows(engine, "SELECT * FROM coordination_events WHERE reference_id = :r ORDER BY seq", r=reference_id)


@pytest.fixture
async def world(writer: WriteService) -> WriteService:
    """Two actors, a team, a goal story: the rows most tests refer to."""
    await writer.create(
        "actor",
        [
            {"id": "p-1", "actor_type": "person", "name": "Quinn Reed", "role": "PM", "timezone": "America/Chicago"},
            {"id": "a-1", "actor_type": "agent", "name": "Research Bot"},
        ],
    )
    await writer.create("team", [{"id": "t-1", "name": "Product", "member_ids": ["p-1", "a-1"]}])
    await writer.create(
        "goal_story",
        [
            {
                "id": "g-1",
                "title": "Onboarding",
                "team_ids": ["t-1"],
                "actor_ids": ["p-1"],
                "timeframe": {"start": "2026-01-06", "end": "2026-03-31"},
            }
        ],
    )
    return writer


CHECKIN = {
    "actor_id": "p-1",
    "team_id": "t-1",
    "date": "2026-05-22",
    "previously": ["shipped"],
    "next": ["plan"],
    "blockers": [],
}
UPDATE = {
    "actor_id": "p-1",
    "goal_story_id": "g-1",
    "date": "2026-05-22",
    "title": "Good week",
    "content": "Onboarding time is down.",
    "status": "on_track",
    "progress_percent": 70,
}


# ---------------------------------------------------------------- creating


async def test_create_keeps_a_client_id_and_generates_a_uuid_otherwise(world: WriteService) -> None:
    result = await world.create("actor", [{"actor_type": "agent", "name": "Bot 2"}])
    generated = result.rows[0]["id"]
    assert len(generated) == 36 and generated.count("-") == 4
    stored = await rows(world.engine, "SELECT id, name FROM actors ORDER BY name")
    assert {"id": generated, "name": "Bot 2"} in stored
    assert {"id": "p-1", "name": "Quinn Reed"} in stored


async def test_created_at_defaults_to_the_time_of_the_write_and_may_be_supplied(world: WriteService) -> None:
    before = dt.datetime.now(dt.UTC)
    fresh = await world.create("team_checkin", [CHECKIN])
    supplied = await world.create("team_checkin", [{**CHECKIN, "created_at": "2026-03-05T09:15:00-06:00"}])
    assert fresh.rows[0]["created_at"] >= before - dt.timedelta(seconds=5)
    assert supplied.rows[0]["created_at"] == dt.datetime(2026, 3, 5, 15, 15, tzinfo=dt.UTC)
    # The creation event occurred when the row says it was created.
    event = (await events_of(world.engine, supplied.rows[0]["id"]))[0]
    assert event["occurred_at"] == supplied.rows[0]["created_at"]


@pytest.mark.parametrize("entity, document", [("team_checkin", CHECKIN), ("goal_story_update", UPDATE)])
async def test_creating_writes_exactly_one_event_in_the_same_transaction(
    world: WriteService, entity: str, document: dict[str, Any]
) -> None:
    result = await world.create(entity, [document])
    row = result.rows[0]
    events = await events_of(world.engine, row["id"])
    assert len(events) == 1
    assert events[0]["event_type"] == entity
    assert events[0]["actor_id"] == "p-1"
    assert events[0]["occurred_at"] == row["created_at"]
    assert result.events[0]["id"] == events[0]["id"]
    assert await count_rows(world.engine, "coordination_events") == 1


async def test_entities_without_a_loop_write_no_events(world: WriteService) -> None:
    await world.update_one("actor", "p-1", {"role": "Director"})
    await world.update_one("goal_story", "g-1", {"title": "Faster onboarding"})
    assert await count_rows(world.engine, "coordination_events") == 0


async def test_bulk_create_writes_all_rows_and_one_event_each(world: WriteService) -> None:
    documents = [{**CHECKIN, "date": f"2026-05-{day:02d}"} for day in range(1, 21)]
    result = await world.create("team_checkin", documents)
    assert len(result.rows) == 20 and len(result.events) == 20
    assert await count_rows(world.engine, "team_checkins") == 20
    assert await count_rows(world.engine, "coordination_events") == 20
    assert sorted(e["reference_id"] for e in result.events) == sorted(r["id"] for r in result.rows)


async def test_a_bulk_create_with_one_bad_row_writes_nothing(world: WriteService) -> None:
    before = await table_counts(world.engine)
    documents = [
        {**CHECKIN, "date": "2026-05-01"},
        {**CHECKIN, "date": "2026-05-02"},
        {**CHECKIN, "team_id": "t-missing"},
    ]
    with pytest.raises(Conflict) as caught:
        await world.create("team_checkin", documents)
    assert caught.value.reason is ConflictReason.MISSING_REFERENCE and caught.value.ids == ["t-missing"]
    with pytest.raises(InvalidInput) as invalid:
        await world.create("team_checkin", [CHECKIN, {**CHECKIN, "date": "yesterday"}])
    assert invalid.value.index == 1 and invalid.value.field == "date"
    assert await table_counts(world.engine) == before


async def test_a_bulk_create_of_a_tree_may_refer_to_its_own_rows(writer: WriteService) -> None:
    await writer.create(
        "goal_story", [{"id": "child", "title": "Child", "parent_id": "root"}, {"id": "root", "title": "Root"}]
    )
    assert await rows(writer.engine, "SELECT id, parent_id FROM goal_stories ORDER BY id") == [
        {"id": "child", "parent_id": "root"},
        {"id": "root", "parent_id": None},
    ]


async def test_a_duplicate_id_is_a_conflict_naming_it(world: WriteService) -> None:
    before = await table_counts(world.engine)
    with pytest.raises(Conflict) as caught:
        await world.create(
            "actor",
            [
                {"id": "new", "actor_type": "person", "name": "N"},
                {"id": "p-1", "actor_type": "person", "name": "Again"},
            ],
        )
    assert caught.value.reason is ConflictReason.DUPLICATE and caught.value.ids == ["p-1"]
    with pytest.raises(Conflict) as repeated:
        await world.create(
            "actor",
            [{"id": "x", "actor_type": "person", "name": "A"}, {"id": "x", "actor_type": "person", "name": "B"}],
        )
    assert repeated.value.ids == ["x"]
    assert await table_counts(world.engine) == before


async def test_concurrent_creates_of_one_id_leave_one_row(writer: WriteService) -> None:
    async def attempt(name: str) -> str:
        try:
            await writer.create("actor", [{"id": "same", "actor_type": "person", "name": name}])
            return "created"
        except Conflict as error:
            assert error.reason is ConflictReason.DUPLICATE
            return "conflict"

    outcomes = await asyncio.gather(*(attempt(f"n{i}") for i in range(8)))
    assert sorted(outcomes).count("created") == 1
    assert await count_rows(writer.engine, "actors") == 1


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "entity, document, field, reason",
    [
        ("actor", {"actor_type": "robot", "name": "R"}, "actor_type", InvalidReason.RULE),
        ("actor", {"actor_type": "person"}, "name", InvalidReason.REQUIRED),
        ("actor", {"actor_type": "person", "name": None}, "name", InvalidReason.REQUIRED),
        ("actor", {"actor_type": "person", "name": 5}, "name", InvalidReason.FORMAT),
        ("actor", {"actor_type": "person", "name": "T", "timezone": "Mars/Olympus"}, "timezone", InvalidReason.RULE),
        ("actor", {"actor_type": "person", "name": "T", "colour": "red"}, "colour", InvalidReason.UNKNOWN_FIELD),
        ("actor", {"id": "", "actor_type": "person", "name": "T"}, "id", InvalidReason.RULE),
        ("actor", {"actor_type": "person", "name": "nul\x00byte"}, "name", InvalidReason.FORMAT),
        ("team", {"name": "T", "member_ids": "p-1"}, "member_ids", InvalidReason.FORMAT),
        ("team", {"name": "T", "member_ids": ["p-1", 7]}, "member_ids", InvalidReason.FORMAT),
        ("team_checkin", {**CHECKIN, "date": "2026-02-30"}, "date", InvalidReason.FORMAT),
        ("team_checkin", {**CHECKIN, "date": "2026-05-22T10:00:00Z"}, "date", InvalidReason.FORMAT),
        ("team_checkin", {**CHECKIN, "created_at": "last tuesday"}, "created_at", InvalidReason.FORMAT),
        ("team_checkin", {**CHECKIN, "blockers": "none"}, "blockers", InvalidReason.FORMAT),
        ("team_checkin", {k: v for k, v in CHECKIN.items() if k != "team_id"}, "team_id", InvalidReason.REQUIRED),
        ("goal_story_update", {**UPDATE, "progress_percent": 101}, "progress_percent", InvalidReason.RULE),
        ("goal_story_update", {**UPDATE, "progress_percent": -1}, "progress_percent", InvalidReason.RULE),
        ("goal_story_update", {**UPDATE, "progress_percent": 5.5}, "progress_percent", InvalidReason.FORMAT),
        ("goal_story_update", {**UPDATE, "progress_percent": True}, "progress_percent", InvalidReason.FORMAT),
        ("goal_story_update", {**UPDATE, "status": "ON_TRACK"}, "status", InvalidReason.RULE),
        (
            "goal_story",
            {"title": "T", "timeframe": {"start": "2026-03-01", "end": "2026-02-01"}},
            "timeframe",
            InvalidReason.RULE,
        ),
        (
            "goal_story",
            {"title": "T", "timeframe": {"start": "2026-03-01", "until": "x"}},
            "timeframe",
            InvalidReason.UNKNOWN_FIELD,
        ),
        ("goal_story", {"title": "T", "timeframe": "Q1"}, "timeframe", InvalidReason.FORMAT),
    ],
)
async def test_invalid_input_names_the_field_and_writes_nothing(
    world: WriteService, entity: str, document: dict[str, Any], field: str, reason: InvalidReason
) -> None:
    before = await table_counts(world.engine)
    with pytest.raises(InvalidInput) as caught:
        await world.create(entity, [document])
    assert caught.value.field == field
    assert caught.value.reason is reason
    assert field in caught.value.message or reason is InvalidReason.UNKNOWN_FIELD
    assert await table_counts(world.engine) == before


async def test_a_document_must_be_an_object(world: WriteService) -> None:
    with pytest.raises(InvalidInput):
        await world.create("actor", ["p-9"])  # type: ignore[list-item]


async def test_progress_bounds_and_a_single_day_timeframe_are_accepted(world: WriteService) -> None:
    await world.create("goal_story_update", [{**UPDATE, "progress_percent": 0}, {**UPDATE, "progress_percent": 100}])
    await world.create(
        "goal_story",
        [
            {"title": "Day", "timeframe": {"start": "2026-01-01", "end": "2026-01-01"}},
            {"title": "Open", "timeframe": {"start": "2026-01-01"}},
        ],
    )
    assert await count_rows(world.engine, "goal_story_updates") == 2


# ---------------------------------------------------------------- references


@pytest.mark.parametrize(
    "entity, document, field, missing",
    [
        ("team", {"name": "T", "member_ids": ["p-1", "ghost-1", "ghost-2"]}, "member_ids", ["ghost-1", "ghost-2"]),
        ("team_checkin", {**CHECKIN, "actor_id": "ghost"}, "actor_id", ["ghost"]),
        ("team_checkin", {**CHECKIN, "team_id": "ghost"}, "team_id", ["ghost"]),
        ("goal_story", {"title": "T", "parent_id": "ghost"}, "parent_id", ["ghost"]),
        ("goal_story", {"title": "T", "actor_ids": ["ghost"]}, "actor_ids", ["ghost"]),
        ("goal_story", {"title": "T", "team_ids": ["t-1", "ghost"]}, "team_ids", ["ghost"]),
        ("goal_story_update", {**UPDATE, "goal_story_id": "ghost"}, "goal_story_id", ["ghost"]),
        ("goal_story_update", {**UPDATE, "actor_id": "ghost"}, "actor_id", ["ghost"]),
    ],
)
async def test_a_missing_reference_is_a_conflict_naming_the_ids(
    world: WriteService, entity: str, document: dict[str, Any], field: str, missing: list[str]
) -> None:
    before = await table_counts(world.engine)
    with pytest.raises(Conflict) as caught:
        await world.create(entity, [document])
    assert caught.value.reason is ConflictReason.MISSING_REFERENCE
    assert caught.value.field == field and caught.value.ids == missing
    assert all(i in caught.value.message for i in missing)
    with pytest.raises(Conflict):
        await world.update("team", Condition("id", "eq", "t-1"), {"member_ids": ["p-1", "nobody"]})
    assert await table_counts(world.engine) == before


async def test_deleting_a_referenced_row_is_a_conflict_naming_the_referrers(world: WriteService) -> None:
    checkin = (await world.create("team_checkin", [CHECKIN])).rows[0]["id"]
    before = await table_counts(world.engine)
    with pytest.raises(Conflict) as caught:
        await world.delete_one("actor", "p-1")
    error = caught.value
    assert error.reason is ConflictReason.REFERENCED
    assert error.referrers == {
        "team_checkins": [checkin],
        "teams": ["t-1"],
        "goal_stories": ["g-1"],
        "coordination_events": error.referrers["coordination_events"],
    }
    assert len(error.referrers["coordination_events"]) == 1
    with pytest.raises(Conflict) as team:
        await world.delete_one("team", "t-1")
    assert team.value.referrers == {"team_checkins": [checkin], "goal_stories": ["g-1"]}
    assert await table_counts(world.engine) == before


async def test_deleting_a_checkin_keeps_its_events(world: WriteService) -> None:
    checkin = (await world.create("team_checkin", [CHECKIN])).rows[0]["id"]
    await world.update_one("team_checkin", checkin, {"blockers": ["waiting on legal"]})
    await world.delete_one("team_checkin", checkin)
    assert await count_rows(world.engine, "team_checkins") == 0
    assert len(await events_of(world.engine, checkin)) == 2


async def test_deleting_a_parent_together_with_its_children_is_allowed(world: WriteService) -> None:
    await world.create("goal_story", [{"id": "g-2", "title": "Child", "parent_id": "g-1"}])
    with pytest.raises(Conflict) as caught:
        await world.delete_one("goal_story", "g-1")
    assert caught.value.referrers == {"goal_stories": ["g-2"]}
    deleted = await world.delete("goal_story", Condition("id", "in", ["g-1", "g-2"]))
    assert sorted(r["id"] for r in deleted.rows) == ["g-1", "g-2"]
    assert await count_rows(world.engine, "goal_stories") == 0


async def test_delete_and_a_new_reference_racing_never_leave_a_dangling_id(world: WriteService) -> None:
    await world.create("actor", [{"id": f"r-{i}", "actor_type": "person", "name": f"R{i}"} for i in range(10)])

    async def delete(i: int) -> None:
        with contextlib.suppress(Conflict):
            await world.delete_one("actor", f"r-{i}")

    async def refer(i: int) -> None:
        with contextlib.suppress(Conflict):
            await world.create("team", [{"id": f"team-{i}", "name": "T", "member_ids": [f"r-{i}"]}])

    await asyncio.gather(*(f(i) for i in range(10) for f in (delete, refer)))
    dangling = await rows(
        world.engine,
        """
        SELECT t.id FROM teams t, unnest(t.member_ids) m(id)
        WHERE NOT EXISTS (SELECT 1 FROM actors a WHERE a.id = m.id)""",
    )
    assert dangling == []


async def test_a_goal_story_cannot_become_its_own_ancestor(world: WriteService) -> None:
    await world.create(
        "goal_story",
        [{"id": "g-2", "title": "Child", "parent_id": "g-1"}, {"id": "g-3", "title": "Grandchild", "parent_id": "g-2"}],
    )
    for parent in ("g-3", "g-2", "g-1"):
        with pytest.raises(Conflict) as caught:
            await world.update_one("goal_story", "g-1", {"parent_id": parent})
        assert caught.value.reason is ConflictReason.CYCLE and caught.value.ids == ["g-1"]
    with pytest.raises(Conflict):
        await world.create(
            "goal_story", [{"id": "x", "title": "X", "parent_id": "y"}, {"id": "y", "title": "Y", "parent_id": "x"}]
        )
    assert await rows(world.engine, "SELECT id, parent_id FROM goal_stories ORDER BY id") == [
        {"id": "g-1", "parent_id": None},
        {"id": "g-2", "parent_id": "g-1"},
        {"id": "g-3", "parent_id": "g-2"},
    ]


async def test_concurrent_reparenting_cannot_build_a_cycle(world: WriteService) -> None:
    await world.create("goal_story", [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}])
    outcomes = await asyncio.gather(
        world.update_one("goal_story", "a", {"parent_id": "b"}),
        world.update_one("goal_story", "b", {"parent_id": "a"}),
        return_exceptions=True,
    )
    assert sum(isinstance(o, Conflict) for o in outcomes) == 1
    parents = {r["id"]: r["parent_id"] for r in await rows(world.engine, "SELECT id, parent_id FROM goal_stories")}
    assert not (parents["a"] == "b" and parents["b"] == "a")


# ---------------------------------------------------------------- updating


async def test_an_update_changes_only_the_given_fields_and_null_clears(world: WriteService) -> None:
    result = await world.update_one("actor", "p-1", {"role": None, "name": "Quinn R."})
    assert result.rows[0]["role"] is None and result.rows[0]["name"] == "Quinn R."
    assert result.rows[0]["timezone"] == "America/Chicago"
    with pytest.raises(InvalidInput) as caught:
        await world.update_one("actor", "p-1", {"name": None})
    assert caught.value.reason is InvalidReason.REQUIRED
    assert (await rows(world.engine, "SELECT name FROM actors WHERE id = 'p-1'"))[0]["name"] == "Quinn R."


async def test_a_substantive_edit_writes_one_event_and_a_noop_none(world: WriteService) -> None:
    checkin = (await world.create("team_checkin", [CHECKIN])).rows[0]
    edit = await world.update_one("team_checkin", checkin["id"], {"blockers": ["legal review"]})
    assert len(edit.events) == 1 and edit.events[0]["occurred_at"] >= checkin["created_at"]
    same = await world.update_one("team_checkin", checkin["id"], {"blockers": ["legal review"], "date": "2026-05-22"})
    assert same.events == [] and same.rows[0]["blockers"] == ["legal review"]
    empty = await world.update_one("team_checkin", checkin["id"], {})
    assert empty.events == []
    assert len(await events_of(world.engine, checkin["id"])) == 2


async def test_a_failed_edit_leaves_no_event_and_no_change(world: WriteService) -> None:
    update = (await world.create("goal_story_update", [UPDATE])).rows[0]
    with pytest.raises(InvalidInput):
        await world.update_one("goal_story_update", update["id"], {"progress_percent": 150})
    with pytest.raises(Conflict):
        await world.update_one("goal_story_update", update["id"], {"goal_story_id": "nope", "title": "x"})
    assert len(await events_of(world.engine, update["id"])) == 1
    stored = (await rows(world.engine, "SELECT title, progress_percent FROM goal_story_updates"))[0]
    assert stored == {"title": "Good week", "progress_percent": 70}


async def test_twenty_concurrent_edits_of_one_checkin_leave_twenty_events(world: WriteService) -> None:
    checkin = (await world.create("team_checkin", [CHECKIN])).rows[0]["id"]
    await asyncio.gather(*(world.update_one("team_checkin", checkin, {"next": [f"step {i}"]}) for i in range(20)))
    events = await events_of(world.engine, checkin)
    assert len(events) == 21  # the creation and twenty edits
    assert len({e["seq"] for e in events}) == 21


async def test_an_edit_event_names_the_rows_actor(world: WriteService) -> None:
    checkin = (await world.create("team_checkin", [CHECKIN])).rows[0]["id"]
    result = await world.update_one("team_checkin", checkin, {"actor_id": "a-1"})
    assert result.events[0]["actor_id"] == "a-1"


async def test_update_and_delete_of_a_missing_row_are_not_found(world: WriteService) -> None:
    with pytest.raises(NotFound):
        await world.update_one("actor", "ghost", {"name": "x"})
    with pytest.raises(NotFound):
        await world.delete_one("team", "ghost")


async def test_ids_cannot_change(world: WriteService) -> None:
    with pytest.raises(InvalidInput) as caught:
        await world.update_one("actor", "p-1", {"id": "p-2"})
    assert caught.value.field == "id"
    same = await world.update_one("actor", "p-1", {"id": "p-1"})
    assert same.rows[0]["id"] == "p-1"


async def test_update_by_filter_touches_every_matching_row(world: WriteService) -> None:
    await world.create("team_checkin", [{**CHECKIN, "date": f"2026-05-{d:02d}"} for d in (1, 2, 3)])
    result = await world.update("team_checkin", Condition("date", "gte", "2026-05-02"), {"blockers": ["x"]})
    assert len(result.rows) == 2 and len(result.events) == 2
    assert await count_rows(world.engine, "coordination_events") == 5


async def test_an_update_or_delete_of_the_first_rows_in_an_order_changes_exactly_those(writer: WriteService) -> None:
    names = {"o-1": "Delta", "o-2": "Alpha", "o-3": "Echo", "o-4": "Bravo", "o-5": "Charlie"}
    await writer.create("actor", [{"id": i, "actor_type": "person", "name": n} for i, n in names.items()])
    by_name = (OrderTerm("name"),)
    first = await writer.update("actor", None, {"role": "first two"}, order=by_name, limit=2)
    assert sorted(r["id"] for r in first.rows) == ["o-2", "o-4"]
    by_name_down = (OrderTerm("name", descending=True),)
    second = await writer.update(
        "actor", Condition("id", "neq", "o-3"), {"role": "second"}, order=by_name_down, limit=1, offset=1
    )
    assert [r["id"] for r in second.rows] == ["o-5"]
    roles = {r["id"]: r["role"] for r in await rows(writer.engine, "SELECT id, role FROM actors")}
    assert roles == {"o-1": None, "o-2": "first two", "o-3": None, "o-4": "first two", "o-5": "second"}
    deleted = await writer.delete("actor", Condition("role", "is", "null"), order=by_name, limit=1)
    assert [r["id"] for r in deleted.rows] == ["o-1"]
    assert sorted(r["id"] for r in await rows(writer.engine, "SELECT id FROM actors")) == ["o-2", "o-3", "o-4", "o-5"]


async def test_the_first_rows_are_those_first_when_the_write_runs_not_when_it_began(writer: WriteService) -> None:
    """A row a concurrent transaction takes out of the filter while the write waits for it is passed
    over, and the next one in the order is changed instead: the rows are picked under their locks."""
    names = {"w-1": "Alpha", "w-2": "Bravo", "w-3": "Charlie"}
    await writer.create("actor", [{"id": i, "actor_type": "person", "name": n} for i, n in names.items()])
    persons, by_name = Condition("actor_type", "eq", "person"), (OrderTerm("name"),)
    for write in (
        lambda: writer.update("actor", persons, {"role": "first two"}, order=by_name, limit=2),
        lambda: writer.delete("actor", persons, order=by_name, limit=2),
    ):
        async with writer.engine.connect() as other:
            await other.execute(text("UPDATE actors SET actor_type = 'agent' WHERE id = 'w-1'"))
            waiting = asyncio.create_task(write())
            await until_a_lock_is_awaited(writer.engine)
            await other.commit()
        assert sorted(r["id"] for r in (await waiting).rows) == ["w-2", "w-3"]
        await writer.update("actor", Condition("id", "eq", "w-1"), {"actor_type": "person"})
    assert [r["id"] for r in await rows(writer.engine, "SELECT id FROM actors")] == ["w-1"]
    roles = await rows(writer.engine, "SELECT role FROM actors")
    assert roles == [{"role": None}]


# ---------------------------------------------------------------- upsert


async def test_merge_updates_existing_rows_and_inserts_new_ones(world: WriteService) -> None:
    result = await world.create(
        "actor",
        [
            {"id": "p-1", "actor_type": "person", "name": "Quinn Reed", "role": "CPO"},
            {"id": "p-2", "actor_type": "person", "name": "New"},
        ],
        on_conflict=OnConflict.MERGE,
    )
    assert result.inserted_ids == ["p-2"]
    stored = {r["id"]: r for r in await rows(world.engine, "SELECT * FROM actors")}
    assert stored["p-1"]["role"] == "CPO" and stored["p-1"]["timezone"] == "America/Chicago"
    assert stored["p-2"]["name"] == "New"


async def test_merge_of_checkins_records_events_only_for_inserts_and_real_changes(world: WriteService) -> None:
    first = await world.create("team_checkin", [{**CHECKIN, "id": "c-1"}])
    again = await world.create("team_checkin", [{**CHECKIN, "id": "c-1"}], on_conflict=OnConflict.MERGE)
    assert again.events == [] and again.inserted_ids == []
    changed = await world.create(
        "team_checkin",
        [{**CHECKIN, "id": "c-1", "next": ["new plan"]}, {**CHECKIN, "id": "c-2"}],
        on_conflict=OnConflict.MERGE,
    )
    assert len(first.events) == 1 and len(changed.events) == 2
    assert len(await events_of(world.engine, "c-1")) == 2


async def test_ignore_leaves_existing_rows_alone(world: WriteService) -> None:
    result = await world.create(
        "actor",
        [{"id": "p-1", "actor_type": "agent", "name": "Other"}, {"id": "p-3", "actor_type": "agent", "name": "Three"}],
        on_conflict=OnConflict.IGNORE,
    )
    assert [r["id"] for r in result.rows] == ["p-3"]
    assert (await rows(world.engine, "SELECT name FROM actors WHERE id = 'p-1'"))[0]["name"] == "Quinn Reed"


# ---------------------------------------------------------------- events are the server's


async def test_nobody_writes_coordination_events(world: WriteService) -> None:
    with pytest.raises(ReadOnly):
        await world.create(
            "coordination_event",
            [
                {
                    "actor_id": "p-1",
                    "event_type": "team_checkin",
                    "reference_id": "x",
                    "occurred_at": "2026-01-01T00:00:00Z",
                }
            ],
        )
    with pytest.raises(ReadOnly):
        await world.update("coordination_event", None, {"actor_id": "a-1"})
    with pytest.raises(ReadOnly):
        await world.delete("coordination_event", None)
    assert await count_rows(world.engine, "coordination_events") == 0


async def test_returning_reads_inside_the_transaction(world: WriteService) -> None:
    seen: list[list[str]] = []

    async def returning(written: Written) -> int:
        seen.append(written.ids)
        # A read of the whole table, inside the transaction: it sees the row not yet committed.
        return len(json.loads(await written.json_array(ReadPlan("team_checkin"))))

    result = await world.create("team_checkin", [CHECKIN], returning=returning)
    assert result.returned == 1 and seen == [[result.rows[0]["id"]]]
