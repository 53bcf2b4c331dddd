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
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import ARRAY, DateTime, Text, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import CoordinationEvent, event_seq

# An arbitrary constant naming "the coordination event cursor" among advisory locks.
EVENT_LOCK_KEY = 0x0C0C_0E7E
NOTIFY_CHANNEL = "coco_events"

events_table = CoordinationEvent.__table__


@dataclass(frozen=True)
class PendingEvent:
    actor_id: str
    event_type: str
    reference_id: str
    # None means the time of the write (the transaction's now()).
    occurred_at: dt.datetime | None = None


async def record_events(conn: AsyncConnection, pending: list[PendingEvent]) -> list[dict]:
    """Insert the events of this transaction; call last, just before commit."""
    if not pending:
        return []
    await conn.execute(select(func.pg_advisory_xact_lock(EVENT_LOCK_KEY)))
    # One array per column, unnested by PostgreSQL: one statement of five parameters
    # however many events (a VALUES list of a bulk write would pass the driver's
    # 32,767-parameter limit at about 8,000 events).
    rows = func.unnest(
        literal([str(uuid.uuid4()) for _ in pending], ARRAY(Text)),
        literal([p.actor_id for p in pending], ARRAY(Text)),
        literal([p.event_type for p in pending], ARRAY(Text)),
        literal([p.reference_id for p in pending], ARRAY(Text)),
        literal([p.occurred_at for p in pending], ARRAY(DateTime(timezone=True))),
    ).table_valued("id", "actor_id", "event_type", "reference_id", "occurred_at").render_derived(name="pending")
    source = select(rows.c.id, event_seq.next_value(), rows.c.actor_id, rows.c.event_type, rows.c.reference_id,
                    func.coalesce(rows.c.occurred_at, func.now()))
    columns = ["id", "seq", "actor_id", "event_type", "reference_id", "occurred_at"]
    result = await conn.execute(insert(events_table).from_select(columns, source).returning(*events_table.c))
    recorded = sorted((dict(r._mapping) for r in result), key=lambda e: e["seq"])
    await conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, str(recorded[-1]["seq"]))))
    return recorded


async def restore_events(conn: AsyncConnection, rows: list[dict]) -> int:
    """Insert events exactly as an export recorded them (id, actor, type, reference,
    occurred_at), for the import path only. They draw fresh cursors in the order
    given, under the same lock as `record_events`, so the restored order is the
    exported commit order and a resuming reader still misses nothing."""
    if not rows:
        return 0
    await conn.execute(select(func.pg_advisory_xact_lock(EVENT_LOCK_KEY)))
    columns = ("id", "actor_id", "event_type", "reference_id", "occurred_at")
    # One execution per row (pipelined by the driver), so cursors follow the given order exactly.
    await conn.execute(insert(events_table).values(seq=event_seq.next_value()),
                       [{c: row[c] for c in columns} for row in rows])
    last = await conn.scalar(select(func.currval(event_seq.name)))
    await conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, str(last))))
    return len(rows)
