"""The project's JSON Schemas (``schema/*.schema.json``) as Python objects.

``load_schema("goal_story")`` returns the parsed schema document and
``validator("goal_story")`` a ready Draft 2020-12 validator whose format
checker really checks ``date`` and ``date-time``.

jsonschema only checks ``date-time`` when the optional ``rfc3339-validator``
package is installed and otherwise accepts any string silently. This module
therefore registers its own strict checkers for both formats, so validation
behaves the same whichever optional packages are present.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.resources import bundled

if TYPE_CHECKING:  # jsonschema is imported lazily: load_schema works without it.
    from jsonschema import FormatChecker
    from jsonschema.protocols import Validator

SCHEMA_DIR = bundled("schema")

# Entity name (as in api.entities) -> schema file name.
SCHEMA_FILES: dict[str, str] = {
    "actor": "actor.schema.json",
    "team": "team.schema.json",
    "team_checkin": "team-checkin.schema.json",
    "goal_story": "goal-story.schema.json",
    "goal_story_update": "goal-story-update.schema.json",
    "coordination_event": "coordination-event.schema.json",
}
ENTITY_NAMES: tuple[str, ...] = tuple(SCHEMA_FILES)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
# RFC 3339 section 5.6 date-time: full-date "T" full-time, the offset mandatory.
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)",
    re.ASCII,
)


def is_date(instance: object) -> bool:
    """RFC 3339 full-date (YYYY-MM-DD, a real calendar day). Non-strings pass (``type`` handles them)."""
    if not isinstance(instance, str):
        return True
    if not _DATE.fullmatch(instance):
        return False
    try:
        date.fromisoformat(instance)
    except ValueError:
        return False
    return True


def is_date_time(instance: object) -> bool:
    """RFC 3339 date-time with a mandatory offset (``Z`` or ``+hh:mm``). Non-strings pass.

    Leap seconds (``:60``) are rejected: PostgreSQL cannot store them, so the
    server never returns one.
    """
    if not isinstance(instance, str):
        return True
    if not _DATE_TIME.fullmatch(instance):
        return False
    try:
        datetime.fromisoformat(instance.upper())
    except ValueError:
        return False
    return True


def format_checker() -> FormatChecker:
    """jsonschema's format checker with strict ``date`` and ``date-time`` checks."""
    from jsonschema import FormatChecker

    checker = FormatChecker()
    checker.checks("date")(is_date)
    checker.checks("date-time")(is_date_time)
    return checker


def schema_path(entity_name: str) -> Path:
    try:
        return SCHEMA_DIR / SCHEMA_FILES[entity_name]
    except KeyError:
        raise ValueError(f"unknown entity {entity_name!r}; expected one of {', '.join(ENTITY_NAMES)}") from None


@cache
def _load(entity_name: str) -> dict[str, Any]:
    with schema_path(entity_name).open(encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema


def load_schema(entity_name: str) -> dict[str, Any]:
    """The parsed JSON Schema of one entity (a fresh copy the caller may modify)."""
    return copy.deepcopy(_load(entity_name))


@cache
def validator(entity_name: str) -> Validator:
    """A Draft 2020-12 validator for full representations of one entity.

    Use ``validator(name).validate(doc)`` to raise on the first error or
    ``validator(name).iter_errors(doc)`` to collect them all.
    """
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_load(entity_name), format_checker=format_checker())
