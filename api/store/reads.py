"""Running query plans: the read side that both front ends call."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.plan import Bundle, Condition, ReadPlan, all_of, parameterized
from api.store.database import connection
from api.store.pool import DirectPool, compiled_statement
from api.store.select import (
    AnySelect,
    bundle_statement,
    count_statement,
    explain_statement,
    prepared_array,
    prepared_shape,
    rows_statement,
)

STREAM_BATCH = 500


class Reader:
    """Reads through `pool` (asyncpg directly, api/store/pool.py) when it is given, else through
    the engine; streams and snapshots always go through the engine."""

    def __init__(self, engine: AsyncEngine, *, pool: DirectPool | None = None, timezone: str | None = None) -> None:
        self.engine = engine
        self.pool = pool
        # Timestamps are rendered in this PostgreSQL TimeZone (UTC, the session default, when None).
        self.timezone = timezone

    def in_timezone(self, timezone: str | None) -> Reader:
        """This reader, rendering timestamps in `timezone` (a name or an offset PostgreSQL accepts)."""
        return self if timezone is None else Reader(self.engine, pool=self.pool, timezone=timezone)

    async def json_array(self, plan: ReadPlan) -> str:
        """The rows the plan selects, as the text of one JSON array built by PostgreSQL."""
        return (await self.json_rows(plan))[0]

    async def json_rows(self, plan: ReadPlan) -> tuple[str, int]:
        """`json_array`, and the number of rows in it."""
        return await self.json_rows_shaped(*parameterized(plan))

    async def json_rows_shaped(self, shape: ReadPlan, values: list[Any]) -> tuple[str, int]:
        """`json_rows` of the plan given as its shape (`plan.parameterized`) and its slots' values."""
        prepared, arguments = prepared_shape(shape, values)
        text: str
        rows: int
        text, rows = (await self._first_rows((prepared.statement, arguments)))[0]
        return text, rows

    async def json_object(self, bundle: Bundle) -> str:
        """The text of the bundle's one JSON object, built by PostgreSQL in one statement."""
        text: str = (await self._first_rows((bundle_statement(bundle), {})))[0][0]
        return text

    async def count(self, plan: ReadPlan) -> int:
        total: int = (await self._first_rows((count_statement(plan), {})))[0][0]
        return total

    async def page(self, plan: ReadPlan, *, with_count: bool) -> tuple[str, int | None]:
        """Rows and (when asked) the total, read in one snapshot."""
        if not with_count:
            return await self.json_array(plan), None
        prepared, arguments = prepared_array(plan)
        rows, total = await self._first_rows((prepared.statement, arguments), (count_statement(plan), {}))
        return rows[0], total[0]

    async def _first_rows(self, *statements: tuple[AnySelect, dict[str, Any]]) -> list[Any]:
        """Each statement's first row, with its parameters' values; several see one snapshot."""
        if self.pool is not None:
            compiled = [compiled_statement(statement) for statement, _ in statements]
            return await self.pool.fetchrows(
                [(c, c.arguments(values)) for c, (_, values) in zip(compiled, statements, strict=True)],
                timezone=self.timezone,
            )
        async with connection(self.engine) as conn, conn.begin():
            if len(statements) > 1:
                await conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            await set_timezone(conn, self.timezone)
            return [(await conn.execute(statement, values)).first() for statement, values in statements]

    async def planned_count(self, plan: ReadPlan) -> int:
        """PostgreSQL's planner estimate of the rows matching the plan's filter (no scan of the rows)."""
        async with connection(self.engine) as conn:
            await set_timezone(conn, self.timezone)
            return await planned_count(conn, plan)

    async def stream_counted(self, plan: ReadPlan) -> AsyncGenerator[int | str, None]:
        """First the number of rows matching the filter, then each row as JSON text, from one snapshot.

        For a streamed response whose headers (Content-Range) need the row count
        before the first row is sent; memory stays flat as with `stream`.
        """
        async with connection(self.engine) as conn, conn.begin():
            await conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            await set_timezone(conn, self.timezone)
            yield await count(conn, plan)
            result = await conn.stream(rows_statement(plan).execution_options(yield_per=STREAM_BATCH))
            async for row in result:
                yield row[0]

    async def stream(self, plan: ReadPlan) -> AsyncIterator[str]:
        """Each row as JSON text, fetched in batches through a server-side cursor, so memory stays flat."""
        async with connection(self.engine) as conn, conn.begin():
            await set_timezone(conn, self.timezone)
            async for row in stream(conn, plan):
                yield row

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncConnection]:
        """A connection whose reads (`stream(conn, plan)`, `json_array(conn, plan)`) all see
        one consistent state of the database, e.g. for an export of several entities."""
        async with connection(self.engine) as conn, conn.begin():
            await conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield conn


async def set_timezone(conn: AsyncConnection, timezone: str | None) -> None:
    """Render timestamps in `timezone` until the end of the connection's current transaction."""
    if timezone is not None:
        await conn.execute(select(func.set_config("TimeZone", timezone, True)))


async def json_array(conn: AsyncConnection, plan: ReadPlan) -> str:
    return (await json_rows(conn, plan))[0]


async def json_rows(conn: AsyncConnection, plan: ReadPlan) -> tuple[str, int]:
    prepared, arguments = prepared_array(plan)
    text, rows = (await conn.execute(prepared.statement, arguments)).one()
    return text, rows


async def stream(conn: AsyncConnection, plan: ReadPlan) -> AsyncIterator[str]:
    """Each row as JSON text through a server-side cursor; `conn` must be in a transaction."""
    result = await conn.stream(rows_statement(plan).execution_options(yield_per=STREAM_BATCH))
    async for row in result:
        yield row[0]


async def count(conn: AsyncConnection, plan: ReadPlan) -> int:
    total: int = (await conn.execute(count_statement(plan))).scalar_one()
    return total


async def planned_count(conn: AsyncConnection, plan: ReadPlan) -> int:
    document = (await conn.execute(explain_statement(plan))).scalar_one()
    if isinstance(document, str):
        document = json.loads(document)
    return int(document[0]["Plan"]["Plan Rows"])


def only_ids(plan: ReadPlan, ids: list[str]) -> ReadPlan:
    """The same plan narrowed to the given rows (to read back what a write touched)."""
    return ReadPlan(
        entity=plan.entity,
        where=all_of(plan.where, Condition("id", "in", list(ids))),
        order=plan.order,
        columns=plan.columns,
        embeds=plan.embeds,
        counts=plan.counts,
        strip_nulls=plan.strip_nulls,
    )
