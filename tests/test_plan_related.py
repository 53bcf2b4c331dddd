"""The `Related` filter (some related row matches) and `Match` output keys of the query plan."""

from __future__ import annotations

import json

from api.plan import Column, Condition, Match, Not, OrderTerm, ReadPlan, Related
from api.store.reads import Reader
from api.store.writes import WriteService


async def story_world(writer: WriteService) -> None:
    await writer.create(
        "actor",
        [{"id": "a-1", "actor_type": "person", "name": "Ada"}, {"id": "a-2", "actor_type": "agent", "name": "Bot"}],
    )
    await writer.create(
        "team",
        [
            {"id": "t-1", "name": "Red", "member_ids": ["a-1"]},
            {"id": "t-2", "name": "Blue", "member_ids": ["a-2", "a-1"]},
        ],
    )
    await writer.create(
        "goal_story",
        [
            {"id": "g-root", "title": "Root", "team_ids": ["t-1"]},
            {"id": "g-child", "title": "Child", "parent_id": "g-root", "team_ids": ["t-2"]},
            {"id": "g-lone", "title": "Lone"},
        ],
    )
    await writer.create(
        "goal_story_update",
        [{"actor_id": "a-2", "goal_story_id": "g-child", "date": "2026-05-22", "title": "t", "content": "c"}],
    )


async def ids(reader: Reader, entity: str, where: object) -> list[str]:
    plan = ReadPlan(entity, where=where, order=(OrderTerm("id"),), columns=(Column("id", "id"),))  # type: ignore[arg-type]
    return [row["id"] for row in json.loads(await reader.json_array(plan))]


async def test_related_follows_every_kind_of_relation(writer: WriteService, reader: Reader) -> None:
    await story_world(writer)
    # TO_MANY, to the same table (the inner table is aliased, so it correlates to the outer row).
    assert await ids(reader, "goal_story", Related("children", Condition("title", "eq", "Child"))) == ["g-root"]
    # TO_ONE to the same table, and with no condition: "has a parent".
    assert await ids(reader, "goal_story", Related("parent")) == ["g-child"]
    # LIST_TO_MANY: a listed team is named Blue.
    assert await ids(reader, "goal_story", Related("teams", Condition("name", "eq", "Blue"))) == ["g-child"]
    # LIST_REVERSE: teams listing the actor.
    assert await ids(reader, "actor", Related("teams", Condition("name", "eq", "Blue"))) == ["a-1", "a-2"]
    # Nested and negated.
    assert await ids(reader, "goal_story", Not(Related("goal_story_updates"))) == ["g-lone", "g-root"]
    assert await ids(
        reader, "goal_story", Related("children", Related("goal_story_updates", Condition("actor_id", "eq", "a-2")))
    ) == ["g-root"]


async def test_match_keys_say_which_rows_match(writer: WriteService, reader: Reader) -> None:
    await story_world(writer)
    plan = ReadPlan(
        "goal_story",
        order=(OrderTerm("id"),),
        columns=(Column("id", "id"),),
        matches=(
            Match("updated", Related("goal_story_updates")),
            Match("titled", Condition("parent_id", "eq", "g-root")),
        ),
    )
    assert json.loads(await reader.json_array(plan)) == [
        {"id": "g-child", "updated": True, "titled": True},
        {"id": "g-lone", "updated": False, "titled": False},  # null parent_id: false, not null
        {"id": "g-root", "updated": False, "titled": False},
    ]


async def test_the_write_service_takes_related_filters_too(writer: WriteService, reader: Reader) -> None:
    await story_world(writer)
    result = await writer.update("goal_story", Related("teams", Condition("name", "eq", "Red")), {"description": "red"})
    assert [row["id"] for row in result.rows] == ["g-root"]
    assert await ids(reader, "goal_story", Condition("description", "eq", "red")) == ["g-root"]
