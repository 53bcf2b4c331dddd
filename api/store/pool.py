"""Statements straight on asyncpg: every REST GET and GraphQL query, and creates that are one statement.

SQLAlchemy builds each statement once and compiles it once (api/store/select.py
keeps a plan shape's, api/store/writes.py a create's). Running it through
SQLAlchemy's connection and result layers as well would cost more than
everything else a read does: a pooled checkout with its greenlet, BEGIN, the
statement, ROLLBACK, four round trips where one does. Here the compiled text
runs as one statement in autocommit on a pooled asyncpg connection, which keeps it
prepared on each connection; a read that needs a snapshot or a time zone
takes a transaction for just that.

The pool's connections carry no session state between uses (time zones are
set for one transaction only; nothing listens, locks or keeps cursors), so
nothing is reset when a connection returns to the pool: the pool is our own
(`Connections`), a list of idle asyncpg connections, not asyncpg's, whose
lending and return cost more than the statement's own Python work.

Through a pooler in transaction mode (COCO_DB_POOLER=transaction) nothing is
kept prepared: asyncpg parses each statement, then parses it again with its
Bind, two round trips where one does directly. A statement alone still runs in
autocommit, one implicit transaction: its time zone is the one sent at
connection, which the pooler restores on every server connection it lends
(api/store/database.py, Pooling), and its statement timeout is kept by asyncpg,
which has PostgreSQL cancel it once past (a cancel request, which PgBouncer
passes on). Where the pooler does not keep the time zone
(COCO_DB_POOLER_TRACKS_TIMEZONE=false, or a pooler that answered another one),
a read runs in a transaction whose BEGIN carries the time zone and the
statement timeout: four round trips. Reads of several statements (one
snapshot) or in a requested time zone take their transaction everywhere.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, TypeAlias

import asyncpg
from sqlalchemy.sql.elements import ClauseElement

from api.cache import BoundedCache
from api.errors import StatementTimeout, Unavailable
from api.store.database import (
    CONNECT_TIMEOUT_S,
    LOST_CONNECTION,
    STATEMENT_TIMED_OUT,
    Pooling,
    libpq_url,
    raise_as_domain_error,
)
from api.store.sqlalchemy_adapter import compile_for_asyncpg

STATEMENTS_KEPT = 512
# A connection of the pool, as `DirectPool.connection` lends it.
Pooled: TypeAlias = "asyncpg.Connection[asyncpg.Record]"
# An idle connection older than this is closed rather than lent (as asyncpg's pool does by default):
# what sits between us and PostgreSQL may have dropped it meanwhile.
IDLE_LIFETIME_S = 300.0


@dataclass(frozen=True)
class Compiled:
    """A statement as asyncpg runs it: the SQL text and how to order and convert its arguments."""

    sql: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]
    processors: Mapping[str, Callable[[Any], Any]]

    def arguments(self, given: Mapping[str, Any]) -> list[Any]:
        values = []
        for name in self.names:
            value = given[name] if name in given else self.defaults[name]
            process = self.processors.get(name)
            values.append(process(value) if process is not None and value is not None else value)
        return values


def compile_statement(statement: ClauseElement) -> Compiled:
    return Compiled(*compile_for_asyncpg(statement))


class DirectPool:
    def __init__(
        self,
        url: str,
        *,
        size: int = 10,
        statement_timeout_ms: int | None = None,
        application_name: str = "coco",
        pooler: str = "none",
        tracks_timezone: bool = True,
    ) -> None:
        self.url = libpq_url(url)
        self.size = size
        self.pooling = Pooling(pooler, statement_timeout_ms, application_name, tracks_timezone)
        # Through a transaction-mode pooler the statement timeout is not a session setting: asyncpg keeps it.
        self._per_transaction = self.pooling.per_transaction
        self._timeout_s = statement_timeout_ms / 1000 if statement_timeout_ms else None
        self._pool: Connections | None = None
        # Statements are kept and asked again (api/store/select.py keeps those of recent plan shapes,
        # statements.py those of its creates): each is compiled once, for as long as it is kept here.
        self.statements: BoundedCache[ClauseElement, Compiled] = BoundedCache("compiled_statements", STATEMENTS_KEPT)

    @property
    def caches(self) -> tuple[BoundedCache[Any, Any], ...]:
        return (self.statements,)

    def compiled(self, statement: ClauseElement) -> Compiled:
        """The statement compiled for asyncpg (once while it is kept)."""
        return self.statements.get_or_build(statement, compile_statement)

    async def start(self) -> None:
        # No connection is made before the first read: the server starts while the database is away.
        options = self.pooling.connect_options()

        async def connect() -> asyncpg.Connection:
            conn: asyncpg.Connection = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT_S, **options)
            try:
                await self.pooling.prepare(conn)
            except BaseException:
                conn.terminate()
                raise
            return conn

        self._pool = Connections(connect, self.size)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def usage(self) -> tuple[int, int]:
        """Connections open, and of those idle."""
        if self._pool is None:
            return 0, 0
        return self._pool.usage()

    def connection(self) -> _Lent:
        """A pooled connection; database failures leave it as domain errors, as in api/store/database.py."""
        if self._pool is None:
            raise RuntimeError("the direct pool is not started")
        return _Lent(self._pool)

    async def fetchrow(self, statement: Compiled, arguments: list[Any], *, timezone: str | None = None) -> Any:
        """The statement's first row."""
        return (await self.fetchrows([(statement, arguments)], timezone=timezone))[0]

    async def fetchrows(
        self, statements: list[tuple[Compiled, list[Any]]], *, timezone: str | None = None
    ) -> list[Any]:
        """Each statement's first row; several statements see one snapshot of the database.
        A connection the database dropped (a restart) fails its read, which runs once more on a fresh
        connection (all idle ones are dropped then too): a read can always run again."""
        for attempt in (1, 2):
            try:
                async with self.connection() as conn:
                    if timezone is None and len(statements) == 1 and self._alone_keeps_settings(conn):
                        return [await self._alone(conn.fetchrow, statements[0][0].sql, statements[0][1])]
                    isolation: Literal["repeatable_read", "read_committed"] = (
                        "repeatable_read" if len(statements) > 1 else "read_committed"
                    )
                    async with conn.transaction(isolation=isolation, readonly=True):
                        await set_timezone(conn, timezone)
                        return [await self._fetchrow(conn, *each) for each in statements]
            except Unavailable:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def fetch(self, statement: Compiled, arguments: list[Any]) -> list[Any]:
        """Every row of one statement run once, as a transaction of its own (a write: never run again).

        Through a transaction-mode pooler too it stays one implicit transaction: a create takes the
        event cursors' lock (api/store/events.py), and an explicit transaction would hold that lock
        over one more round trip to us (COMMIT), making every other writer wait for it. Its values do
        not depend on the time zone (timestamps come with their offset, rows come back typed), and the
        statement timeout is kept by asyncpg instead: past it, asyncpg has PostgreSQL cancel the
        statement (a cancel request, which PgBouncer passes on)."""
        async with self.connection() as conn:
            rows: list[Any] = await self._alone(conn.fetch, statement.sql, arguments)
            return rows

    def _alone_keeps_settings(self, conn: Pooled) -> bool:
        """Whether a statement alone, outside a transaction, runs with the session's settings: always on
        PostgreSQL itself; through a transaction-mode pooler when it keeps the time zone sent at connection
        (api/store/database.py, _SettingsInBegin.timezone_kept; the proxy hands the attribute on)."""
        return not self._per_transaction or bool(getattr(conn, "timezone_kept", False))

    async def _alone(self, run: Callable[..., Awaitable[Any]], sql: str, arguments: list[Any]) -> Any:
        """One statement in autocommit. Through a transaction-mode pooler its timeout is asyncpg's: past it,
        asyncpg has PostgreSQL cancel the statement, and the answer is what PostgreSQL's own timeout gives."""
        if not self._per_transaction:
            return await run(sql, *arguments)
        try:
            return await run(sql, *arguments, timeout=self._timeout_s)
        except TimeoutError:
            raise StatementTimeout(STATEMENT_TIMED_OUT) from None

    async def _fetchrow(self, conn: Pooled, statement: Compiled, arguments: list[Any]) -> Any:
        return await conn.fetchrow(statement.sql, *arguments)


async def set_timezone(conn: Pooled, timezone: str | None) -> None:
    """Render timestamps in `timezone` until the end of the current transaction."""
    if timezone is not None:
        await conn.execute("SELECT set_config('TimeZone', $1, true)", timezone)


async def _resync(conn: Pooled) -> None:
    """After the driver could not encode an argument: it had sent the statement to be parsed but never
    its values, so the server waits for them inside an implicit transaction, holding the locks the parse
    took (a TRUNCATE or a migration would wait on them), until the connection's next command. That
    command is sent now, before the connection goes back to the pool (whose reset does nothing)."""
    if not conn.is_closed() and not conn.is_in_transaction():
        try:
            await conn.execute("SELECT 1")
        except Exception:
            conn.terminate()


class Connections:
    """The direct pool's connections: at most `size` open, the idle ones lent last in, first out.

    asyncpg's own pool does more per use than these statements need: a proxy object, a future and an
    inactivity timer per lending, a reset coroutine and an `asyncio.shield` (one more task, run on
    the loop's next turn) per return. Here lending an idle connection and taking it back are a list
    pop and append. The session needs no reset (the module's docstring), and a connection that may
    not be back at rest (its use was cancelled or timed out mid-statement, it is inside a
    transaction, or it is closed) is closed instead of kept: the next lending opens a fresh one."""

    def __init__(self, connect: Callable[[], Awaitable[Pooled]], size: int) -> None:
        self._connect = connect
        self._size = size
        self._open = 0
        self._idle: list[tuple[Pooled, float]] = []
        # Each lent connection, with the generation current when it was lent (see `expire`).
        self._lent: dict[Pooled, int] = {}
        # Who waits for a connection (or, given None, for the right to open one).
        self._waiters: deque[asyncio.Future[Pooled | None]] = deque()
        self._generation = 0
        self._closing = False
        self._closes: set[asyncio.Task[None]] = set()

    def usage(self) -> tuple[int, int]:
        return self._open, len(self._idle)

    async def acquire(self) -> Pooled:
        if self._closing:
            raise RuntimeError("the direct pool is closed")
        idle = self._idle
        while idle:
            conn, since = idle.pop()
            if conn.is_closed() or time.monotonic() - since > IDLE_LIFETIME_S:
                self._drop(conn)
                continue
            self._lent[conn] = self._generation
            return conn
        if self._open >= self._size:
            waiter: asyncio.Future[Pooled | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                given = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    # Handed over just as the wait was cancelled: pass it on.
                    self._hand(waiter.result())
                raise
            if given is not None:
                self._lent[given] = self._generation
                return given
        return await self._new()

    async def _new(self) -> Pooled:
        self._open += 1
        try:
            conn = await self._connect()
        except BaseException:
            self._open -= 1
            self._hand(None)
            raise
        self._lent[conn] = self._generation
        return conn

    def release(self, conn: Pooled, *, at_rest: bool) -> None:
        """Take back a lent connection; `at_rest`: its last use ended with PostgreSQL's answer read."""
        generation = self._lent.pop(conn)
        if (
            not at_rest
            or self._closing
            or generation != self._generation
            or conn.is_closed()
            or conn.is_in_transaction()
        ):
            self._drop(conn)
            self._hand(None)
        else:
            self._hand(conn)

    def _hand(self, conn: Pooled | None) -> None:
        """To the first one still waiting (None: a place to open a connection in); else to the idle."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if conn is not None:
            self._idle.append((conn, time.monotonic()))

    def _drop(self, conn: Pooled) -> None:
        self._open -= 1
        if conn.is_closed():
            return
        task = asyncio.get_running_loop().create_task(_close(conn))
        self._closes.add(task)
        task.add_done_callback(self._closes.discard)

    def expire(self) -> None:
        """Close every idle connection, and each lent one when it comes back (the database went away)."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            self._drop(conn)

    async def close(self) -> None:
        self._closing = True
        self.expire()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(Unavailable("the database pool was closed"))
        for conn in list(self._lent):
            conn.terminate()
        if self._closes:
            await asyncio.gather(*self._closes, return_exceptions=True)


async def _close(conn: Pooled) -> None:
    try:
        await conn.close(timeout=CONNECT_TIMEOUT_S)
    except Exception:
        conn.terminate()


class _Lent:
    """`DirectPool.connection`: a connection of the pool while the block runs, database failures as
    domain errors. A block left by a server's error (the statement failed, the connection is at rest)
    or normally keeps the connection; any other way (cancelled, timed out, the driver's own failure)
    closes it, as it may still be waiting for the server."""

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: Connections) -> None:
        self._pool = pool
        self._conn: Pooled | None = None

    async def __aenter__(self) -> Pooled:
        try:
            self._conn = await self._pool.acquire()
        except asyncpg.PostgresError as error:
            raise_as_domain_error(error)
        except LOST_CONNECTION as error:
            self._pool.expire()
            raise Unavailable(f"the database is unavailable: {error}") from error
        return self._conn

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn = self._conn
        assert conn is not None
        if kind is None:
            self._pool.release(conn, at_rest=True)
            return
        if isinstance(error, asyncpg.DataError):
            await _resync(conn)
        self._pool.release(conn, at_rest=isinstance(error, asyncpg.PostgresError))
        if isinstance(error, asyncpg.PostgresError):
            raise_as_domain_error(error)
        if isinstance(error, LOST_CONNECTION):
            # The database went away (a restart, say): every idle connection is as dead as this one.
            self._pool.expire()
            raise Unavailable(f"the database is unavailable: {error}") from error
