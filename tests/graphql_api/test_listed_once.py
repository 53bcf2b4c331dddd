"""Id-list relations (a goal's `teams`, a team's `members`) rendered once per statement (api/store/select.py,
`_listed_once`): the compiled path answers what the resolvers answer when lists repeat an id, name a row that
is gone, or name rows the caller's scope may not see, and when the same row is listed by many parents."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse
from graphql.execution.values import get_variable_values
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from api.edge.auth import Caller, current_caller
from api.graphql.compiled import compile_operation
from api.store.select import bundle_statement
from tests.conftest import seeded
from tests.graphql_api.test_compiled import GRAPHQL, LIMITS, SCHEMA, _compiled, _first_difference, _resolved
from tests.scope.conftest import ACCESS, token

ACTORS = [{"id": f"a-{i}", "actor_type": "person", "name": f"Person {i}"} for i in range(1, 7)]
TEAMS = [
    {"id": "t-1", "name": "One", "member_ids": ["a-1", "a-2"]},
    {"id": "t-2", "name": "Two", "member_ids": ["a-3"]},
    {"id": "t-3", "name": "Three", "member_ids": ["a-4", "a-5"]},
    {"id": "t-4", "name": "Four"},
]
GOALS = [
    {"id": "g-1", "title": "Root", "team_ids": ["t-1"]},
    {"id": "g-2", "title": "Child A", "parent_id": "g-1", "team_ids": ["t-1", "t-2"]},
    {"id": "g-3", "title": "Child B", "parent_id": "g-1", "team_ids": ["t-3"]},
    {"id": "g-4", "title": "Other root", "team_ids": ["t-2", "t-3"]},
    {"id": "g-5", "title": "Child C", "parent_id": "g-4"},
]
# What the write service would refuse, written as an import or a deleted row leaves it: an id listed twice,
# an id of no row, a list that is empty.
LISTS = [
    ("goal_stories", "team_ids", "g-2", ["t-1", "t-2", "t-1", "t-gone"]),
    ("goal_stories", "team_ids", "g-5", []),
    ("teams", "member_ids", "t-1", ["a-2", "a-1", "a-2", "a-gone"]),
    ("teams", "member_ids", "t-3", ["a-6", "a-4"]),
]
QUERIES = [
    "{ goalStories { nodes { title teams { id name members { id name } } children { nodes { title teams"
    " { name members { name } } } } } } }",
    "{ goalStories(first: 2) { nodes { id teams { name } actors { name } } } }",
    '{ goalStory(id: "g-2") { teams { id members { name } } parent { teams { name } } } }',
    "{ teams { nodes { id members { id name } } } }",
    "{ goalStories(where: { parentId: { isNull: true } }) { nodes { children { nodes { id teams { id members"
    " { id } } } } } } }",
]
# A caller who sees everything, one who sees a team listed beside others, one who sees none of them.
SCOPES: list[tuple[list[str] | None, str | None]] = [(None, None), (["t-1"], None), (["t-3"], "a-2"), ([], None)]


@contextmanager
def as_caller(teams: list[str] | None, actor: str | None) -> Iterator[None]:
    handle = current_caller.set(Caller(ACCESS.authenticate(f"Bearer {token(teams, actor=actor)}")))
    try:
        yield
    finally:
        current_caller.reset(handle)


@pytest.fixture
async def lists(clean: AsyncEngine) -> AsyncEngine:
    await seeded(clean, {"actor": ACTORS, "team": TEAMS, "goal_story": GOALS})
    async with clean.begin() as conn:
        # Without the triggers that check the lists' ids.
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table, column, id, ids in LISTS:
            await conn.execute(text(f"UPDATE {table} SET {column} = :ids WHERE id = :id"), {"ids": ids, "id": id})
    return clean


def _statement(query: str) -> str:
    [operation] = [d for d in parse(query).definitions if isinstance(d, OperationDefinitionNode)]
    variables = get_variable_values(GRAPHQL, operation.variable_definitions or (), {})
    assert not isinstance(variables, list)
    plan = compile_operation(SCHEMA, operation, {}, variables, LIMITS)
    return str(bundle_statement(plan).compile(dialect=dialect()))


def test_the_nested_lists_are_rendered_once_per_statement() -> None:
    # The goals' teams once per statement, their members per team (see `_listed_once`): one set for the
    # roots' teams, one for the children's.
    assert _statement(QUERIES[0]).count("jsonb_object_agg") == 2
    assert _statement(QUERIES[3]).count("jsonb_object_agg") == 1  # the members of the top level's teams


async def test_compiled_answers_are_the_resolvers_with_repeats_gaps_and_scopes(lists: AsyncEngine) -> None:
    for teams, actor in SCOPES:
        with as_caller(teams, actor):
            for query in QUERIES:
                resolved = await _resolved(lists, query, {})
                assert resolved.errors is None, (query, resolved.errors)
                compiled: Any = await _compiled(lists, query, {})
                assert _first_difference(compiled, resolved.data) is None, (
                    teams,
                    query,
                    _first_difference(compiled, resolved.data),
                )
    with as_caller(None, None):
        data = await _resolved(lists, QUERIES[2], {})
    # The repeats kept, the gone left out, in list order.
    assert [t["id"] for t in data.data["goalStory"]["teams"]] == ["t-1", "t-2", "t-1"]
    assert [m["name"] for m in data.data["goalStory"]["teams"][0]["members"]] == ["Person 2", "Person 1", "Person 2"]
    with as_caller(["t-1"], None):
        scoped = await _compiled(lists, QUERIES[0], {})
    shown = {t["id"] for g in scoped["goalStories"]["nodes"] for t in g["teams"]}
    assert shown == {"t-1"}
