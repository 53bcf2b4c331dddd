"""REST aggregates and spreads against SQL written here, independently, on generated data.

The data has what aggregates get wrong: groups with no rows (goal stories without updates, teams
without members), null values and null group keys, ties. Each request's answer is compared with what
a plain SQL statement (GROUP BY, LEFT JOIN, json_agg) over the same tables returns.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.entities import GOAL_STORY_STATUSES
from tests.statements import statements

DATES = ["2026-05-01", "2026-05-04", "2026-05-05", "2026-05-06", "2026-05-07", "2026-05-08"]


def _quoted(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "ARRAY[" + ",".join(_quoted(v) for v in value) + "]::text[]"
    return "'" + str(value).replace("'", "''") + "'"


@pytest_asyncio.fixture(loop_scope="session")
async def generated(clean: AsyncEngine) -> dict[str, Any]:
    """Actors, teams (one empty), goal stories (some without updates or timeframe) and updates with nulls."""
    rng = random.Random(17)
    actors = [
        ("p-1", "person", "Quinn Reed", "Product Manager", "America/Chicago"),
        ("p-2", "person", "Ada Lovelace", "Engineer", "Europe/London"),
        ("p-3", "person", "Grace Hopper", None, "Pacific/Auckland"),
        ("p-4", "person", "Linus Pauling", "Engineer", None),
        ("a-1", "agent", "Research Bot", "Compiles research", "UTC"),
        ("a-2", "agent", "Idle Bot", None, None),
    ]
    teams = [
        ("t-1", "Product", ["p-1", "a-1", "p-3"]),
        ("t-2", "Engineering", ["p-2", "p-1", "p-4", "a-2"]),
        ("t-3", "Empty", []),
    ]
    stories = [
        ("g-1", "Improve onboarding", None, "2026-01-06", "2026-03-31"),
        ("g-2", "Faster signup", "g-1", "2026-02-01", "2026-02-28"),
        ("g-3", "Docs refresh", "g-1", "2026-02-01", None),
        ("g-4", "Quiet goal", None, None, None),
        ("g-5", "Pricing page", "g-2", "2026-03-01", "2026-03-31"),
        ("g-6", "Another quiet goal", "g-2", None, None),
    ]
    statuses = [*GOAL_STORY_STATUSES, None]
    updates = []
    for i in range(48):
        story = rng.choice(["g-1", "g-1", "g-2", "g-3", "g-5"])
        progress = rng.choice([None, *range(0, 101, 5)])
        updates.append(
            (
                f"u-{i:02d}",
                rng.choice([a[0] for a in actors[:5]]),
                story,
                rng.choice(DATES),
                f"Update {i % 7}",
                "c",
                rng.choice(statuses),
                progress,
                f"2026-05-{1 + i % 9:02d}T{(i * 5) % 24:02d}:30:00Z",
            )
        )
    statements = [
        "INSERT INTO actors (id, actor_type, name, role, timezone) VALUES "
        + ",".join("(" + ",".join(map(_quoted, a)) + ")" for a in actors),
        "INSERT INTO teams (id, name, member_ids) VALUES "
        + ",".join("(" + ",".join(map(_quoted, t)) + ")" for t in teams),
        "INSERT INTO goal_stories (id, title, parent_id, timeframe_start, timeframe_end, created_at) VALUES "
        + ",".join(
            f"({_quoted(s[0])},{_quoted(s[1])},{_quoted(s[2])},{_quoted(s[3])}::date,{_quoted(s[4])}::date,"
            f"'2026-01-0{1 + n}T09:00:00Z')"
            for n, s in enumerate(stories)
        ),
        "INSERT INTO goal_story_updates (id, actor_id, goal_story_id, date, title, content, status,"
        " progress_percent, created_at) VALUES "
        + ",".join(
            "("
            + ",".join(map(_quoted, u[:3]))
            + f",{_quoted(u[3])}::date,"
            + ",".join(map(_quoted, u[4:8]))
            + f",{_quoted(u[8])}::timestamptz)"
            for u in updates
        ),
    ]
    async with clean.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))
    return {"updates": updates}


async def _sql(engine: AsyncEngine, query: str, timezone: str | None = None) -> Any:
    """The rows of `query` as JSON (PostgreSQL's own rendering of each value), parsed as the answers are."""
    async with engine.connect() as conn:
        if timezone:
            await conn.execute(text(f"SET TIME ZONE '{timezone}'"))
        found = (await conn.execute(text(f"SELECT coalesce(json_agg(q), '[]')::text FROM ({query}) q"))).scalar_one()
        if timezone:
            await conn.execute(text("RESET TIME ZONE"))
    return json.loads(found, parse_float=Decimal)


def _groups(value: Any) -> Any:
    """Lists of objects (groups) in a canonical order; lists of values (a spread's arrays) as they are."""
    if isinstance(value, dict):
        return {k: _groups(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_groups(v) for v in value]
        if items and all(isinstance(v, dict) for v in items):
            return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, default=str))
        return items
    return value


UPDATE_AGGREGATES = (
    "count(),known:progress_percent.count(),progress_percent.sum(),progress_percent.avg(),"
    "progress_percent.min(),progress_percent.max(),first:date.min(),last:date.max(),latest:created_at.max()"
)
UPDATE_AGGREGATES_SQL = (
    "count(*) AS count, count(progress_percent) AS known, sum(progress_percent) AS sum, "
    "avg(progress_percent) AS avg, min(progress_percent) AS min, max(progress_percent) AS max, "
    "min(date) AS first, max(date) AS last, max(created_at) AS latest"
)

# (request, independent SQL, whether the order of the rows is the request's to keep)
CASES: list[tuple[str, str, bool]] = [
    (
        f"/goal_story_updates?select=status,{UPDATE_AGGREGATES}",
        f"SELECT status, {UPDATE_AGGREGATES_SQL} FROM goal_story_updates GROUP BY status",
        False,
    ),
    (
        f"/goal_story_updates?select={UPDATE_AGGREGATES}",
        f"SELECT {UPDATE_AGGREGATES_SQL} FROM goal_story_updates",
        False,
    ),
    (
        f"/goal_story_updates?select=status,actor_id,{UPDATE_AGGREGATES}&date=gte.2026-05-05&status=not.is.null",
        f"SELECT status, actor_id, {UPDATE_AGGREGATES_SQL} FROM goal_story_updates"
        " WHERE date >= '2026-05-05' AND status IS NOT NULL GROUP BY status, actor_id",
        False,
    ),
    # Filters that leave no row: one row of aggregates without keys, none with keys.
    (
        f"/goal_story_updates?select={UPDATE_AGGREGATES}&progress_percent=gt.1000",
        f"SELECT {UPDATE_AGGREGATES_SQL} FROM goal_story_updates WHERE progress_percent > 1000",
        False,
    ),
    (
        f"/goal_story_updates?select=status,{UPDATE_AGGREGATES}&progress_percent=gt.1000",
        f"SELECT status, {UPDATE_AGGREGATES_SQL} FROM goal_story_updates WHERE progress_percent > 1000 GROUP BY status",
        False,
    ),
    # Only nulls in a group: count 0, the others null.
    (
        "/goal_story_updates?select=status,progress_percent.sum(),progress_percent.avg(),n:progress_percent.count()"
        "&progress_percent=is.null",
        "SELECT status, sum(progress_percent) AS sum, avg(progress_percent) AS avg, count(progress_percent) AS n"
        " FROM goal_story_updates WHERE progress_percent IS NULL GROUP BY status",
        False,
    ),
    # Order, limit and offset apply to the groups; casts before and after the aggregate.
    (
        "/goal_story_updates?select=goal_story_id,date,n:count(),progress_percent.avg()::int,"
        "total:progress_percent::numeric.sum()::text&order=goal_story_id,date.desc&limit=5&offset=2",
        "SELECT goal_story_id, date, count(*) AS n, avg(progress_percent)::int AS avg,"
        " sum(progress_percent::numeric)::text AS total FROM goal_story_updates"
        " GROUP BY goal_story_id, date ORDER BY goal_story_id, date DESC LIMIT 5 OFFSET 2",
        True,
    ),
    (
        "/goal_story_updates?select=status,count()&order=status.desc.nullslast",
        "SELECT status, count(*) AS count FROM goal_story_updates GROUP BY status ORDER BY status DESC NULLS LAST",
        True,
    ),
    # Ordered by a related row's column that a spread groups by (order=actor(name)), as PostgREST orders.
    (
        "/goal_story_updates?select=status,n:count(),...actor(name)&order=actor(name).desc,status.nullsfirst",
        "SELECT u.status, count(*) AS n, a.name FROM goal_story_updates u JOIN actors a ON a.id = u.actor_id"
        " GROUP BY u.status, a.name ORDER BY a.name DESC, u.status NULLS FIRST",
        True,
    ),
    # A cast field groups by the field itself (PostgREST's GROUP BY of a field without an alias): it orders.
    (
        "/goal_story_updates?select=date::text,n:count(),...actor(name)&order=date.desc,actor(name)",
        "SELECT u.date::text AS date, count(*) AS n, a.name FROM goal_story_updates u JOIN actors a"
        " ON a.id = u.actor_id GROUP BY u.date, a.name ORDER BY u.date DESC, a.name",
        True,
    ),
    # Every column grouped by (the star).
    (
        "/actors?select=*,count()",
        "SELECT id, actor_type, name, role, timezone, count(*) AS count FROM actors"
        " GROUP BY id, actor_type, name, role, timezone",
        False,
    ),
    # JSON paths into the timeframe, grouped by and aggregated (cast first).
    (
        "/goal_stories?select=timeframe->>start,count(),last:timeframe->>end::date.max()",
        "SELECT timeframe_start::text AS start, count(*) AS count, max(timeframe_end) AS last"
        " FROM goal_stories GROUP BY timeframe_start",
        False,
    ),
    # Aggregates inside an embed: per parent row, empty groups as [] (with keys) or one row (without).
    (
        "/goal_stories?select=id,goal_story_updates(status,count(),progress_percent.max())",
        "SELECT g.id, coalesce((SELECT json_agg(x) FROM (SELECT u.status, count(*) AS count,"
        " max(u.progress_percent) AS max FROM goal_story_updates u WHERE u.goal_story_id = g.id"
        " GROUP BY u.status) x), '[]') AS goal_story_updates FROM goal_stories g",
        False,
    ),
    (
        "/goal_stories?select=id,goal_story_updates(count(),progress_percent.avg())",
        "SELECT g.id, json_build_array(json_build_object('count', count(u.id), 'avg', avg(u.progress_percent)))"
        " AS goal_story_updates FROM goal_stories g LEFT JOIN goal_story_updates u ON u.goal_story_id = g.id"
        " GROUP BY g.id",
        False,
    ),
    # !inner on an embed with aggregates and keys keeps the parents that have a group.
    (
        "/goal_stories?select=id,goal_story_updates!inner(status,count())&goal_story_updates.status=eq.paused",
        "SELECT g.id, (SELECT json_agg(x) FROM (SELECT u.status, count(*) AS count FROM goal_story_updates u"
        " WHERE u.goal_story_id = g.id AND u.status = 'paused' GROUP BY u.status) x) AS goal_story_updates"
        " FROM goal_stories g WHERE EXISTS (SELECT 1 FROM goal_story_updates u WHERE u.goal_story_id = g.id"
        " AND u.status = 'paused')",
        False,
    ),
    # Grouped by an embedded row, and by a spread's columns.
    (
        "/goal_story_updates?select=progress_percent.sum(),actor(name)",
        "SELECT sum(u.progress_percent) AS sum, json_build_object('name', a.name) AS actor"
        " FROM goal_story_updates u JOIN actors a ON a.id = u.actor_id GROUP BY a.name",
        False,
    ),
    (
        "/goal_story_updates?select=progress_percent.sum(),...actor(name)",
        "SELECT sum(u.progress_percent) AS sum, a.name FROM goal_story_updates u JOIN actors a ON a.id = u.actor_id"
        " GROUP BY a.name",
        False,
    ),
    # Aggregates in a to-one spread are the parent level's (hoisted), over the related values.
    (
        "/goal_story_updates?select=status,...actor(actor_type,name.min(),n:count())",
        "SELECT u.status, a.actor_type, min(a.name) AS min, count(a.id) AS n FROM goal_story_updates u"
        " LEFT JOIN actors a ON a.id = u.actor_id GROUP BY u.status, a.actor_type",
        False,
    ),
    (
        "/goal_stories?select=...parent(title,n:count())",
        "SELECT p.title, count(p.id) AS n FROM goal_stories g LEFT JOIN goal_stories p ON p.id = g.parent_id"
        " GROUP BY p.title",
        False,
    ),
    (
        "/goal_stories?select=n:count(),...parent!inner(title,...parent(grand:title))",
        "SELECT count(*) AS n, p.title, gp.title AS grand FROM goal_stories g JOIN goal_stories p"
        " ON p.id = g.parent_id LEFT JOIN goal_stories gp ON gp.id = p.parent_id GROUP BY p.title, gp.title",
        False,
    ),
    # To-many spreads: one array per key, in the embed's order (empty without rows).
    (
        "/goal_stories?select=id,...goal_story_updates(status,progress_percent)"
        "&goal_story_updates.order=date.desc,id&order=id",
        "SELECT g.id, coalesce((SELECT json_agg(u.status ORDER BY u.date DESC, u.id) FROM goal_story_updates u"
        " WHERE u.goal_story_id = g.id), '[]') AS status, coalesce((SELECT json_agg(u.progress_percent"
        " ORDER BY u.date DESC, u.id) FROM goal_story_updates u WHERE u.goal_story_id = g.id), '[]')"
        " AS progress_percent FROM goal_stories g ORDER BY g.id",
        True,
    ),
    (
        "/goal_stories?select=id,...goal_story_updates(status)&goal_story_updates.order=date,id"
        "&goal_story_updates.limit=2&goal_story_updates.status=not.is.null&order=id",
        "SELECT g.id, coalesce((SELECT json_agg(x.status ORDER BY x.date, x.id) FROM (SELECT * FROM"
        " goal_story_updates u WHERE u.goal_story_id = g.id AND u.status IS NOT NULL ORDER BY u.date, u.id"
        " LIMIT 2) x), '[]') AS status FROM goal_stories g ORDER BY g.id",
        True,
    ),
    # A list relation: members in the list's order; their count.
    (
        "/teams?select=id,members(count()),...members(name)&order=id",
        "SELECT t.id, json_build_array(json_build_object('count', (SELECT count(*) FROM unnest(t.member_ids) m"
        " JOIN actors a ON a.id = m))) AS members, coalesce((SELECT json_agg(a.name ORDER BY m.i) FROM"
        " unnest(t.member_ids) WITH ORDINALITY m(id, i) JOIN actors a ON a.id = m.id), '[]') AS name"
        " FROM teams t ORDER BY t.id",
        True,
    ),
    # Spreads nested in a to-many spread: a to-one's values, a to-many's arrays.
    (
        "/goal_stories?select=id,...children(child:title,...parent(of:title),...goal_story_updates(status))"
        "&children.order=id&children.goal_story_updates.order=id&order=id",
        "SELECT g.id, coalesce((SELECT json_agg(c.title ORDER BY c.id) FROM goal_stories c WHERE c.parent_id = g.id),"
        " '[]') AS child, coalesce((SELECT json_agg(g.title ORDER BY c.id) FROM goal_stories c"
        " WHERE c.parent_id = g.id), '[]') AS of, coalesce((SELECT json_agg(coalesce((SELECT json_agg(u.status"
        " ORDER BY u.id) FROM goal_story_updates u WHERE u.goal_story_id = c.id), '[]') ORDER BY c.id)"
        " FROM goal_stories c WHERE c.parent_id = g.id), '[]') AS status FROM goal_stories g ORDER BY g.id",
        True,
    ),
]


@pytest.mark.parametrize("url,sql,ordered", CASES, ids=[case[0][:100] for case in CASES])
async def test_aggregates_answer_as_sql_does(
    generated: dict[str, Any], clean: AsyncEngine, http: httpx.AsyncClient, url: str, sql: str, ordered: bool
) -> None:
    response = await http.get(url)
    assert response.status_code == 200, response.text
    answer = json.loads(response.text, parse_float=Decimal)
    expected = await _sql(clean, sql)
    assert expected or "gt.1000" in url, "the data should give this case rows"
    if ordered:
        assert answer == expected
    else:
        assert _groups(answer) == _groups(expected)
    # The rows answered are the groups, as Content-Range counts them.
    offset = int(url.split("&offset=")[1].split("&")[0]) if "&offset=" in url else 0
    assert response.headers["content-range"] == (f"{offset}-{offset + len(expected) - 1}/*" if expected else "*/*")


async def test_spread_arrays_are_correlated(
    generated: dict[str, Any], clean: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """Without an order, the arrays of one spread still list the related rows in one order."""
    response = await http.get("/goal_stories?select=id,...goal_story_updates(uid:id,status,progress_percent,date)")
    assert response.status_code == 200, response.text
    rows = await _sql(clean, "SELECT id, status, progress_percent, date FROM goal_story_updates")
    by_id = {row["id"]: (row["status"], row["progress_percent"], row["date"]) for row in rows}
    seen = 0
    for story in response.json():
        assert len(story["uid"]) == len(story["status"]) == len(story["progress_percent"]) == len(story["date"])
        for uid, status, progress, date in zip(
            story["uid"], story["status"], story["progress_percent"], story["date"], strict=True
        ):
            assert by_id[uid] == (status, progress, date)
            seen += 1
    assert seen == len(by_id)


async def test_counts_and_time_zones(generated: dict[str, Any], clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    groups = await _sql(clean, "SELECT status FROM goal_story_updates GROUP BY status")
    url = "/goal_story_updates?select=status,count()"
    exact = await http.get(url, headers={"Prefer": "count=exact"})
    assert exact.headers["content-range"] == f"0-{len(groups) - 1}/{len(groups)}"
    head = await http.head(url, headers={"Prefer": "count=exact"})
    assert head.headers["content-range"] == f"0-{len(groups) - 1}/{len(groups)}"
    paged = await http.get(url + "&order=status&limit=2", headers={"Prefer": "count=exact"})
    assert (paged.status_code, paged.headers["content-range"]) == (206, f"0-1/{len(groups)}")
    # Timestamps aggregated render in the asked time zone, as PostgreSQL renders them there.
    zoned = await http.get(
        "/goal_story_updates?select=actor_id,latest:created_at.max(),earliest:created_at.min()",
        headers={"Prefer": "timezone=Asia/Kolkata"},
    )
    expected = await _sql(
        clean,
        "SELECT actor_id, max(created_at) AS latest, min(created_at) AS earliest FROM goal_story_updates"
        " GROUP BY actor_id",
        timezone="Asia/Kolkata",
    )
    assert _groups(zoned.json()) == _groups(expected)
    assert "+05:30" in zoned.json()[0]["latest"]


async def test_csv_answers(generated: dict[str, Any], clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    csv = await http.get(
        "/goal_story_updates?select=status,actor_id,n:count(),...actor(name)&order=status,actor_id",
        headers={"Accept": "text/csv"},
    )
    assert csv.status_code == 200, csv.text
    lines = csv.text.splitlines()
    assert lines[0] == "status,actor_id,n,name"
    expected = await _sql(
        clean,
        "SELECT u.status, u.actor_id, count(*) AS n, a.name FROM goal_story_updates u JOIN actors a"
        " ON a.id = u.actor_id GROUP BY u.status, u.actor_id, a.name ORDER BY u.status, u.actor_id",
    )
    assert lines[1:] == [f"{row['status'] or ''},{row['actor_id']},{row['n']},{row['name']}" for row in expected]
    arrays = await http.get(
        "/goal_stories?select=id,...goal_story_updates(status)&id=eq.g-4", headers={"Accept": "text/csv"}
    )
    assert arrays.text.splitlines() == ["id,status", "g-4,[]"]


async def test_many_groups_are_streamed_as_the_same_rows(
    generated: dict[str, Any], clean: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """More groups than one answer holds at once (reading.STREAM_AFTER): streamed row by row, the same rows."""
    async with clean.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO goal_story_updates (id, actor_id, goal_story_id, date, title, content, created_at)"
                " SELECT 'bulk-' || n, 'p-1', 'g-4', '2026-06-01', 't', 'c', '2026-06-01'::timestamptz"
                " + n * interval '1 minute' FROM generate_series(1, 1100) n"
            )
        )
    url = "/goal_story_updates?select=created_at,n:count(),progress_percent.max(),...actor(name)&goal_story_id=eq.g-4"
    streamed = await http.get(url + "&order=created_at")
    assert streamed.status_code == 200, streamed.text
    assert streamed.headers.get("content-length") is None  # streamed, not one buffered answer
    expected = await _sql(
        clean,
        "SELECT u.created_at, count(*) AS n, max(u.progress_percent) AS max, a.name FROM goal_story_updates u"
        " JOIN actors a ON a.id = u.actor_id WHERE u.goal_story_id = 'g-4' GROUP BY u.created_at, a.name"
        " ORDER BY u.created_at",
    )
    assert len(expected) == 1100
    assert streamed.json() == expected
    assert streamed.headers["content-range"] == "0-1099/*"


async def test_one_statement_answers_groups_embeds_and_spreads(
    generated: dict[str, Any], clean: AsyncEngine, http: httpx.AsyncClient
) -> None:
    url = (
        "/goal_stories?select=n:count(),...parent(title),goal_story_updates(status,count()),"
        "...children(child:title,...goal_story_updates(progress_percent))&goal_story_updates.status=not.is.null"
    )
    async with statements(clean, excluding="coordination_events") as seen:
        response = await http.get(url)
    assert response.status_code == 200, response.text
    assert len(seen) == 1, seen
