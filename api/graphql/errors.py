"""Errors at the GraphQL edge: domain errors to `extensions.code`, everything unexpected masked and logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from api.edge.auth import Forbidden
from api.errors import (
    ActorForbidden,
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    ReadOnly,
    StatementTimeout,
    TeamsForbidden,
    Unavailable,
)
from api.graphql.names import camel

log = logging.getLogger("coco.graphql")

BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL = "INTERNAL_SERVER_ERROR"
MASKED_MESSAGE = "Unexpected error."


def extensions_of(error: DomainError) -> dict[str, Any]:
    """The `extensions` of a domain error: its code and what a client needs to act on it."""
    match error:
        case InvalidInput():
            out: dict[str, Any] = {"code": BAD_USER_INPUT, "reason": error.reason.value}
            if error.field:
                out["field"] = camel(error.field) if "." not in error.field else error.field
            if error.index is not None:
                out["index"] = error.index
            return out
        case NotFound():
            return {"code": "NOT_FOUND", "entity": error.entity, "id": error.id}
        case Conflict():
            out = {"code": "CONFLICT", "reason": error.reason.value, "ids": error.ids}
            if error.count > len(error.ids):
                out["count"] = error.count
            if error.field:
                out["field"] = camel(error.field)
            if error.referrers:
                out["referrers"] = error.referrers
            return out
        case ReadOnly():
            return {"code": "FORBIDDEN"}
        case Unavailable():
            return {"code": "SERVICE_UNAVAILABLE"}
        case StatementTimeout():
            return {"code": "TIMEOUT"}
        case ActorForbidden():
            return {"code": "FORBIDDEN", "actor": error.actor, "ids": error.ids}
        case TeamsForbidden():
            return {"code": "FORBIDDEN", "teams": error.teams, "ids": error.ids}
        case Forbidden():
            return {"code": "FORBIDDEN" if error.authenticated else "UNAUTHENTICATED", "scope": error.scope}
    return {"code": INTERNAL}


def with_code(error: GraphQLError) -> GraphQLError:
    """The error as the client sees it."""
    original = error.original_error
    if isinstance(original, DomainError):
        return GraphQLError(
            original.message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=original,
            extensions=extensions_of(original),
        )
    if error.path is not None and original is not None and not isinstance(original, GraphQLError):
        log.error(
            "unexpected error in %s", ".".join(map(str, error.path or [])) or "a GraphQL operation", exc_info=original
        )
        return GraphQLError(
            MASKED_MESSAGE,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": INTERNAL},
        )
    if not (error.extensions or {}).get("code"):
        # No path: the error came before execution (syntax, validation, variable coercion, a protection
        # limit), so the document or its variables were bad input.
        error.extensions = {**(error.extensions or {}), "code": BAD_USER_INPUT}
    return error


class ErrorCodes(SchemaExtension):
    """Gives every error of an operation its code, as the last step of the operation."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [with_code(e) for e in result.errors]
