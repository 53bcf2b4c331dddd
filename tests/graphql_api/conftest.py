"""Helpers for the GraphQL tests: a client of the real app over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from graphql_helpers import snapshot
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import seeded


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def raw(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        return await self.http.post("/graphql", json={"query": query, "variables": variables or {}})

    async def __call__(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The data of a query that must succeed."""
        response = await self.raw(query, variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def errors(self, query: str, variables: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The errors of a query that must fail (never with an HTTP 5xx)."""
        response = await self.raw(query, variables)
        assert response.status_code < 500, response.text
        body = response.json()
        assert body.get("errors"), body
        return body["errors"]

    async def code(self, query: str, variables: dict[str, Any] | None = None) -> str:
        """The one error code of a failing query."""
        codes = {e.get("extensions", {}).get("code") for e in await self.errors(query, variables)}
        assert len(codes) == 1, codes
        return codes.pop()


@pytest_asyncio.fixture(loop_scope="session")
async def gql(server_url: str) -> AsyncIterator[GraphQLClient]:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as http:
        yield GraphQLClient(http)


# A small world with known values, nulls where ordering and filters need them.
ACTORS = [
    {"id": "a-1", "actor_type": "person", "name": "Ada", "role": "Engineer", "timezone": "Europe/London"},
    {"id": "a-2", "actor_type": "agent", "name": "Bot"},
    {"id": "a-3", "actor_type": "person", "name": "Cy", "role": "Designer", "timezone": "America/Chicago"},
    {"id": "a-4", "actor_type": "person", "name": "dee"},
]
TEAMS = [
    {"id": "t-1", "name": "Backend", "description": "APIs and data", "member_ids": ["a-2", "a-1"]},
    {"id": "t-2", "name": "Frontend", "member_ids": ["a-3"]},
    {"id": "t-3", "name": "Empty"},
]
GOAL_STORIES = [
    {
        "id": "g-1",
        "title": "Launch",
        "actor_ids": ["a-1"],
        "team_ids": ["t-1"],
        "timeframe": {"start": "2026-01-01", "end": "2026-03-31"},
        "created_at": "2026-01-01T09:00:00Z",
    },
    {
        "id": "g-2",
        "title": "API",
        "parent_id": "g-1",
        "team_ids": ["t-1", "t-2"],
        "actor_ids": ["a-3", "a-1"],
        "timeframe": {"start": "2026-02-01", "end": "2026-02-28"},
        "created_at": "2026-01-02T09:00:00Z",
    },
    {"id": "g-3", "title": "UI", "parent_id": "g-1", "description": "Screens", "created_at": "2026-01-03T09:00:00Z"},
    {
        "id": "g-4",
        "title": "Marketing",
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
    {
        "id": "c-2",
        "actor_id": "a-2",
        "team_id": "t-1",
        "date": "2026-05-19",
        "previously": ["crawl", "sum"],
        "created_at": "2026-05-19T10:00:00Z",
    },
    {
        "id": "c-3",
        "actor_id": "a-3",
        "team_id": "t-2",
        "date": "2026-05-20",
        "previously": ["mockups"],
        "next": ["ship", "test"],
        "created_at": "2026-05-20T10:00:00Z",
    },
    {"id": "c-4", "actor_id": "a-1", "team_id": "t-1", "date": "2026-05-21", "created_at": "2026-05-21T10:00:00Z"},
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
        "created_at": "2026-05-01T10:00:00Z",
    },
    {
        "id": "u-2",
        "actor_id": "a-1",
        "goal_story_id": "g-1",
        "date": "2026-05-08",
        "title": "Slip",
        "content": "Vendor late",
        "status": "at_risk",
        "progress_percent": 30,
        "created_at": "2026-05-08T10:00:00Z",
    },
    {
        "id": "u-3",
        "actor_id": "a-2",
        "goal_story_id": "g-2",
        "date": "2026-05-08",
        "title": "Draft",
        "content": "Spec drafted",
        "created_at": "2026-05-08T11:00:00Z",
    },
    {
        "id": "u-4",
        "actor_id": "a-3",
        "goal_story_id": "g-2",
        "date": "2026-05-15",
        "title": "Done",
        "content": "Shipped",
        "status": "completed",
        "progress_percent": 100,
        "created_at": "2026-05-15T10:00:00Z",
    },
]


async def seed_world(engine: AsyncEngine) -> None:
    world = {"actor": ACTORS, "team": TEAMS, "goal_story": GOAL_STORIES, "team_checkin": CHECKINS}
    await seeded(engine, {**world, "goal_story_update": UPDATES})


_seeded: dict[str, list] = {}


@pytest_asyncio.fixture(loop_scope="session")
async def world(engine: AsyncEngine) -> AsyncEngine:
    """The small world, for tests that only read: seeded again only when the tables hold anything else."""
    if not _seeded or await snapshot(engine) != _seeded:
        await seed_world(engine)
        _seeded.clear()
        _seeded.update(await snapshot(engine))
    return engine


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_world(clean: AsyncEngine) -> AsyncEngine:
    """The small world, seeded for one test that writes."""
    await seed_world(clean)
    return clean


@pytest.fixture
def reseed() -> Callable[[AsyncEngine], Awaitable[None]]:
    """Seeds the small world again, for a test that compares several runs of a write on it."""
    return seed_world
