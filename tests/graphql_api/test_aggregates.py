"""GraphQL aggregates (pg-aggregates' names) against SQL written here, on generated data with nulls, empty
groups and connections without rows; both ways of answering (compiled, resolvers) must agree with it."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest_asyncio
from graphql import FragmentDefinitionNode, OperationDefinitionNode, build_schema, parse
from graphql.execution.values import get_variable_values
from graphql_helpers import snapshot
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.config import Settings
from api.graphql.compiled import run
from api.graphql.connections import Limits
from api.graphql.context import Context
from api.graphql.cost import Costing
from api.graphql.schema import make_schema
from api.store.reads import Reader
from api.store.writes import WriteService
from tests.conftest import seeded

SETTINGS = Settings()
SCHEMA = make_schema(SETTINGS)
GRAPHQL = build_schema(str(SCHEMA))
LIMITS = Limits(max_page_size=SETTINGS.graphql_max_page_size, default_page_size=SETTINGS.graphql_default_page_size)
STATUSES = ["on_track", "at_risk", "off_track", "completed", "paused", None]
LATEST = "date DESC NULLS LAST, created_at DESC NULLS LAST, id DESC"


def _generated(seed: int) -> dict[str, list[dict[str, Any]]]:
    r = random.Random(seed)
    actors = [{"id": f"a-{i}", "actor_type": r.choice(["person", "agent"]), "name": f"Actor {i}"} for i in range(6)]
    teams = [
        {"id": f"t-{i}", "name": f"Team {i}", "member_ids": [a["id"] for a in r.sample(actors, k=r.randint(0, 4))]}
        for i in range(3)
    ]
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    roots = [
        {"id": f"r-{i}", "title": f"Root {i}", "created_at": (start + dt.timedelta(hours=i)).isoformat()}
        for i in range(4)
    ]
    # r-3 has no children at all; some children have no update.
    children = [
        {
            "id": f"c-{i:02d}",
            "title": r.choice(["Alpha", "Beta", "Gamma", "delta"]) + f" {i}",
            "parent_id": f"r-{r.randint(0, 2)}",
            "created_at": (start + dt.timedelta(days=i, minutes=r.randint(0, 600))).isoformat(),
        }
        for i in range(14)
    ]
    stories = roots + children
    updated = [s for s in stories if s["id"] not in ("c-00", "c-01", "r-3")]
    updates = []
    for i in range(90):
        day = dt.date(2026, 3, 1) + dt.timedelta(days=r.randint(0, 80))
        update: dict[str, Any] = {
            "id": f"u-{i:03d}",
            "actor_id": r.choice(actors)["id"],
            "goal_story_id": r.choice(updated)["id"],
            "date": day.isoformat(),
            "title": f"Update {i}",
            "content": "Where things stand",
            # Several updates of one story on one day: the latest is told by createdAt.
            "created_at": dt.datetime.combine(day, dt.time(r.choice([9, 9, 17]), r.randint(0, 59)), dt.UTC).isoformat(),
        }
        status = r.choice(STATUSES)
        if status is not None:
            update["status"] = status
        if r.random() < 0.8:
            update["progress_percent"] = r.randint(0, 100)
        updates.append(update)
    checkins = []
    seen = set()
    for i in range(40):
        actor, team = r.choice(actors)["id"], r.choice(teams)["id"]
        day = dt.date(2026, 5, 1) + dt.timedelta(days=r.randint(0, 27))
        if (actor, team, day) in seen:
            continue
        seen.add((actor, team, day))
        checkins.append(
            {
                "id": f"k-{i:02d}",
                "actor_id": actor,
                "team_id": team,
                "date": day.isoformat(),
                "created_at": dt.datetime.combine(day, dt.time(r.randint(0, 23)), dt.UTC).isoformat(),
            }
        )
    return {
        "actor": actors,
        "team": teams,
        "goal_story": stories,
        "team_checkin": checkins,
        "goal_story_update": updates,
    }


_seeded: dict[str, list[Any]] = {}


@pytest_asyncio.fixture(loop_scope="session")
async def generated(engine: AsyncEngine) -> AsyncEngine:
    """The generated world, seeded again only when the tables hold anything else."""
    if not _seeded or await snapshot(engine) != _seeded:
        await seeded(engine, _generated(seed=17))
        _seeded.clear()
        _seeded.update(await snapshot(engine))
    return engine


async def _sql(engine: AsyncEngine, statement: str, **values: Any) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        await conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
        return [tuple(row) for row in await conn.execute(text(statement), values)]


async def _answers(engine: AsyncEngine, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """The data of a query through both paths, which must agree (values, nulls, key order)."""
    variables = variables or {}
    context = Context(reader=Reader(engine), writer=WriteService(engine), limits=LIMITS, resolvers_only=True)
    resolved = await SCHEMA.execute(query, variable_values=variables, context_value=context)
    assert resolved.errors is None, resolved.errors
    document = parse(query)
    [operation] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    coerced = get_variable_values(GRAPHQL, operation.variable_definitions or (), variables)
    assert not isinstance(coerced, list), coerced
    compiled = await run(
        SCHEMA,
        operation,
        fragments,
        coerced,
        Context(reader=Reader(engine), writer=WriteService(engine), limits=LIMITS),
    )
    assert compiled == resolved.data and list(compiled) == list(resolved.data)
    return compiled


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


async def test_whole_connection_aggregates_honour_where(generated: AsyncEngine) -> None:
    data = await _answers(
        generated,
        """{ goalStoryUpdates(where: {date: {gte: "2026-04-01"}, status: {neq: PAUSED}}, first: 2) {
          totalCount nodes { id }
          aggregates { keys sum { progressPercent } average { progressPercent }
            min { progressPercent date createdAt } max { progressPercent date createdAt }
            distinctCount { id status goalStoryId actorId date }
            stddevSample { progressPercent } stddevPopulation { progressPercent }
            varianceSample { progressPercent } variancePopulation { progressPercent } } } }""",
    )
    [row] = await _sql(
        generated,
        """SELECT count(*), coalesce(sum(progress_percent), 0)::text, avg(progress_percent)::text,
             min(progress_percent), min(date), min(created_at), max(progress_percent), max(date), max(created_at),
             count(DISTINCT id)::text, count(DISTINCT status)::text, count(DISTINCT goal_story_id)::text,
             count(DISTINCT actor_id)::text, count(DISTINCT date)::text,
             stddev_samp(progress_percent)::text, stddev_pop(progress_percent)::text,
             var_samp(progress_percent)::text, var_pop(progress_percent)::text
           FROM goal_story_updates WHERE date >= '2026-04-01' AND status <> 'paused'""",
    )
    connection = data["goalStoryUpdates"]
    assert connection["totalCount"] == row[0] > 2 and len(connection["nodes"]) == 2
    aggregates = connection["aggregates"]
    assert aggregates["keys"] == []
    assert aggregates["sum"] == {"progressPercent": row[1]}
    assert aggregates["average"] == {"progressPercent": row[2]}
    assert aggregates["min"] == {"progressPercent": row[3], "date": row[4].isoformat(), "createdAt": row[5].isoformat()}
    assert aggregates["max"] == {"progressPercent": row[6], "date": row[7].isoformat(), "createdAt": row[8].isoformat()}
    assert aggregates["distinctCount"] == dict(
        zip(["id", "status", "goalStoryId", "actorId", "date"], row[9:14], strict=True)
    )
    assert aggregates["stddevSample"] == {"progressPercent": row[14]}
    assert aggregates["stddevPopulation"] == {"progressPercent": row[15]}
    assert aggregates["varianceSample"] == {"progressPercent": row[16]}
    assert aggregates["variancePopulation"] == {"progressPercent": row[17]}


async def test_aggregates_of_no_rows(generated: AsyncEngine) -> None:
    data = await _answers(
        generated,
        """{ goalStoryUpdates(where: {date: {lt: "2000-01-01"}}) { totalCount
            aggregates { keys sum { progressPercent } average { progressPercent } max { date }
              distinctCount { id } varianceSample { progressPercent } }
            groupedAggregates(groupBy: [STATUS]) { keys distinctCount { id } } }
          actors { aggregates { distinctCount { name actorType timezone } } } }""",
    )
    assert data["goalStoryUpdates"] == {
        "totalCount": 0,
        "aggregates": {
            "keys": [],
            "sum": {"progressPercent": "0"},
            "average": {"progressPercent": None},
            "max": {"date": None},
            "distinctCount": {"id": "0"},
            "varianceSample": {"progressPercent": None},
        },
        "groupedAggregates": [],
    }
    # A field every row leaves empty: no distinct value.
    assert data["actors"]["aggregates"]["distinctCount"] == {"name": "6", "actorType": "2", "timezone": "0"}


async def test_grouped_by_status_with_having(generated: AsyncEngine) -> None:
    query = """query Q($having: GoalStoryUpdateHavingInput) {
      goalStoryUpdates(where: {progressPercent: {gte: 10}}) {
        groupedAggregates(groupBy: [STATUS], having: $having) {
          keys distinctCount { id } average { progressPercent } max { date } sum { progressPercent } } } }"""
    expected = await _sql(
        generated,
        """SELECT upper(status), count(DISTINCT id)::text, avg(progress_percent)::text, max(date),
             coalesce(sum(progress_percent), 0)::text
           FROM goal_story_updates WHERE progress_percent >= 10
           GROUP BY status ORDER BY status NULLS LAST""",
    )
    data = await _answers(generated, query)
    groups = data["goalStoryUpdates"]["groupedAggregates"]
    assert [
        (
            g["keys"],
            g["distinctCount"]["id"],
            g["average"]["progressPercent"],
            g["max"]["date"],
            g["sum"]["progressPercent"],
        )
        for g in groups
    ] == [([status], count, average, latest.isoformat(), total) for status, count, average, latest, total in expected]
    # A null status is a group of its own, last.
    assert groups[-1]["keys"] == [None] and len(groups) == 6

    having = {
        "OR": [{"average": {"progressPercent": {"greaterThan": "50"}}}, {"distinctCount": {"id": {"lessThan": 5}}}]
    }
    kept = await _sql(
        generated,
        """SELECT upper(status) FROM goal_story_updates WHERE progress_percent >= 10
           GROUP BY status HAVING avg(progress_percent) > 50 OR count(DISTINCT id) < 5 ORDER BY status NULLS LAST""",
    )
    data = await _answers(generated, query, {"having": having})
    assert [g["keys"] for g in data["goalStoryUpdates"]["groupedAggregates"]] == [[k] for (k,) in kept]
    assert 0 < len(kept) < 6

    # AND of conditions on several aggregates, and a having that keeps no group.
    having = {"sum": {"progressPercent": {"greaterThanOrEqualTo": 200}}, "max": {"date": {"lessThan": "2026-05-15"}}}
    kept = await _sql(
        generated,
        """SELECT upper(status) FROM goal_story_updates WHERE progress_percent >= 10 GROUP BY status
           HAVING coalesce(sum(progress_percent), 0) >= 200 AND max(date) < '2026-05-15' ORDER BY status NULLS LAST""",
    )
    data = await _answers(generated, query, {"having": having})
    assert [g["keys"] for g in data["goalStoryUpdates"]["groupedAggregates"]] == [[k] for (k,) in kept]
    none = {"distinctCount": {"id": {"greaterThan": "1000000000000"}}}
    assert (await _answers(generated, query, {"having": none}))["goalStoryUpdates"]["groupedAggregates"] == []


async def test_grouped_by_several_keys_and_truncated_dates(generated: AsyncEngine) -> None:
    data = await _answers(
        generated,
        """{ goalStoryUpdates(where: {goalStory: {parentId: {eq: "r-0"}}}) {
             byMonth: groupedAggregates(groupBy: [GOAL_STORY_ID, DATE_TRUNCATED_TO_MONTH]) {
               keys sum { progressPercent } min { createdAt } }
             byDay: groupedAggregates(groupBy: [CREATED_AT_TRUNCATED_TO_DAY]) { keys distinctCount { id } }
             byWeek: groupedAggregates(groupBy: [DATE_TRUNCATED_TO_WEEK, PROGRESS_PERCENT]) { keys } }
           teamCheckins { groupedAggregates(groupBy: [TEAM_ID, DATE_TRUNCATED_TO_WEEK]) {
             keys distinctCount { actorId id } min { date } } } }""",
    )
    within = "FROM goal_story_updates u JOIN goal_stories g ON g.id = u.goal_story_id WHERE g.parent_id = 'r-0'"
    by_month = await _sql(
        generated,
        f"""SELECT u.goal_story_id, date_trunc('month', u.date)::date::text, coalesce(sum(progress_percent), 0)::text,
              min(u.created_at) {within} GROUP BY 1, 2 ORDER BY 1, 2""",
    )
    assert [
        (g["keys"], g["sum"]["progressPercent"], g["min"]["createdAt"]) for g in data["goalStoryUpdates"]["byMonth"]
    ] == [([story, month], total, first.isoformat()) for story, month, total, first in by_month]
    by_day = await _sql(
        generated,
        f"SELECT date_trunc('day', u.created_at), count(DISTINCT u.id)::text {within} GROUP BY 1 ORDER BY 1",
    )
    assert [(g["keys"], g["distinctCount"]["id"]) for g in data["goalStoryUpdates"]["byDay"]] == [
        ([day.isoformat()], count) for day, count in by_day
    ]
    by_week = await _sql(
        generated,
        f"""SELECT date_trunc('week', u.date)::date::text, progress_percent::text {within}
            GROUP BY 1, 2 ORDER BY 1, 2 NULLS LAST""",
    )
    assert [g["keys"] for g in data["goalStoryUpdates"]["byWeek"]] == [list(row) for row in by_week]
    assert any(row[1] is None for row in by_week)
    checkins = await _sql(
        generated,
        """SELECT team_id, date_trunc('week', date)::date::text, count(DISTINCT actor_id)::text, count(*)::text,
             min(date) FROM team_checkins GROUP BY 1, 2 ORDER BY 1, 2""",
    )
    assert [
        (g["keys"], g["distinctCount"]["actorId"], g["distinctCount"]["id"], g["min"]["date"])
        for g in data["teamCheckins"]["groupedAggregates"]
    ] == [([team, week], actors, count, first.isoformat()) for team, week, actors, count, first in checkins]


async def test_nested_connections_and_latest_updates(generated: AsyncEngine) -> None:
    """A goal's sub-goals: their number, and the progress and status of each one's latest update."""
    data = await _answers(
        generated,
        """{ goalStories(where: {parentId: {isNull: true}}, orderBy: [{field: ID}]) { nodes { id
             children(first: 1) { totalCount aggregates { distinctCount { id } max { createdAt } }
               latestUpdates {
                 aggregates { average { progressPercent } min { progressPercent } distinctCount { goalStoryId } }
                 groupedAggregates(groupBy: [STATUS]) { keys distinctCount { goalStoryId } } } }
             named: children(where: {title: {ilike: "%a%"}}) { aggregates { distinctCount { id } } } } }
           all: goalStories { latestUpdates { aggregates { max { date } distinctCount { id } } } } }""",
    )
    latest = f"""(SELECT DISTINCT ON (goal_story_id) * FROM goal_story_updates ORDER BY goal_story_id, {LATEST})"""
    children = dict(
        (parent, (count, newest))
        for parent, count, newest in await _sql(
            generated, "SELECT parent_id, count(*)::text, max(created_at) FROM goal_stories GROUP BY parent_id"
        )
    )
    named = dict(
        await _sql(
            generated,
            "SELECT parent_id, count(*)::text FROM goal_stories WHERE title ILIKE '%a%' GROUP BY parent_id",
        )
    )
    progress = {
        parent: (average, least, stories)
        for parent, average, least, stories in await _sql(
            generated,
            f"""SELECT g.parent_id, avg(l.progress_percent)::text, min(l.progress_percent),
                  count(DISTINCT l.goal_story_id)::text
                FROM goal_stories g JOIN {latest} l ON l.goal_story_id = g.id GROUP BY g.parent_id""",
        )
    }
    statuses: dict[str, list[tuple[Any, ...]]] = {}
    for parent, status, stories in await _sql(
        generated,
        f"""SELECT g.parent_id, upper(l.status), count(DISTINCT l.goal_story_id)::text
            FROM goal_stories g JOIN {latest} l ON l.goal_story_id = g.id
            GROUP BY g.parent_id, l.status ORDER BY g.parent_id, l.status NULLS LAST""",
    ):
        statuses.setdefault(parent, []).append(([status], stories))
    nodes = data["goalStories"]["nodes"]
    assert [n["id"] for n in nodes] == ["r-0", "r-1", "r-2", "r-3"]
    for node in nodes:
        count, newest = children.get(node["id"], ("0", None))
        assert node["children"]["totalCount"] == int(count)
        assert node["children"]["aggregates"] == {
            "distinctCount": {"id": count},
            "max": {"createdAt": newest.isoformat() if newest else None},
        }
        assert node["named"]["aggregates"]["distinctCount"]["id"] == named.get(node["id"], "0")
        average, least, stories = progress.get(node["id"], (None, None, "0"))
        assert node["children"]["latestUpdates"]["aggregates"] == {
            "average": {"progressPercent": average},
            "min": {"progressPercent": least},
            "distinctCount": {"goalStoryId": stories},
        }
        groups = node["children"]["latestUpdates"]["groupedAggregates"]
        assert [(g["keys"], g["distinctCount"]["goalStoryId"]) for g in groups] == statuses.get(node["id"], [])
    # r-3 has no children: no rows, no groups.
    assert nodes[3]["children"]["latestUpdates"]["groupedAggregates"] == []
    [(latest_date, stories)] = await _sql(generated, f"SELECT max(date), count(*)::text FROM {latest} l")
    assert data["all"]["latestUpdates"]["aggregates"] == {
        "max": {"date": latest_date.isoformat()},
        "distinctCount": {"id": stories},
    }


async def test_over_http_and_its_errors(generated: AsyncEngine, gql: Any) -> None:
    data = await gql(
        """{ coordinationEvents { groupedAggregates(groupBy: [EVENT_TYPE]) { keys distinctCount { referenceId } } } }"""
    )
    expected = await _sql(
        generated,
        """SELECT upper(event_type), count(DISTINCT reference_id)::text FROM coordination_events
           GROUP BY 1 ORDER BY 1""",
    )
    assert [
        (g["keys"], g["distinctCount"]["referenceId"]) for g in data["coordinationEvents"]["groupedAggregates"]
    ] == [([kind], count) for kind, count in expected]
    # having needs a key to group by; a BigInt must be an integer; sum applies to numbers only.
    having = "having: {sum: {progressPercent: {equalTo: 1}}}"
    query = f"{{ goalStoryUpdates {{ groupedAggregates(groupBy: [], {having}) {{ keys }} }} }}"
    assert await gql.code(query) == "BAD_USER_INPUT"
    having = 'having: {distinctCount: {id: {equalTo: "x"}}}'
    errors = await gql.errors(f"{{ goalStoryUpdates {{ groupedAggregates(groupBy: [STATUS], {having}) {{ keys }} }} }}")
    assert "BigInt" in errors[0]["message"]
    # Actors have no number to add up: no sum.
    assert "Cannot query field 'sum'" in (await gql.errors("{ actors { aggregates { sum { name } } } }"))[0]["message"]


def _cost(document: str) -> int:
    operation = parse(document).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return Costing(GRAPHQL, {}, {}, LIMITS).operation(operation).cost


def test_aggregates_are_counted_by_the_cost_limit() -> None:
    """An aggregate reads every matching row whatever the page: it counts as a page of the maximum size."""
    size = LIMITS.max_page_size
    assert _cost("{ goalStoryUpdates(first: 1) { aggregates { sum { progressPercent } } } }") == 1 + 1 + size * 2
    grouped = "groupedAggregates(groupBy: [STATUS]) { keys average { progressPercent } }"
    assert _cost(f"{{ goalStoryUpdates(first: 1) {{ {grouped} }} }}") == 1 + 1 + size * 3
    # Under a connection of 7 goal stories: once per story.
    nested = f"{{ goalStories(first: 7) {{ nodes {{ updates(first: 1) {{ {grouped} }} }} }} }}"
    assert _cost(nested) == 1 + 1 + 7 * (1 + 1 + size * 3)
    latest = "{ goalStories(first: 1) { latestUpdates { aggregates { max { date } } } } }"
    assert _cost(latest) == 1 + 1 + 1 + size * 2


async def test_a_costly_aggregate_is_refused(gql: Any) -> None:
    # 100 stories x 100 children x 5 aggregates of a page each: past the default limit of 5,000,000.
    fields = " ".join(f"a{i}: updates(first: 1) {{ aggregates {{ sum {{ progressPercent }} }} }}" for i in range(5))
    children = f"children(first: 100) {{ nodes {{ {fields} }} }}"
    message = (await gql.errors(f"{{ goalStories(first: 100) {{ nodes {{ {children} }} }} }}"))[0]["message"]
    assert "costs" in message and "COCO_GRAPHQL_MAX_COST" in message
