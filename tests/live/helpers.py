"""Seeding and collecting for the live event tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.store.writes import WriteService


async def seed(writer: WriteService, *, teams: int = 2, actors: int = 2) -> dict[str, list[str]]:
    actor_ids = [f"a-{i}" for i in range(actors)]
    team_ids = [f"t-{i}" for i in range(teams)]
    await writer.create("actor", [{"id": a, "actor_type": "person", "name": a} for a in actor_ids])
    await writer.create("team", [{"id": t, "name": t, "member_ids": actor_ids} for t in team_ids])
    return {"actors": actor_ids, "teams": team_ids}


async def checkins(writer: WriteService, n: int, *, actor: str = "a-0", team: str = "t-0") -> list[dict[str, Any]]:
    """n check-ins in one write; their events in cursor order."""
    result = await writer.create(
        "team_checkin",
        [{"actor_id": actor, "team_id": team, "date": "2026-05-22", "next": [f"item {i}"]} for i in range(n)],
    )
    return result.events


async def table_cursors(engine: AsyncEngine, after: int = 0) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT seq FROM coordination_events WHERE seq > :a ORDER BY seq"), {"a": after})
        return [r[0] for r in rows]


# A timeout argument: running out of time is an assertion saying how many events came.
async def take(events: AsyncIterator[dict[str, Any]], n: int, timeout: float = 60.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
    """The next n events (failing, not hanging, if they do not come)."""
    got: list[dict[str, Any]] = []

    async def collect() -> None:
        async for event in events:
            got.append(event)
            if len(got) == n:
                return

    try:
        await asyncio.wait_for(collect(), timeout)
    except TimeoutError:
        raise AssertionError(f"only {len(got)} of {n} events arrived") from None
    return got


async def caught_up(feed: Any, cursor: int) -> None:
    """Wait until the feed has fanned out `cursor` (it announces no progress: its public position is polled)."""
    async with asyncio.timeout(60):
        while (feed.position or 0) < cursor:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def live_subscribers(base_url: str) -> int:
    """The server's open live subscriptions (SSE and GraphQL), as its /metrics reports them."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        body = (await client.get("/metrics")).text
    for line in body.splitlines():
        if line.startswith("coco_live_subscribers "):
            return int(float(line.split()[1]))
    raise AssertionError("/metrics reports no coco_live_subscribers")


async def until_subscribers(
    base_url: str, n: int, *, unless: Callable[[], bool] = lambda: False, within: float = 30.0
) -> None:
    """Wait until the server holds exactly `n` live subscriptions (or `unless()` holds): a subscription
    counts from the moment the feed registered it, after which no event committed can be missed."""
    seen = None
    try:
        async with asyncio.timeout(within):
            while not unless():
                seen = await live_subscribers(base_url)
                if seen == n:
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"{base_url} holds {seen} live subscriptions, not {n}") from None
