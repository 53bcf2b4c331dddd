"""What the GraphQL tests read from the tables directly, to check what a request did or did not write."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

TABLES = ("actors", "teams", "team_checkins", "goal_stories", "goal_story_updates", "coordination_events")


async def stored_events(engine: AsyncEngine) -> list[tuple[str, str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT event_type, reference_id, actor_id FROM coordination_events ORDER BY seq")
        )
        return [tuple(r) for r in rows]


async def counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in TABLES}


async def snapshot(engine: AsyncEngine) -> dict[str, list]:
    """Every row of every table, to show that a refused request changed nothing at all."""
    async with engine.connect() as conn:
        return {t: [tuple(r) for r in await conn.execute(text(f"SELECT * FROM {t} ORDER BY id"))] for t in TABLES}
