"""The direct pool's own connection list (api/store/pool.py, `Connections`), on a real PostgreSQL.

What asyncpg's pool did for us and ours must still do: never more connections than its size,
a waiting read served by the next connection returned, and a connection whose use did not end
at rest (cancelled mid-statement, timed out, inside a transaction) never lent again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from api.errors import StatementTimeout
from api.store.pool import DirectPool, compile_statement

BACKEND = compile_statement(text("SELECT pg_backend_pid()"))
SLEEP = compile_statement(text("SELECT pg_sleep(:s)"))


@contextlib.asynccontextmanager
async def _started(database_url: str, **options: Any) -> AsyncIterator[DirectPool]:
    pool = DirectPool(database_url, **options)
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()


async def _backend(pool: DirectPool) -> int:
    pid: int = (await pool.fetchrow(BACKEND, []))[0]
    return pid


async def test_a_connection_at_rest_is_lent_again_and_the_size_holds(database_url: str) -> None:
    async with _started(database_url, size=2) as pool:
        first = await _backend(pool)
        assert await _backend(pool) == first
        assert pool.usage() == (1, 1)
        # Five reads at once on two connections: the others wait for one to come back.
        sleeps = [pool.fetchrow(SLEEP, SLEEP.arguments({"s": 0.05})) for _ in range(5)]
        await asyncio.gather(*sleeps)
        assert pool.usage() == (2, 2)
    assert pool.usage() == (0, 0)


async def test_a_cancelled_statement_leaves_its_connection_out(database_url: str) -> None:
    async with _started(database_url, size=1) as pool:
        first = await _backend(pool)
        sleeping = asyncio.ensure_future(pool.fetchrow(SLEEP, SLEEP.arguments({"s": 30})))
        # A second read waits for the only connection, which the sleep holds.
        waiting = asyncio.ensure_future(_backend(pool))
        await asyncio.sleep(0)
        sleeping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sleeping
        # The waiter was given a fresh connection, not the one still busy with the cancelled sleep.
        assert await asyncio.wait_for(waiting, 10) != first
        assert pool.usage() == (1, 1)


async def test_a_timed_out_statement_leaves_its_connection_out(database_url: str) -> None:
    # Through a transaction-mode pooler asyncpg keeps the timeout (api/store/pool.py, _alone); the
    # pooler's absence does not matter to what the pool does with the connection afterwards.
    async with _started(database_url, size=1, statement_timeout_ms=100, pooler="transaction") as pool:
        first = await _backend(pool)
        with pytest.raises(StatementTimeout):
            await pool.fetch(SLEEP, SLEEP.arguments({"s": 5}))
        assert await _backend(pool) != first


async def test_a_connection_left_inside_a_transaction_is_not_lent_again(database_url: str) -> None:
    async with _started(database_url, size=1) as pool:
        async with pool.connection() as conn:
            first = await conn.fetchval("SELECT pg_backend_pid()")
            await conn.execute("BEGIN")
        assert await _backend(pool) != first


async def test_connections_closed_by_the_server_are_replaced(database_url: str) -> None:
    async with _started(database_url, size=2) as pool:
        async with pool.connection() as doomed, pool.connection() as other:
            first = await doomed.fetchval("SELECT pg_backend_pid()")
            await other.execute("SELECT pg_terminate_backend($1)", first)
        # The connection the server dropped fails at most one read, which runs again on a fresh one.
        assert await _backend(pool) != first
        assert await _backend(pool) != first
