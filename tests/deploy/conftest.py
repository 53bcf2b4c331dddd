"""A PgBouncer in transaction mode in front of the session's embedded PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from sqlalchemy import text

from api.ops.embedded import EmbeddedPostgres
from api.store.database import create_engine
from api.store.migrate import upgrade
from tests.deploy.tools import PgBouncer

# The database's own time zone is not UTC, so that a connection that missed its settings shows it.
DATABASE_TIMEZONE = "Asia/Kolkata"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("COCO_TEST_DEPLOY") == "1":
        return
    for item in items:
        if item.get_closest_marker("deploy") is not None:
            item.add_marker(pytest.mark.skip(reason="minutes long: `make test-deploy` runs it"))


@dataclass(frozen=True)
class Pooled:
    direct_url: str
    pooled_url: str
    bouncer: PgBouncer


@pytest.fixture(scope="module")
def bouncer(postgres: EmbeddedPostgres) -> Iterator[PgBouncer]:
    with PgBouncer(postgres.url(), pool_mode="transaction", pool_size=20) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pooled(postgres: EmbeddedPostgres, bouncer: PgBouncer) -> AsyncIterator[Pooled]:
    name = f"coco_pooled_{uuid.uuid4().hex[:8]}"
    direct = postgres.create_database(name)
    engine = create_engine(direct, pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(text(f"ALTER DATABASE {name} SET TimeZone = '{DATABASE_TIMEZONE}'"))
    await engine.dispose()
    engine = create_engine(direct, pool_size=1)
    await upgrade(engine)
    await engine.dispose()
    yield Pooled(direct, bouncer.url(name), bouncer)
