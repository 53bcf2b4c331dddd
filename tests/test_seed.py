"""`coco seed`: the demo organisation and its week, and re-runs that replace only demo rows."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from api.ops.demo import build, seed
from api.ops.demo.data import GOALS
from api.ops.schemas import validator
from api.plan import Condition, OrderTerm, ReadPlan
from api.store.reads import Reader
from api.store.writes import WriteService
from tests.conftest import table_counts

FRIDAY = dt.date(2026, 5, 22)
COCO = Path(sys.executable).parent / "coco"


async def documents(reader: Reader, entity: str, **plan: object) -> list[dict]:
    return json.loads(await reader.json_array(ReadPlan(entity, order=(OrderTerm("id"),), **plan)))  # type: ignore[arg-type]


async def everything(reader: Reader) -> dict[str, list[dict]]:
    names = ("actor", "team", "goal_story", "team_checkin", "goal_story_update", "coordination_event")
    return {name: await documents(reader, name) for name in names}


async def test_seed_writes_the_demo_organisation_and_its_week(writer: WriteService, reader: Reader) -> None:
    result = await seed(writer, today=FRIDAY)

    actors = await documents(reader, "actor")
    assert len(actors) == 14
    assert sum(a["actor_type"] == "person" for a in actors) == 11
    assert sum(a["actor_type"] == "agent" for a in actors) == 3

    teams = await documents(reader, "team")
    assert sorted(t["name"] for t in teams) == ["Backend", "Frontend", "Marketing"]
    actor_ids = {a["id"] for a in actors}
    assert {m for t in teams for m in t["member_ids"]} == actor_ids  # everyone belongs to a team

    goals = await documents(reader, "goal_story")
    [root] = [g for g in goals if g.get("parent_id") is None]
    assert root["title"] == "Launch PSC 2.0"
    assert len([g for g in goals if g.get("parent_id") == root["id"]]) == 3

    checkins = await documents(reader, "team_checkin")
    week = {FRIDAY - dt.timedelta(days=n) for n in range(7)}
    assert all(dt.date.fromisoformat(c["date"]) in week for c in checkins)
    assert all(dt.date.fromisoformat(c["date"]).weekday() < 5 for c in checkins)
    # Every (member, team, working day) slot of the week is in the past here: 15 memberships x 5 days.
    assert result.slots == 75
    coverage = len(checkins) / result.slots
    assert 0.70 <= coverage <= 0.80, coverage
    assert all(c["previously"] and c["next"] for c in checkins)
    blocked = [c for c in checkins if c.get("blockers")]
    assert 0 < len(blocked) < len(checkins) / 2
    members = {(m, t["id"]) for t in teams for m in t["member_ids"]}
    assert all((c["actor_id"], c["team_id"]) in members for c in checkins)
    # Every team checks in on every working day.
    assert {(c["team_id"], c["date"]) for c in checkins} == {
        (t["id"], d.isoformat()) for t in teams for d in week if d.weekday() < 5
    }

    updates = await documents(reader, "goal_story_update")
    owners = {g["id"]: g["actor_ids"][0] for g in goals}
    assert {u["goal_story_id"] for u in updates} == set(owners)
    assert all(u["actor_id"] == owners[u["goal_story_id"]] for u in updates)
    assert {u["status"] for u in updates} >= {"on_track", "at_risk"}

    # One event per check-in and update, by its actor, at its creation.
    events = await documents(reader, "coordination_event")
    rows = {r["id"]: r for r in checkins + updates}
    assert len(events) == len(rows) == result.events
    for event in events:
        row = rows[event["reference_id"]]
        assert event["actor_id"] == row["actor_id"]
        assert event["event_type"] == ("team_checkin" if "team_id" in row else "goal_story_update")
        assert dt.datetime.fromisoformat(event["occurred_at"]) == dt.datetime.fromisoformat(row["created_at"])

    # Every demo row is a valid CoCo document with a recognisable id.
    for name, docs in (await everything(reader)).items():
        for doc in docs:
            validator(name).validate(doc)
            if name != "coordination_event":
                assert doc["id"].startswith("demo-")


async def test_a_rerun_changes_nothing_else(writer: WriteService, reader: Reader, engine: AsyncEngine) -> None:
    await writer.create("actor", [{"id": "mine-1", "actor_type": "person", "name": "Not Demo"}])
    await writer.create("team", [{"id": "mine-t", "name": "Mine", "member_ids": ["mine-1"]}])
    await writer.create(
        "team_checkin",
        [{"id": "mine-c", "actor_id": "mine-1", "team_id": "mine-t", "date": "2026-05-21", "previously": ["mine"]}],
    )
    await seed(writer, today=FRIDAY)
    # Someone else's check-in on a demo team, by a demo actor, in the demo week: not demo data.
    await writer.create(
        "team_checkin",
        [
            {
                "id": "user-c",
                "actor_id": "demo-p-amara",
                "team_id": "demo-t-backend",
                "date": "2026-05-22",
                "next": ["my own words"],
            }
        ],
    )
    before_counts = await table_counts(engine)
    before = await everything(reader)

    again = await seed(writer, today=FRIDAY)

    assert await table_counts(engine) == before_counts
    assert await everything(reader) == before
    assert again.events == 0
    assert sum(again.inserted.values()) == 0 and sum(again.deleted.values()) == 0


async def test_a_rerun_puts_edited_and_deleted_demo_rows_back(
    writer: WriteService, reader: Reader, engine: AsyncEngine
) -> None:
    await seed(writer, today=FRIDAY)
    before = await everything(reader)
    checkin = before["team_checkin"][0]
    await writer.update_one("actor", "demo-p-quinn", {"name": "Renamed", "role": None})
    await writer.update_one("team_checkin", checkin["id"], {"previously": ["edited"]})
    update = before["goal_story_update"][0]
    await writer.delete_one("goal_story_update", update["id"])
    events_before_rerun = (await table_counts(engine))["coordination_events"]

    again = await seed(writer, today=FRIDAY)

    after = await everything(reader)
    for name in ("actor", "team", "goal_story", "team_checkin", "goal_story_update"):
        assert after[name] == before[name], name
    # Putting the edited check-in back is an edit (one event); the re-created update is new (one event).
    assert again.events == 2
    assert (await table_counts(engine))["coordination_events"] == events_before_rerun + 2
    new_events = after["coordination_event"]
    # Created, edited by someone, put back by the seed.
    assert len([e for e in new_events if e["reference_id"] == checkin["id"]]) == 3
    assert len([e for e in new_events if e["reference_id"] == update["id"]]) == 2


async def test_seeding_a_later_week_replaces_the_demo_week_and_keeps_events(
    writer: WriteService, reader: Reader, engine: AsyncEngine
) -> None:
    await writer.create("actor", [{"id": "mine-1", "actor_type": "person", "name": "Not Demo"}])
    await writer.create("team", [{"id": "mine-t", "name": "Mine", "member_ids": ["mine-1"]}])
    await writer.create(
        "team_checkin", [{"id": "mine-c", "actor_id": "mine-1", "team_id": "mine-t", "date": "2026-05-11"}]
    )
    first = await seed(writer, today=FRIDAY)
    second = await seed(writer, today=FRIDAY + dt.timedelta(days=7))

    checkins = await documents(reader, "team_checkin", where=Condition("id", "like", "demo-%"))
    assert checkins and all(dt.date.fromisoformat(c["date"]) > FRIDAY for c in checkins)
    assert second.deleted["team_checkin"] == first.written["team_checkin"]
    assert second.deleted["goal_story_update"] == first.written["goal_story_update"]
    counts = await table_counts(engine)
    assert counts["actors"] == 15 and counts["teams"] == 4 and counts["goal_stories"] == 4
    assert counts["team_checkins"] == second.written["team_checkin"] + 1
    # Deleting a check-in keeps its events: both weeks' events are there, plus the user's own.
    assert counts["coordination_events"] == first.events + second.events + 1
    assert (await documents(reader, "team_checkin", where=Condition("id", "eq", "mine-c")))[0]["date"] == "2026-05-11"


def test_nothing_is_dated_after_the_moment_of_seeding() -> None:
    noon = dt.datetime(2026, 5, 22, 12, 0, tzinfo=dt.UTC)
    week = build(FRIDAY, noon)
    stamps = [
        dt.datetime.fromisoformat(r["created_at"])
        for r in week.team_checkins + week.goal_story_updates + week.goal_stories
    ]
    assert stamps and max(stamps) <= noon
    # Some of Friday's check-ins have happened by noon UTC (Asia and Europe), not all (the Americas).
    fridays = [c for c in week.team_checkins if c["date"] == "2026-05-22"]
    assert 0 < len(fridays) < 11
    assert len(week.goal_story_updates) == 2 * len(GOALS)


def test_a_later_run_on_the_same_day_only_adds_check_ins() -> None:
    morning = build(FRIDAY, dt.datetime(2026, 5, 22, 9, 0, tzinfo=dt.UTC))
    evening = build(FRIDAY, dt.datetime(2026, 5, 22, 23, 0, tzinfo=dt.UTC))
    earlier = {c["id"]: c for c in morning.team_checkins}
    later = {c["id"]: c for c in evening.team_checkins}
    assert len(later) > len(earlier)
    assert all(later[i] == c for i, c in earlier.items())


def test_the_week_is_deterministic() -> None:
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    assert build(FRIDAY, now) == build(FRIDAY, now)


async def test_coco_seed_command_shows_progress(clean: AsyncEngine, database_url: str) -> None:
    run = await asyncio.to_thread(
        subprocess.run,
        [str(COCO), "seed", "--today", FRIDAY.isoformat()],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": database_url},
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    for expected in ("actors: 14 (14 new)", "teams: 3 (3 new)", "goal stories: 4 (4 new)"):
        assert expected in lines
    assert any(line.startswith("team check-ins: ") for line in lines)
    assert any(line.startswith("done: ") and "coverage 73%" in line for line in lines)
    counts = await table_counts(clean)
    assert counts["actors"] == 14 and counts["team_checkins"] > 0
