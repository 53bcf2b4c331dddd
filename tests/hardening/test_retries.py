"""An agent that retries a create with the same client id never duplicates anything."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import table_counts

ACTOR = {"id": "retry-1", "actor_type": "agent", "name": "Retrying Bot"}


async def test_rest_retry_conflicts_or_upserts_when_asked(server_url: str, clean: AsyncEngine) -> None:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        assert (await client.post("/actors", json=ACTOR)).status_code == 201
        after_first = await table_counts(clean)
        again = await client.post("/actors", json=ACTOR)
        assert again.status_code == 409
        assert again.json()["code"] == "23505"
        assert await table_counts(clean) == after_first

        merged = await client.post(
            "/actors",
            json={**ACTOR, "name": "Renamed Bot"},
            headers={"Prefer": "resolution=merge-duplicates,return=representation"},
        )
        assert merged.status_code == 200, merged.text
        assert merged.json()[0]["name"] == "Renamed Bot"
        ignored = await client.post("/actors", json=ACTOR, headers={"Prefer": "resolution=ignore-duplicates"})
        assert ignored.status_code == 201
        rows = (await client.get("/actors?id=eq.retry-1")).json()
    assert [r["name"] for r in rows] == ["Renamed Bot"]
    assert (await table_counts(clean))["actors"] == 1


async def test_rest_retried_checkin_records_one_event(server_url: str, clean: AsyncEngine) -> None:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        assert (await client.post("/actors", json=ACTOR)).status_code == 201
        assert (
            await client.post("/teams", json={"id": "retry-team", "name": "Retry", "member_ids": ["retry-1"]})
        ).status_code == 201
        checkin = {
            "id": "retry-checkin",
            "team_id": "retry-team",
            "actor_id": "retry-1",
            "date": "2026-11-24",
            "previously": ["Same report, sent twice"],
        }
        first = await client.post("/team_checkins", json=checkin)
        assert first.status_code == 201, first.text
        before = await table_counts(clean)
        assert (await client.post("/team_checkins", json=checkin)).status_code == 409
    assert await table_counts(clean) == before
    assert before["coordination_events"] == 1


async def test_graphql_retry_conflicts(server_url: str, clean: AsyncEngine) -> None:
    mutation = 'mutation { createActor(input: {id: "retry-1", actorType: AGENT, name: "Bot"}) { actor { id } } }'
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        first = await client.post("/graphql", json={"query": mutation})
        assert "errors" not in first.json(), first.text
        after_first = await table_counts(clean)
        again = await client.post("/graphql", json={"query": mutation})
    error = again.json()["errors"][0]
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["extensions"]["ids"] == ["retry-1"]
    assert await table_counts(clean) == after_first
