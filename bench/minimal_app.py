"""The floor: the least a Python server can do to answer the REST scenarios.

Starlette + asyncpg, prepared statements, JSON built by PostgreSQL and passed
through as bytes, no validation beyond what the database enforces. It answers
only the exact requests the benchmark sends (anything else is a 404), run under
uvicorn with uvloop and httptools, the same worker count as our server:

    DATABASE_URL=postgresql://... uvicorn bench.minimal_app:app --workers 2 --loop uvloop --http httptools
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.store.database import libpq_url
from bench.statements import COUNT_UPDATES_BY_STATUS, CREATE_CHECKINS, READ_ACTOR, READ_CHECKIN_PAGE, team_coverage

POOL_SIZE = int(os.environ.get("BENCH_POOL_SIZE", "16"))
# "transaction": DATABASE_URL is PgBouncer in transaction mode, where no statement may stay prepared
# (asyncpg then sends each one unnamed, parsed again with its Bind); the least such a handler must do.
POOLER = os.environ.get("BENCH_POOLER", "none")
JSON = "application/json"
SQL_READ_ACTOR = READ_ACTOR.format(id="$1")
SQL_READ_CHECKIN_PAGE = READ_CHECKIN_PAGE.format(team_id="$1", since="$2", limit="$3")
SQL_CREATE_CHECKINS = CREATE_CHECKINS.format(body="$1")
SQL_TEAM_COVERAGE, TEAM_COVERAGE_PARAMETERS = team_coverage()
# The view's parameters from the query string PostgREST's way (/rpc/team_coverage?team_id=...&from=...).
COVERAGE_ARGUMENTS = {"team_id": "team_id", "first": "from", "last": "to", "as_of": "as_of"}


def _not_found() -> Response:
    return Response(b'{"message":"not supported by the minimal handler"}', status_code=404, media_type=JSON)


async def actors(request: Request) -> Response:
    id_filter = request.query_params.get("id", "")
    if not id_filter.startswith("eq."):
        return _not_found()
    async with request.app.state.pool.acquire() as conn:
        body = await conn.fetchval(SQL_READ_ACTOR, id_filter[3:])
    return Response(body.encode(), media_type=JSON)


async def team_checkins(request: Request) -> Response:
    pool: asyncpg.Pool = request.app.state.pool
    if request.method == "POST":
        async with pool.acquire() as conn:
            await conn.execute(SQL_CREATE_CHECKINS, (await request.body()).decode())
        return Response(status_code=201)
    params = request.query_params
    team, since, order = params.get("team_id", ""), params.get("date", ""), params.get("order")
    if not (team.startswith("eq.") and since.startswith("gte.") and order == "date.desc"):
        return _not_found()
    async with pool.acquire() as conn:
        body = await conn.fetchval(SQL_READ_CHECKIN_PAGE, team[3:], since[4:], int(params.get("limit", "100")))
    return Response(body.encode(), media_type=JSON)


async def goal_story_updates(request: Request) -> Response:
    if request.url.query != "select=status,count()":
        return _not_found()
    async with request.app.state.pool.acquire() as conn:
        body = await conn.fetchval(COUNT_UPDATES_BY_STATUS)
    return Response(body.encode(), media_type=JSON)


async def rpc_team_coverage(request: Request) -> Response:
    params = request.query_params
    values = {name: params.get(argument) for name, argument in COVERAGE_ARGUMENTS.items()}
    values["weekdays_only"] = False
    if None in values.values():
        return _not_found()
    async with request.app.state.pool.acquire() as conn:
        body = await conn.fetchval(SQL_TEAM_COVERAGE, *(values[name] for name in TEAM_COVERAGE_PARAMETERS))
    return Response(body.encode(), media_type=JSON)


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(
        libpq_url(os.environ["DATABASE_URL"]),
        min_size=POOL_SIZE,
        max_size=POOL_SIZE,
        # PgBouncer passes TimeZone and application_name on (it refuses statement_timeout, sent by no one here).
        server_settings={"application_name": "bench_minimal", "TimeZone": "UTC"},
        statement_cache_size=0 if POOLER == "transaction" else 100,
        # Single statements in autocommit leave no session state behind: no reset when a
        # connection returns to the pool (our read pool skips it too; the floor must not pay it).
        reset=_no_reset,
    )
    try:
        yield
    finally:
        await app.state.pool.close()


app = Starlette(
    routes=[
        Route("/actors", actors, methods=["GET"]),
        Route("/team_checkins", team_checkins, methods=["GET", "POST"]),
        Route("/goal_story_updates", goal_story_updates, methods=["GET"]),
        Route("/rpc/team_coverage", rpc_team_coverage, methods=["GET"]),
    ],
    lifespan=lifespan,
)
