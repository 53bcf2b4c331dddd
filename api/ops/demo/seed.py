"""`coco seed`: the demo organisation and its week, written through the write service.

What it writes: three teams (Backend, Frontend, Marketing) of 11 people and 3
agents, the "Launch PSC 2.0" goal story with three sub-goals, a week of team
check-ins from about 75% of the members on each working day (some with
blockers), and two goal story updates from each goal's owner, one at the start
and one at the end of the week. Check-ins and updates go through
`WriteService.create`, so each has its coordination event, as if typed in.

The week is the seven days ending today (UTC), or `--today`; check-ins fall on
its working days at a plausible morning hour in each person's timezone. Dates
move with the calendar so the data always looks current; nothing is dated after
the moment the seed runs, so on the day itself only the check-ins whose hour has
passed exist (a later run that day adds the rest).

Running it again replaces the demo data and nothing else. Every demo row has a
fixed id starting with `demo-` (`demo-p-quinn`, `demo-t-backend`,
`demo-c-<date>-<team>-<person>`, ...), so a run can tell its rows from anyone
else's without remembering anything. It cannot simply delete and re-create
them: coordination events can be deleted by nobody, and an actor that has
events (or check-ins, or team memberships held by other people's teams) cannot
be deleted at all. Instead:

- actors, teams and goal stories are upserted (`OnConflict.MERGE`) with every
  field given, so a demo row that someone edited is put back and one that was
  deleted is re-created; rows with other ids are never touched;
- the week's check-ins and updates are upserted the same way, with every field
  (created_at included) fixed by the date: a re-run on the same day finds them
  identical and writes nothing, so no new events appear; a demo check-in that
  someone edited is put back, which is an edit and so records one event;
- demo check-ins and updates that are not part of this week any more (a run on a
  later day) are deleted. Their coordination events stay, as the rules require
  for every deleted check-in or update: the audit trail shows the earlier demo.

Rows outside the `demo-` prefix are never read, changed or deleted (so ids starting with
`demo-` are the seed's: a check-in of one's own named `demo-c-...` would be taken for demo). A demo row
someone else's row refers to is never deleted either (only check-ins and
updates are, and nothing refers to those). Each step is its own transaction: a
run that fails half way leaves part of the demo, which the next run completes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from api.ops.demo.data import BLOCKERS, DEMO_PREFIX, GOALS, PEOPLE, TEAMS, WORK, Person
from api.plan import And, Condition, Not
from api.store import OnConflict, WriteService

COVERAGE = 0.75
# Share of check-ins that report a blocker.
BLOCKED = 0.18
CHECKIN_PREFIX = f"{DEMO_PREFIX}c-"
UPDATE_PREFIX = f"{DEMO_PREFIX}u-"
UTC = dt.UTC

Progress = Callable[[str], None]


@dataclass
class DemoWeek:
    """The demo rows for one week, as CoCo documents, in the order they are written."""

    actors: list[dict[str, Any]]
    teams: list[dict[str, Any]]
    goal_stories: list[dict[str, Any]]
    team_checkins: list[dict[str, Any]]
    goal_story_updates: list[dict[str, Any]]
    # (person id, team id, date) for every working-day slot in the past: the coverage denominator.
    slots: list[tuple[str, str, dt.date]] = field(default_factory=list)


@dataclass
class SeedResult:
    written: dict[str, int] = field(default_factory=dict)  # entity -> demo rows now present
    inserted: dict[str, int] = field(default_factory=dict)  # entity -> rows that were new
    deleted: dict[str, int] = field(default_factory=dict)  # entity -> stale demo rows removed
    events: int = 0  # coordination events this run recorded
    slots: int = 0  # working-day check-in slots in the week


def _fraction(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) for the given key (the same on every machine)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _local_time(person: Person, day: dt.date, hour: int, minute: int) -> dt.datetime:
    zone = ZoneInfo(person.timezone) if person.timezone else UTC
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(UTC)


def build(today: dt.date, now: dt.datetime) -> DemoWeek:
    """The demo rows for the seven days ending `today`, leaving out anything after `now`."""
    people = {p.key: p for p in PEOPLE}
    teams = {t.key: t for t in TEAMS}
    week = [today - dt.timedelta(days=n) for n in range(6, -1, -1)]
    workdays = [d for d in week if d.weekday() < 5]

    actors = [
        {
            "id": p.id,
            "actor_type": "agent" if p.agent else "person",
            "name": p.name,
            "role": p.role,
            "timezone": p.timezone,
        }
        for p in PEOPLE
    ]
    team_rows = [
        {"id": t.id, "name": t.name, "description": t.description, "member_ids": [people[k].id for k in t.members]}
        for t in TEAMS
    ]
    goal_rows = [
        {
            "id": g.id,
            "title": g.title,
            "description": g.description,
            "actor_ids": [people[k].id for k in g.actors],
            "team_ids": [teams[k].id for k in g.teams],
            "parent_id": f"{DEMO_PREFIX}g-{g.parent}" if g.parent else None,
            "timeframe": {
                "start": (today + dt.timedelta(days=g.starts)).isoformat(),
                "end": (today + dt.timedelta(days=g.ends)).isoformat(),
            },
            "created_at": _local_time(people[g.owner], today + dt.timedelta(days=g.starts), 9, 0).isoformat(),
        }
        for g in GOALS
    ]

    week_rows = DemoWeek(actors, team_rows, goal_rows, [], [])
    chosen: list[tuple[Person, str, dt.date, dt.datetime]] = []
    for day in workdays:
        # About 75% of each day's members check in, chosen without regard to the hour, so
        # that a later run on the same day only adds the check-ins whose hour has come.
        day_slots = []
        for team in TEAMS:
            for key in team.members:
                person = people[key]
                minutes = int(_fraction("time", day, team.key, key) * 150)
                day_slots.append((person, team.key, day, _local_time(person, day, 8 + minutes // 60, minutes % 60)))
        day_slots.sort(key=lambda s: _fraction("present", s[2], s[1], s[0].key))
        present = day_slots[: round(len(day_slots) * COVERAGE)]
        chosen.extend(s for s in present if s[3] <= now)
        week_rows.slots.extend((p.id, teams[t].id, d) for p, t, d, at in day_slots if at <= now)

    done: dict[tuple[str, str], int] = {}
    for person, team_key, day, at in sorted(chosen, key=lambda s: (s[2], s[1], s[0].key)):
        work = WORK[(person.key, team_key)]
        step = done.get((person.key, team_key), 0)
        done[(person.key, team_key)] = step + 1
        blocked = _fraction("blocked", day, team_key, person.key) < BLOCKED
        pool = BLOCKERS[team_key]
        week_rows.team_checkins.append(
            {
                "id": f"{CHECKIN_PREFIX}{day.isoformat()}-{team_key}-{person.key}",
                "actor_id": person.id,
                "team_id": teams[team_key].id,
                "date": day.isoformat(),
                "previously": [work[step % len(work)]],
                "next": [work[(step + 1) % len(work)]],
                "blockers": [pool[int(_fraction("which", day, person.key) * len(pool))]] if blocked else None,
                "created_at": at.isoformat(),
            }
        )

    for goal in GOALS:
        owner = people[goal.owner]
        written = [(day, _local_time(owner, day, 16, 30)) for day in workdays]
        written = [(day, at) for day, at in written if at <= now]
        # One update as the week starts and one as it ends (the latest working day already over);
        # on the week's first day only the first is written, hence strict=False.
        ends = [*written[:1], *written[1:][-1:]]
        for (day, at), (title, content, status, progress) in zip(ends, goal.updates, strict=False):
            week_rows.goal_story_updates.append(
                {
                    "id": f"{UPDATE_PREFIX}{goal.key}-{day.isoformat()}",
                    "actor_id": owner.id,
                    "goal_story_id": goal.id,
                    "date": day.isoformat(),
                    "title": title,
                    "content": content,
                    "status": status,
                    "progress_percent": progress,
                    "created_at": at.isoformat(),
                }
            )
    return week_rows


async def seed(
    writer: WriteService,
    *,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> SeedResult:
    """Write the demo week ending `today` (default: today in UTC), replacing earlier demo rows."""
    now = now or dt.datetime.now(UTC)
    today = today or now.astimezone(UTC).date()
    week = build(today, now)
    result = SeedResult(slots=len(week.slots))
    say = progress or (lambda line: None)
    say(f"seeding the demo week {today - dt.timedelta(days=6)} to {today}")

    for entity_name, documents in _steps(week):
        if entity_name in ("team_checkin", "goal_story_update"):
            prefix = CHECKIN_PREFIX if entity_name == "team_checkin" else UPDATE_PREFIX
            stale = And(
                (Condition("id", "like", f"{prefix}%"), Not(Condition("id", "in", [d["id"] for d in documents])))
            )
            removed = await writer.delete(entity_name, stale)
            result.deleted[entity_name] = len(removed.rows)
        written = await writer.create(entity_name, documents, on_conflict=OnConflict.MERGE)
        result.written[entity_name] = len(written.rows)
        result.inserted[entity_name] = len(written.inserted_ids)
        result.events += len(written.events)
        changed = (
            len(written.events) - len(written.inserted_ids)
            if entity_name in ("team_checkin", "goal_story_update")
            else None
        )
        say(
            _describe(
                entity_name, len(written.rows), len(written.inserted_ids), changed, result.deleted.get(entity_name, 0)
            )
        )
    coverage = result.written["team_checkin"] / result.slots if result.slots else 0.0
    say(
        f"done: {result.events} coordination event(s) recorded; check-in coverage {coverage:.0%} "
        f"of {result.slots} working-day slots"
    )
    return result


def _steps(week: DemoWeek) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    # Referenced rows first; the goal stories list the parent before its children.
    yield "actor", week.actors
    yield "team", week.teams
    yield "goal_story", week.goal_stories
    yield "team_checkin", week.team_checkins
    yield "goal_story_update", week.goal_story_updates


def _describe(entity_name: str, total: int, new: int, changed: int | None, deleted: int) -> str:
    words = {
        "actor": "actors",
        "team": "teams",
        "goal_story": "goal stories",
        "team_checkin": "team check-ins",
        "goal_story_update": "goal story updates",
    }[entity_name]
    parts = [f"{new} new"]
    if changed is not None:
        parts.append(f"{changed} put back")
    if deleted:
        parts.append(f"{deleted} from an earlier week removed")
    return f"{words}: {total} ({', '.join(parts)})"
