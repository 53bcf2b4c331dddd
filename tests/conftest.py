"""Shared fixtures: one embedded PostgreSQL and one fresh, migrated database per test session."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.ops.embedded import EmbeddedPostgres
from api.store.database import create_engine
from api.store.migrate import upgrade
from api.store.reads import Reader
from api.store.writes import WriteService

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TABLES = "coordination_events, goal_story_updates, team_checkins, goal_stories, teams, actors"


def pytest_configure(config: pytest.Config) -> None:
    # pytest resets /tmp/pytest-of-<user> to mode 0700 whenever a session starts, which would cut
    # the embedded server's system user off from its data dir when two suites run side by side;
    # a private base directory per session avoids that.
    if not config.option.basetemp and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="coco-pytest-")
        config.add_cleanup(lambda: shutil.rmtree(config.option.basetemp, ignore_errors=True))


# Durability is not under test here; speed is welcome. pg_stat_statements counts the statements
# tests/statements.py reports (top-level ones; BEGIN, COMMIT and SET are not counted as statements).
FAST = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track_utility": "off",
}


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", settings=FAST) as server:
        yield server


@pytest.fixture(scope="session")
def database_url(postgres: EmbeddedPostgres) -> str:
    """A fresh database for this session (COCO_TEST_DATABASE_URL points the suite elsewhere)."""
    return os.environ.get("COCO_TEST_DATABASE_URL") or postgres.create_database(f"coco_test_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of the test module's own, for tests that stop and start it."""
    with EmbeddedPostgres(tmp_path_factory.mktemp("own") / "data", settings=FAST) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def own_database(own_postgres: EmbeddedPostgres) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A fresh, migrated database on `own_postgres`: its URL and an engine."""
    url = own_postgres.create_database(f"coco_own_{uuid.uuid4().hex[:8]}")
    engine = create_engine(url, pool_size=4)
    await upgrade(engine)
    yield url, engine
    await engine.dispose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=5)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def clean(engine: AsyncEngine) -> AsyncEngine:
    """Empty tables before a test that needs them so."""
    await emptied(engine)
    return engine


async def emptied(engine: AsyncEngine) -> None:
    """Every CoCo table emptied."""
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {TABLES}"))


async def seeded(engine: AsyncEngine, rows: Mapping[str, list[dict[str, Any]]]) -> WriteService:
    """The tables holding these rows only (per entity, created in the order given, through the write
    service: each check-in and update with its event); the writer that wrote them."""
    await emptied(engine)
    writer = WriteService(engine)
    for name, entity_rows in rows.items():
        await writer.create(name, entity_rows)
    return writer


@pytest.fixture
def writer(clean: AsyncEngine) -> WriteService:
    return WriteService(clean)


@pytest.fixture
def reader(clean: AsyncEngine) -> Reader:
    return Reader(clean)


async def count_rows(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()


async def table_counts(engine: AsyncEngine) -> dict[str, int]:
    return {t.strip(): await count_rows(engine, t.strip()) for t in TABLES.split(",")}


async def until_a_lock_is_awaited(engine: AsyncEngine, limit_s: float = 30) -> None:
    """Return once some session of this database waits for a lock (a row another transaction holds)."""
    import asyncio
    import time

    deadline = time.monotonic() + limit_s
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while True:
        async with engine.connect() as conn:
            if (await conn.execute(query)).scalar_one():
                return
        if time.monotonic() > deadline:
            raise AssertionError("no session came to wait for a lock")
        await asyncio.sleep(0.02)


class Served:
    """Any ASGI app under a real uvicorn, in a thread, on a free loopback port."""

    def __init__(self, app: object, *, lifespan: str = "on") -> None:
        import threading

        import uvicorn

        self.app = app
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan=lifespan)
        )
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> str:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


class RunningServer(Served):
    """The real app, configured like the session's or (with overrides: tokens, limits) otherwise."""

    def __init__(self, database_url: str, *, migrate_on_start: bool = False, **overrides: object) -> None:
        from api.app import create_app
        from api.config import Settings

        settings = Settings(
            database_url=database_url, migrate_on_start=migrate_on_start, **{"pool_size": 5, **overrides}
        )  # type: ignore[arg-type]
        super().__init__(create_app(settings))


@pytest.fixture(scope="session")
def served(database_url: str, engine: AsyncEngine) -> Iterator[tuple[str, Any]]:
    """The app served over real HTTP (the schema is migrated by `engine`): its base URL, and the app."""
    server = RunningServer(database_url)
    with server as url:
        yield url, server.app


@pytest.fixture(scope="session")
def server_url(served: tuple[str, Any]) -> str:
    """Base URL of the app served over real HTTP."""
    return served[0]
