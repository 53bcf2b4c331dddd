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
                    team_id, first, last, scope=scope, as_of=moment, weekdays_only=weekdays_only
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
            got = await views.stale_goal_stories(days, scope=scope, as_of=moment)
            assert _parsed(got) == stale(world, days, moment, scope), (days, scope)
    for team_id in ("t-a", "t-b", "t-empty"):
        got = await views.stale_goal_stories(14, team_id=team_id, as_of=moment, include_completed=True)
        assert _parsed(got) == stale(world, 14, moment, None, team_id, include_completed=True)


@pytest.mark.parametrize("moment", MOMENTS)
async def test_open_blockers_match(world: dict[str, Any], reader: Reader, moment: dt.datetime) -> None:
    views = Views(reader)
    for team_id in [None, *TEAMS, "t-missing"]:
        for scope in SCOPES:
            got = await views.open_blockers(team_id, scope=scope, as_of=moment)
            assert _parsed(got) == blockers(world, team_id, moment, scope), (team_id, scope)


async def test_goal_rollup_matches(world: dict[str, Any], reader: Reader) -> None:
    views = Views(reader)
    for root in [None, *(g["id"] for g in world["goals"]), "g-missing"]:
        for scope in SCOPES:
            assert _parsed(await views.goal_rollup(root, scope=scope)) == rollup(world, root, scope), (root, scope)


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
