"""Statements the plan renders are cacheable by SQLAlchemy, and different shapes never share a compilation."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import InvalidInput
from api.plan import And, Column, Condition, Constant, Count, Embed, Match, Or, OrderTerm, ReadPlan, Related
from api.store.reads import Reader
from api.store.select import Statements, count_statement, rows_statement
from api.store.writes import WriteService

PLANS = [
    ReadPlan("actor"),
    ReadPlan(
        "actor",
        where=Condition("name", "ilike", "%a%"),
        order=(OrderTerm("name", descending=True),),
        limit=5,
        offset=1,
        columns=(Column("n", "name"), Column("kind", "actor_type", cast="text")),
    ),
    ReadPlan(
        "goal_story",
        columns=(Column("id", "id"), Column("start", "timeframe", path=("start",))),
        embeds=(
            Embed("kids", "children", ReadPlan("goal_story", columns=(Column("t", "title"),), limit=2)),
            Embed("team", "teams", ReadPlan("team")),
        ),
        counts=(Count("updates", "goal_story_updates", Condition("status", "eq", "on_track")),),
        matches=(Match("root", Condition("parent_id", "is", "null")),),
    ),
]


async def compilations(engine: AsyncEngine, statements: list[tuple[Any, dict[str, Any]]]) -> int:
    """How many compilations SQLAlchemy keeps for `statements` run in turn: one per cache key
    (a statement it cannot cache adds none). Counted in a cache of our own, given through the
    public `compiled_cache` execution option."""
    cache: dict[Any, Any] = {}
    async with engine.connect() as conn:
        cached = await conn.execution_options(compiled_cache=cache)
        for statement, parameters in statements:
            await cached.execute(statement, parameters)
    return len(cache)


def prepared(plan: ReadPlan) -> tuple[Any, dict[str, Any]]:
    statement, arguments = Statements().array(plan)
    return statement.statement, arguments


async def test_every_statement_is_cacheable_without_warnings(engine: AsyncEngine) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for plan in PLANS:
            for statement in (prepared(plan), (rows_statement(plan), {}), (count_statement(plan), {})):
                assert await compilations(engine, [statement]) == 1, statement


async def test_same_shape_shares_a_key_whatever_the_values(engine: AsyncEngine) -> None:
    one = ReadPlan("actor", where=Condition("name", "eq", "Ada"), columns=(Column("n", "name"),))
    other = ReadPlan("actor", where=Condition("name", "eq", "Bob"), columns=(Column("n", "name"),))
    assert await compilations(engine, [(rows_statement(one), {}), (rows_statement(other), {})]) == 1
    assert await compilations(engine, [prepared(one), prepared(other)]) == 1


async def test_different_keys_or_null_rules_never_share_a_key(engine: AsyncEngine) -> None:
    base = ReadPlan("actor", columns=(Column("n", "name"),))
    variants = [
        base,
        ReadPlan("actor", columns=(Column("name", "name"),)),
        ReadPlan("actor", columns=(Column("n", "role"),)),
        ReadPlan("actor", columns=(Column("n", "name"),), strip_nulls=True),
        ReadPlan("actor", columns=(Column("n", "name"), Column("r", "role"))),
        ReadPlan("actor", columns=(Column("r", "role"), Column("n", "name"))),
        ReadPlan(
            "actor",
            columns=(Column("n", "name"),),
            embeds=(Embed("t", "teams", ReadPlan("team", columns=(Column("a", "name"),))),),
        ),
        ReadPlan(
            "actor",
            columns=(Column("n", "name"),),
            embeds=(Embed("t", "teams", ReadPlan("team", columns=(Column("b", "name"),))),),
        ),
    ]
    assert await compilations(engine, [prepared(plan) for plan in variants]) == len(variants)
    assert await compilations(engine, [(rows_statement(plan), {}) for plan in variants]) == len(variants)


async def test_cached_statements_answer_with_their_own_keys(
    clean: None, writer: WriteService, reader: Reader, engine: AsyncEngine
) -> None:
    await writer.create("actor", [{"id": "p-1", "actor_type": "person", "name": "Ada", "role": "Lead"}])
    for _ in range(2):  # the second round runs from the compiled cache
        for key in ("a", "b", "c"):
            plan = ReadPlan("actor", columns=(Column(key, "name"),))
            assert json.loads(await reader.json_array(plan)) == [{key: "Ada"}]
        assert json.loads(await reader.json_array(ReadPlan("actor", columns=(Column("a", "role"),)))) == [{"a": "Lead"}]
        assert json.loads(
            await reader.json_array(ReadPlan("actor", columns=(Column("a", "timezone"),), strip_nulls=True))
        ) == [{}]


def test_the_statements_of_recent_shapes_are_reused_and_told_apart_by_value_type() -> None:
    statements = Statements()
    plan = ReadPlan("goal_story", embeds=(Embed("kids", "children", ReadPlan("goal_story", limit=2)),))
    assert statements.array(plan)[0] is statements.array(ReadPlan(**vars(plan)))[0]
    by_number, _ = statements.array(ReadPlan("goal_story_update", where=Condition("progress_percent", "eq", 1)))
    by_float, _ = statements.array(ReadPlan("goal_story_update", where=Condition("progress_percent", "eq", 1.0)))
    assert by_number is not by_float


def test_plans_that_differ_only_in_their_values_share_one_prepared_statement() -> None:
    statements = Statements()

    def plan(actor: str, team: str, after: str, ids: list[str]) -> ReadPlan:
        where = And(
            (
                Condition("actor_id", "eq", actor),
                Condition("date", "gte", after),
                Condition("id", "in", ids),
                Related("team", Condition("name", "ilike", team)),
            )
        )
        return ReadPlan("team_checkin", where=where, limit=5)

    first, own = statements.array(plan("p-1", "%core%", "2026-01-01", ["c-1", "c-2"]))
    again, values = statements.array(plan("p-2", "%ops%", "2026-02-01", ["c-3", "c-4"]))
    assert first is again
    assert sorted(map(str, own.values())) == sorted(["p-1", "%core%", "2026-01-01", "['c-1', 'c-2']"])
    # Each client value is a parameter, converted as the statement was built to take it.
    assert sorted(map(str, values.values())) == sorted(["p-2", "%ops%", "2026-02-01", "['c-3', 'c-4']"])
    longer, _ = statements.array(plan("p-2", "%ops%", "2026-02-01", ["c-3", "c-4", "c-5"]))
    assert longer is not first  # a list's length is part of the shape


def test_a_value_refused_by_a_shared_statement_is_refused_as_when_it_was_built() -> None:
    statements = Statements()
    shape = ReadPlan("actor", where=Condition("name", "eq", "Ada"))
    statements.array(shape)
    with pytest.raises(InvalidInput, match="NUL"):
        statements.array(ReadPlan("actor", where=Condition("name", "eq", "A\x00da")))


async def test_a_shared_statement_answers_each_plan_with_its_own_values(
    clean: None, writer: WriteService, reader: Reader
) -> None:
    await writer.create(
        "actor", [{"id": f"p-{n}", "actor_type": "person", "name": name} for n, name in enumerate(["Ada", "Bob", "Cy"])]
    )
    for name in ("Bob", "Ada", "Cy", "Nobody"):
        plan = ReadPlan(
            "actor",
            where=Or((Condition("name", "eq", name), Condition("name", "like", f"{name}*"))),
            columns=(Column("n", "name"),),
        )
        expected = [] if name == "Nobody" else [{"n": name}]
        assert json.loads(await reader.json_array(plan)) == expected


def test_values_outside_conditions_keep_shapes_apart_by_type() -> None:
    statements = Statements()
    plans = [
        ReadPlan("actor", columns=(Column("n", "name"),), constants=(Constant("k", value),)) for value in (1, 1.0, True)
    ]
    assert len({id(statements.array(plan)[0]) for plan in plans}) == 3
