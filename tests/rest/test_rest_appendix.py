"""Every request the reference server documents (the brief's appendix), sent exactly as written."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from api.ops.schemas import validator
from tests.conftest import count_rows, table_counts

JSON = {"Content-Type": "application/json"}
REPRESENTATION = {"Content-Type": "application/json", "Prefer": "return=representation"}


async def test_the_documented_requests_in_order(clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    person = {
        "id": "p-1",
        "actor_type": "person",
        "name": "Quinn Reed",
        "role": "Product Manager",
        "timezone": "America/Chicago",
    }
    r = await http.post("/actors", json=person, headers=REPRESENTATION)
    assert r.status_code == 201
    assert r.json() == [person]

    r = await http.post(
        "/actors",
        json={"actor_type": "agent", "name": "Research Bot", "role": "Compiles ongoing market research"},
        headers=REPRESENTATION,
    )
    assert r.status_code == 201
    [agent] = r.json()
    agent_id = agent["id"]
    assert uuid.UUID(agent_id)
    assert agent == {
        "id": agent_id,
        "actor_type": "agent",
        "name": "Research Bot",
        "role": "Compiles ongoing market research",
    }
    validator("actor").validate(agent)

    team = {
        "id": "t-1",
        "name": "Product",
        "description": "Shape and maintain the core product",
        "member_ids": ["p-1", agent_id],
    }
    r = await http.post("/teams", json=team, headers=REPRESENTATION)
    assert r.status_code == 201
    assert r.json() == [team]

    story = {
        "id": "g-1",
        "title": "Improve new customer onboarding experience",
        "description": "Reduce time-to-value from 10 days to under 3.",
        "team_ids": ["t-1"],
        "actor_ids": ["p-1", agent_id],
        "timeframe": {"start": "2026-01-06", "end": "2026-03-31"},
    }
    r = await http.post("/goal_stories", json=story, headers=REPRESENTATION)
    assert r.status_code == 201
    [stored] = r.json()
    assert stored["timeframe"] == {"start": "2026-01-06", "end": "2026-03-31"}
    assert {k: v for k, v in stored.items() if k != "created_at"} == story
    validator("goal_story").validate(stored)

    events = await count_rows(clean, "coordination_events")
    r = await http.post(
        "/team_checkins",
        json={
            "actor_id": "p-1",
            "team_id": "t-1",
            "date": "2026-05-22",
            "previously": ["..."],
            "next": ["..."],
            "blockers": ["..."],
        },
        headers=JSON,
    )
    assert r.status_code == 201
    assert r.content == b""
    assert await count_rows(clean, "coordination_events") == events + 1

    r = await http.post(
        "/goal_story_updates",
        json={
            "actor_id": "p-1",
            "goal_story_id": "g-1",
            "date": "2026-05-22",
            "title": "...",
            "content": "...",
            "status": "on_track",
            "progress_percent": 70,
        },
        headers=JSON,
    )
    assert r.status_code == 201
    assert await count_rows(clean, "coordination_events") == events + 2

    r = await http.get("/team_checkins?team_id=eq.t-1&date=gte.2026-01-01")
    assert r.status_code == 200
    [checkin] = r.json()
    assert checkin["team_id"] == "t-1" and checkin["date"] == "2026-05-22"
    validator("team_checkin").validate(checkin)

    await http.post("/team_checkins", json={"actor_id": "p-1", "team_id": "t-1", "date": "2026-05-17"}, headers=JSON)
    await http.post("/team_checkins", json={"actor_id": "p-1", "team_id": "t-1", "date": "2026-05-19"}, headers=JSON)
    r = await http.get("/team_checkins?team_id=eq.t-1&date=gte.2026-05-18&date=lte.2026-05-22&order=date.desc")
    assert [c["date"] for c in r.json()] == ["2026-05-22", "2026-05-19"]

    for i in range(45):
        await http.post(
            "/goal_stories",
            json={"id": f"g-page-{i:02d}", "title": f"Story {i}", "created_at": f"2026-02-01T00:{i:02d}:00Z"},
            headers=JSON,
        )
    r = await http.get("/goal_stories?order=created_at.desc&limit=20&offset=20")
    assert r.status_code == 200
    page = r.json()
    assert len(page) == 20
    everything = (await http.get("/goal_stories?order=created_at.desc")).json()
    assert page == everything[20:40]
    assert r.headers["content-range"] == "20-39/*"

    await http.post(
        "/goal_story_updates",
        json={"actor_id": "p-1", "goal_story_id": "g-1", "date": "2026-05-29", "title": "Later", "content": "..."},
        headers=JSON,
    )
    r = await http.get("/goal_story_updates?goal_story_id=eq.g-1&order=date.desc")
    assert [u["date"] for u in r.json()] == ["2026-05-29", "2026-05-22"]

    r = await http.get("/actors?id=eq.p-1")
    assert r.json() == [person]

    r = await http.patch("/actors?id=eq.p-1", json={"role": "Head of Product"}, headers=JSON)
    assert r.status_code == 204
    assert (await http.get("/actors?id=eq.p-1")).json()[0]["role"] == "Head of Product"

    r = await http.get("/teams?member_ids=cs.{p-1}")
    assert [t["id"] for t in r.json()] == ["t-1"]

    r = await http.get("/coordination_events?order=occurred_at.desc&limit=50")
    assert r.status_code == 200
    latest = r.json()
    assert len(latest) == 5
    assert [e["occurred_at"] for e in latest] == sorted((e["occurred_at"] for e in latest), reverse=True)
    for event in latest:
        validator("coordination_event").validate(event)

    before = await count_rows(clean, "coordination_events")
    r = await http.post(
        "/team_checkins",
        json=[
            {"actor_id": "p-1", "team_id": "t-1", "date": "2026-06-01", "next": ["a"]},
            {"actor_id": agent_id, "team_id": "t-1", "date": "2026-06-01", "next": ["b"]},
        ],
        headers=JSON,
    )
    assert r.status_code == 201
    assert await count_rows(clean, "coordination_events") == before + 2

    counts = await table_counts(clean)
    r = await http.post(
        "/coordination_events",
        json={
            "id": "e-x",
            "actor_id": "p-1",
            "event_type": "team_checkin",
            "reference_id": "c-x",
            "occurred_at": "2026-01-01T00:00:00Z",
        },
        headers=JSON,
    )
    assert 400 <= r.status_code < 500
    assert set(r.json()) == {"code", "message", "details", "hint"}
    assert await table_counts(clean) == counts

    r = await http.delete("/actors?id=eq.p-1")
    assert r.status_code == 409
    assert r.json()["code"] == "23503"
    assert await table_counts(clean) == counts

    r = await http.post("/actors", json={"id": "p-9", "actor_type": "person", "name": "Leaving"}, headers=JSON)
    r = await http.delete("/actors?id=eq.p-9")
    assert r.status_code == 204
    assert (await http.get("/actors?id=eq.p-9")).json() == []
