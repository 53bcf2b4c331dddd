"""Team-scoped reads: a world of several teams, tokens minted as `coco token create` mints them, and the
oracle of what a scope may see, worked out here in Python from the rules (not from the server's SQL)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.edge.auth import Access
from api.edge.tokens import create
from tests.conftest import TABLES, RunningServer, seeded

SECRET = "a-shared-secret-of-at-least-32-characters!"
ACCESS = Access.configure(jwt_secret=SECRET)


def token(teams: list[str] | None, *, actor: str | None = None, scope: str = "read") -> str:
    """A token as `coco token create --teams ... --actor ... --scope ... --expires 1d` mints it (minted when the
    tests are collected: it must outlive the rest of a slow suite run before them)."""
    return create(ACCESS, scope=scope, expires_s=86400, actor=actor, teams=teams)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


ADMIN = token(None, scope="admin")
# Limited to teams, and an admin: the admin scope sees everything whatever the claim says.
ADMIN_WITH_TEAMS = token(["t-1"], scope="admin")
UNLIMITED = token(None)


@pytest.fixture(scope="module")
def scoped_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    with RunningServer(database_url, jwt_secret=SECRET) as url:
        yield url


# Three teams with members, one team no one sees into, goal stories across teams, a parent in another
# team, an actor in no team, check-ins and updates in each (the writes record the events).
ACTORS = [
    {"id": "a-1", "actor_type": "person", "name": "Ada", "role": "Engineer", "timezone": "Europe/London"},
    {"id": "a-2", "actor_type": "agent", "name": "Bot"},
    {"id": "a-3", "actor_type": "person", "name": "Cy", "role": "Designer", "timezone": "America/Chicago"},
    {"id": "a-4", "actor_type": "person", "name": "dee"},
    {"id": "a-5", "actor_type": "agent", "name": "Eve", "role": "Spy"},
]
TEAMS = [
    {"id": "t-1", "name": "Backend", "description": "APIs and data", "member_ids": ["a-2", "a-1"]},
    {"id": "t-2", "name": "Frontend", "member_ids": ["a-3", "a-1"]},
    {"id": "t-3", "name": "Empty"},
    {"id": "t-9", "name": "Secret", "description": "classified", "member_ids": ["a-5"]},
]
GOAL_STORIES = [
    {
        "id": "g-1",
        "title": "Launch",
        "actor_ids": ["a-1", "a-5"],
        "team_ids": ["t-1"],
        "timeframe": {"start": "2026-01-01", "end": "2026-03-31"},
        "created_at": "2026-01-01T09:00:00Z",
    },
    {
        "id": "g-2",
        "title": "API",
        "parent_id": "g-1",
        "team_ids": ["t-9", "t-2"],
        "actor_ids": ["a-3", "a-1"],
        "timeframe": {"start": "2026-02-01", "end": "2026-02-28"},
        "created_at": "2026-01-02T09:00:00Z",
    },
    {"id": "g-3", "title": "UI", "parent_id": "g-2", "description": "Screens", "created_at": "2026-01-03T09:00:00Z"},
    {
        "id": "g-4",
        "title": "Heist",
        "team_ids": ["t-9"],
        "actor_ids": ["a-5"],
        "parent_id": "g-1",
        "timeframe": {"start": "2026-04-01", "end": "2026-06-30"},
        "created_at": "2026-01-04T09:00:00Z",
    },
]
CHECKINS = [
    {
        "id": "c-1",
        "actor_id": "a-1",
        "team_id": "t-1",
        "date": "2026-05-18",
        "next": ["ship"],
        "blockers": ["review"],
        "created_at": "2026-05-18T10:00:00+02:00",
    },
    {"id": "c-2", "actor_id": "a-2", "team_id": "t-1", "date": "2026-05-19", "previously": ["crawl", "sum"]},
    {"id": "c-3", "actor_id": "a-3", "team_id": "t-2", "date": "2026-05-20", "next": ["ship", "test"]},
    {"id": "c-4", "actor_id": "a-5", "team_id": "t-9", "date": "2026-05-21", "blockers": ["the vault"]},
    {"id": "c-5", "actor_id": "a-1", "team_id": "t-9", "date": "2026-05-21", "previously": ["secret work"]},
]
UPDATES = [
    {
        "id": "u-1",
        "actor_id": "a-1",
        "goal_story_id": "g-1",
        "date": "2026-05-01",
        "title": "Kickoff",
        "content": "Started",
        "status": "on_track",
        "progress_percent": 10,
    },
    {
        "id": "u-2",
        "actor_id": "a-5",
        "goal_story_id": "g-4",
        "date": "2026-05-08",
        "title": "Cased",
        "content": "The vault",
        "status": "at_risk",
        "progress_percent": 30,
    },
    {"id": "u-3", "actor_id": "a-2", "goal_story_id": "g-2", "date": "2026-05-08", "title": "Draft", "content": "Spec"},
    {"id": "u-4", "actor_id": "a-3", "goal_story_id": "g-3", "date": "2026-05-15", "title": "Done", "content": "Yes"},
]


async def seed_world(engine: AsyncEngine) -> None:
    world = {"actor": ACTORS, "team": TEAMS, "goal_story": GOAL_STORIES, "team_checkin": CHECKINS}
    await seeded(engine, {**world, "goal_story_update": UPDATES})


@dataclass(frozen=True)
class Seen:
    """The ids of each table's rows a scope may see."""

    ids: dict[str, set[str]]

    def __getitem__(self, table: str) -> set[str]:
        return self.ids[table]


async def rows_of(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    async with engine.connect() as conn:
        for table in (t.strip() for t in TABLES.split(",")):
            found = await conn.execute(text(f"SELECT coalesce(json_agg(t), '[]') FROM {table} t"))
            out[table] = found.scalar_one()
    return out


async def seen_by(engine: AsyncEngine, teams: set[str], actor: str | None) -> Seen:
    """The rules of issue 15 item 4, applied to the rows as they are."""
    rows = await rows_of(engine)
    team_ids = {t["id"] for t in rows["teams"] if t["id"] in teams}
    checkins = {c["id"] for c in rows["team_checkins"] if c["team_id"] in teams}
    stories = {g["id"] for g in rows["goal_stories"] if set(g["team_ids"] or ()) & teams}
    updates = {u["id"] for u in rows["goal_story_updates"] if u["goal_story_id"] in stories}
    events = {
        e["id"]
        for e in rows["coordination_events"]
        if (e["event_type"] == "team_checkin" and e["reference_id"] in checkins)
        or (e["event_type"] == "goal_story_update" and e["reference_id"] in updates)
    }
    members = {m for t in rows["teams"] if t["id"] in teams for m in (t["member_ids"] or ())}
    actors = {a["id"] for a in rows["actors"] if a["id"] in members or a["id"] == actor}
    return Seen(
        {
            "actors": actors,
            "teams": team_ids,
            "team_checkins": checkins,
            "goal_stories": stories,
            "goal_story_updates": updates,
            "coordination_events": events,
        }
    )


async def keep_only(engine: AsyncEngine, seen: Seen) -> None:
    """Delete every row the scope may not see (references to them left dangling, as a reader that cannot
    see a row finds none), so that an unlimited read of what is left is what the scope should read."""
    async with engine.begin() as conn:
        # Without the foreign keys' triggers: a visible row may name an invisible one.
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table, ids in seen.ids.items():
            await conn.execute(text(f"DELETE FROM {table} WHERE NOT (id = ANY(:ids))"), {"ids": sorted(ids)})
