"""The direct pool's reading of SQLAlchemy's compiled statements (api/store/sqlalchemy_adapter.py).

The direct pool runs statements SQLAlchemy compiled on asyncpg itself, so it must send what
SQLAlchemy would send: the same SQL text, and each value converted the same way (JSON
serialised, lists and booleans as the dialect wants them). If an upgrade of SQLAlchemy moves or
changes any of what the adapter reads, these fail, before any read does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ARRAY, Boolean, Date, Text, bindparam, cast, event, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from api.store.pool import DirectPool, compile_statement
from api.store.sqlalchemy_adapter import compile_for_asyncpg

# Parameters whose types convert their values (JSONB, boolean, list), and ones that do not.
STATEMENT = select(
    cast(bindparam("doc", type_=JSONB), Text).label("doc"),
    bindparam("flag", type_=Boolean).label("flag"),
    cast(bindparam("tags", type_=ARRAY(Text)), Text).label("tags"),
    literal("fixed").label("fixed"),  # a value bound in the statement itself
    bindparam("day", type_=Date).label("day"),
)
VALUES: dict[str, Any] = {
    "doc": {"a": [1, "x"], "b": None},
    "flag": True,
    "tags": ["a", "b,c"],
    "day": dt.date(2026, 1, 2),
}


def test_what_the_adapter_reads_off_a_compiled_statement() -> None:
    sql, names, defaults, processors = compile_for_asyncpg(STATEMENT)
    assert len(names) == 5 and all(f"${n}" in sql for n in range(1, 6))
    [own] = [name for name in names if name not in VALUES]
    assert set(names) - {own} == set(VALUES) and defaults[own] == "fixed"
    # JSON is serialised for asyncpg; a date goes as it is.
    assert {"doc", "flag", "tags"} <= set(processors) and "day" not in processors
    assert processors["doc"](VALUES["doc"]) == '{"a": [1, "x"], "b": null}'


async def test_the_direct_pool_sends_what_sqlalchemy_sends(database_url: str, engine: AsyncEngine) -> None:
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with engine.connect() as conn:
            expected = (await conn.execute(STATEMENT, VALUES)).one()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    [(sql, parameters)] = sent

    compiled = compile_statement(STATEMENT)
    assert compiled.sql == sql
    assert compiled.arguments(VALUES) == list(parameters)

    pool = DirectPool(database_url, size=1)
    await pool.start()
    try:
        row = await pool.fetchrow(compiled, compiled.arguments(VALUES))
    finally:
        await pool.close()
    assert tuple(row) == tuple(expected)
    assert row["tags"] == '{a,"b,c"}' and row["fixed"] == "fixed" and row["day"] == dt.date(2026, 1, 2)
