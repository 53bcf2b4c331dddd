"""Restoring exported data (`coco import`): the one path that lets history back in.

Rows keep their ids and created_at and follow the same rules as `create`
(api/store/rules.py), but a check-in or update records no event, because the
export carries its events: those are inserted as they were, drawing fresh
cursors under the event lock (`api.store.events.restore_events`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.entities import Entity
from api.errors import InvalidInput, InvalidReason
from api.store.events import PendingEvent, record_events, restore_events
from api.store.rules import check_references, duplicate_ids, hierarchy, repeated_ids
from api.store.statements import MAX_PARAMETERS, chunks, lock_rows, now
from api.store.tables import TABLES, insert_as_sent, rows_as_sent
from api.store.validation import to_columns

# One document of an import: (entity name, CoCo document).
ImportItem = tuple[str, Mapping[str, Any]]
# Check-ins and updates imported: id -> (entity, actor_id, created_at).
Sources = dict[str, tuple[Entity, str, Any]]


async def each(items: Iterable[ImportItem] | AsyncIterable[ImportItem]) -> AsyncIterable[ImportItem]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def import_batch(
    conn: AsyncConnection, ent: Entity, batch: list[tuple[int, Mapping[str, Any]]], sources: Sources
) -> int:
    """Insert one batch of documents of one entity ((position in the import, document)); how many."""
    rows = []
    for index, document in batch:
        internal = [f.name for f in ent.fields if f.internal and isinstance(document, Mapping) and f.name in document]
        if internal:
            raise InvalidInput(
                f"{internal[0]} is assigned by the server and cannot be imported",
                field=internal[0],
                reason=InvalidReason.UNKNOWN_FIELD,
                entity=ent.name,
                index=index,
            )
        row = to_columns(ent, document, partial=False, index=index)
        if ent.name == "coordination_event" and "id" not in row:
            raise InvalidInput(
                "id is required", field="id", reason=InvalidReason.REQUIRED, entity=ent.name, index=index
            )
        row.setdefault("id", str(uuid.uuid4()))
        rows.append(row)
    ids = [r["id"] for r in rows]
    taken = repeated_ids(ids) or sorted(await lock_rows(conn, ent, ids))
    if taken:
        raise duplicate_ids(ent, taken)
    await check_references(conn, ent, rows, batch_ids=set(ids))
    if ent.name == "coordination_event":
        return await restore_events(conn, rows)
    tree = hierarchy(ent)
    if tree is not None:
        # executemany inserts row by row, and each row's foreign key is checked as it goes in.
        rows = tree.parents_first(rows)
    # Every row names every column, so that one statement serves the whole batch (executemany);
    # a missing created_at is the time of the write, as in `create`.
    table = TABLES[ent.name]
    names = [c.name for c in table.columns]
    written_at = await now(conn) if "created_at" in names else None
    stored: list[dict[str, Any]] = []
    for row in rows:
        full = {n: row.get(n) for n in names}
        if written_at is not None and full["created_at"] is None:
            full["created_at"] = written_at
        stored.append(full)
    await conn.execute(insert_as_sent(table), rows_as_sent(table, stored))
    if tree is not None:
        await tree.check(conn, stored)
    if ent.event_type is not None:
        sources.update((r["id"], (ent, r["actor_id"], r["created_at"])) for r in stored)
    return len(stored)


async def record_missing_events(conn: AsyncConnection, sources: Sources) -> int:
    """Give an event to each imported check-in or update that has none, dated at its creation."""
    events = TABLES["coordination_event"]
    covered: set[tuple[str, str]] = set()
    for chunk in chunks(list(sources), MAX_PARAMETERS):
        statement = select(events.c.event_type, events.c.reference_id).where(events.c.reference_id.in_(chunk))
        covered.update((t, r) for t, r in await conn.execute(statement))
    pending = [
        PendingEvent(actor_id=actor_id, event_type=ent.event_type or "", reference_id=id, occurred_at=created_at)
        for id, (ent, actor_id, created_at) in sources.items()
        if (ent.event_type, id) not in covered
    ]
    recorded = 0
    for chunk in chunks(pending, MAX_PARAMETERS // 8):
        recorded += len(await record_events(conn, chunk))
    return recorded
