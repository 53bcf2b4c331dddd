"""All data in and out as JSON Lines: what `coco export` writes and `coco import` reads.

Each line is one CoCo document tagged with its entity:

    {"entity": "actor", "document": {"id": "p-1", "actor_type": "person", "name": "Quinn Reed"}}

Lines come in dependency order, so that every reference points at a line above
it: actors, teams, goal stories (parents before children), team check-ins,
goal story updates, and last the coordination events in commit order. Within
an entity rows are ordered by id, so the same data always exports to the same
lines, and an export imported into an empty database exports back identically.

Reading goes through the query plan, in one snapshot so that the file is one
consistent state; writing goes through `WriteService.import_documents`, the
one path that restores coordination events as they were.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from api.errors import InvalidInput
from api.ops.schemas import ENTITY_NAMES, validator
from api.plan import OrderTerm, ReadPlan
from api.store import ImportItem, ImportResult, Reader, WriteService, reads

EXPORT_ORDER = ("actor", "team", "goal_story", "team_checkin", "goal_story_update", "coordination_event")
assert sorted(EXPORT_ORDER) == sorted(ENTITY_NAMES)

Progress = Callable[[str, int], None]


def encode(entity_name: str, document: dict[str, Any]) -> str:
    return json.dumps({"entity": entity_name, "document": document}, ensure_ascii=False, separators=(",", ":"))


async def export_lines(reader: Reader, progress: Progress | None = None) -> AsyncIterator[str]:
    """Every row of every entity as one line (without the newline), in dependency order."""
    async with reader.snapshot() as conn:
        for name in EXPORT_ORDER:
            # Events go in cursor order: that is their commit order, which import restores.
            order = OrderTerm("cursor") if name == "coordination_event" else OrderTerm("id")
            documents: AsyncIterator[dict[str, Any]] = (
                json.loads(text) async for text in reads.stream(conn, ReadPlan(name, order=(order,)))
            )
            if name == "goal_story":
                documents = _parents_first(documents)
            count = 0
            async for document in documents:
                yield encode(name, document)
                count += 1
            if progress is not None:
                progress(name, count)


async def _parents_first(documents: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """Goal stories depth first from the roots, siblings in the order given (by id)."""
    every = [d async for d in documents]
    children: dict[str | None, list[dict[str, Any]]] = {}
    for document in every:
        children.setdefault(document.get("parent_id"), []).append(document)
    stack = list(reversed(children.get(None, [])))
    while stack:
        document = stack.pop()
        yield document
        stack.extend(reversed(children.get(document["id"], [])))


class ImportFileError(ValueError):
    """A line of an import file that is not a valid tagged CoCo document."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


class JsonLines:
    """Parse and schema-validate an import file lazily, line by line, remembering
    which file line each document came from (to name it in errors)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = lines
        self.line_numbers: list[int] = []

    def __iter__(self) -> Iterator[ImportItem]:
        for number, raw in enumerate(self._lines, start=1):
            if not raw.strip():
                continue
            self.line_numbers.append(number)
            yield _parse(number, raw)

    def line_of(self, index: int | None) -> int | None:
        if index is None or not 0 <= index < len(self.line_numbers):
            return None
        return self.line_numbers[index]


def _parse(number: int, raw: str) -> ImportItem:
    try:
        item = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ImportFileError(number, f"not valid JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(item, dict) or set(item) != {"entity", "document"}:
        raise ImportFileError(number, 'expected an object {"entity": ..., "document": {...}} and nothing else')
    name, document = item["entity"], item["document"]
    if name not in ENTITY_NAMES:
        raise ImportFileError(number, f"unknown entity {name!r}; expected one of {', '.join(EXPORT_ORDER)}")
    errors = sorted(validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path)
        raise ImportFileError(
            number, f"{name} {'field ' + where + ' ' if where else ''}does not match the CoCo schema: {first.message}"
        )
    return name, document


async def import_lines(writer: WriteService, lines: Iterable[str], progress: Progress | None = None) -> ImportResult:
    """Import a JSON Lines file atomically; a bad line or a write error leaves the database as it was.
    Errors about one document name its line (`ImportFileError`, or a domain error whose
    message is prefixed with the line)."""
    parsed = JsonLines(lines)
    try:
        return await writer.import_documents(parsed, progress=progress)
    except InvalidInput as error:
        line = parsed.line_of(error.index)
        if line is not None:
            raise ImportFileError(line, error.message) from error
        raise
