"""The connection to PostgreSQL: engine, transactions, and database errors as domain errors."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from api.errors import (
    Conflict,
    ConflictReason,
    DatabaseFault,
    InvalidInput,
    InvalidReason,
    StatementTimeout,
    Transient,
    Unavailable,
)

log = logging.getLogger("coco.database")
CONNECT_TIMEOUT_S = 10.0
# PostgreSQL's statement_timeout and asyncpg's (a statement alone through a pooler) answer alike.
STATEMENT_TIMED_OUT = "the statement took too long and was cancelled (statement_timeout)"

# What each SQLSTATE means is decided here, once (the classes are the first two characters, as in
# PostgreSQL's Appendix A); every front end maps the resulting errors, never a SQLSTATE.
# "The client sent a bad value":
_BAD_VALUE_CLASSES = ("22",)  # data exceptions: 22P02 invalid text, 22007 bad datetime, 22003 out of range
_BAD_VALUE_CODES = {"42704", "42883", "2201B"}  # unknown text search config; no such operator; bad regex
# "Try again later": connection exceptions (08P01 too: PgBouncer sends all its own errors with it, "no
# more connections allowed", "query_wait_timeout", "server conn crashed?"); insufficient resources (too
# many connections, out of memory, disk full); shutting down or not yet accepting connections.
_UNAVAILABLE_CLASSES = ("08", "53", "57P")
# ...and, by code: a prepared statement this connection does not have (26000) or has already (42P05),
# which only a pooler that moved us to another server connection causes; a database that takes no
# writes (25006: a standby, say after a failover the pooler has not followed yet).
_UNAVAILABLE_CODES = {"26000", "42P05", "25006"}
# ...except a statement too big for the server's settings, which no retry helps (PostgREST: 500).
_NOT_UNAVAILABLE = {"53400"}
# A deadlock or serialization failure: the transaction may be run again.
_TRANSIENT = {"40001", "40P01"}
# What the driver raises when the server went away mid-use: a refused or reset socket, a closed
# connection, or asyncpg's protocol state machine left half-way (InternalClientError, seen while
# PostgreSQL restarted: "cannot switch to state 12").
LOST_CONNECTION = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.InternalClientError)


@dataclass(frozen=True)
class Pooling:
    """How connections are set up for what sits between us and PostgreSQL (COCO_DB_POOLER).

    - "none": PostgreSQL itself. The session settings travel in the startup packet, and statements
      stay prepared on each connection (asyncpg's statement cache, SQLAlchemy's).
    - "session": a pooler in session mode. Poolers refuse most startup parameters (PgBouncer:
      "unsupported startup parameter: statement_timeout"), so the settings are SET once after
      connecting; the server connection is ours for as long as the client connection lasts, so
      prepared statements stay too.
    - "transaction": a pooler in transaction mode (PgBouncer's pool_mode=transaction, Supabase's
      port 6543, Neon's -pooler host). Two transactions of one client connection may run on two
      server connections, so nothing may outlive its transaction: the statement timeout is SET LOCAL
      in each transaction's BEGIN (`_SettingsInBegin`), and no statement is kept prepared; asyncpg
      then sends each statement unnamed and parses it again in the same message as its Bind, which
      no pooler can split. Our advisory locks are all transaction-scoped (events.py, migrate.py).

      The time zone goes in the startup packet when the pooler keeps it (`tracks_timezone`,
      COCO_DB_POOLER_TRACKS_TIMEZONE): PgBouncer accepts TimeZone there, keeps it as the client's
      value and, whenever it lends the client a server connection whose TimeZone differs (the
      database's default, or what another client SET), SETs it first (its varcache: client_encoding,
      DateStyle, TimeZone, standard_conforming_strings, application_name). A read alone then needs no
      transaction (api/store/pool.py). A pooler that drops it (Supavisor ignores every startup
      parameter but application_name and search_path) needs it SET LOCAL in each BEGIN instead; a
      connection whose pooler answers with another TimeZone than the one sent falls back to that
      (`prepare`)."""

    mode: str = "none"
    statement_timeout_ms: int | None = None
    application_name: str = "coco"
    tracks_timezone: bool = True

    @property
    def per_transaction(self) -> bool:
        return self.mode == "transaction"

    def settings(self) -> dict[str, str]:
        return connection_settings(self.statement_timeout_ms, self.application_name)

    def settings_sql(self, *, local: bool, timezone: bool = True) -> str:
        scope = "SET LOCAL" if local else "SET"
        return " ".join(
            f"{scope} {name} = '{value}';"
            for name, value in self.settings().items()
            if name != "application_name" and (timezone or name != "TimeZone")
        )

    def connect_options(self) -> dict[str, Any]:
        """asyncpg.connect's options for this mode."""
        if self.mode == "none":
            return {"server_settings": self.settings()}
        # application_name is one of the few parameters poolers pass on (PgBouncer, Supavisor).
        options: dict[str, Any] = {"server_settings": {"application_name": self.application_name}}
        if self.per_transaction:
            if self.tracks_timezone:
                options["server_settings"]["TimeZone"] = TIMEZONE
            options["statement_cache_size"] = 0
            options["connection_class"] = _connection_class(
                self.settings_sql(local=True, timezone=not self.tracks_timezone),
                self.settings_sql(local=True),
                timezone_kept=self.tracks_timezone,
            )
        return options

    async def prepare(self, conn: asyncpg.Connection) -> None:
        """Run on each new connection: the session settings a session-mode pooler let through; through a
        transaction-mode pooler, whether it kept the TimeZone sent (it reports it back at once)."""
        if self.mode == "session":
            await conn.execute(self.settings_sql(local=False))
        elif self.per_transaction and self.tracks_timezone and isinstance(conn, _SettingsInBegin):
            reported = getattr(conn.get_settings(), "TimeZone", None)
            if reported is None or reported.lower() != TIMEZONE.lower():
                _warn_timezone_not_kept(reported)
                conn.keep_timezone_per_transaction()


TIMEZONE = "UTC"


@functools.cache
def _warn_timezone_not_kept(reported: str | None) -> None:
    log.warning(
        "the pooler answered TimeZone=%s to the TimeZone=%s sent at connection: it does not keep it, so it is "
        "SET LOCAL in every transaction (set COCO_DB_POOLER_TRACKS_TIMEZONE=false to say so)",
        reported,
        TIMEZONE,
    )


class _SettingsInBegin(asyncpg.Connection):
    """A connection whose every transaction starts with this mode's SET LOCAL settings.

    asyncpg's Transaction.start() (which SQLAlchemy's asyncpg dialect and our direct pool both use)
    sends its BEGIN through `execute` as one simple query; the settings ride along in that query,
    so they cost no round trip of their own. `timezone_kept`: the pooler restores the TimeZone sent
    at connection on every server connection it lends, so a statement alone may run outside a
    transaction (api/store/pool.py)."""

    begin_settings: ClassVar[str] = ""
    all_settings: ClassVar[str] = ""
    timezone_kept: bool = True

    def keep_timezone_per_transaction(self) -> None:
        self.timezone_kept = False
        self.begin_settings = self.all_settings  # type: ignore[misc]

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109
        if not args and query.startswith("BEGIN"):
            query = f"{query} {self.begin_settings}"
        return await super().execute(query, *args, timeout=timeout)


@functools.cache
def _connection_class(begin_settings: str, all_settings: str, *, timezone_kept: bool) -> type[asyncpg.Connection]:
    attributes = {"begin_settings": begin_settings, "all_settings": all_settings, "timezone_kept": timezone_kept}
    return type("SettingsInBegin", (_SettingsInBegin,), attributes)


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int | None = None,
    statement_timeout_ms: int | None = None,
    application_name: str = "coco",
    pooler: str = "none",
    tracks_timezone: bool = True,
) -> AsyncEngine:
    """An engine over asyncpg that takes a libpq-style URL as it is (socket ?host= form included)."""
    pooling = Pooling(pooler, statement_timeout_ms, application_name, tracks_timezone)
    options = pooling.connect_options()

    async def connect() -> asyncpg.Connection:
        # A database host that does not answer at all must not hold requests for asyncpg's 60 s:
        # they answer 503 (Unavailable) soon, and the next request tries again.
        conn: asyncpg.Connection = await asyncpg.connect(libpq_url(url), timeout=CONNECT_TIMEOUT_S, **options)
        try:
            await pooling.prepare(conn)
        except BaseException:
            conn.terminate()
            raise
        return conn

    def creator() -> Any:
        # What create_async_engine's async_creator does, plus the dialect's own statement cache,
        # which must be off in transaction mode as asyncpg's is.
        return engine.sync_engine.dialect.dbapi.connect(  # type: ignore[union-attr]
            async_creator_fn=connect, prepared_statement_cache_size=0 if pooling.per_transaction else 100
        )

    engine = create_async_engine(
        "postgresql+asyncpg://",
        creator=creator,
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        # No ping before each use (a round trip per transaction): a connection the database
        # dropped fails its first statement as Unavailable, and SQLAlchemy then replaces every
        # connection of the pool that predates the failure.
        pool_pre_ping=False,
        pool_recycle=1800,
    )
    return engine


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
    with domain_errors():
        async with engine.begin() as conn:
            yield conn


@asynccontextmanager
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read-only use of a pooled connection, with the same error translation."""
    with domain_errors():
        async with engine.connect() as conn:
            yield conn


@contextmanager
def domain_errors() -> Iterator[None]:
    """What fails inside leaves as a domain error: the database's own errors by their SQLSTATE, a lost
    connection or an exhausted pool as Unavailable."""
    try:
        yield
    except (DBAPIError, asyncpg.PostgresError) as error:
        raise_as_domain_error(error)
    except LOST_CONNECTION as error:
        raise Unavailable(f"the database is unavailable: {error}") from error
    except PoolTimeout as error:
        raise Unavailable(f"no database connection came free in time: {error}") from error


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
    return isinstance(error, Transient)


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
    if code in _TRANSIENT:
        return Transient(f"the database aborted the transaction: {_first_line(detail)}", sqlstate=code)
    if code == "57014":
        return StatementTimeout(STATEMENT_TIMED_OUT)
    if (code.startswith(_UNAVAILABLE_CLASSES) and code not in _NOT_UNAVAILABLE) or code in _UNAVAILABLE_CODES:
        return Unavailable(f"the database is unavailable: {_first_line(detail)}")
    return DatabaseFault(_first_line(detail) or type(error).__name__, sqlstate=code)


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


def _first_line(text: str) -> str:
    # asyncpg adds the HINT and DETAIL as further lines (its own long note about PgBouncer, for one).
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


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
