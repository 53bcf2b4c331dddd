"""Every error the REST layer answers, as PostgREST spells it: one code, one status, one body shape.

PostgREST's own failures carry PGRSTxxx codes; what PostgreSQL refuses carries
its SQLSTATE. Our write service reports domain errors instead of SQLSTATEs,
so `from_domain` names the SQLSTATE that PostgreSQL would have raised for the
same refusal, with PostgREST's status for it.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from api.edge.auth import Forbidden, permission_hint
from api.entities import BY_RESOURCE
from api.entities import entity as entity_named
from api.errors import (
    ActorForbidden,
    Conflict,
    ConflictReason,
    DatabaseFault,
    DomainError,
    InvalidInput,
    InvalidReason,
    NotFound,
    ReadOnly,
    StatementTimeout,
    Unavailable,
)

SCHEMA = "public"
BIGINT_MAX = 2**63 - 1


class RestError(Exception):
    """A response PostgREST would send for a failed request: `{code, message, details, hint}`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: str | None = None,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "details": self.details, "hint": self.hint, "message": self.message}

    def encode(self) -> bytes:
        return json.dumps(self.body()).encode()


# ---------------------------------------------------------------- PGRST1xx: the request


def query_param(message: str, details: str) -> RestError:
    return RestError(400, "PGRST100", message, details)


def invalid_body(message: str) -> RestError:
    return RestError(400, "PGRST102", message)


def invalid_range(details: str) -> RestError:
    return RestError(416, "PGRST103", "Requested range not satisfiable", details)


def out_of_bounds(offset: int, total: int) -> RestError:
    return invalid_range(f"An offset of {offset} was requested, but there are only {total} rows.")


def beyond_bigint(name: str) -> RestError:
    """A limit or offset PostgreSQL could not take (it counts rows in a bigint)."""
    return RestError(400, "22003", f"{name} must be at most {BIGINT_MAX}")


def invalid_put_filters() -> RestError:
    return RestError(405, "PGRST105", "Filters must include all and only primary key columns with 'eq' operators")


def unacceptable_media(accepted: list[str]) -> RestError:
    return RestError(406, "PGRST107", "None of these media types are available: " + ", ".join(accepted))


def unacceptable_schema(name: str) -> RestError:
    return RestError(
        406, "PGRST106", f"Invalid schema: {name}", hint=f"Only the following schemas are exposed: {SCHEMA}"
    )


def not_embedded(resource: str) -> RestError:
    return RestError(
        400,
        "PGRST108",
        f"'{resource}' is not an embedded resource in this request",
        hint=f"Verify that '{resource}' is included in the 'select' query parameter.",
    )


def put_limit() -> RestError:
    return RestError(400, "PGRST114", "limit/offset querystring parameters are not allowed for PUT")


def put_pk_mismatch() -> RestError:
    return RestError(400, "PGRST115", "Payload values do not match URL in primary key column(s)")


def singular(rows: int) -> RestError:
    return RestError(
        406, "PGRST116", "Cannot coerce the result to a single JSON object", f"The result contains {rows} rows"
    )


def unsupported_method(method: str) -> RestError:
    return RestError(405, "PGRST117", f"Unsupported HTTP method: {method}")


def related_order_not_to_one(origin: str, target: str) -> RestError:
    return RestError(
        400,
        "PGRST118",
        f"A related order on '{target}' is not possible",
        f"'{origin}' and '{target}' do not form a many-to-one or one-to-one relationship",
    )


def unacceptable_filter(target: str) -> RestError:
    return RestError(
        400,
        "PGRST120",
        f"Bad operator on the '{target}' embedded resource",
        "Only is null or not is null filters are allowed on embedded resources",
    )


def invalid_preferences(invalid: list[str]) -> RestError:
    return RestError(
        400, "PGRST122", "Invalid preferences given with handling=strict", "Invalid preferences: " + ", ".join(invalid)
    )


def aggregates_not_allowed() -> RestError:
    return RestError(400, "PGRST123", "Use of aggregate functions is not allowed")


def max_affected(rows: int) -> RestError:
    return RestError(
        400, "PGRST124", "Query result exceeds max-affected preference constraint", f"The query affects {rows} rows"
    )


def invalid_path() -> RestError:
    return RestError(404, "PGRST125", "Invalid path specified in request URL")


def not_implemented(details: str) -> RestError:
    return RestError(400, "PGRST127", "Feature not implemented", details)


# ---------------------------------------------------------------- PGRST2xx: the schema


def no_relationship(parent: str, child: str, hint_name: str | None = None) -> RestError:
    using = f"' using the hint '{hint_name}" if hint_name else ""
    return RestError(
        400,
        "PGRST200",
        f"Could not find a relationship between '{parent}' and '{child}' in the schema cache",
        f"Searched for a foreign key relationship between '{parent}' and '{child}{using}' "
        f"in the schema '{SCHEMA}', but no matches were found.",
    )


def ambiguous_relationship(parent: str, child: str, candidates: list[str]) -> RestError:
    names = ", ".join(f"'{child}!{c}'" for c in candidates)
    return RestError(
        300,
        "PGRST201",
        f"Could not embed because more than one relationship was found for '{parent}' and '{child}'",
        hint=f"Try changing '{child}' to one of the following: {names}. "
        "Find the desired relationship in the 'details' key.",
    )


def no_function(name: str) -> RestError:
    return RestError(
        404,
        "PGRST202",
        f"Could not find the function {SCHEMA}.{name} without parameters in the schema cache",
        f"Searched for the function {SCHEMA}.{name} without parameters, but no matches were found in the schema cache.",
    )


def column_not_found(resource: str, column: str) -> RestError:
    """A column named in the body or in `columns=` (PostgREST checks those against its schema cache)."""
    return RestError(400, "PGRST204", f"Could not find the '{column}' column of '{resource}' in the schema cache")


def table_not_found(name: str) -> RestError:
    close = difflib.get_close_matches(name, list(BY_RESOURCE), n=1, cutoff=0.6)
    hint = f"Perhaps you meant the table '{SCHEMA}.{close[0]}'" if close else None
    return RestError(404, "PGRST205", f"Could not find the table '{SCHEMA}.{name}' in the schema cache", hint=hint)


# ---------------------------------------------------------------- what PostgreSQL would say


def undefined_column(resource: str, column: str) -> RestError:
    """A column named in select, filters or order (PostgreSQL's own 42703, as PostgREST passes it on)."""
    return RestError(400, "42703", f"column {resource}.{column} does not exist")


def no_unique_constraint() -> RestError:
    return RestError(400, "42P10", "there is no unique or exclusion constraint matching the ON CONFLICT specification")


def read_only(resource: str, message: str) -> RestError:
    # PostgREST answers a write that PostgreSQL refuses as read-only (25006) with 405.
    return RestError(
        405,
        "25006",
        message,
        f"{resource} are recorded by the server when team check-ins and goal story updates are written",
        headers={"Allow": "OPTIONS,GET,HEAD"},
    )


def from_domain(error: DomainError) -> RestError:
    """The response for a domain error of the write service or the query layer."""
    match error:
        case InvalidInput():
            return _invalid(error)
        case Conflict():
            return _conflict(error)
        case NotFound():
            return singular(0)
        case ReadOnly():
            return read_only(error.resource, error.message)
        case Unavailable():
            return RestError(503, "PGRST001", "Database client error. Retrying the connection.", error.message)
        case StatementTimeout():
            # 504, not PostgREST's 500: the server is fine, the statement was too slow (a retry may pass,
            # a narrower filter will); clients and proxies should not read it as a crash.
            return RestError(
                504,
                "57014",
                "canceling statement due to statement timeout",
                error.message,
                hint="Narrow the filter or page through the rows (COCO_STATEMENT_TIMEOUT_MS)",
            )
        case ActorForbidden():
            # As PostgREST answers a row-level security policy's refusal: 42501, 403 (the token is known).
            return RestError(
                403,
                "42501",
                error.message,
                f"actor {error.actor}" + (f"; refused: {', '.join(error.ids)}" if error.ids else ""),
                hint=error.hint,
            )
        case Forbidden():
            # PostgREST: 42501 is 401 for the anonymous role (log in), 403 for an authenticated one.
            status = 403 if error.authenticated else 401
            challenge = 'Bearer error="insufficient_scope"' if error.authenticated else "Bearer"
            return RestError(
                status,
                "42501",
                error.message,
                hint=permission_hint(error.scope),
                headers={"WWW-Authenticate": challenge},
            )
    return RestError(400, "P0001", error.message)


# PostgREST's HTTP status for a SQLSTATE that reaches it unhandled (its mapSQLtoHTTP), by prefix. Its 503
# classes (08, 53, 57P01) never get here: the store makes them Unavailable, 503 PGRST001.
_SQLSTATE_STATUS: tuple[tuple[str, int], ...] = (
    ("09", 500),
    ("0L", 403),
    ("0P", 403),
    ("23503", 409),
    ("23505", 409),
    ("25006", 405),
    ("21000", 500),
    ("25", 500),
    ("28", 403),
    ("2D", 500),
    ("38", 500),
    ("39", 500),
    ("3B", 500),
    ("40", 500),
    ("53400", 500),
    ("54", 500),
    ("55", 500),
    ("57", 500),
    ("58", 500),
    ("F0", 500),
    ("HV", 500),
    ("P0001", 400),
    ("P0", 500),
    ("XX", 500),
    ("42883", 404),
    ("42P01", 404),
    ("42P17", 500),
    ("42501", 401),
)


def from_fault(error: DatabaseFault) -> RestError:
    """A refusal no domain error names, passed on as PostgREST does: its SQLSTATE, with PostgREST's status."""
    status = next((s for prefix, s in _SQLSTATE_STATUS if error.sqlstate.startswith(prefix)), 400)
    return RestError(status, error.sqlstate, error.message)


def _table(entity_name: str) -> str:
    return entity_named(entity_name).resource if entity_name else "?"


def _invalid(error: InvalidInput) -> RestError:
    details = f"field: {error.field}" if error.field else None
    if error.index is not None:
        details = f"{details + ', ' if details else ''}row: {error.index}"
    # Constraint violations read as PostgreSQL words them; the details say what exactly was wrong.
    where = f" (row {error.index})" if error.index is not None else ""
    table = _table(error.entity) if error.entity else None
    column = (error.field or "").split(".")[0]
    match error.reason:
        case InvalidReason.REQUIRED if table and column:
            return RestError(
                400,
                "23502",
                f'null value in column "{column}" of relation "{table}" violates not-null constraint',
                error.message + where,
            )
        case InvalidReason.REQUIRED:
            return RestError(400, "23502", error.message, details)
        case InvalidReason.RULE if table and column:
            return RestError(
                400,
                "23514",
                f'new row for relation "{table}" violates check constraint "{table}_{column}_check"',
                error.message + where,
            )
        case InvalidReason.RULE:
            return RestError(400, "23514", error.message, details)
        case InvalidReason.UNKNOWN_FIELD:
            if error.entity and error.field:
                return column_not_found(_table(error.entity), error.field)
            return RestError(400, "PGRST204", error.message, details)
        case InvalidReason.UNKNOWN_RELATION:
            return no_relationship(_table(error.entity or ""), error.field or "?")
    return RestError(400, error.sqlstate or "22P02", error.message, details)


def _conflict(error: Conflict) -> RestError:
    table = _table(error.entity)
    ids = error.named
    match error.reason:
        case ConflictReason.DUPLICATE:
            return RestError(
                409,
                "23505",
                f'duplicate key value violates unique constraint "{table}_pkey"',
                f"Key (id)=({ids}) already exists." if ids else error.message,
            )
        case ConflictReason.MISSING_REFERENCE:
            field = error.field or "id"
            target = _target(error.entity, field)
            return RestError(
                409,
                "23503",
                f'insert or update on table "{table}" violates foreign key constraint "{table}_{field}_fkey"',
                f'Key ({field})=({ids}) is not present in table "{target}".' if ids else error.message,
            )
        case ConflictReason.REFERENCED:
            referrer = next(iter(error.referrers), "?")
            return RestError(
                409,
                "23503",
                f'update or delete on table "{table}" violates foreign key constraint on table "{referrer}"',
                f'Key (id)=({ids}) is still referenced from table "{referrer}". {error.message}',
                hint="Delete or change the rows that refer to it first.",
            )
        case ConflictReason.CYCLE:
            return RestError(400, "23514", error.message, f"Key (id)=({ids}) would become its own ancestor.")
    return RestError(409, "23505", error.message)


def _target(entity_name: str, field: str) -> str:
    """The resource a reference field points into."""
    f = entity_named(entity_name).field(field) if entity_name else None
    return entity_named(f.references).resource if f is not None and f.references else "?"
