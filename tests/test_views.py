"""The coordination views (api/store/views.py) against the same questions answered here in Python.

The data are generated (a fixed seed): members in time zones either side of UTC (Pacific/Kiritimati at
+14 to Pacific/Pago_Pago at -11, and none), an empty team and one without a member list, members with two
check-ins a day or none, check-ins from former members, blockers empty, null and several, goal trees with
and without updates, updates on the same day told apart by their creation. Each view is compared whole, at
moments where members' dates differ from UTC's, for every caller's scope.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.entities import GOAL_STORY_STATUSES
from api.errors import InvalidInput
from api.plan import Scope
from api.store import Reader, Views

ZONES = [
    "Pacific/Kiritimati",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Europe/Berlin",
    "UTC",
    None,
    "America/St_Johns",
    "America/Los_Angeles",
    "Pacific/Pago_Pago",
]
START = dt.date(2026, 3, 2)
DAYS = 21
TEAMS = ["t-a", "t-b", "t-empty", "t-null"]
# Moments at which the members' own dates differ: late on a UTC day (Kiritimati and Tokyo are a day
# ahead), early on one (Los Angeles and Pago Pago a day behind), and noon.
MOMENTS = [
    dt.datetime(2026, 3, 10, 2, 30, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 12, 12, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 15, 22, 45, tzinfo=dt.UTC),
    dt.datetime(2026, 4, 30, 9, 0, tzinfo=dt.UTC),
]
SCOPES: list[frozenset[str] | None] = [None, frozenset({"t-a"}), frozenset({"t-b", "t-empty"}), frozenset()]


def _world(seed: int) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    actors = [{"id": f"a-{i:02}", "name": f"Member {i}", "timezone": ZONES[i % len(ZONES)]} for i in range(18)]
    ids = [a["id"] for a in actors]
    teams = [
        {"id": "t-a", "name": "Alpha", "member_ids": rng.sample(ids, 8)},
        {"id": "t-b", "name": "Beta", "member_ids": rng.sample(ids, 6)},
        {"id": "t-empty", "name": "Empty", "member_ids": []},
        {"id": "t-null", "name": "No list", "member_ids": None},
    ]
    # A member listed twice counts once, at the first place.
    teams[1]["member_ids"].append(teams[1]["member_ids"][0])
    checkins = []
    for team in teams[:2]:
        # Former members (not in the list any more) checked in too.
        people = team["member_ids"][:-1] + rng.sample([i for i in ids if i not in team["member_ids"]], 2)
        for actor in dict.fromkeys(people):
            for day in range(DAYS + 3):
                if rng.random() < 0.45:
                    continue
                for second in range(2 if rng.random() < 0.1 else 1):
                    blockers = rng.choice([None, [], ["waiting on review"], ["no access", "flaky CI"]])
                    date = START + dt.timedelta(days=day - 1)
                    created = dt.datetime.combine(date, dt.time(rng.randrange(24), rng.randrange(60)), dt.UTC)
                    checkins.append(
                        {
                            "id": f"c-{team['id']}-{actor}-{day}-{second}",
                            "actor_id": actor,
                            "team_id": team["id"],
                            "date": date,
                            "blockers": blockers,
                            "created_at": created,
                        }
                    )
    goals: list[dict[str, Any]] = []
    for i in range(16):
        parent = rng.choice([None, None, *[g["id"] for g in goals]]) if goals else None
        goals.append(
            {
                "id": f"g-{i:02}",
                "title": f"Goal {i}",
                "parent_id": parent,
                "team_ids": rng.choice([None, [], ["t-a"], ["t-b"], ["t-a", "t-b"], ["t-empty"]]),
                "created_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=rng.randrange(100)),
            }
        )
    updates = []
    for goal in goals:
        for n in range(rng.choice([0, 0, 1, 2, 3])):
            date = dt.date(2026, 1, 15) + dt.timedelta(days=rng.randrange(0, 80, 20))
            updates.append(
                {
                    "id": f"u-{goal['id']}-{n}",
                    "actor_id": rng.choice(ids),
                    "goal_story_id": goal["id"],
                    "date": date,
                    "status": rng.choice([None, *GOAL_STORY_STATUSES]),
                    "progress_percent": rng.choice([None, 0, 33, 50, 67, 100]),
                    "created_at": dt.datetime.combine(date, dt.time(9), dt.UTC) + dt.timedelta(minutes=n),
                }
            )
    return {"actors": actors, "teams": teams, "checkins": checkins, "goals": goals, "updates": updates}


@pytest.fixture
async def world(clean: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    data = _world(17)
    async with clean.begin() as conn:
        await conn.execute(
            text("INSERT INTO actors (id, actor_type, name, timezone) VALUES (:id, 'person', :name, :timezone)"),
            data["actors"],
        )
        await conn.execute(
            text("INSERT INTO teams (id, name, member_ids) VALUES (:id, :name, :member_ids)"), data["teams"]
        )
        await conn.execute(
            text(
                "INSERT INTO team_checkins (id, actor_id, team_id, date, blockers, created_at) "
                "VALUES (:id, :actor_id, :team_id, :date, :blockers, :created_at)"
            ),
            data["checkins"],
        )
        for goal in data["goals"]:  # parents first
            await conn.execute(
                text(
                    "INSERT INTO goal_stories (id, title, parent_id, team_ids, created_at) "
                    "VALUES (:id, :title, :parent_id, :team_ids, :created_at)"
                ),
                goal,
            )
        await conn.execute(
            text(
                "INSERT INTO goal_story_updates (id, actor_id, goal_story_id, date, title, content, status, "
                "progress_percent, created_at) VALUES (:id, :actor_id, :goal_story_id, :date, 'Update', 'Text', "
                ":status, :progress_percent, :created_at)"
            ),
            data["updates"],
        )
    return data


# ---------------------------------------------------------------- the answers, computed here


def _sees_team(scope: frozenset[str] | None, team_id: str) -> bool:
    return scope is None or team_id in scope


def _sees_goal(scope: frozenset[str] | None, goal: dict[str, Any]) -> bool:
    return scope is None or bool(set(goal["team_ids"] or ()) & scope)


def _local_today(actor: dict[str, Any], moment: dt.datetime) -> dt.date:
    return moment.astimezone(ZoneInfo(actor["timezone"] or "UTC")).date()


def _members(world: dict[str, Any], team: dict[str, Any]) -> list[dict[str, Any]]:
    actors = {a["id"]: a for a in world["actors"]}
    seen: list[str] = []
    for actor in team["member_ids"] or ():
        if actor not in seen and actor in actors:
            seen.append(actor)
    return [actors[a] for a in seen]


def _instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


def coverage(world, team_id, first, last, moment, weekdays_only, scope) -> dict[str, Any] | None:
    team = next((t for t in world["teams"] if t["id"] == team_id), None)
    if team is None or not _sees_team(scope, team_id):
        return None
    members = _members(world, team)
    ids = [m["id"] for m in members]
    checkins = sorted(
        (c for c in world["checkins"] if c["team_id"] == team_id and c["actor_id"] in ids),
        key=lambda c: (c["created_at"], c["id"]),
    )
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    cells: dict[tuple[str, dt.date], dict[str, Any]] = {}
    for day in days:
        for m in members:
            mine = [c for c in checkins if c["actor_id"] == m["id"] and c["date"] == day]
            cells[m["id"], day] = {
                "actorId": m["id"],
                "expected": day <= _local_today(m, moment) and (not weekdays_only or day.isoweekday() < 6),
                "checkins": len(mine),
                "blockers": [b for c in mine for b in (c["blockers"] or ())],
            }
    answer_days = []
    for day in days:
        row = [cells[i, day] for i in ids]
        answer_days.append(
            {
                "date": day.isoformat(),
                "expected": [c["actorId"] for c in row if c["expected"]],
                "checkedIn": [c["actorId"] for c in row if c["checkins"]],
                "missing": [c["actorId"] for c in row if c["expected"] and not c["checkins"]],
                "blockers": [
                    {"actorId": c["actor_id"], "checkinId": c["id"], "text": b}
                    for i in ids
                    for c in checkins
                    if c["actor_id"] == i and c["date"] == day
                    for b in c["blockers"] or ()
                ],
                "cells": row,
            }
        )
    return {
        "teamId": team_id,
        "teamName": team["name"],
        "from": first.isoformat(),
        "to": last.isoformat(),
        "asOf": _instant(moment),
        "weekdaysOnly": weekdays_only,
        "members": [
            {
                "actorId": m["id"],
                "name": m["name"],
                "timezone": m["timezone"],
                "localDate": _local_today(m, moment).isoformat(),
                "expectedDays": sum(cells[m["id"], d]["expected"] for d in days),
                "checkedInDays": sum(cells[m["id"], d]["checkins"] > 0 for d in days),
                "missedDays": sum(cells[m["id"], d]["expected"] and not cells[m["id"], d]["checkins"] for d in days),
            }
            for m in members
        ],
        "days": answer_days,
    }


def _latest(world: dict[str, Any], goal_id: str) -> dict[str, Any] | None:
    mine = [u for u in world["updates"] if u["goal_story_id"] == goal_id]
    return max(mine, key=lambda u: (u["date"], u["created_at"], u["id"]), default=None)


def stale(world, days, moment, scope, team_id=None, include_completed=False) -> list[dict[str, Any]]:
    today = moment.astimezone(dt.UTC).date()
    found = []
    for goal in world["goals"]:
        if not _sees_goal(scope, goal) or (team_id is not None and team_id not in (goal["team_ids"] or ())):
            continue
        latest = _latest(world, goal["id"])
        if latest is not None and latest["status"] == "completed" and not include_completed:
            continue
        since = latest["date"] if latest else goal["created_at"].astimezone(dt.UTC).date()
        if (today - since).days < days:
            continue
        found.append(
            {
                "id": goal["id"],
                "title": goal["title"],
                "parentId": goal["parent_id"],
                "teamIds": goal["team_ids"] or [],
                "createdAt": _instant(goal["created_at"]),
                "status": latest and latest["status"],
                "progressPercent": latest and latest["progress_percent"],
                "lastUpdateDate": latest and latest["date"].isoformat(),
                "daysSinceUpdate": (today - since).days,
                "latestUpdate": latest
                and {
                    "id": latest["id"],
                    "date": latest["date"].isoformat(),
                    "title": "Update",
                    "status": latest["status"],
                    "progressPercent": latest["progress_percent"],
                },
            }
        )
    return sorted(found, key=lambda g: (-g["daysSinceUpdate"], g["id"]))


def blockers(world, team_id, moment, scope) -> list[dict[str, Any]]:
    found = []
    for team in world["teams"]:
        if not _sees_team(scope, team["id"]) or (team_id is not None and team["id"] != team_id):
            continue
        for place, member in enumerate(_members(world, team)):
            mine = [c for c in world["checkins"] if c["team_id"] == team["id"] and c["actor_id"] == member["id"]]
            latest = max(mine, key=lambda c: (c["date"], c["created_at"], c["id"]), default=None)
            if latest is None or not latest["blockers"]:
                continue
            found.append(
                {
                    "checkinId": latest["id"],
                    "teamId": team["id"],
                    "teamName": team["name"],
                    "actorId": member["id"],
                    "actorName": member["name"],
                    "timezone": member["timezone"],
                    "date": latest["date"].isoformat(),
                    "createdAt": _instant(latest["created_at"]),
                    "blockers": latest["blockers"],
                    "ageDays": (_local_today(member, moment) - latest["date"]).days,
                    "_order": (team["name"], team["id"], place),
                }
            )
    found.sort(key=lambda b: (-b["ageDays"], b.pop("_order")))
    return found


def _average(values: list[int]) -> Decimal | None:
    if not values:
        return None
    return (Decimal(sum(values)) / Decimal(len(values))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def rollup(world, root_id, scope) -> dict[str, Any] | None:
    goals = {g["id"]: g for g in world["goals"] if _sees_goal(scope, g)}
    roots = [g for g in goals.values() if g["parent_id"] is None] if root_id is None else [goals.get(root_id)]
    if not roots or roots[0] is None:
        return None
    ordered: list[tuple[dict[str, Any], int]] = []

    def walk(goal: dict[str, Any], depth: int) -> None:
        ordered.append((goal, depth))
        for child in sorted((g for g in goals.values() if g["parent_id"] == goal["id"]), key=lambda g: g["id"]):
            walk(child, depth + 1)

    for root in sorted(roots, key=lambda g: g["id"]):
        walk(root, 0)
    rows = []
    for goal, depth in ordered:
        latest = _latest(world, goal["id"])
        rows.append(
            {
                "id": goal["id"],
                "title": goal["title"],
                "parentId": goal["parent_id"],
                "depth": depth,
                "status": latest and latest["status"],
                "progressPercent": latest and latest["progress_percent"],
                "lastUpdateDate": latest and latest["date"].isoformat(),
            }
        )
    statuses = Counter(r["status"] for r in rows)
    progress = [r["progressPercent"] for r in rows if r["progressPercent"] is not None]
    parents = {r["parentId"] for r in rows}
    leaves = [r["progressPercent"] for r in rows if r["id"] not in parents and r["progressPercent"] is not None]
    return {
        "id": root_id,
        "goals": rows,
        "total": len(rows),
        "statusCounts": {**{s: statuses[s] for s in GOAL_STORY_STATUSES}, "none": statuses[None]},
        "withProgress": len(progress),
        "averageProgress": _average(progress),
        "leafAverageProgress": _average(leaves),
    }


def _scope(teams: frozenset[str] | None) -> Scope | None:
    """A caller limited to `teams`, as the read path takes it."""
    return None if teams is None else Scope(tuple(sorted(teams)))


def _parsed(answer: str | None) -> Any:
    return None if answer is None else json.loads(answer, parse_float=Decimal)


# ---------------------------------------------------------------- the comparisons


@pytest.mark.parametrize("moment", MOMENTS)
async def test_team_coverage_matches(world: dict[str, Any], reader: Reader, moment: dt.datetime) -> None:
    views = Views(reader)
    first, last = START, START + dt.timedelta(days=DAYS - 1)
    for team_id in [*TEAMS, "t-missing"]:
        for scope in SCOPES:
            for weekdays_only in (False, True):
                got = await views.team_coverage(
                    team_id, first, last, scope=_scope(scope), as_of=moment, weekdays_only=weekdays_only
                )
                assert _parsed(got) == coverage(world, team_id, first, last, moment, weekdays_only, scope), (
                    team_id,
                    scope,
                    weekdays_only,
                )


async def test_team_coverage_follows_each_members_day(world: dict[str, Any], reader: Reader) -> None:
    # At 02:30 UTC on the 10th, Tokyo is on the 10th and Los Angeles still on the 9th.
    answer = _parsed(await Views(reader).team_coverage("t-a", START, START + dt.timedelta(days=20), as_of=MOMENTS[0]))
    zones = {m["actorId"]: m["timezone"] for m in answer["members"]}
    for member in answer["members"]:
        behind = member["timezone"] in ("America/St_Johns", "America/Los_Angeles", "Pacific/Pago_Pago")
        assert member["localDate"] == ("2026-03-09" if behind else "2026-03-10"), member
    tenth = next(d for d in answer["days"] if d["date"] == "2026-03-10")
    behind = {"America/St_Johns", "America/Los_Angeles", "Pacific/Pago_Pago"}
    assert {zones[c["actorId"]] in behind for c in tenth["cells"]} == {True, False}
    for cell in tenth["cells"]:
        assert cell["expected"] is (zones[cell["actorId"]] not in behind), zones[cell["actorId"]]


@pytest.mark.parametrize("moment", MOMENTS)
async def test_stale_goal_stories_match(world: dict[str, Any], reader: Reader, moment: dt.datetime) -> None:
    views = Views(reader)
    for days in (0, 14, 30, 90, 400):
        for scope in SCOPES:
            got = await views.stale_goal_stories(days, scope=_scope(scope), as_of=moment)
            assert _parsed(got) == stale(world, days, moment, scope), (days, scope)
    for team_id in ("t-a", "t-b", "t-empty"):
        got = await views.stale_goal_stories(14, team_id=team_id, as_of=moment, include_completed=True)
        assert _parsed(got) == stale(world, 14, moment, None, team_id, include_completed=True)


@pytest.mark.parametrize("moment", MOMENTS)
async def test_open_blockers_match(world: dict[str, Any], reader: Reader, moment: dt.datetime) -> None:
    views = Views(reader)
    for team_id in [None, *TEAMS, "t-missing"]:
        for scope in SCOPES:
            got = await views.open_blockers(team_id, scope=_scope(scope), as_of=moment)
            assert _parsed(got) == blockers(world, team_id, moment, scope), (team_id, scope)


async def test_goal_rollup_matches(world: dict[str, Any], reader: Reader) -> None:
    views = Views(reader)
    for root in [None, *(g["id"] for g in world["goals"]), "g-missing"]:
        for scope in SCOPES:
            assert _parsed(await views.goal_rollup(root, scope=_scope(scope))) == rollup(world, root, scope), (
                root,
                scope,
            )


async def test_views_of_an_empty_database(reader: Reader) -> None:
    views = Views(reader)
    assert await views.team_coverage("t-a", START, START) is None
    assert json.loads(await views.stale_goal_stories(0)) == []
    assert json.loads(await views.open_blockers()) == []
    assert await views.goal_rollup(None) is None


async def test_bad_ranges_are_refused(reader: Reader) -> None:
    views = Views(reader)
    with pytest.raises(InvalidInput, match="before it starts"):
        await views.team_coverage("t-a", START, START - dt.timedelta(days=1))
    with pytest.raises(InvalidInput, match="at most 366 days"):
        await views.team_coverage("t-a", START, START + dt.timedelta(days=366))
    with pytest.raises(InvalidInput, match="between 0 and"):
        await views.stale_goal_stories(-1)


# ---------------------------------------------------------------- the front ends: GraphQL, REST, MCP

SECRET = "a-shared-secret-of-at-least-32-characters!"
MOMENT = MOMENTS[0]
COVERAGE_QUERY = """query($team: ID!, $from: Date!, $to: Date!, $asOf: DateTime) {
  teamCoverage(teamId: $team, from: $from, to: $to, asOf: $asOf) {
    teamId teamName from to asOf weekdaysOnly
    members { actorId name timezone localDate expectedDays checkedInDays missedDays actor { id name } }
    days {
      date expected checkedIn missing
      blockers { actorId checkinId text }
      cells { actorId expected checkins blockers }
    }
  }
}"""
OTHERS_QUERY = """query($asOf: DateTime) {
  staleGoalStories(days: 14, asOf: $asOf) { id daysSinceUpdate status latestUpdate { id status } goalStory { id } }
  openBlockers(asOf: $asOf) { checkinId teamId actorId ageDays blockers checkin { id } }
  goalRollup { total statusCounts { onTrack atRisk offTrack completed paused none } averageProgress goals { id depth } }
}"""


def _token(teams: list[str] | None, role: str = "read") -> dict[str, str]:
    import time

    import jwt

    claims: dict[str, Any] = {"role": role, "exp": int(time.time()) + 600}
    if teams is not None:
        claims["teams"] = teams
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


@pytest.fixture(scope="module")
def scoped_url(database_url: str, engine: AsyncEngine) -> Any:
    from tests.conftest import RunningServer

    with RunningServer(database_url, jwt_secret=SECRET) as url:
        yield url


async def _graphql(url: str, query: str, variables: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers or {})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def _coverage_fields(answer: dict[str, Any]) -> dict[str, Any]:
    """The view's answer as GraphQL spells it (members get their actor)."""
    names = {m["actorId"]: m["name"] for m in answer["members"]}
    return {
        **answer,
        "members": [{**m, "actor": {"id": m["actorId"], "name": names[m["actorId"]]}} for m in answer["members"]],
    }


async def test_graphql_views_answer_as_the_store(world: dict[str, Any], reader: Reader, server_url: str) -> None:
    variables = {"team": "t-a", "from": "2026-03-02", "to": "2026-03-22", "asOf": MOMENT.isoformat()}
    data = await _graphql(server_url, COVERAGE_QUERY, variables)
    expected = coverage(world, "t-a", START, START + dt.timedelta(days=20), MOMENT, False, None)
    assert data["teamCoverage"] == _coverage_fields(expected)
    data = await _graphql(server_url, OTHERS_QUERY, {"asOf": MOMENT.isoformat()})
    assert [(g["id"], g["daysSinceUpdate"]) for g in data["staleGoalStories"]] == [
        (g["id"], g["daysSinceUpdate"]) for g in stale(world, 14, MOMENT, None)
    ]
    assert all(g["goalStory"] == {"id": g["id"]} for g in data["staleGoalStories"])
    assert [(b["checkinId"], b["ageDays"]) for b in data["openBlockers"]] == [
        (b["checkinId"], b["ageDays"]) for b in blockers(world, None, MOMENT, None)
    ]
    assert all(b["checkin"] == {"id": b["checkinId"]} for b in data["openBlockers"])
    expected_rollup = rollup(world, None, None)
    assert expected_rollup is not None
    assert data["goalRollup"]["total"] == expected_rollup["total"]
    counts = data["goalRollup"]["statusCounts"]
    assert [counts[k] for k in ("onTrack", "atRisk", "offTrack", "completed", "paused", "none")] == list(
        expected_rollup["statusCounts"].values()
    )
    assert Decimal(str(data["goalRollup"]["averageProgress"])) == expected_rollup["averageProgress"]
    missing = await _graphql(
        server_url,
        '{ teamCoverage(teamId: "nope", from: "2026-03-01", to: "2026-03-02") { teamId } '
        'goalRollup(id: "nope") { total } }',
        {},
    )
    assert missing == {"teamCoverage": None, "goalRollup": None}


async def test_graphql_refuses_a_backwards_range(world: dict[str, Any], server_url: str) -> None:
    import httpx

    query = '{ teamCoverage(teamId: "t-a", from: "2026-03-05", to: "2026-03-01") { teamId } }'
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as http:
        body = (await http.post("/graphql", json={"query": query})).json()
    assert body["data"] is None or body["data"]["teamCoverage"] is None
    assert "before it starts" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("teams", [["t-a"], ["t-b", "t-empty"], []])
async def test_a_scoped_token_counts_only_its_teams(world: dict[str, Any], scoped_url: str, teams: list[str]) -> None:
    import httpx

    scope = frozenset(teams)
    headers = _token(teams)
    data = await _graphql(scoped_url, OTHERS_QUERY, {"asOf": MOMENT.isoformat()}, headers)
    assert [g["id"] for g in data["staleGoalStories"]] == [g["id"] for g in stale(world, 14, MOMENT, scope)]
    assert [b["checkinId"] for b in data["openBlockers"]] == [
        b["checkinId"] for b in blockers(world, None, MOMENT, scope)
    ]
    expected_rollup = rollup(world, None, scope)
    assert (data["goalRollup"] or {}).get("total") == (expected_rollup or {}).get("total")
    for team_id in TEAMS:
        variables = {"team": team_id, "from": "2026-03-02", "to": "2026-03-22", "asOf": MOMENT.isoformat()}
        got = (await _graphql(scoped_url, COVERAGE_QUERY, variables, headers))["teamCoverage"]
        assert (got is None) == (team_id not in scope), team_id
    async with httpx.AsyncClient(base_url=scoped_url, timeout=30) as http:
        response = await http.get("/rpc/open_blockers", params={"as_of": MOMENT.isoformat()}, headers=headers)
        assert response.status_code == 200, response.text
        assert _parsed(response.text) == blockers(world, None, MOMENT, scope)
        response = await http.get(
            "/rpc/team_coverage",
            params={"team_id": "t-a", "from": "2026-03-02", "to": "2026-03-04", "as_of": MOMENT.isoformat()},
            headers=headers,
        )
        assert _parsed(response.text) == coverage(
            world, "t-a", START, START + dt.timedelta(days=2), MOMENT, False, scope
        )
    # The same server without a teams claim sees everything, as does an admin whatever its claim says.
    everything = [b["checkinId"] for b in blockers(world, None, MOMENT, None)]
    for headers in (_token(None), _token(teams, role="admin")):
        data = await _graphql(scoped_url, OTHERS_QUERY, {"asOf": MOMENT.isoformat()}, headers)
        assert [b["checkinId"] for b in data["openBlockers"]] == everything


async def test_rest_functions(world: dict[str, Any], server_url: str) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=server_url, timeout=30) as http:
        as_of = MOMENT.isoformat()
        response = await http.get(
            "/rpc/team_coverage",
            params={
                "team_id": "t-b",
                "from": "2026-03-02",
                "to": "2026-03-22",
                "as_of": as_of,
                "weekdays_only": "true",
            },
        )
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
        assert _parsed(response.text) == coverage(
            world, "t-b", START, START + dt.timedelta(days=20), MOMENT, True, None
        )
        response = await http.get("/rpc/stale_goal_stories", params={"days": "30", "as_of": as_of})
        assert _parsed(response.text) == stale(world, 30, MOMENT, None)
        response = await http.get("/rpc/open_blockers", params={"team_id": "t-a", "as_of": as_of})
        assert _parsed(response.text) == blockers(world, "t-a", MOMENT, None)
        response = await http.get("/rpc/goal_rollup", params={"id": "g-00"})
        assert _parsed(response.text) == rollup(world, "g-00", None)
        response = await http.get("/rpc/goal_rollup", params={"id": "nope"})
        assert (response.status_code, response.text) == (200, "null")
        head = await http.head("/rpc/open_blockers")
        assert (head.status_code, head.content) == (200, b"")

        # Errors in PostgREST's words.
        response = await http.get("/rpc/team_coverage", params={"team_id": "t-a"})
        assert (response.status_code, response.json()["code"]) == (404, "PGRST202")
        assert "team_coverage(team_id)" in response.json()["message"]
        response = await http.get("/rpc/open_blockers", params={"teams": "t-a"})
        assert (response.status_code, response.json()["code"]) == (404, "PGRST202")
        response = await http.get("/rpc/no_such_view")
        assert (response.status_code, response.json()["code"]) == (404, "PGRST202")
        response = await http.get("/rpc/stale_goal_stories", params={"days": "soon"})
        assert (response.status_code, response.json()["code"]) == (400, "22P02")
        response = await http.get("/rpc/stale_goal_stories", params={"days": "99999999999"})
        assert (response.status_code, response.json()["code"]) == (400, "22003")
        response = await http.get(
            "/rpc/team_coverage", params={"team_id": "t-a", "from": "2026-13-01", "to": "2026-03-01"}
        )
        assert (response.status_code, response.json()["code"]) == (400, "22007")
        response = await http.get(
            "/rpc/team_coverage", params={"team_id": "t-a", "from": "2026-03-05", "to": "2026-03-01"}
        )
        assert response.status_code == 400 and "before it starts" in response.json()["message"]
        response = await http.post("/rpc/open_blockers", json={})
        assert (response.status_code, response.json()["code"]) == (405, "PGRST117")
        response = await http.get("/rpc/open_blockers", headers={"Accept": "text/csv"})
        assert (response.status_code, response.json()["code"]) == (406, "PGRST107")

        document = (await http.get("/")).json()
    for name in ("team_coverage", "stale_goal_stories", "open_blockers", "goal_rollup"):
        path = document["paths"][f"/rpc/{name}"]["get"]
        assert path["parameters"] and path["responses"]["200"]


async def test_mcp_view_tools(world: dict[str, Any], server_url: str, database_url: str) -> None:
    from tests.mcp_support import connect, structured, tool_error

    async with connect("http", server_url, database_url) as client:
        result = structured(
            await client.call_tool(
                "get_team_coverage",
                {"team_id": "t-a", "from": "2026-03-02", "to": "2026-03-22", "as_of": MOMENT.isoformat()},
            )
        )
        assert result == json.loads(
            json.dumps(coverage(world, "t-a", START, START + dt.timedelta(days=20), MOMENT, False, None))
        )
        result = structured(await client.call_tool("get_open_blockers", {"as_of": MOMENT.isoformat()}))
        assert result["open_blockers"] == blockers(world, None, MOMENT, None)
        result = structured(await client.call_tool("get_stale_goal_stories", {"days": 30, "as_of": MOMENT.isoformat()}))
        assert result["goal_stories"] == stale(world, 30, MOMENT, None)
        result = structured(await client.call_tool("get_goal_rollup", {"goal_story_id": "g-00"}))
        assert result == json.loads(json.dumps(rollup(world, "g-00", None), default=float))
        message, _ = tool_error(await client.call_tool("get_team_coverage", {"team_id": "nope"}))
        assert "nope" in message
        message, _ = tool_error(await client.call_tool("get_stale_goal_stories", {"days": -3}))
        assert "days" in message


async def test_a_timezone_postgresql_lacks_is_named_in_the_error(reader: Reader) -> None:
    # Python's zoneinfo knows "localtime" (a file of the system's zoneinfo); PostgreSQL does not.
    async with reader.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO actors (id, actor_type, name, timezone) VALUES ('a', 'person', 'A', 'localtime')")
        )
        await conn.execute(text("INSERT INTO teams (id, name, member_ids) VALUES ('t', 'T', ARRAY['a'])"))
    with pytest.raises(InvalidInput, match='time zone "localtime" not recognized'):
        await Views(reader).team_coverage("t", START, START)


async def test_a_rollup_ends_on_a_cycle_written_past_the_rules(reader: Reader) -> None:
    # The write service refuses cycles; rows written straight into the table can still hold one.
    async with reader.engine.begin() as conn:
        await conn.execute(text("INSERT INTO goal_stories (id, title) VALUES ('g-a', 'A'), ('g-b', 'B')"))
        await conn.execute(text("UPDATE goal_stories SET parent_id = CASE id WHEN 'g-a' THEN 'g-b' ELSE 'g-a' END"))
    answer = json.loads(await Views(reader).goal_rollup("g-a") or "null")
    assert [(g["id"], g["depth"]) for g in answer["goals"]] == [("g-a", 0), ("g-b", 1)]
    assert await Views(reader).goal_rollup(None) is None  # no root at all
