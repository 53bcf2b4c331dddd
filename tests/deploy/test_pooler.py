"""Through PgBouncer 1.18 in transaction mode (COCO_DB_POOLER=transaction): no startup parameter it
refuses, no statement kept prepared across transactions, the settings in every transaction, and a read
alone in autocommit with PgBouncer keeping its time zone and asyncpg its timeout."""

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
from api.ops.embedded import EmbeddedPostgres
from api.store.database import Pooling, connection, create_engine, transaction
from api.store.pool import DirectPool, compile_statement
from tests.conftest import RunningServer
from tests.deploy.conftest import DATABASE_TIMEZONE, Pooled
from tests.deploy.tools import PgBouncer

SETTINGS = select(func.current_setting("TimeZone"), func.current_setting("statement_timeout"))
# The settings, and whether the statement runs in autocommit: the pool's read transactions are all
# READ ONLY (api/store/pool.py), a statement alone in its implicit transaction is not.
SETTINGS_ALONE = select(
    func.current_setting("TimeZone"),
    func.current_setting("statement_timeout"),
    func.current_setting("transaction_read_only") == "off",
)
# A timestamp as the reads render it (to_json, in the session's TimeZone).
RENDERED = select(func.to_json(text("'2026-05-22 09:00:00+00'::timestamptz")))


async def test_a_pooler_refuses_the_startup_settings_unless_told(pooled: Pooled) -> None:
    """What the issue saw: the startup packet's statement_timeout makes PgBouncer hang up."""
    engine = create_engine(pooled.pooled_url, pool_size=1, statement_timeout_ms=5000)
    try:
        with pytest.raises(Unavailable, match="unsupported startup parameter"):
            async with connection(engine) as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("pooler", "tracks_timezone"), [("transaction", True), ("transaction", False), ("session", True)]
)
async def test_every_transaction_has_the_settings(pooled: Pooled, pooler: str, tracks_timezone: bool) -> None:
    """Time zone and statement timeout hold in each transaction, through the engine and the direct pool
    alike, though the database's own time zone is another one (session mode: on a direct connection).
    Through the transaction-mode pooler, a read alone runs in autocommit in UTC (the TimeZone PgBouncer
    keeps for us), its timeout kept by asyncpg rather than the session; unless told that the pooler
    does not keep the time zone (COCO_DB_POOLER_TRACKS_TIMEZONE=false): then in a transaction."""
    url = pooled.pooled_url if pooler == "transaction" else pooled.direct_url
    options: dict = {"statement_timeout_ms": 4321, "pooler": pooler, "tracks_timezone": tracks_timezone}
    engine = create_engine(url, pool_size=2, **options)
    pool = DirectPool(url, size=2, **options)
    await pool.start()
    alone = ("UTC", "0", True) if pooler == "transaction" and tracks_timezone else ("UTC", "4321ms", False)
    try:
        for _ in range(3):
            async with transaction(engine) as conn:
                assert tuple((await conn.execute(SETTINGS)).one()) == ("UTC", "4321ms")
            async with connection(engine) as conn, conn.begin():
                await conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                assert tuple((await conn.execute(SETTINGS)).one()) == ("UTC", "4321ms")
            compiled = compile_statement(SETTINGS_ALONE)
            if pooler == "session":
                assert tuple(await pool.fetchrow(compiled, compiled.arguments({}))) == ("UTC", "4321ms", True)
                assert tuple((await pool.fetch(compiled, compiled.arguments({})))[0]) == ("UTC", "4321ms", True)
            else:
                assert tuple(await pool.fetchrow(compiled, compiled.arguments({}))) == alone
            # A snapshot of several statements, or another time zone, keeps its transaction everywhere.
            both = await pool.fetchrows([(compiled, compiled.arguments({}))] * 2)
            assert [tuple(row) for row in both] == [("UTC", "4321ms", False)] * 2
            paris = await pool.fetchrow(compiled, compiled.arguments({}), timezone="Europe/Paris")
            assert tuple(paris) == ("Europe/Paris", "4321ms", False)
    finally:
        await pool.close()
        await engine.dispose()


async def test_a_connection_whose_pooler_answers_another_time_zone_sets_it_per_transaction(pooled: Pooled) -> None:
    """A pooler that drops the TimeZone sent at connection (Supavisor ignores it) answers with the
    database's own: such a connection SETs LOCAL the time zone in each transaction, and reads in one.
    Played here by PostgreSQL itself, asked for the database's own TimeZone in place of UTC."""
    pooling = Pooling("transaction", 4321)
    options = pooling.connect_options()
    options["server_settings"] = {**options["server_settings"], "TimeZone": DATABASE_TIMEZONE}
    conn = await asyncpg.connect(pooled.direct_url, **options)
    try:
        assert conn.timezone_kept
        await pooling.prepare(conn)
        assert not conn.timezone_kept
        async with conn.transaction():
            settings = "SELECT current_setting('TimeZone'), current_setting('statement_timeout')"
            assert tuple(await conn.fetchrow(settings)) == ("UTC", "4321ms")
    finally:
        await conn.close()


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
        # A connection left idle is given up before uvicorn's 5 s keep-alive ends it: the same 5 s on both
        # sides races, and a busy machine loses the race (a request sent on a socket being closed).
        limits = httpx.Limits(max_connections=64, keepalive_expiry=1)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
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


async def test_another_client_s_time_zone_on_a_shared_server_connection(
    postgres: EmbeddedPostgres, pooled: Pooled
) -> None:
    """PgBouncer with one server connection, which another client of it SETs to one time zone after
    another: our reads alone (autocommit) still run in UTC, through the pool and through HTTP, because
    PgBouncer SETs our TimeZone back before lending us the connection; the other client keeps its own."""
    database = pooled.pooled_url.rsplit("/", 1)[1]
    with PgBouncer(postgres.url(), pool_mode="transaction", pool_size=1) as single:
        url = single.url(database)
        other = await asyncpg.connect(url, statement_cache_size=0)
        pool = DirectPool(url, size=2, statement_timeout_ms=4321, pooler="transaction")
        await pool.start()
        settings, rendered = compile_statement(SETTINGS_ALONE), compile_statement(RENDERED)
        overrides = {"db_pooler": "transaction", "direct_database_url": pooled.direct_url, "pool_size": 2}
        try:
            with RunningServer(url, **overrides) as base:
                async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                    story = {"id": "g-zoned", "title": "zoned", "created_at": "2026-05-22T09:00:00Z"}
                    created = await client.post("/goal_stories", json=story)
                    assert created.status_code == 201, created.text
                    for zone in ("Asia/Tokyo", "America/New_York", DATABASE_TIMEZONE) * 2:
                        await other.execute(f"SET TimeZone = '{zone}'")
                        assert await other.fetchval("SELECT current_setting('TimeZone')") == zone
                        assert tuple(await pool.fetchrow(settings, settings.arguments({}))) == ("UTC", "0", True)
                        await other.execute(f"SET TimeZone = '{zone}'")
                        stamp = (await pool.fetchrow(rendered, rendered.arguments({})))[0]
                        assert stamp == '"2026-05-22T09:00:00+00:00"'
                        await other.execute(f"SET TimeZone = '{zone}'")
                        rest = await client.get("/goal_stories?id=eq.g-zoned&select=created_at")
                        assert rest.json() == [{"created_at": "2026-05-22T09:00:00+00:00"}], rest.text
                        await other.execute(f"SET TimeZone = '{zone}'")
                        query = "{ goalStories(first: 5) { nodes { id createdAt } } }"
                        nodes = (await client.post("/graphql", json={"query": query})).json()["data"]["goalStories"]
                        assert {"id": "g-zoned", "createdAt": "2026-05-22T09:00:00+00:00"} in nodes["nodes"], nodes
                        # PgBouncer gave the other client its own time zone back, on the same server connection.
                        assert await other.fetchval("SELECT current_setting('TimeZone')") == zone
        finally:
            await pool.close()
            await other.close()


async def test_a_pooled_read_past_the_timeout_answers_as_before(pooled: Pooled) -> None:
    """A read alone through the pooler has no statement_timeout of its own (no transaction to SET it in):
    asyncpg's timeout has PostgreSQL cancel it, and the answer is the timeout's, REST 504 (57014) and
    GraphQL TIMEOUT, as with PostgreSQL's own. Here the read waits on a lock another session holds."""
    overrides = {
        "db_pooler": "transaction",
        "direct_database_url": pooled.direct_url,
        "statement_timeout_ms": 300,
        "pool_size": 2,
    }
    blocker = await asyncpg.connect(pooled.direct_url)
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    try:
        with RunningServer(pooled.pooled_url, **overrides) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                assert (await client.get("/actors?id=eq.nobody")).status_code == 200
                async with blocker.transaction():
                    await blocker.execute("LOCK TABLE actors IN ACCESS EXCLUSIVE MODE")
                    for _ in range(3):
                        rest = await client.get("/actors?id=eq.nobody")
                        assert rest.status_code == 504, rest.text
                        assert rest.json()["code"] == "57014", rest.text
                        graphql = await client.post("/graphql", json={"query": "{ actors { nodes { id } } }"})
                        assert graphql.json()["errors"][0]["extensions"]["code"] == "TIMEOUT", graphql.text
                    # The cancel reached PostgreSQL: none of the reads still waits on the lock.
                    deadline = asyncio.get_running_loop().time() + 10
                    while (still := await blocker.fetchval(waiting)) != 0:
                        assert asyncio.get_running_loop().time() < deadline, f"{still} reads still wait on the lock"
                        await asyncio.sleep(0.05)
                # The lock gone, the same connections (ours and the pooler's) serve on.
                for _ in range(4):
                    assert (await client.get("/actors?id=eq.nobody")).status_code == 200
    finally:
        await blocker.close()
