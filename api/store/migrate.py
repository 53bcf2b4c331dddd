"""Bring the database schema to the newest migration, once, however many processes start at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from api.resources import bundled
from api.store.database import transaction

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = bundled("migrations")
# Several workers (or replicas) may start together: one migrates, the others wait and find it done.
MIGRATION_LOCK_KEY = 0x0C0C_3161


def alembic_config(connection: Connection | None = None) -> Config:
    # Alembic (with Mako and Pygments) is imported by what migrates, not by every process that imports the
    # store: `coco serve` migrates before it starts its workers, which then never need it.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with transaction(engine) as conn:
        await conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
        await conn.run_sync(lambda sync_conn: _upgrade(sync_conn, revision))


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), revision)
