"""DIRECT_DATABASE_URL: what needs a session (LISTEN, the migrations' lock, long streaming reads) goes
there, everything else through DATABASE_URL's pooler."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.config import Settings
from api.errors import Unavailable
from api.ops.embedded import EmbeddedPostgres
from api.plan import ReadPlan
from api.store import Reader
from api.store.database import create_engine
from tests.conftest import Served
from tests.deploy.tools import PgBouncer

ROWS = 1500  # more than REST's STREAM_AFTER: the read is streamed


async def test_session_work_goes_to_the_direct_url(postgres: EmbeddedPostgres, bouncer: PgBouncer) -> None:
    """The database belongs to a role only DIRECT_DATABASE_URL logs in as; DATABASE_URL (the pooler)
    logs in as another. Who created the tables, who LISTENs and which engine streams tell where each went."""
    suffix = uuid.uuid4().hex[:8]
    role, name = f"coco_direct_{suffix}", f"coco_direct_{suffix}"
    admin = create_engine(postgres.url(), pool_size=1)
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        await conn.exec_driver_sql(f"CREATE DATABASE {name} OWNER {role}")
    await admin.dispose()
    direct = postgres.url(name).replace("postgresql://postgres@", f"postgresql://{role}@", 1)
    settings = Settings(
        database_url=bouncer.url(name),
        direct_database_url=direct,
        db_pooler="transaction",
        pool_size=4,
        migrate_on_start=True,
    )
    app = create_app(settings)
    owner = create_engine(direct, pool_size=1)
    try:
        with Served(app) as base:
            async with owner.connect() as conn:
                tables = await conn.execute(
                    text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
                )
                assert [r[0] for r in tables] == [role]
                listening = await conn.execute(
                    text("SELECT usename FROM pg_stat_activity WHERE application_name = 'coco-live'")
                )
                assert [r[0] for r in listening] == [role]
                await conn.execute(
                    text(
                        "INSERT INTO actors (id, actor_type, name) "
                        "SELECT 'p-' || n, 'person', 'P ' || n FROM generate_series(1, :rows) AS n"
                    ),
                    {"rows": ROWS},
                )
                await conn.commit()
            reader = app.state.services.reader
            assert reader.streams is not app.state.engine
            assert reader.streams is not reader.engine
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                answer = await client.get("/actors?select=id")
                assert answer.status_code == 200, answer.text
                assert len(json.loads(answer.content)) == ROWS
    finally:
        await owner.dispose()


async def test_streams_and_snapshots_use_their_own_engine(engine: AsyncEngine) -> None:
    """Reader(streams=...): streamed reads and snapshots there, the rest through the main engine."""
    nowhere = create_engine("postgresql://coco@127.0.0.1:1/nowhere", pool_size=1)
    streams = engine
    try:
        reader = Reader(nowhere, streams=streams)
        with pytest.raises(Unavailable):
            await reader.count(ReadPlan("actor"))
        assert isinstance([row async for row in reader.stream(ReadPlan("actor"))], list)
        async with reader.snapshot() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        assert reader.in_timezone("Europe/Paris").streams is streams
    finally:
        await nowhere.dispose()
