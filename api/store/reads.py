"""Running query plans: the read side that every front end calls.

Every read runs with the caller's scope (api/store/scoping.py): a token limited to teams reads only
what those teams may see, whichever front end asked, at every level of the plan. The statements'
builder (api/store/select.py) puts it in the plan itself, so neither a front end nor a reader method
can leave it out.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.plan import Bundle, Condition, ReadPlan, all_of, parameterized
from api.store.database import connection
from api.store.pool import DirectPool, compile_statement
from api.store.select import AnySelect, Statements, count_statement, explain_statement, rows_statement

STREAM_BATCH = 500
# Whether a statement is one the reader keeps (compiled once) or one built for this read alone.
KEPT, ONCE = True, False


class Reader:
    """Reads through `pool` (asyncpg directly, api/store/pool.py) when it is given, else through
    the engine; streams and snapshots always go through an engine: `streams` when given (a session
    connection, DIRECT_DATABASE_URL, so that a long read holds none of a pooler's few connections).
    It keeps the statements of recent plan shapes (`statements`), shared with the readers
    `in_timezone` makes."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        pool: DirectPool | None = None,
        timezone: str | None = None,
        streams: AsyncEngine | None = None,
        statements: Statements | None = None,
    ) -> None:
        self.engine = engine
        self.pool = pool
        self.streams = streams or engine
        # Timestamps are rendered in this PostgreSQL TimeZone (UTC, the session default, when None).
        self.timezone = timezone
        self.statements = statements if statements is not None else Statements()

    def in_timezone(self, timezone: str | None) -> Reader:
        """This reader, rendering timestamps in `timezone` (a name or an offset PostgreSQL accepts)."""
        if timezone is None:
            return self
        return Reader(self.engine, pool=self.pool, timezone=timezone, statements=self.statements, streams=self.streams)

    async def json_array(self, plan: ReadPlan) -> str:
        """The rows the plan selects, as the text of one JSON array built by PostgreSQL."""
        return (await self.json_rows(plan))[0]

    async def json_rows(self, plan: ReadPlan) -> tuple[str, int]:
        """`json_array`, and the number of rows in it."""
        return await self.json_rows_shaped(*parameterized(plan))

    async def json_rows_shaped(self, shape: ReadPlan, values: list[Any]) -> tuple[str, int]:
        """`json_rows` of the plan given as its shape (`plan.parameterized`) and its slots' values."""
        prepared, arguments = self.statements.shape(shape, values, zoned=self.timezone is not None)
        text: str
        rows: int
        text, rows = (await self._first_rows((prepared.statement, arguments, KEPT)))[0]
        return text, rows

    async def json_object(self, bundle: Bundle) -> str:
        """The text of the bundle's one JSON object, built by PostgreSQL in one statement."""
        text: str = (await self._first_rows((self.statements.bundle(bundle), {}, KEPT)))[0][0]
        return text

    async def first_value(self, statement: AnySelect, values: dict[str, Any], kept: bool = KEPT) -> Any:
        """The first column of the statement's first row (None when it has no row); `kept`: the statement is
        one kept for good (a module's constant: compiled once, prepared on each connection)."""
        row = (await self._first_rows((statement, values, kept)))[0]
        return None if row is None else row[0]

    async def count(self, plan: ReadPlan) -> int:
        total: int = (await self._first_rows((count_statement(plan), {}, ONCE)))[0][0]
        return total

    async def page(self, plan: ReadPlan, *, with_count: bool) -> tuple[str, int | None]:
        """Rows and (when asked) the total, read in one snapshot."""
        if not with_count:
            return await self.json_array(plan), None
        prepared, arguments = self.statements.array(plan, zoned=self.timezone is not None)
        rows, total = await self._first_rows((prepared.statement, arguments, KEPT), (count_statement(plan), {}, ONCE))
        return rows[0], total[0]

    async def _first_rows(self, *statements: tuple[AnySelect, dict[str, Any], bool]) -> list[Any]:
        """Each statement's first row, with its parameters' values; several see one snapshot.
        A statement marked KEPT is one of `statements`' (its compiled form is kept too)."""
        pool = self.pool
        if pool is not None:
            compiled = [pool.compiled(st) if kept else compile_statement(st) for st, _, kept in statements]
            return await pool.fetchrows(
                [(c, c.arguments(values)) for c, (_, values, _) in zip(compiled, statements, strict=True)],
                timezone=self.timezone,
            )
        async with connection(self.engine) as conn, conn.begin():
            if len(statements) > 1:
                await conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            await set_timezone(conn, self.timezone)
            return [(await conn.execute(statement, values)).first() for statement, values, _ in statements]

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
        async with connection(self.streams) as conn, conn.begin():
            await conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            await set_timezone(conn, self.timezone)
            yield await count(conn, plan)
            statement = rows_statement(plan, zoned=self.timezone is not None)
            result = await conn.stream(statement.execution_options(yield_per=STREAM_BATCH))
            async for row in result:
                yield row[0]

    async def stream(self, plan: ReadPlan) -> AsyncIterator[str]:
        """Each row as JSON text, fetched in batches through a server-side cursor, so memory stays flat."""
        async with connection(self.streams) as conn, conn.begin():
            await set_timezone(conn, self.timezone)
            async for row in stream(conn, plan, zoned=self.timezone is not None):
                yield row

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncConnection]:
        """A connection whose reads (`stream(conn, plan)`, `json_array(conn, plan, statements)`) all see
        one consistent state of the database, e.g. for an export of several entities."""
        async with connection(self.streams) as conn, conn.begin():
            await conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield conn


async def set_timezone(conn: AsyncConnection, timezone: str | None) -> None:
    """Render timestamps in `timezone` until the end of the connection's current transaction."""
    if timezone is not None:
        await conn.execute(select(func.set_config("TimeZone", timezone, True)))


async def json_array(conn: AsyncConnection, plan: ReadPlan, statements: Statements, *, zoned: bool = False) -> str:
    """The rows the plan selects as one JSON array's text, on the caller's connection (inside its
    transaction: a write's own rows, say), through `statements`; `zoned`: the connection renders in a
    TimeZone set with `set_timezone`."""
    prepared, arguments = statements.array(plan, zoned=zoned)
    text: str
    text, _ = (await conn.execute(prepared.statement, arguments)).one()
    return text


async def stream(conn: AsyncConnection, plan: ReadPlan, *, zoned: bool = False) -> AsyncIterator[str]:
    """Each row as JSON text through a server-side cursor; `conn` must be in a transaction."""
    result = await conn.stream(rows_statement(plan, zoned=zoned).execution_options(yield_per=STREAM_BATCH))
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
        aggregates=plan.aggregates,
        spreads=plan.spreads,
        layout=plan.layout,
    )
