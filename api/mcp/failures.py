"""Domain errors as MCP tool errors: what went wrong, with which argument, and the fix.

A tool error (`isError: true`) goes back to the model as the call's result, so
it can correct its arguments and call again; the session carries on. The text
names the argument and says what to pass instead (the allowed values, the
format, or which tool lists the valid ids); the same facts are in
`structuredContent.error` for clients that read them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types

from api.edge.auth import Forbidden
from api.entities import entity as entity_named
from api.errors import (
    ActorForbidden,
    Conflict,
    ConflictReason,
    DomainError,
    InvalidInput,
    InvalidReason,
    NotFound,
    ReadOnly,
    StatementTimeout,
    Unavailable,
)
from api.mcp.schemas import LISTING_TOOLS, find_hint, fix_for
from api.mcp.tools import ToolSpec

log = logging.getLogger("coco.mcp")


@dataclass
class Failure:
    kind: str
    message: str
    fix: str = ""
    argument: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        return f"{self.message}. {self.fix}".strip() if self.fix else self.message

    def result(self) -> types.CallToolResult:
        error: dict[str, Any] = {"kind": self.kind, "message": self.message, "fix": self.fix}
        if self.argument:
            error["argument"] = self.argument
        error.update(self.details)
        return types.CallToolResult(
            content=[types.TextContent(text=self.text())], structured_content={"error": error}, is_error=True
        )


def tool_error(tool: ToolSpec, error: DomainError) -> types.CallToolResult:
    return describe(tool, error).result()


def unknown_tool(name: str, known: list[str]) -> types.CallToolResult:
    return Failure("unknown_tool", f"There is no tool named {name!r}", f"The tools are: {', '.join(known)}.").result()


def unexpected(tool: ToolSpec) -> types.CallToolResult:
    return Failure(
        "internal",
        f"{tool.name} failed because of an error in the server (it has been logged)",
        "Nothing was written. Try again later, or report it to whoever runs this CoCo server.",
    ).result()


def describe(tool: ToolSpec | None, error: DomainError) -> Failure:
    """The failure to report for `error` in a call of `tool` (None: not a tool call, e.g. a resource read)."""
    references = tool.references if tool else {}
    match error:
        case InvalidInput() if tool is not None:
            return _invalid(tool, error)
        case InvalidInput():
            return Failure("invalid_argument", error.message.rstrip("."), argument=error.field)
        case Conflict(reason=ConflictReason.MISSING_REFERENCE):
            return _missing_reference(references, error)
        case Conflict(reason=ConflictReason.DUPLICATE):
            return Failure(
                "conflict",
                error.message.rstrip("."),
                "Leave id out to have the server generate a new one, or choose an unused id.",
                argument="id",
                details={"ids": error.ids},
            )
        case Conflict():
            return Failure("conflict", error.message.rstrip("."), argument=error.field, details={"ids": error.ids})
        case NotFound():
            target = entity_named(error.entity)
            argument = next((a for a, e in references.items() if e == error.entity), None)
            return Failure(
                "not_found",
                f"There is no {target.title.lower()} with id {error.id!r}",
                find_hint(error.entity) if error.entity in LISTING_TOOLS else "",
                argument=argument,
                details={"ids": [error.id]},
            )
        case ReadOnly():
            return Failure("read_only", error.message)
        case ActorForbidden():
            return Failure(
                "forbidden", error.message.rstrip("."), error.hint, argument="actor_id", details={"ids": error.ids}
            )
        case Forbidden():
            return Failure(
                "forbidden",
                error.message,
                f"Nothing was written. Connect with a token that has the {error.scope} scope.",
            )
        case Unavailable() | StatementTimeout():
            return Failure("unavailable", error.message.rstrip("."), "Nothing was written; try again shortly.")
    log.warning("unmapped domain error in %s: %r", tool.name if tool else "a read", error)
    return Failure("error", error.message.rstrip("."))


def _invalid(tool: ToolSpec, error: InvalidInput) -> Failure:
    argument = error.field
    properties = tool.input_schema.get("properties", {})
    # Errors inside an object argument (timeframe.start) belong to the argument.
    schema = properties.get(argument.split(".")[0]) if argument else None
    message = error.message.rstrip(".")
    if error.reason is InvalidReason.UNKNOWN_FIELD:
        return Failure(
            "invalid_argument",
            f"Unknown argument {argument!r}",
            f"{tool.name} takes only: {', '.join(properties)}.",
            argument=argument,
        )
    if error.reason is InvalidReason.REQUIRED:
        description = (schema or {}).get("description", "")
        fix = f"{argument}: {description}" if description else ""
        references = tool.references.get(argument or "")
        if references and references in LISTING_TOOLS and LISTING_TOOLS[references] not in fix:
            fix = f"{fix} {find_hint(references)}".strip()
        required = tool.input_schema.get("required", [])
        if len(required) > 1:
            fix = f"{fix} {tool.name} requires all of: {', '.join(required)}.".strip()
        return Failure("invalid_argument", message, fix, argument=argument, details={"required": required})
    fix = fix_for(argument, schema) if argument else "Check the arguments against the tool's input schema."
    details: dict[str, Any] = {}
    if schema and "enum" in schema:
        details["allowed"] = list(schema["enum"])
    return Failure("invalid_argument", message, fix, argument=argument, details=details)


def _missing_reference(references: Mapping[str, str], error: Conflict) -> Failure:
    argument = error.field
    target = references.get(argument or "")
    title = entity_named(target).title.lower() if target else "row"
    ids = ", ".join(repr(i) for i in error.ids)
    return Failure(
        "unknown_id",
        f"{argument} names {_article(title)} {title} that does not exist: {ids}",
        find_hint(target) if target in LISTING_TOOLS else "",
        argument=argument,
        details={"ids": error.ids},
    )


def _article(noun: str) -> str:
    return "an" if noun[:1] in "aeiou" else "a"
