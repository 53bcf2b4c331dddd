"""Recording coordination events, in commit order.

A reader resumes after the last cursor it saw, so cursors must be handed out
in the order transactions commit, not the order they started. Each writing
transaction takes one transaction-scoped advisory lock just before it draws
its cursors and holds it until it commits or rolls back; the next writer can
only draw a cursor after that. Hence a visible cursor N means every cursor
below N is either visible too or belonged to a transaction that rolled back.
Writers serialise only over that short tail (insert the events, commit).

Two things this leans on: PostgreSQL releases a transaction's locks only
after its commit is visible to new snapshots (so the next writer's cursor is
drawn after ours is readable), and the cursor sequence has CACHE 1 (a
per-session cache would let a later commit draw a smaller cursor from a block
it reserved earlier; tests/live/test_event_cursors.py checks it). The price:
event-writing commits, WAL flush included, run one at a time.

The NOTIFY is sent inside the same transaction, so PostgreSQL delivers it
only if, and only once, the events are committed.

A create records its events inside its own one statement (`recording_ctes`),
which may run as a transaction of its own (autocommit): the same lock, taken
in the statement once every row is in and released when that implicit
transaction commits, so the argument above holds unchanged.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.tables import TABLES, event_seq, insert_as_sent, rows_as_sent

# An arbitrary constant naming "the coordination event cursor" among advisory locks.
EVENT_LOCK_KEY = 0x0C0C_0E7E
NOTIFY_CHANNEL = "coco_events"

events_table = TABLES["coordination_event"]


@dataclass(frozen=True)
class PendingEvent:
    actor_id: str
    event_type: str
    reference_id: str
    # None means the time of the write (the transaction's now()).
    occurred_at: dt.datetime | None = None


# One statement per call: the lock, the events (one array per column, unnested by
# PostgreSQL: five parameters however many events, where a VALUES list of a bulk write
# would pass the driver's 32,767-parameter limit at about 8,000 events) and the NOTIFY.
# The cursors are drawn in the projection of the join with `locked`, so never before
# the lock is held.
_RECORD = text(
    f"""
    WITH locked AS (SELECT pg_advisory_xact_lock({EVENT_LOCK_KEY}) AS held),
    recorded AS (
        INSERT INTO coordination_events (id, seq, actor_id, event_type, reference_id, occurred_at)
        SELECT p.id, nextval('{event_seq.name}'), p.actor_id, p.event_type, p.reference_id,
               coalesce(p.occurred_at, now())
        FROM locked, unnest(CAST(:ids AS text[]), CAST(:actor_ids AS text[]), CAST(:event_types AS text[]),
                            CAST(:reference_ids AS text[]), CAST(CAST(:occurred_ats AS text[]) AS timestamptz[]))
                     AS p(id, actor_id, event_type, reference_id, occurred_at)
        RETURNING id, seq, actor_id, event_type, reference_id, occurred_at
    ),
    notified AS (SELECT pg_notify('{NOTIFY_CHANNEL}', max(seq)::text) FROM recorded)
    SELECT r.*, (SELECT count(*) FROM notified) AS notified FROM recorded AS r
    """
)
EVENT_COLUMNS = ("id", "seq", "actor_id", "event_type", "reference_id", "occurred_at")


async def record_events(conn: AsyncConnection, pending: list[PendingEvent]) -> list[dict[str, Any]]:
    """Insert the events of this transaction; call last, just before commit."""
    if not pending:
        return []
    result = await conn.execute(
        _RECORD,
        {
            "ids": [str(uuid.uuid4()) for _ in pending],
            "actor_ids": [p.actor_id for p in pending],
            "event_types": [p.event_type for p in pending],
            "reference_ids": [p.reference_id for p in pending],
            # As text: see api/store/tables.py.
            "occurred_ats": [None if p.occurred_at is None else p.occurred_at.isoformat() for p in pending],
        },
    )
    # Each event's own columns (the row's last, `notified`, only made the NOTIFY run).
    return sorted(({c: r[c] for c in EVENT_COLUMNS} for r in result.mappings()), key=lambda e: e["seq"])


def recording_ctes(inserted: str) -> str:
    """`record_events` as CTEs of a caller's statement: one event per row of its CTE
    `inserted` (columns id, actor_id, created_at: the event occurs at the row's creation),
    of the type bound as :event_type, then the NOTIFY. The lock is taken only once every
    row is in, so writers serialise over the events alone; the caller's statement must
    read `events` and `notified`."""
    return ",\n".join(f"{name} AS ({body})" for name, body in recording_parts(inserted))


def recording_parts(inserted: str) -> list[tuple[str, str]]:
    """`recording_ctes` as (name, body) pairs, for a statement that puts its CTEs together itself."""
    return [
        (
            "locked",
            f"SELECT pg_advisory_xact_lock({EVENT_LOCK_KEY}) AS held FROM (SELECT count(*) FROM {inserted}) AS all_in",
        ),
        (
            "events",
            f"""INSERT INTO coordination_events (id, seq, actor_id, event_type, reference_id, occurred_at)
        SELECT gen_random_uuid()::text, nextval('{event_seq.name}'), i.actor_id, CAST(:event_type AS text), i.id,
               i.created_at
        FROM locked, {inserted} AS i
        RETURNING id, seq, actor_id, event_type, reference_id, occurred_at""",
        ),
        ("notified", f"SELECT pg_notify('{NOTIFY_CHANNEL}', max(seq)::text) FROM events HAVING count(*) > 0"),
    ]


async def restore_events(conn: AsyncConnection, rows: list[dict[str, Any]]) -> int:
    """Insert events exactly as an export recorded them (id, actor, type, reference,
    occurred_at), for the import path only. They draw fresh cursors in the order
    given, under the same lock as `record_events`, so the restored order is the
    exported commit order and a resuming reader still misses nothing."""
    if not rows:
        return 0
    await conn.execute(select(func.pg_advisory_xact_lock(EVENT_LOCK_KEY)))
    columns = ("id", "actor_id", "event_type", "reference_id", "occurred_at")
    # One execution per row (pipelined by the driver), so cursors follow the given order exactly.
    await conn.execute(
        insert_as_sent(events_table, seq=event_seq.next_value()),
        rows_as_sent(events_table, [{c: row[c] for c in columns} for row in rows]),
    )
    last = await conn.scalar(select(func.currval(event_seq.name)))
    await conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, str(last))))
    return len(rows)
