"""What a tool is: a name, a description and input schema for the model, and a handler.

Handlers are thin translations: arguments in, a `WriteService` call or a
`ReadPlan` run by the `Reader`, a JSON object out. They raise only the domain
errors of `api.errors`; `api.mcp.failures` turns those into tool errors.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types

from api.mcp.arguments import Arguments
from api.mcp.schemas import Schema
from api.plan import Column, Condition, Filter, Or, ReadPlan
from api.store import Reader, WriteService


@dataclass(frozen=True)
class Backend:
    """The two doors to the data every front end uses."""

    reader: Reader
    writer: WriteService

    async def rows(self, plan: ReadPlan) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(await self.reader.json_array(plan))
        return rows

    async def page(self, plan: ReadPlan) -> tuple[list[dict[str, Any]], int]:
        text, total = await self.reader.page(plan, with_count=True)
        assert total is not None
        return json.loads(text), total


Result = dict[str, Any]
Handler = Callable[[Backend, Arguments], Awaitable[Result]]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input_schema: Schema
    handler: Handler
    read_only: bool
    # Argument name -> the entity whose id it holds, so an error can say where to find a valid one.
    references: Mapping[str, str] = field(default_factory=dict)

    def definition(self) -> types.Tool:
        return types.Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=self.input_schema,
            annotations=types.ToolAnnotations(
                title=self.title,
                read_only_hint=self.read_only,
                # Writes only ever add rows here (a check-in, an update, their events).
                destructive_hint=False,
                idempotent_hint=self.read_only,
                open_world_hint=False,
            ),
        )


# ---------------------------------------------------------------- plan helpers


def columns(*names: str) -> tuple[Column, ...]:
    return tuple(Column(name, name) for name in names)


def search(text: str | None, *fields: str) -> Filter | None:
    """Case-insensitive substring match of `text` in any of the fields."""
    if not text:
        return None
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return Or(tuple(Condition(f, "ilike", pattern) for f in fields))


def first(rows: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The one row of a to-many embed limited to one (e.g. the latest update), or None."""
    return rows[0] if rows else None
