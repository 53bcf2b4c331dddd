"""Bring the database schema to the newest migration, once, however many processes start at once."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from api.resources import bundled
from api.store.database import transaction

MIGRATIONS = bundled("migrations")
# Several workers (or replicas) may start together: one migrates, the others wait and find it done.
MIGRATION_LOCK_KEY = 0x0C0C_3161


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with transaction(engine) as conn:
        await conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
        await conn.run_sync(lambda sync_conn: command.upgrade(alembic_config(sync_conn), revision))
