"""Fixtures for the REST layer: an HTTP client on the real server, and a small world of rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

JSON = {"Content-Type": "application/json"}
REPRESENTATION = {"Content-Type": "application/json", "Prefer": "return=representation"}


@pytest_asyncio.fixture(loop_scope="session")
async def http(server_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server_url, timeout=60) as client:
        yield client


async def post(http: httpx.AsyncClient, resource: str, body: Any, **headers: str) -> httpx.Response:
    response = await http.post(f"/{resource}", json=body, headers={**REPRESENTATION, **headers})
    assert response.status_code in (200, 201), response.text
    return response


@pytest_asyncio.fixture(loop_scope="session")
async def world(clean: AsyncEngine, http: httpx.AsyncClient) -> dict[str, Any]:
    """Two people, an agent, two teams, goal stories in two levels, check-ins and updates."""
    await post(
        http,
        "actors",
        [
            {
                "id": "p-1",
                "actor_type": "person",
                "name": "Quinn Reed",
                "role": "Product Manager",
                "timezone": "America/Chicago",
            },
            {
                "id": "p-2",
                "actor_type": "person",
                "name": "Ada Lovelace",
                "role": "Engineer",
                "timezone": "Europe/London",
            },
            {
                "id": "a-1",
                "actor_type": "agent",
                "name": "Research Bot",
                "role": "Compiles market research",
                "timezone": "UTC",
            },
        ],
    )
    await post(
        http,
        "teams",
        [
            {"id": "t-1", "name": "Product", "description": "Shape the product", "member_ids": ["p-1", "a-1"]},
            {"id": "t-2", "name": "Engineering", "description": "Build it", "member_ids": ["p-2", "p-1"]},
        ],
    )
    for story in [
        {
            "id": "g-1",
            "title": "Improve onboarding",
            "description": "Reduce time-to-value",
            "team_ids": ["t-1"],
            "actor_ids": ["p-1", "a-1"],
            "timeframe": {"start": "2026-01-06", "end": "2026-03-31"},
            "created_at": "2026-01-01T09:00:00Z",
        },
        {
            "id": "g-2",
            "title": "Faster signup",
            "parent_id": "g-1",
            "team_ids": ["t-2"],
            "actor_ids": ["p-2"],
            "timeframe": {"start": "2026-02-01", "end": "2026-02-28"},
            "created_at": "2026-01-02T09:00:00Z",
        },
        {
            "id": "g-3",
            "title": "Docs refresh",
            "parent_id": "g-1",
            "team_ids": [],
            "actor_ids": [],
            "timeframe": {"start": "2025-11-01", "end": "2026-01-31"},
            "created_at": "2026-01-03T09:00:00Z",
        },
    ]:
        await post(http, "goal_stories", story)
    await post(
        http,
        "team_checkins",
        [
            {
                "id": "c-1",
                "actor_id": "p-1",
                "team_id": "t-1",
                "date": "2026-05-18",
                "previously": ["planned Q3"],
                "next": ["write the brief"],
                "blockers": [],
            },
            {
                "id": "c-2",
                "actor_id": "a-1",
                "team_id": "t-1",
                "date": "2026-05-20",
                "previously": ["crawled competitor sites"],
                "next": ["summarise pricing"],
                "blockers": ["rate limits"],
            },
            {
                "id": "c-3",
                "actor_id": "p-2",
                "team_id": "t-2",
                "date": "2026-05-22",
                "previously": ["fixed login bug"],
                "next": ["review onboarding flow"],
                "blockers": [],
            },
        ],
    )
    for update in [
        {
            "id": "u-1",
            "actor_id": "p-1",
            "goal_story_id": "g-1",
            "date": "2026-05-01",
            "title": "Kickoff",
            "content": "The onboarding project started well.",
            "status": "on_track",
            "progress_percent": 10,
        },
        {
            "id": "u-2",
            "actor_id": "p-1",
            "goal_story_id": "g-1",
            "date": "2026-05-15",
            "title": "Slipping",
            "content": "Design review took longer than planned.",
            "status": "at_risk",
            "progress_percent": 30,
        },
        {
            "id": "u-3",
            "actor_id": "p-2",
            "goal_story_id": "g-2",
            "date": "2026-05-10",
            "title": "Signup form",
            "content": "New signup form in review.",
            "status": "on_track",
        },
    ]:
        await post(http, "goal_story_updates", update)
    return {}
