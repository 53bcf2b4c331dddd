"""Counting the statements PostgreSQL itself ran, with pg_stat_statements.

The test cluster loads the extension (tests/conftest.py), so a count covers every
client of the database alike: the test's own engine, a server in a thread, a server
process. Counted are the statements that touch the CoCo tables; the server's own
background reads (the live feed's reads of new events, its LISTEN connection's pings)
are left out by `excluding`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

TABLES = re.compile(r"\b(actors|teams|team_checkins|goal_stories|goal_story_updates|coordination_events)\b")

# Top-level statements of this database, by who ran them and their normalized text.
SNAPSHOT = text(
    """SELECT userid, queryid, query, calls FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND toplevel"""
)


@dataclass
class Statements:
    """The statements run inside the block, each as often as it ran (filled in when the block ends)."""

    sent: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sent)


async def _snapshot(engine: AsyncEngine) -> dict[tuple[int, int], tuple[str, int]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(SNAPSHOT)).all()
    return {(r.userid, r.queryid): (r.query, r.calls) for r in rows}


@asynccontextmanager
async def statements(engine: AsyncEngine, *, excluding: str | None = None) -> AsyncIterator[Statements]:
    """The statements on the CoCo tables that anyone ran on `engine`'s database during the block,
    except those whose text contains `excluding`."""
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        before = await _snapshot(engine)
    except DBAPIError as error:  # a COCO_TEST_DATABASE_URL server that does not preload the extension
        pytest.skip(f"pg_stat_statements is not available: {error.orig}")
    seen = Statements()
    yield seen
    for key, (query, calls) in (await _snapshot(engine)).items():
        ran = calls - before.get(key, ("", 0))[1]
        ours = TABLES.search(query) and "pg_stat_statements" not in query
        if ran and ours and (excluding is None or excluding not in query):
            seen.sent += [query] * ran
