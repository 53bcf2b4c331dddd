"""The CoCo field reference, generated from `api.entities` as Markdown for a model to read."""

from __future__ import annotations

from functools import lru_cache

from api.entities import ENTITIES, Entity, Field, Kind
from api.entities import entity as entity_named
from api.mcp.schemas import DATE_EXAMPLE, LISTING_TOOLS, TIMESTAMP_EXAMPLE

INTRODUCTION = """\
# CoCo field reference (Continuous Coordination schema 1.0.0)

Continuous Coordination keeps teams of people and AI agents in sync through two loops: team
check-ins (what an actor did, does next, and what blocks them; daily to weekly) and goal stories
(projects and objectives, which nest) that receive goal story updates (headline, narrative,
status, progress; weekly to monthly). Every check-in and update leaves a coordination event.

Ids are strings. Dates are YYYY-MM-DD (e.g. {date}); timestamps are RFC 3339 with an offset
(e.g. {timestamp}). A field marked "refers to" must hold the id of an existing row.
"""


@lru_cache(maxsize=1)
def field_reference() -> str:
    parts = [INTRODUCTION.format(date=DATE_EXAMPLE, timestamp=TIMESTAMP_EXAMPLE)]
    parts.extend(_entity_section(ent) for ent in ENTITIES.values())
    return "\n".join(parts)


def _entity_section(ent: Entity) -> str:
    lines = [f"## {ent.title} (`{ent.resource}`)", "", ent.description]
    if ent.event_type:
        lines.append(f"Creating one records a coordination event of type `{ent.event_type}`.")
    if not ent.writable:
        lines.append("Written only by the server; no tool or API creates, changes or deletes them.")
    lines += ["", "| field | type | required | meaning |", "|---|---|---|---|"]
    for f in ent.fields:
        lines.append(f"| `{f.name}` | {_type(f)} | {'yes' if f.required else 'no'} | {_meaning(f)} |")
    lines.append("")
    return "\n".join(lines)


def _type(f: Field) -> str:
    match f.kind:
        case Kind.ID:
            return "id (string)"
        case Kind.TEXT:
            return "string"
        case Kind.ENUM:
            return "one of " + ", ".join(f"`{c}`" for c in f.choices)
        case Kind.DATE:
            return "date YYYY-MM-DD"
        case Kind.TIMESTAMP:
            return "timestamp (RFC 3339)"
        case Kind.INTEGER:
            if f.minimum is not None and f.maximum is not None:
                return f"integer {f.minimum} to {f.maximum}"
            return "integer"
        case Kind.TEXT_LIST:
            return "list of ids" if f.references else "list of strings"
        case Kind.TIMEFRAME:
            return "object `{start, end}` of dates"
    raise AssertionError(f"unhandled kind {f.kind}")


def _meaning(f: Field) -> str:
    notes = [f.description]
    if f.references:
        target = entity_named(f.references)
        listing = f" (list them with `{LISTING_TOOLS[target.name]}`)" if target.name in LISTING_TOOLS else ""
        notes.append(f"Refers to {target.resource}{listing}.")
    if f.nullable_in_schema:
        notes.append("May be null.")
    if f.internal:
        notes.append("Served by this server, not part of the CoCo document.")
    elif f.server_default:
        notes.append("Set by the server when left out.")
    return " ".join(notes).replace("|", "\\|")
