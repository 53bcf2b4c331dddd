"""JSON Schemas of tool inputs, derived from `api.entities`.

A tool that writes an entity takes that entity's fields as its arguments, so
its input schema is generated from the fields (kinds, choices, ranges,
references) and cannot drift from what the write service accepts. The wording
is written for a model: what to pass, in which format, with an example, and
which tool finds an id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from api.entities import Entity, Field, Kind
from api.entities import entity as entity_named
from api.store import MAX_ID_LENGTH

# The tool that lists each kind of row an argument can refer to.
LISTING_TOOLS: dict[str, str] = {
    "actor": "list_actors",
    "team": "list_teams",
    "goal_story": "list_goal_stories",
}

DATE_EXAMPLE = "2026-05-22"
TIMESTAMP_EXAMPLE = "2026-05-22T09:15:00Z"
ID_EXAMPLES: dict[str, str] = {"actor": "p-1", "team": "t-1", "goal_story": "g-1"}

Schema = dict[str, Any]


def id_schema(description: str, references: str | None = None) -> Schema:
    schema: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "description": description}
    if references:
        schema["description"] = f"{description} {find_hint(references)}"
        schema["examples"] = [ID_EXAMPLES.get(references, "id-1")]
    return schema


def find_hint(target: str) -> str:
    """Where a model finds valid ids of `target`."""
    title = entity_named(target).title.lower()
    return f"Find {title} ids with the {LISTING_TOOLS[target]} tool."


def date_schema(description: str) -> Schema:
    return {
        "type": "string",
        "format": "date",
        "pattern": r"^\d{4}-\d{2}-\d{2}$",
        "description": f"{description} Format YYYY-MM-DD, e.g. {DATE_EXAMPLE}.",
        "examples": [DATE_EXAMPLE],
    }


def field_schema(f: Field, description: str | None = None) -> Schema:
    """The schema of one entity field as a tool argument."""
    text = description or f.description
    match f.kind:
        case Kind.ID:
            return id_schema(text, f.references)
        case Kind.TEXT:
            schema: Schema = {"type": "string", "description": text}
            if f.timezone:
                schema["examples"] = ["America/Chicago", "Europe/Berlin"]
            return schema
        case Kind.ENUM:
            return {"type": "string", "enum": list(f.choices), "description": f"{text} One of: {', '.join(f.choices)}."}
        case Kind.DATE:
            return date_schema(text)
        case Kind.TIMESTAMP:
            return {
                "type": "string",
                "format": "date-time",
                "description": f"{text} Example: {TIMESTAMP_EXAMPLE}.",
                "examples": [TIMESTAMP_EXAMPLE],
            }
        case Kind.INTEGER:
            schema = {"type": "integer", "description": text}
            if f.minimum is not None:
                schema["minimum"] = f.minimum
            if f.maximum is not None:
                schema["maximum"] = f.maximum
            return schema
        case Kind.TEXT_LIST:
            items: Schema = {"type": "string"}
            if f.references:
                items = id_schema("An id.", f.references)
            return {"type": "array", "items": items, "description": text}
        case Kind.TIMEFRAME:
            return {
                "type": "object",
                "properties": {"start": date_schema("First day."), "end": date_schema("Last day.")},
                "additionalProperties": False,
                "description": text,
            }
    raise AssertionError(f"unhandled kind {f.kind}")


def document_schema(
    ent: Entity, *, leave_out: Iterable[str] = (), descriptions: Mapping[str, str] | None = None
) -> Schema:
    """An object schema whose properties are the entity's writable fields.

    Required are the fields the write service requires (the id is optional:
    the server generates one). `descriptions` replaces a field's description
    where a tool has more to say to a model.
    """
    descriptions = descriptions or {}
    skipped = set(leave_out)
    fields = [f for f in ent.fields if f.name not in skipped and not f.internal]
    return object_schema(
        {f.name: field_schema(f, descriptions.get(f.name)) for f in fields},
        required=[f.name for f in fields if f.required and f.name != "id"],
    )


def object_schema(properties: Mapping[str, Schema], *, required: Iterable[str] = ()) -> Schema:
    schema: Schema = {"type": "object", "properties": dict(properties), "additionalProperties": False}
    required = list(required)
    if required:
        schema["required"] = required
    return schema


def fix_for(name: str, schema: Schema | None, references: str | None = None) -> str:
    """What a model should pass instead, for an argument with this schema."""
    if references:
        return find_hint(references)
    if schema is None:
        return ""
    if "enum" in schema:
        return f"Allowed values of {name}: {', '.join(schema['enum'])}."
    kind = schema.get("type")
    if schema.get("format") == "date":
        return f"Pass {name} as a date YYYY-MM-DD, e.g. {DATE_EXAMPLE}."
    if schema.get("format") == "date-time":
        return f"Pass {name} as an RFC 3339 timestamp, e.g. {TIMESTAMP_EXAMPLE}."
    if kind == "integer" or (isinstance(kind, list) and "integer" in kind):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"Pass {name} as a whole number from {low} to {high}."
        if low is not None:
            return f"Pass {name} as a whole number of at least {low}."
        return f"Pass {name} as a whole number."
    if kind == "array":
        return f'Pass {name} as a JSON array of strings, one per bullet, e.g. ["Finished the onboarding survey"].'
    if kind == "boolean":
        return f"Pass {name} as true or false."
    if kind == "object":
        return f"Pass {name} as an object with {', '.join(schema.get('properties', {}))}."
    if kind == "string":
        return f"Pass {name} as a non-empty string."
    return ""
