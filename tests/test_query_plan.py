"""The query plan rendered to one statement: filters, order, pages, selections, relations."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import InvalidInput, InvalidReason
from api.ops.schemas import validator
from api.plan import CASTS, And, Column, Condition, Count, Embed, Not, Or, OrderTerm, ReadPlan
from api.store.reads import Reader
from api.store.select import rows_statement
from api.store.writes import WriteService


@pytest.fixture
async def data(writer: WriteService) -> WriteService:
    await writer.create(
        "actor",
        [
            {"id": "p-1", "actor_type": "person", "name": "Ada", "role": "Lead", "timezone": "Europe/Berlin"},
            {"id": "p-2", "actor_type": "person", "name": "Bob"},
            {"id": "a-1", "actor_type": "agent", "name": "Research Bot", "role": "Research"},
        ],
    )
    await writer.create(
        "team",
        [
            {"id": "t-1", "name": "Backend", "member_ids": ["p-2", "p-1"]},
            {"id": "t-2", "name": "Frontend", "description": "UI", "member_ids": ["a-1"]},
        ],
    )
    await writer.create(
        "goal_story",
        [
            {
                "id": "g-1",
                "title": "Launch",
                "team_ids": ["t-1", "t-2"],
                "actor_ids": ["p-1"],
                "timeframe": {"start": "2026-01-01", "end": "2026-06-30"},
            },
            {"id": "g-2", "title": "API", "parent_id": "g-1", "timeframe": {"start": "2026-02-01"}},
            {"id": "g-3", "title": "Docs", "parent_id": "g-1"},
        ],
    )
    await writer.create(
        "team_checkin",
        [
            {
                "id": f"c-{d}",
                "actor_id": "p-1" if d % 2 else "p-2",
                "team_id": "t-1",
                "date": f"2026-05-{d:02d}",
                "next": [f"task {d}"],
                "blockers": ["waiting on review"] if d == 3 else [],
            }
            for d in range(1, 6)
        ],
    )
    await writer.create(
        "goal_story_update",
        [
            {
                "id": f"u-{i}",
                "actor_id": "p-1",
                "goal_story_id": "g-2",
                "date": f"2026-05-0{i}",
                "title": f"Week {i}",
                "content": "Steady progress on the public API",
                "status": "on_track",
                "progress_percent": 20 * i,
            }
            for i in range(1, 4)
        ],
    )
    return writer


async def read(reader: Reader, plan: ReadPlan) -> list[dict[str, Any]]:
    return json.loads(await reader.json_array(plan))


async def ids(reader: Reader, entity: str, where: Any = None, **plan: Any) -> list[str]:
    rows = await read(reader, ReadPlan(entity, where=where, order=(OrderTerm("id"),), **plan))
    return [r["id"] for r in rows]


async def test_full_representations_are_valid_documents(data: WriteService, reader: Reader) -> None:
    for entity in ("actor", "team", "team_checkin", "goal_story", "goal_story_update", "coordination_event"):
        rows = await read(reader, ReadPlan(entity))
        assert rows, entity
        check = validator(entity)
        for row in rows:
            check.validate(row)
    bob = (await read(reader, ReadPlan("actor", where=Condition("id", "eq", "p-2"))))[0]
    assert bob == {"id": "p-2", "actor_type": "person", "name": "Bob"}  # optional fields left out
    g2 = (await read(reader, ReadPlan("goal_story", where=Condition("id", "eq", "g-2"))))[0]
    assert g2["timeframe"] == {"start": "2026-02-01"} and g2["parent_id"] == "g-1"


async def test_named_columns_are_always_present(data: WriteService, reader: Reader) -> None:
    plan = ReadPlan(
        "actor",
        columns=(Column("id", "id"), Column("who", "name"), Column("role", "role")),
        where=Condition("id", "eq", "p-2"),
    )
    assert await read(reader, plan) == [{"id": "p-2", "who": "Bob", "role": None}]


@pytest.mark.parametrize(
    "where, expected",
    [
        (Condition("name", "eq", "Ada"), ["p-1"]),
        (Condition("name", "neq", "Ada"), ["a-1", "p-2"]),
        (Condition("name", "gt", "Ada"), ["a-1", "p-2"]),
        (Condition("name", "gte", "Bob"), ["a-1", "p-2"]),
        (Condition("name", "lt", "Bob"), ["p-1"]),
        (Condition("name", "lte", "Bob"), ["p-1", "p-2"]),
        (Condition("name", "like", "%Bo%"), ["a-1", "p-2"]),
        (Condition("name", "ilike", "%bot"), ["a-1"]),
        (Condition("name", "match", "^B"), ["p-2"]),
        (Condition("name", "imatch", "^r"), ["a-1"]),
        (Condition("id", "in", ["p-1", "a-1", "nobody"]), ["a-1", "p-1"]),
        (Condition("id", "in", []), []),
        (Condition("role", "is", "null"), ["p-2"]),
        (Condition("role", "is", "not_null"), ["a-1", "p-1"]),
        (Condition("role", "isdistinct", "Lead"), ["a-1", "p-2"]),
        (Condition("name", "eq", ["Ada", "Bob"], quantifier="any"), ["p-1", "p-2"]),
        (Condition("name", "like", ["A%", "%Bot"], quantifier="any"), ["a-1", "p-1"]),
        (Condition("name", "neq", ["Ada", "Bob"], quantifier="all"), ["a-1"]),
        (Condition("role", "fts", "research"), ["a-1"]),
        (Condition("role", "plfts", "the research", language="english"), ["a-1"]),
        (Not(Condition("actor_type", "eq", "person")), ["a-1"]),
        (
            Or(
                (
                    Condition("id", "eq", "p-1"),
                    And((Condition("actor_type", "eq", "person"), Condition("role", "is", "null"))),
                )
            ),
            ["p-1", "p-2"],
        ),
        (Or(()), []),
        (And(()), ["a-1", "p-1", "p-2"]),
    ],
)
async def test_actor_filters(data: WriteService, reader: Reader, where: Any, expected: list[str]) -> None:
    assert await ids(reader, "actor", where) == expected


@pytest.mark.parametrize(
    "where, expected",
    [
        (Condition("member_ids", "cs", ["p-1"]), ["t-1"]),
        (Condition("member_ids", "cs", "{p-1,p-2}"), ["t-1"]),
        (Condition("member_ids", "cd", ["p-1", "p-2", "x"]), ["t-1"]),
        (Condition("member_ids", "ov", ["a-1", "x"]), ["t-2"]),
        (Condition("member_ids", "eq", "{p-2,p-1}"), ["t-1"]),
        (Condition("description", "is", "null"), ["t-1"]),
    ],
)
async def test_list_filters(data: WriteService, reader: Reader, where: Any, expected: list[str]) -> None:
    assert await ids(reader, "team", where) == expected


@pytest.mark.parametrize(
    "where, expected",
    [
        (Condition("timeframe", "gte", "2026-01-15", path=("start",)), ["g-2"]),
        (Condition("timeframe", "eq", "2026-06-30", path=("end",)), ["g-1"]),
        (Condition("timeframe", "is", "null", path=("end",)), ["g-2", "g-3"]),
        (Condition("timeframe", "is", "null"), ["g-3"]),
        (Condition("timeframe", "is", "null", path=("nonexistent",)), ["g-1", "g-2", "g-3"]),
        (Condition("parent_id", "is", "null"), ["g-1"]),
        (Condition("created_at", "gte", "2020-01-01"), ["g-1", "g-2", "g-3"]),
    ],
)
async def test_goal_story_filters(data: WriteService, reader: Reader, where: Any, expected: list[str]) -> None:
    assert await ids(reader, "goal_story", where) == expected


async def test_dates_compare_as_dates(data: WriteService, reader: Reader) -> None:
    between = And((Condition("date", "gte", "2026-05-02"), Condition("date", "lte", "2026-05-04")))
    assert await ids(reader, "team_checkin", between) == ["c-2", "c-3", "c-4"]
    assert await ids(reader, "team_checkin", Condition("blockers", "cs", ["waiting on review"])) == ["c-3"]
    assert await ids(reader, "goal_story_update", Condition("progress_percent", "gt", "30")) == ["u-2", "u-3"]


@pytest.mark.parametrize(
    "where, reason",
    [
        (Condition("colour", "eq", "red"), InvalidReason.UNKNOWN_FIELD),
        (Condition("date", "eq", "not-a-date"), InvalidReason.FORMAT),
        (Condition("progress_percent", "eq", "lots"), InvalidReason.FORMAT),
        (Condition("date", "like", "2026%"), InvalidReason.RULE),
        (Condition("title", "cs", ["x"]), InvalidReason.RULE),
        (Condition("title", "is", "maybe"), InvalidReason.RULE),
        (Condition("title", "match", "(unclosed"), InvalidReason.FORMAT),
        (Condition("title", "fts", "x", language="klingon"), InvalidReason.FORMAT),
        (Condition("title", "eq", "nul\x00"), InvalidReason.FORMAT),
    ],
)
async def test_bad_filters_are_invalid_input(
    data: WriteService, reader: Reader, where: Any, reason: InvalidReason
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await reader.json_array(ReadPlan("goal_story_update", where=where))
    assert caught.value.reason is reason


async def test_order_and_page(data: WriteService, reader: Reader) -> None:
    plan = ReadPlan(
        "team_checkin", order=(OrderTerm("date", descending=True),), limit=2, offset=1, columns=(Column("id", "id"),)
    )
    assert await read(reader, plan) == [{"id": "c-4"}, {"id": "c-3"}]
    assert await reader.count(plan) == 5
    by_role = ReadPlan(
        "actor", order=(OrderTerm("role", nulls_first=True), OrderTerm("id")), columns=(Column("id", "id"),)
    )
    assert [r["id"] for r in await read(reader, by_role)] == ["p-2", "p-1", "a-1"]
    by_start = ReadPlan(
        "goal_story",
        order=(OrderTerm("timeframe", path=("start",), descending=True, nulls_first=False),),
        columns=(Column("id", "id"),),
    )
    assert [r["id"] for r in await read(reader, by_start)] == ["g-2", "g-1", "g-3"]


async def test_paths_and_casts_in_columns(data: WriteService, reader: Reader) -> None:
    plan = ReadPlan(
        "goal_story",
        where=Condition("id", "eq", "g-1"),
        columns=(
            Column("start", "timeframe", path=("start",), path_as_text=True),
            Column("end", "timeframe", path=("end",)),
            Column("made", "created_at", cast="text"),
            Column("tf", "timeframe"),
        ),
    )
    row = (await read(reader, plan))[0]
    assert row["start"] == "2026-01-01" and row["end"] == "2026-06-30"
    assert isinstance(row["made"], str) and row["tf"] == {"start": "2026-01-01", "end": "2026-06-30"}
    with pytest.raises(InvalidInput):
        await reader.json_array(ReadPlan("actor", columns=(Column("x", "name", cast="regclass"),)))


def test_every_cast_the_plan_names_renders() -> None:
    """The REST planner accepts the casts `api.plan.CASTS` names; each must render to an SQL type."""
    for name in sorted(CASTS):
        for spelled in (name, name.upper()):
            plan = ReadPlan("actor", columns=(Column("x", "name", cast=spelled),))
            sql = str(rows_statement(plan).compile(dialect=postgresql.dialect()))
            assert "CAST(" in sql, (spelled, sql)


async def test_relations_in_both_directions(data: WriteService, reader: Reader) -> None:
    members = ReadPlan("actor", columns=(Column("name", "name"),))
    teams = await read(
        reader,
        ReadPlan(
            "team",
            order=(OrderTerm("id"),),
            columns=(Column("id", "id"),),
            embeds=(Embed("members", "members", members),),
        ),
    )
    # Array references keep their stored order.
    assert teams == [
        {"id": "t-1", "members": [{"name": "Bob"}, {"name": "Ada"}]},
        {"id": "t-2", "members": [{"name": "Research Bot"}]},
    ]

    latest = ReadPlan(
        "goal_story_update",
        order=(OrderTerm("date", descending=True),),
        limit=2,
        columns=(Column("title", "title"),),
        embeds=(Embed("by", "actor", ReadPlan("actor", columns=(Column("name", "name"),))),),
    )
    tree = await read(
        reader,
        ReadPlan(
            "goal_story",
            where=Condition("parent_id", "is", "null"),
            columns=(Column("id", "id"),),
            embeds=(
                Embed(
                    "children",
                    "children",
                    ReadPlan(
                        "goal_story",
                        order=(OrderTerm("id"),),
                        columns=(Column("id", "id"),),
                        embeds=(Embed("updates", "goal_story_updates", latest),),
                        counts=(Count("n", "goal_story_updates"),),
                    ),
                ),
                Embed("teams", "teams", ReadPlan("team", columns=(Column("name", "name"),))),
            ),
        ),
    )
    assert tree == [
        {
            "id": "g-1",
            "children": [
                {
                    "id": "g-2",
                    "n": 3,
                    "updates": [{"title": "Week 3", "by": {"name": "Ada"}}, {"title": "Week 2", "by": {"name": "Ada"}}],
                },
                {"id": "g-3", "n": 0, "updates": []},
            ],
            "teams": [{"name": "Backend"}, {"name": "Frontend"}],
        }
    ]

    actor = await read(
        reader,
        ReadPlan(
            "actor",
            where=Condition("id", "eq", "p-1"),
            columns=(Column("id", "id"),),
            embeds=(
                Embed("teams", "teams", ReadPlan("team", columns=(Column("id", "id"),))),
                Embed("goals", "goal_stories", ReadPlan("goal_story", columns=(Column("id", "id"),))),
                Embed(
                    "checkins",
                    "team_checkins",
                    ReadPlan(
                        "team_checkin",
                        where=Condition("blockers", "cs", ["waiting on review"]),
                        columns=(Column("id", "id"),),
                    ),
                ),
                Embed(
                    "events",
                    "coordination_events",
                    ReadPlan("coordination_event", limit=1, columns=(Column("type", "event_type"),)),
                ),
            ),
        ),
    )
    assert actor == [
        {
            "id": "p-1",
            "teams": [{"id": "t-1"}],
            "goals": [{"id": "g-1"}],
            "checkins": [{"id": "c-3"}],
            "events": [{"type": "team_checkin"}],
        }
    ]

    parent = await read(
        reader,
        ReadPlan(
            "goal_story",
            order=(OrderTerm("id"),),
            columns=(Column("id", "id"),),
            embeds=(Embed("parent", "parent", ReadPlan("goal_story", columns=(Column("title", "title"),))),),
        ),
    )
    assert parent == [
        {"id": "g-1", "parent": None},
        {"id": "g-2", "parent": {"title": "Launch"}},
        {"id": "g-3", "parent": {"title": "Launch"}},
    ]


async def test_inner_embeds_keep_only_rows_with_related_rows(data: WriteService, reader: Reader) -> None:
    plan = ReadPlan(
        "goal_story",
        columns=(Column("id", "id"),),
        embeds=(
            Embed("u", "goal_story_updates", ReadPlan("goal_story_update", columns=(Column("id", "id"),)), inner=True),
        ),
    )
    assert [r["id"] for r in await read(reader, plan)] == ["g-2"]


async def test_unknown_relation_is_invalid_input(data: WriteService, reader: Reader) -> None:
    with pytest.raises(InvalidInput) as caught:
        await reader.json_array(ReadPlan("actor", embeds=(Embed("x", "friends", ReadPlan("actor")),)))
    assert caught.value.reason is InvalidReason.UNKNOWN_RELATION


async def test_streaming_gives_the_same_rows_in_order(data: WriteService, reader: Reader) -> None:
    plan = ReadPlan("team_checkin", order=(OrderTerm("date", descending=True),))
    streamed = [json.loads(row) async for row in reader.stream(plan)]
    assert streamed == await read(reader, plan)


async def test_one_statement_whatever_the_number_of_rows(
    data: WriteService, reader: Reader, engine: AsyncEngine
) -> None:
    plan = ReadPlan(
        "goal_story",
        embeds=(
            Embed(
                "children",
                "children",
                ReadPlan(
                    "goal_story",
                    embeds=(
                        Embed(
                            "updates",
                            "goal_story_updates",
                            ReadPlan(
                                "goal_story_update", limit=3, embeds=(Embed("actor", "actor", ReadPlan("actor")),)
                            ),
                        ),
                    ),
                ),
            ),
            Embed("teams", "teams", ReadPlan("team", embeds=(Embed("members", "members", ReadPlan("actor")),))),
        ),
    )
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        await reader.json_array(plan)
        few = len(statements)
        await data.create(
            "goal_story",
            [{"id": f"extra-{i}", "title": "x", "parent_id": "g-1", "team_ids": ["t-1"]} for i in range(50)],
        )
        statements.clear()
        rows = await read(reader, plan)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert len(rows) == 53
    assert few == len(statements) == 1
