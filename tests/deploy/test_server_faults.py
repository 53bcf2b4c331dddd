"""Server faults are never the client's: every SQLSTATE class the server can meet, raised by the real
PostgreSQL in the middle of real requests, answered by each front end as what it is.

PostgreSQL raises them itself: a row-level security policy on the tables calls a function that, while
a fault is armed, raises it with that SQLSTATE (or ends its own backend, for a lost connection). The
server connects as a role that is not the tables' owner, so that the policy applies to it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.ops.embedded import EmbeddedPostgres
from api.store.database import create_engine
from api.store.migrate import upgrade
from tests.conftest import RunningServer
from tests.deploy.tools import PgBouncer
from tests.mcp_support import connect

# "Try again": REST 503 PGRST001 with Retry-After, GraphQL SERVICE_UNAVAILABLE, MCP "unavailable".
RETRY = [
    "08000",  # connection exception
    "08003",  # connection does not exist
    "08006",  # connection failure
    "08001",  # could not establish a connection
    "08004",  # the server rejected the connection
    "08P01",  # protocol violation: how PgBouncer sends each of its own errors
    "26000",  # prepared statement does not exist (a pooler moved the session)
    "42P05",  # prepared statement already exists (likewise)
    "25006",  # read-only transaction: a standby
    "40001",  # serialization failure, still there after the write service's retries
    "40P01",  # deadlock, likewise
    "53000",  # insufficient resources
    "53100",  # disk full
    "53200",  # out of memory
    "53300",  # too many connections
    "57P01",  # admin shutdown
    "57P02",  # crash shutdown
    "57P03",  # cannot connect now (starting up, recovering)
    "terminate",  # the backend ends mid-statement: a lost connection, no SQLSTATE the client can read
]
# Faults of the server that no retry helps: 5xx all the same, never 4xx.
BROKEN = ["XX000", "XX001", "58030", "54000", "53400", "55000", "0A000", "34000", "72000", "38000", "39000", "2D000"]

SETUP = [
    "CREATE TABLE injected_fault (sqlstate text NOT NULL)",
    """CREATE FUNCTION injected_fault() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
    DECLARE code text;
    BEGIN
        SELECT sqlstate INTO code FROM injected_fault LIMIT 1;
        IF code IS NULL THEN
            RETURN true;
        ELSIF code = 'terminate' THEN
            PERFORM pg_terminate_backend(pg_backend_pid());
            PERFORM pg_sleep(5);
        END IF;
        RAISE EXCEPTION 'injected fault %', code USING ERRCODE = code;
    END $$""",
    "ALTER TABLE actors ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE team_checkins ENABLE ROW LEVEL SECURITY",
    "CREATE POLICY injected ON actors USING (injected_fault()) WITH CHECK (injected_fault())",
    "CREATE POLICY injected ON team_checkins USING (injected_fault()) WITH CHECK (injected_fault())",
    "INSERT INTO actors (id, actor_type, name) VALUES ('p-1', 'person', 'Quinn')",
    "INSERT INTO teams (id, name, member_ids) VALUES ('t-1', 'Team', ARRAY['p-1'])",
]


@dataclass(frozen=True)
class Walk:
    owner: AsyncEngine
    app_url: str
    role: str
    database: str


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def walk(postgres: EmbeddedPostgres) -> AsyncIterator[Walk]:
    suffix = uuid.uuid4().hex[:8]
    name, role = f"coco_faults_{suffix}", f"coco_app_{suffix}"
    owner_url = postgres.create_database(name)
    owner = create_engine(owner_url, pool_size=2)
    await upgrade(owner)
    async with owner.begin() as conn:
        for statement in [
            *SETUP,
            f"CREATE ROLE {role} LOGIN",
            f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}",
            f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}",
        ]:
            await conn.exec_driver_sql(statement)
    yield Walk(owner, owner_url.replace("postgresql://postgres@", f"postgresql://{role}@", 1), role, name)
    await owner.dispose()


async def arm(owner: AsyncEngine, sqlstate: str | None) -> None:
    async with owner.begin() as conn:
        await conn.execute(text("DELETE FROM injected_fault"))
        if sqlstate is not None:
            await conn.execute(text("INSERT INTO injected_fault VALUES (:s)"), {"s": sqlstate})


@pytest.fixture(scope="module")
def server(walk: Walk) -> Iterator[str]:
    with RunningServer(walk.app_url, pool_size=3) as base:
        yield base


CHECKIN = {"actor_id": "p-1", "team_id": "t-1", "date": "2026-05-22", "next": ["walk"]}
GRAPHQL_READ = "{ actors { nodes { id } } }"
GRAPHQL_WRITE = (
    'mutation { createTeamCheckin(input: {actorId: "p-1", teamId: "t-1", date: "2026-05-22", next: ["walk"]})'
    " { teamCheckin { id } } }"
)


async def answers(base: str, url: str) -> dict[str, object]:
    """What each front end answered a read and a write, while the fault is armed."""
    out: dict[str, object] = {}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        out["rest read"] = await client.get("/actors")
        out["rest write"] = await client.post("/team_checkins", json=CHECKIN)
        out["graphql read"] = await client.post("/graphql", json={"query": GRAPHQL_READ})
        out["graphql write"] = await client.post("/graphql", json={"query": GRAPHQL_WRITE})
    async with connect("http", base, url) as mcp:
        out["mcp read"] = await mcp.call_tool("list_actors", {})
        out["mcp write"] = await mcp.call_tool("post_team_checkin", CHECKIN)
    return out


async def answers_during(walk: Walk, server: str, sqlstate: str) -> dict[str, object]:
    """`answers` while PostgreSQL raises `sqlstate` on every read or write of actors and check-ins
    (the injected fault, disarmed afterwards)."""
    await arm(walk.owner, sqlstate)
    try:
        return await answers(server, walk.app_url)
    finally:
        await arm(walk.owner, None)


@pytest.mark.parametrize("sqlstate", RETRY)
async def test_faults_that_pass_answer_try_again(walk: Walk, server: str, sqlstate: str) -> None:
    got = await answers_during(walk, server, sqlstate)
    for what in ("rest read", "rest write"):
        response = got[what]
        assert isinstance(response, httpx.Response)
        assert response.status_code == 503, (what, response.status_code, response.text)
        assert response.json()["code"] == "PGRST001", (what, response.text)
        assert set(response.json()) == {"code", "message", "details", "hint"}
        assert response.headers["Retry-After"] == "1", what
    for what in ("graphql read", "graphql write"):
        response = got[what]
        assert isinstance(response, httpx.Response)
        errors = response.json()["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["SERVICE_UNAVAILABLE"], (what, errors)
    for what in ("mcp read", "mcp write"):
        result = got[what]
        assert result.is_error, (what, result)  # type: ignore[attr-defined]
        assert result.structured_content["error"]["kind"] == "unavailable", (what, result)  # type: ignore[attr-defined]
        assert "again" in result.content[0].text, (what, result)  # type: ignore[attr-defined]
    # Nothing was written, and the server serves again once the fault is gone.
    async with httpx.AsyncClient(base_url=server, timeout=60) as client:
        assert (await client.get("/actors")).status_code == 200
    async with walk.owner.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM team_checkins"))).scalar_one() == 0


@pytest.mark.parametrize("sqlstate", BROKEN)
async def test_faults_that_stay_are_the_server_s(walk: Walk, server: str, sqlstate: str) -> None:
    got = await answers_during(walk, server, sqlstate)
    for what in ("rest read", "rest write"):
        response = got[what]
        assert isinstance(response, httpx.Response)
        assert response.status_code >= 500, (what, response.status_code, response.text)
        assert set(response.json()) == {"code", "message", "details", "hint"}
    for what in ("graphql read", "graphql write"):
        response = got[what]
        assert isinstance(response, httpx.Response)
        codes = [e["extensions"]["code"] for e in response.json()["errors"]]
        assert codes == ["INTERNAL_SERVER_ERROR"], (what, codes)
    for what in ("mcp read", "mcp write"):
        assert got[what].is_error, (what, got[what])  # type: ignore[attr-defined]


async def test_a_pooler_s_own_refusal_answers_try_again(postgres: EmbeddedPostgres, walk: Walk) -> None:
    """A real one: PgBouncer refusing a client connection beyond max_client_conn ("no more connections
    allowed", 08P01) is a 503 with Retry-After; the server serves on with the connections it has."""
    bouncer = PgBouncer(postgres.url(), pool_size=4, users=(walk.role,), max_client_conn="4")
    with bouncer:
        url = bouncer.url(walk.database, user=walk.role)
        overrides = {"db_pooler": "transaction", "direct_database_url": walk.app_url, "pool_size": 8}
        with RunningServer(url, **overrides) as base:
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                got = await asyncio.gather(*(client.get("/actors?id=eq.p-1") for _ in range(24)))
                after = await client.get("/actors?id=eq.p-1")
    assert {r.status_code for r in got} <= {200, 503}, [r.text for r in got]
    refused = [r for r in got if r.status_code == 503]
    assert refused, [r.status_code for r in got]
    for response in refused:
        assert response.headers["Retry-After"] == "1"
        assert "no more connections allowed" in response.json()["details"], response.text
    assert after.status_code == 200, after.text
