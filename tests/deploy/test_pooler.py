"""Through PgBouncer 1.18 in transaction mode (COCO_DB_POOLER=transaction): no startup parameter it
refuses, no statement kept prepared across transactions, the settings in every transaction."""

from __future__ import annotations

import asyncio
import collections
import json

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import StatementTimeout, Unavailable
from api.store.database import connection, create_engine, transaction
from api.store.pool import DirectPool, compile_statement
from tests.conftest import RunningServer
from tests.deploy.conftest import DATABASE_TIMEZONE, Pooled

SETTINGS = select(func.current_setting("TimeZone"), func.current_setting("statement_timeout"))


async def test_a_pooler_refuses_the_startup_settings_unless_told(pooled: Pooled) -> None:
    """What the issue saw: the startup packet's statement_timeout makes PgBouncer hang up."""
    engine = create_engine(pooled.pooled_url, pool_size=1, statement_timeout_ms=5000)
    try:
        with pytest.raises(Unavailable, match="unsupported startup parameter"):
            async with connection(engine) as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("pooler", ["transaction", "session"])
async def test_every_transaction_has_the_settings(pooled: Pooled, pooler: str) -> None:
    """Time zone and statement timeout hold in each transaction, through the engine and the direct pool
    alike, though the database's own time zone is another one (session mode: on a direct connection)."""
    url = pooled.pooled_url if pooler == "transaction" else pooled.direct_url
    engine = create_engine(url, pool_size=2, statement_timeout_ms=4321, pooler=pooler)
    pool = DirectPool(url, size=2, statement_timeout_ms=4321, pooler=pooler)
    await pool.start()
    try:
        for _ in range(3):
            async with transaction(engine) as conn:
                assert tuple((await conn.execute(SETTINGS)).one()) == ("UTC", "4321ms")
            async with connection(engine) as conn, conn.begin():
                await conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                assert tuple((await conn.execute(SETTINGS)).one()) == ("UTC", "4321ms")
            compiled = compile_statement(SETTINGS)
            assert tuple(await pool.fetchrow(compiled, compiled.arguments({}))) == ("UTC", "4321ms")
            if pooler == "session":
                assert tuple((await pool.fetch(compiled, compiled.arguments({})))[0]) == ("UTC", "4321ms")
            paris = await pool.fetchrow(compiled, compiled.arguments({}), timezone="Europe/Paris")
            assert tuple(paris) == ("Europe/Paris", "4321ms")
    finally:
        await pool.close()
        await engine.dispose()


async def test_nothing_leaks_into_the_pooler_s_sessions(pooled: Pooled) -> None:
    """After our transactions, a plain client of the pooler still finds the database's own time zone."""
    engine = create_engine(pooled.pooled_url, pool_size=4, statement_timeout_ms=4321, pooler="transaction")
    try:
        await asyncio.gather(*(_settings(engine) for _ in range(20)))
    finally:
        await engine.dispose()
    plain = await asyncpg.connect(pooled.pooled_url, statement_cache_size=0)
    try:
        for _ in range(10):
            assert await plain.fetchval("SELECT current_setting('TimeZone')") == DATABASE_TIMEZONE
            assert await plain.fetchval("SELECT current_setting('statement_timeout')") == "0"
    finally:
        await plain.close()


async def _settings(engine: AsyncEngine) -> None:
    async with transaction(engine) as conn:
        assert tuple((await conn.execute(SETTINGS)).one()) == ("UTC", "4321ms")


async def test_the_statement_timeout_cancels_through_the_pooler(pooled: Pooled) -> None:
    engine = create_engine(pooled.pooled_url, pool_size=1, statement_timeout_ms=100, pooler="transaction")
    pool = DirectPool(pooled.pooled_url, size=1, statement_timeout_ms=100, pooler="transaction")
    await pool.start()
    try:
        with pytest.raises(StatementTimeout):
            async with transaction(engine) as conn:
                await conn.execute(select(func.pg_sleep(2)))
        sleep = compile_statement(select(func.pg_sleep(2)))
        with pytest.raises(StatementTimeout):
            await pool.fetchrow(sleep, sleep.arguments({}))
        # A lone write runs in autocommit (api/store/pool.py, fetch): asyncpg cancels it past the timeout.
        with pytest.raises(StatementTimeout):
            await pool.fetch(sleep, sleep.arguments({}))
        # The connection, and the pooler's, serve on.
        one = compile_statement(select(func.abs(-1)))
        assert (await pool.fetch(one, one.arguments({})))[0][0] == 1
        assert (await pool.fetchrow(one, one.arguments({})))[0] == 1
    finally:
        await pool.close()
        await engine.dispose()


async def test_statements_kept_prepared_do_not_survive_transaction_pooling(pooled: Pooled) -> None:
    """The control: with asyncpg's statement cache on (what "none" and "session" keep), concurrent reads
    through the transaction-mode pooler meet statements prepared on another server connection. That
    is what the tests below would meet if transaction mode kept any; each such failure is a 503."""
    pool = DirectPool(pooled.pooled_url, size=16, pooler="session")
    await pool.start()
    statements = [compile_statement(select(func.abs(n) + func.length(str(n)))) for n in range(8)]
    outcomes: collections.Counter[str] = collections.Counter()

    async def read(n: int) -> None:
        try:
            await pool.fetchrow(statements[n % len(statements)], statements[n % len(statements)].arguments({}))
            outcomes["ok"] += 1
        except Unavailable as error:
            outcomes["unavailable"] += 1
            assert "prepared statement" in error.message, error.message

    try:
        for _ in range(4):
            await asyncio.gather(*(read(n) for n in range(200)))
    finally:
        await pool.close()
    assert outcomes["unavailable"] > 0, outcomes


CREATE_CHECKIN = (
    'mutation { createTeamCheckin(input: {actorId: "%s", teamId: "t-pooled", date: "2026-05-22", next: ["g%d"]})'
    " { teamCheckin { id createdAt } } }"
)


async def test_concurrent_mixed_requests_through_transaction_pooling(pooled: Pooled) -> None:
    """The issue's load (64 at a time, REST and GraphQL, reads and writes) with no failure, timestamps in
    UTC, and the live feed listening on DIRECT_DATABASE_URL."""
    overrides = {"db_pooler": "transaction", "direct_database_url": pooled.direct_url, "pool_size": 8}
    with RunningServer(pooled.pooled_url, **overrides) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=64)) as client:
            first = await client.post(
                "/actors", json={"actor_type": "person", "name": "first"}, headers={"Prefer": "return=representation"}
            )
            assert first.status_code == 201, first.text
            actor = first.json()[0]["id"]
            team = await client.post("/teams", json={"id": "t-pooled", "name": "pooled", "member_ids": [actor]})
            assert team.status_code == 201, team.text
            failures: list[tuple[int, str]] = []
            stamps: list[str] = []

            async def one(n: int) -> None:
                match n % 6:
                    case 0:
                        answer = await client.get(f"/actors?id=eq.{actor}")
                    case 1:
                        answer = await client.post(
                            "/team_checkins",
                            json={"actor_id": actor, "team_id": "t-pooled", "date": "2026-05-22", "next": [f"r{n}"]},
                            headers={"Prefer": "return=representation"},
                        )
                        if answer.status_code == 201:
                            stamps.append(answer.json()[0]["created_at"])
                    case 2:
                        answer = await client.post("/graphql", json={"query": "{ actors(first: 5) { nodes { id } } }"})
                    case 3:
                        answer = await client.post("/graphql", json={"query": CREATE_CHECKIN % (actor, n)})
                        if answer.status_code == 200 and "errors" not in answer.json():
                            stamps.append(answer.json()["data"]["createTeamCheckin"]["teamCheckin"]["createdAt"])
                    case 4:
                        answer = await client.get(
                            "/team_checkins?order=created_at.desc&limit=20", headers={"Prefer": "count=exact"}
                        )
                    case _:
                        answer = await client.patch(f"/actors?id=eq.{actor}", json={"name": f"first {n}"})
                body = answer.text
                if answer.status_code >= 300 or (answer.status_code == 200 and '"errors"' in body[:20]):
                    failures.append((answer.status_code, body[:300]))

            semaphore = asyncio.Semaphore(64)

            async def limited(n: int) -> None:
                async with semaphore:
                    await one(n)

            await asyncio.gather(*(limited(n) for n in range(640)))
            assert failures == [], collections.Counter(failures).most_common(5)
            assert len(stamps) == sum(1 for n in range(640) if n % 6 in (1, 3)), len(stamps)
            # Rendered in the transaction's UTC, not in the database's own time zone.
            assert all(stamp.endswith(("+00:00", "Z")) for stamp in stamps), stamps[:5]

            # The live feed LISTENs on the direct connection: a write through the pooler reaches a subscriber.
            async with client.stream("GET", "/coordination_events", headers={"Accept": "text/event-stream"}) as stream:
                assert stream.status_code == 200
                checkin = await client.post(
                    "/team_checkins",
                    json={"actor_id": actor, "team_id": "t-pooled", "date": "2026-05-22", "next": ["live"]},
                    headers={"Prefer": "return=representation"},
                )
                assert checkin.status_code == 201, checkin.text

                async def first_event() -> dict:
                    async for line in stream.aiter_lines():
                        if line.startswith("data:"):
                            return json.loads(line[5:])
                    raise AssertionError("the stream ended")

                event = await asyncio.wait_for(first_event(), 60)
                assert event["reference_id"] == checkin.json()[0]["id"]
