"""The connection to PostgreSQL: engine, transactions, and database errors as domain errors."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NoReturn

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from api.errors import (
    Conflict,
    ConflictReason,
    DatabaseFault,
    InvalidInput,
    InvalidReason,
    StatementTimeout,
    Unavailable,
)

log = logging.getLogger("coco.database")
CONNECT_TIMEOUT_S = 10.0

# What each SQLSTATE means is decided here, once (the classes are the first two characters, as in
# PostgreSQL's Appendix A); every front end maps the resulting errors, never a SQLSTATE.
# "The client sent a bad value":
_BAD_VALUE_CLASSES = ("22",)  # data exceptions: 22P02 invalid text, 22007 bad datetime, 22003 out of range
_BAD_VALUE_CODES = {"42704", "42883", "2201B"}  # unknown text search config; no such operator; bad regex
# "Try again later": connection exceptions; insufficient resources (too many connections, out of memory,
# disk full); shutting down or not yet accepting connections.
_UNAVAILABLE_CLASSES = ("08", "53", "57P")
# ...except a statement too big for the server's settings, which no retry helps (PostgREST: 500).
_NOT_UNAVAILABLE = {"53400"}
# A deadlock or serialization failure: the transaction may be run again.
_TRANSIENT = {"40001", "40P01"}
# What the driver raises when the server went away mid-use: a refused or reset socket, a closed
# connection, or asyncpg's protocol state machine left half-way (InternalClientError, seen while
# PostgreSQL restarted: "cannot switch to state 12").
LOST_CONNECTION = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.InternalClientError)


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int | None = None,
    statement_timeout_ms: int | None = None,
    application_name: str = "coco",
) -> AsyncEngine:
    """An engine over asyncpg that takes a libpq-style URL as it is (socket ?host= form included)."""
    settings = connection_settings(statement_timeout_ms, application_name)

    async def connect() -> asyncpg.Connection:
        # A database host that does not answer at all must not hold requests for asyncpg's 60 s:
        # they answer 503 (Unavailable) soon, and the next request tries again.
        return await asyncpg.connect(libpq_url(url), server_settings=settings, timeout=CONNECT_TIMEOUT_S)

    return create_async_engine(
        "postgresql+asyncpg://",
        async_creator=connect,
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        # No ping before each use (a round trip per transaction): a connection the database
        # dropped fails its first statement as Unavailable, and SQLAlchemy then replaces every
        # connection of the pool that predates the failure.
        pool_pre_ping=False,
        pool_recycle=1800,
    )


def connection_settings(statement_timeout_ms: int | None, application_name: str) -> dict[str, str]:
    """The session settings of every connection the server opens."""
    settings = {"TimeZone": "UTC", "application_name": application_name}
    if statement_timeout_ms:
        settings["statement_timeout"] = str(statement_timeout_ms)
    return settings


def libpq_url(url: str) -> str:
    """Accept SQLAlchemy-style driver suffixes too, and hand asyncpg a plain libpq URL."""
    for prefix in ("postgresql+asyncpg://", "postgres+asyncpg://", "postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One database transaction; database failures leave it as domain errors."""
    try:
        async with engine.begin() as conn:
            yield conn
    except (DBAPIError, asyncpg.PostgresError) as error:
        raise_as_domain_error(error)
    except LOST_CONNECTION as error:
        raise Unavailable(f"the database is unavailable: {error}") from error


@asynccontextmanager
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read-only use of a pooled connection, with the same error translation."""
    try:
        async with engine.connect() as conn:
            yield conn
    except (DBAPIError, asyncpg.PostgresError) as error:
        raise_as_domain_error(error)
    except LOST_CONNECTION as error:
        raise Unavailable(f"the database is unavailable: {error}") from error


async def wait_until_reachable(engine: AsyncEngine, timeout_s: float, interval_s: float = 1.0) -> None:
    """Return once the database answers; retry while it is unavailable (a container whose
    database starts alongside it), and give up with `Unavailable` after `timeout_s`.
    Other failures (a wrong password, a missing database) are raised at once."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            async with connection(engine) as conn:
                await conn.execute(text("SELECT 1"))
            return
        except Unavailable as error:
            if time.monotonic() + interval_s > deadline:
                raise
            log.warning("waiting for the database: %s", error)
            await asyncio.sleep(interval_s)


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a database error, wherever the driver layers keep it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(code, str):
            return code
        current = getattr(current, "orig", None) or current.__cause__
    return None


def is_transient(error: BaseException) -> bool:
    """A deadlock or serialization failure: the transaction may simply be run again."""
    return isinstance(error, DatabaseFault) and error.sqlstate in _TRANSIENT


def as_domain_error(error: BaseException) -> BaseException:
    """What PostgreSQL or the driver raised, as the error it means: a domain error for what the domain
    names, DatabaseFault (typed with the SQLSTATE) for any other refusal. Only a failure that carries
    no SQLSTATE and is no lost connection stays as it was: unexpected."""
    code = sqlstate(error)
    if code is None:
        if isinstance(error, (OperationalError, InterfaceError)) or _lost_connection(error):
            return Unavailable(f"the database is unavailable: {_message(error)}")
        return error
    detail = _message(error)
    if code == "23505":
        return Conflict(detail, reason=ConflictReason.DUPLICATE, entity="")
    if code == "23503":
        return Conflict(detail, reason=ConflictReason.MISSING_REFERENCE, entity="")
    if code == "23502":
        return InvalidInput(detail, reason=InvalidReason.REQUIRED)
    if code == "23514":
        return InvalidInput(detail, reason=InvalidReason.RULE)
    if code.startswith(_BAD_VALUE_CLASSES) or code in _BAD_VALUE_CODES:
        return InvalidInput(detail, reason=InvalidReason.FORMAT, sqlstate=code)
    if code == "57014":
        return StatementTimeout("the statement took too long and was cancelled (statement_timeout)")
    if code.startswith(_UNAVAILABLE_CLASSES) and code not in _NOT_UNAVAILABLE:
        return Unavailable(f"the database is unavailable: {detail}")
    lines = detail.strip().splitlines()
    return DatabaseFault(lines[0] if lines else type(error).__name__, sqlstate=code)


def raise_as_domain_error(error: BaseException) -> NoReturn:
    translated = as_domain_error(error)
    if translated is error:
        raise error
    raise translated from error


def _lost_connection(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, LOST_CONNECTION) or getattr(current, "connection_invalidated", False):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


def _message(error: BaseException) -> str:
    original: Any = getattr(error, "orig", None) or error
    text = str(original)
    # asyncpg wraps its message as "<class ...>: message"; keep the message.
    text = text.split(": ", 1)[1] if text.startswith("<class") and ": " in text else text
    if _DRIVER_ARGUMENT.match(text):
        # The driver could not send a value as its parameter's type: its words quote Python's
        # (a repr, a type name), none of which the client sent.
        return "a value given is out of range or of the wrong type for its field"
    return text


_DRIVER_ARGUMENT = re.compile(r"invalid input for query argument \$\d+")
