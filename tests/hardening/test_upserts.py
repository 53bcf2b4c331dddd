"""Upserts are upserts under concurrency: fifty at once on one new id never conflict with each other.

The write service documents what they record: the row is inserted once, with the event of its
creation; each later upsert that changes the row records an event of the change, one that leaves
it as it was records none.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.store.writes import WriteService
from tests.conftest import RunningServer

CONCURRENT = 50


@pytest.fixture(scope="module")
def busy_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    """Enough connections for many transactions to race at once."""
    with RunningServer(database_url, pool_size=20) as url:
        yield url


async def _race(url: str, method: str, same: bool) -> list[httpx.Response]:
    def document(n: int) -> dict[str, object]:
        return {
            "id": "c-new",
            "actor_id": "a-1",
            "team_id": "t-1",
            "date": "2026-05-22",
            "next": ["the same step"] if same else [f"step {n}"],
        }

    limits = httpx.Limits(max_connections=CONCURRENT)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        if method == "PUT":
            requests = [
                client.put("/team_checkins?id=eq.c-new", json=document(n), headers={"Prefer": "return=representation"})
                for n in range(CONCURRENT)
            ]
        else:
            prefer = "resolution=merge-duplicates, return=representation"
            requests = [
                client.post("/team_checkins", json=[document(n)], headers={"Prefer": prefer}) for n in range(CONCURRENT)
            ]
        return await asyncio.gather(*requests)


async def _stored(engine: AsyncEngine) -> tuple[int, list[tuple[str, str]]]:
    async with engine.connect() as conn:
        rows = await conn.scalar(text("SELECT count(*) FROM team_checkins WHERE id = 'c-new'"))
        events = [
            tuple(r) for r in await conn.execute(text("SELECT event_type, reference_id FROM coordination_events"))
        ]
    return rows, events


@pytest.mark.parametrize("method", ["PUT", "POST"])
@pytest.mark.parametrize("same", [True, False], ids=["same-document", "different-documents"])
async def test_concurrent_upserts_of_one_new_id(busy_url: str, writer: WriteService, method: str, same: bool) -> None:
    await writer.create("actor", [{"id": "a-1", "actor_type": "agent", "name": "Bot"}])
    await writer.create("team", [{"id": "t-1", "name": "T", "member_ids": ["a-1"]}])
    answers = await _race(busy_url, method, same)
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: 1, 200: CONCURRENT - 1}, [(a.status_code, a.text) for a in answers if a.status_code >= 300]
    assert all(a.json()[0]["id"] == "c-new" for a in answers)
    rows, events = await _stored(writer.engine)
    assert rows == 1
    # The creation, then one event per upsert that changed the row (each changes it when they differ).
    expected = 1 if same else CONCURRENT
    assert events == [("team_checkin", "c-new")] * expected
