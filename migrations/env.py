"""Alembic environment: migrations run on a connection the caller hands over.

`api.store.migrate` opens the connection, takes the migration lock and passes the
connection in `config.attributes["connection"]`; the `alembic` command line
works too, with DATABASE_URL set.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from api.store.tables import Base

config = context.config
target_metadata = Base.metadata


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(url="postgresql://", target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_from_environment() -> None:
    from api.config import Settings
    from api.store.database import create_engine

    engine = create_engine(Settings.from_environment().require_database_url(), pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
elif (connection := config.attributes.get("connection")) is not None:
    run(connection)
else:
    asyncio.run(run_from_environment())
