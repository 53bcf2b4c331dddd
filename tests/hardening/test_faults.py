"""While PostgreSQL is down every front end answers 503 at once; when it is back, the server recovers by itself."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import DatabaseFault, InvalidInput, StatementTimeout, Unavailable
from api.ops.embedded import EmbeddedPostgres
from api.store.database import as_domain_error, is_transient
from tests.conftest import RunningServer, table_counts

CREATE = 'mutation { createActor(input: {actorType: AGENT, name: "during outage"}) { actor { id } } }'


async def _until(client: httpx.AsyncClient, path: str, status: int, limit_s: float = 60) -> httpx.Response:
    deadline = time.monotonic() + limit_s
    while True:
        answer = await client.get(path)
        if answer.status_code == status or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.2)


async def test_outage_answers_503_and_the_server_recovers(
    own_postgres: EmbeddedPostgres, own_database: tuple[str, AsyncEngine]
) -> None:
    url, engine = own_database
    with RunningServer(url, pool_size=2) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            assert (await client.post("/actors", json={"actor_type": "person", "name": "before"})).status_code == 201
            await engine.dispose()
            await asyncio.to_thread(own_postgres.stop)
            try:
                rest = await client.get("/actors")
                assert rest.status_code == 503, rest.text
                assert rest.json()["code"] == "PGRST001"
                write = await client.post("/actors", json={"actor_type": "person", "name": "during"})
                assert write.status_code == 503, write.text
                for query in ("{ actors { nodes { id } } }", CREATE):
                    graphql = await client.post("/graphql", json={"query": query})
                    assert graphql.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE", graphql.text
                assert (await client.get("/healthz")).status_code == 503
                assert (await client.get("/readyz")).status_code == 503
                assert (await client.get("/livez")).status_code == 200
            finally:
                await asyncio.to_thread(own_postgres.start)
            assert (await _until(client, "/healthz", 200)).status_code == 200
            recovered = await _until(client, "/actors", 200)
            assert [a["name"] for a in recovered.json()] == ["before"]
            assert (await client.post("/actors", json={"actor_type": "person", "name": "after"})).status_code == 201
    counts = await table_counts(engine)
    assert counts["actors"] == 2
    assert counts["coordination_events"] == 0


def test_asyncpg_protocol_state_errors_mean_unavailable() -> None:
    """What asyncpg raised mid-restart ("cannot switch to state 12") is a lost connection, not a 500."""
    from sqlalchemy.exc import InternalError

    original = asyncpg.InternalClientError("cannot switch to state 12; another operation (None) is in progress")
    wrapped = InternalError("SELECT 1", {}, original)
    wrapped.__cause__ = original
    assert isinstance(as_domain_error(wrapped), Unavailable)


async def test_the_first_reads_after_a_restart_succeed(
    own_postgres: EmbeddedPostgres, own_database: tuple[str, AsyncEngine]
) -> None:
    """Reads run again on a fresh connection when the database dropped theirs, and the other idle
    connections (dead as well) are dropped with it: no read fails once the database is back."""
    url, engine = own_database
    with RunningServer(url, pool_size=4) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            # Several connections open and idle in the pool.
            answers = await asyncio.gather(*(client.get(f"/actors?id=eq.p-{n}") for n in range(8)))
            assert all(answer.status_code == 200 for answer in answers)
            await engine.dispose()
            await asyncio.to_thread(own_postgres.stop)
            await asyncio.to_thread(own_postgres.start)
            for n in range(8):
                answer = await client.get(f"/actors?id=eq.p-{n}")
                assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), Unavailable),  # 53300
        (asyncpg.OutOfMemoryError("out of memory"), Unavailable),  # 53200
        (asyncpg.AdminShutdownError("terminating connection"), Unavailable),  # 57P01
        (asyncpg.CannotConnectNowError("the database system is starting up"), Unavailable),  # 57P03
        (asyncpg.ConnectionFailureError("connection failure"), Unavailable),  # 08006
        (asyncpg.ConfigurationLimitExceededError("too many range table entries"), DatabaseFault),  # 53400
        (asyncpg.DeadlockDetectedError("deadlock detected"), DatabaseFault),  # 40P01
        (asyncpg.UndefinedTableError('relation "x" does not exist'), DatabaseFault),  # 42P01
        (asyncpg.InvalidDatetimeFormatError("invalid input syntax for type date"), InvalidInput),  # 22007
        (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), StatementTimeout),  # 57014
    ],
)
def test_each_sqlstate_class_means_one_error(raised: Exception, expected: type[Exception]) -> None:
    """Classified once, in the store: front ends see the error, never the SQLSTATE's class."""
    for error in (raised, DBAPIError("SELECT 1", {}, raised)):
        translated = as_domain_error(error)
        assert type(translated) is expected, (error, translated)
        if isinstance(translated, (DatabaseFault, InvalidInput)):
            assert translated.sqlstate == raised.sqlstate
    assert is_transient(as_domain_error(asyncpg.DeadlockDetectedError("deadlock detected")))
    assert is_transient(as_domain_error(asyncpg.SerializationError("could not serialize")))
    assert not is_transient(as_domain_error(asyncpg.UndefinedTableError("missing")))


async def test_a_refusal_no_domain_error_names_keeps_its_sqlstate_to_the_edge(
    own_database: tuple[str, AsyncEngine],
) -> None:
    """REST passes such a refusal on as PostgREST does (its SQLSTATE, PostgREST's status); GraphQL,
    MCP and the rest answer it as the server's fault, with nothing of the database in the message."""
    url, engine = own_database
    with RunningServer(url, pool_size=2) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            async with engine.begin() as conn:
                await conn.execute(text("ALTER TABLE teams RENAME TO teams_elsewhere"))
            rest = await client.get("/teams")
            assert (rest.status_code, rest.json()["code"]) == (404, "42P01"), rest.text
            assert 'relation "teams" does not exist' in rest.json()["message"]
            graphql = await client.post("/graphql", json={"query": "{ teams { nodes { id } } }"})
            error = graphql.json()["errors"][0]
            assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR", error
            assert "teams" not in error["message"]
            # Everything else still answers.
            assert (await client.get("/actors")).status_code == 200
            async with engine.begin() as conn:
                await conn.execute(text("ALTER TABLE teams_elsewhere RENAME TO teams"))
            assert (await client.get("/teams")).status_code == 200
