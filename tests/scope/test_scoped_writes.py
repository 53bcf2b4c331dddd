"""What a write shows and touches, for a write token limited to t-1: its updates and deletes find only rows
it may read (another team's rows do not exist to it: nothing changed, nothing counted), and what they return
is read with its scope, embeds included."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.hardening.test_actor_writes import snapshot

from .conftest import bearer, seed_world, token

WRITER = token(["t-1"], scope="write")


async def test_updates_and_deletes_find_no_foreign_row(scoped_url: str, clean: AsyncEngine) -> None:
    await seed_world(clean)
    before = await snapshot(clean)
    headers = {**bearer(WRITER), "Prefer": "return=representation,count=exact"}
    async with httpx.AsyncClient(base_url=scoped_url, timeout=30, headers=headers) as client:
        patched = await client.patch("/team_checkins", params={"team_id": "eq.t-9"}, json={"blockers": ["x"]})
        assert (patched.status_code, patched.json()) == (200, []), patched.text
        assert patched.headers["content-range"] == "*/0"
        deleted = await client.delete("/team_checkins", params={"id": "in.(c-3,c-4,c-5)"})
        assert (deleted.status_code, deleted.json()) == (200, []), deleted.text
        renamed = await client.patch("/goal_stories", params={"id": "eq.g-4"}, json={"title": "mine now"})
        assert renamed.json() == []
        graphql = await client.post(
            "/graphql", json={"query": 'mutation { deleteTeamCheckin(id: "c-4") { teamCheckin { id } } }'}
        )
        assert graphql.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND", graphql.text
        assert await snapshot(clean) == before

        # Its own rows: changed, and shown with only what it may read (g-1's children g-2 and g-4 are not).
        shown = await client.patch(
            "/goal_stories", params={"id": "eq.g-1", "select": "id,title,children(id),actors(id)"}, json={"title": "L"}
        )
        assert shown.json() == [{"id": "g-1", "title": "L", "children": [], "actors": [{"id": "a-1"}]}], shown.text
