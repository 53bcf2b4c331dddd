"""Domain errors: the one vocabulary of failure that every front end maps.

The write service and the query plan raise only these; GraphQL turns them into
`extensions.code`, REST into PostgREST's `{code, message, details, hint}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class InvalidReason(StrEnum):
    REQUIRED = "required"  # a required field is missing or null
    FORMAT = "format"  # a value of the wrong type or syntax
    RULE = "rule"  # a value outside its allowed set or range
    UNKNOWN_FIELD = "unknown_field"  # a field the entity does not have
    UNKNOWN_RELATION = "unknown_relation"  # a relation the entity does not have


class ConflictReason(StrEnum):
    DUPLICATE = "duplicate"  # the id is taken
    MISSING_REFERENCE = "missing_reference"  # a referenced row does not exist
    REFERENCED = "referenced"  # the row is still referenced by others
    CYCLE = "cycle"  # a goal story would become its own ancestor


# How many ids an error names; the rest are counted. A conflict over a batch of fifty thousand rows
# would otherwise answer every one of their ids, twice (message and list): megabytes of error.
IDS_SHOWN = 20


def listed(ids: Sequence[str]) -> str:
    """Ids for a message: the first IDS_SHOWN, then how many more there are."""
    shown = ", ".join(ids[:IDS_SHOWN])
    return shown if len(ids) <= IDS_SHOWN else f"{shown} and {len(ids) - IDS_SHOWN:,} more"


class DomainError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        reason: InvalidReason = InvalidReason.FORMAT,
        entity: str | None = None,
        index: int | None = None,
        sqlstate: str | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason
        self.entity = entity
        # Position of the offending row in a bulk write.
        self.index = index
        # When PostgreSQL itself refused the value: its SQLSTATE (22007 a bad datetime, 2201B a bad regex...).
        self.sqlstate = sqlstate


class NotFound(DomainError):
    def __init__(self, entity: str, id: str) -> None:
        super().__init__(f"{entity} {id!r} does not exist")
        self.entity = entity
        self.id = id


class Conflict(DomainError):
    def __init__(
        self,
        message: str,
        *,
        reason: ConflictReason,
        entity: str,
        ids: list[str] | None = None,
        field: str | None = None,
        referrers: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.entity = entity
        # The first IDS_SHOWN of the ids concerned, and how many there are in all.
        self.ids = list(ids or [])[:IDS_SHOWN]
        self.count = len(ids or [])
        self.field = field
        # For REFERENCED: resource name -> ids of the rows that still point here.
        self.referrers = referrers or {}

    @property
    def named(self) -> str:
        """The ids as a message names them (`listed`)."""
        more = self.count - len(self.ids)
        return ", ".join(self.ids) + (f" and {more:,} more" if more > 0 else "")


class Unavailable(DomainError):
    """The database cannot serve the request now (unreachable, shutting down, out of connections or
    resources); the request may be retried."""


class Transient(Unavailable):
    """PostgreSQL aborted the transaction to break a deadlock or a serialization conflict (40P01, 40001):
    it may simply be run again. The write service does so a few times; what is still left is Unavailable."""

    def __init__(self, message: str, *, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class ReadOnly(DomainError):
    """The entity cannot be written through any API (coordination events)."""

    def __init__(self, entity: str, resource: str) -> None:
        super().__init__(f"{resource} are written only by the server and cannot be created, changed or deleted")
        self.entity = entity
        self.resource = resource


class ActorForbidden(DomainError):
    """A token bound to an actor tried to write as another actor, to change another actor's rows, or to
    write what only a trusted or admin token may (PostgreSQL's 42501, as a row-level policy refuses)."""

    def __init__(self, message: str, *, entity: str, actor: str, ids: list[str] | None = None, hint: str) -> None:
        super().__init__(message)
        self.entity = entity
        self.actor = actor
        # The rows (or, in a create, the actor ids given) that were refused.
        self.ids = ids or []
        self.hint = hint


class TeamsForbidden(DomainError):
    """A token limited to some teams asked for what would reach beyond them: a webhook whose team filter
    would deliver events of teams it may not read (PostgreSQL's 42501, as a row-level policy refuses)."""

    def __init__(self, message: str, *, teams: list[str], ids: list[str] | None = None, hint: str) -> None:
        super().__init__(message)
        # The teams the token is limited to, and the team ids asked for beyond them.
        self.teams = teams
        self.ids = ids or []
        self.hint = hint


class StatementTimeout(DomainError):
    """The database cancelled a statement that ran past statement_timeout."""


class DatabaseFault(Exception):
    """PostgreSQL refused a statement for a reason none of the domain errors names (a deadlock that
    outlived its retries, a missing table, a failed permission...): a fault of the server, not of the
    request. Not a DomainError, so that a front end that does not name it answers it as unexpected;
    REST passes it on as PostgREST does, with the SQLSTATE as its code."""

    def __init__(self, message: str, *, sqlstate: str) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
