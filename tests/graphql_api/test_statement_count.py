"""The number of SQL statements of a nested query depends on its shape, never on the number of rows."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.store.writes import WriteService
from tests.statements import statements

NESTED = """{ goalStories(first: 100, where: {parentId: {isNull: true}}) { totalCount
  aggregates { distinctCount { id } } nodes { id title
    parent { id }
    children { totalCount nodes { id updates { nodes { id actor { name } } } }
      latestUpdates { groupedAggregates(groupBy: [STATUS]) { keys distinctCount { id } } } }
    updates(first: 3, orderBy: [{field: DATE, direction: DESC}]) { aggregates { max { date } } nodes { title
      actor { name teams { nodes { name } } } } }
    latestUpdate { id goalStory { id } }
    teams { name members { name } }
    actors { name } } } }"""


async def _seed(engine: AsyncEngine, stories: int) -> None:
    """`stories` goal stories, half roots and half their children, two updates each, on teams with members."""
    writer = WriteService(engine)
    await writer.create("actor", [{"id": f"a-{i}", "actor_type": "person", "name": f"A{i}"} for i in range(10)])
    await writer.create(
        "team", [{"id": f"t-{i}", "name": f"T{i}", "member_ids": [f"a-{i}", f"a-{i + 3}"]} for i in range(3)]
    )
    roots = stories // 2 + stories % 2
    await writer.create(
        "goal_story",
        [
            {"id": f"g-{i}", "title": f"G{i}", "team_ids": [f"t-{i % 3}"], "actor_ids": [f"a-{i % 10}"]}
            for i in range(roots)
        ],
    )
    await writer.create(
        "goal_story", [{"id": f"h-{i}", "title": f"H{i}", "parent_id": f"g-{i}"} for i in range(stories - roots)]
    )
    story_ids = [f"g-{i}" for i in range(roots)] + [f"h-{i}" for i in range(stories - roots)]
    await writer.create(
        "goal_story_update",
        [
            {
                "actor_id": f"a-{(n + k) % 10}",
                "goal_story_id": story,
                "date": f"2026-05-0{k + 1}",
                "title": "u",
                "content": "c",
            }
            for n, story in enumerate(story_ids)
            for k in range(2)
        ],
    )


# The same query with a relation selected twice, which compiled execution leaves to the resolvers.
RESOLVED = NESTED.replace("parent { id }", "parent { id } parent { id }", 1)


async def _count(gql, engine: AsyncEngine, stories: int) -> tuple[int, dict]:
    await _seed(engine, stories)
    # The server's live feed reads new coordination events whenever writes announce them, at moments
    # of its own; the query under test reads no events, so those reads are not its own.
    async with statements(engine, excluding="coordination_events") as seen:
        data = await gql(NESTED)
    compiled = len(seen)
    async with statements(engine, excluding="coordination_events") as seen:
        assert await gql(RESOLVED) == data
    return (compiled, len(seen)), data


async def test_statement_count_does_not_grow_with_rows(gql, clean) -> None:
    small, small_data = await _count(gql, clean, 5)
    assert small_data["goalStories"]["totalCount"] == 3

    async with clean.begin() as conn:
        await conn.execute(
            text("TRUNCATE coordination_events, goal_story_updates, team_checkins, goal_stories, teams, actors")
        )
    large, large_data = await _count(gql, clean, 200)
    roots = large_data["goalStories"]["nodes"]
    assert len(roots) == 100 and all(len(r["children"]["nodes"]) == 1 for r in roots)
    assert all(len(r["updates"]["nodes"]) == 2 and r["teams"][0]["members"] for r in roots)
    assert all(len(r["children"]["nodes"][0]["updates"]["nodes"]) == 2 for r in roots)
    assert large_data["goalStories"]["aggregates"] == {"distinctCount": {"id": "100"}}
    assert all(r["updates"]["aggregates"] == {"max": {"date": "2026-05-02"}} for r in roots)
    assert all(
        r["children"]["latestUpdates"]["groupedAggregates"] == [{"keys": [None], "distinctCount": {"id": "1"}}]
        for r in roots
    )

    # Compiled: one statement for the whole tree, the root's totalCount and the aggregates included.
    assert small[0] == large[0] == 1
    # Resolvers: one statement per nested field of the query (plus each count asked for), whatever the number of rows:
    # goalStories, its totalCount, children, their totalCount, the children's updates, their actor, updates,
    # their actor, the actor's teams, latestUpdate, its goalStory, teams, their members, actors (parent costs
    # nothing: roots have none), and the three aggregates fields.
    assert small[1] == large[1] == 17
