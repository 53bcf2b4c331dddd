"""Webhooks as stored: their settings, their delivery state and lease in one row, and the attempts' log.

The row holds everything a deliverer needs to carry on where another stopped:
the cursor (the last event acknowledged), the
failed attempts at the next event and when the next attempt is due, and the
lease (`lease_owner` until `lease_expires_at`) that makes one process at a time
the deliverer. Every write a deliverer makes is fenced by its lease (`WHERE
lease_owner = :owner`): a process that lost its lease (it stalled past the
expiry and another took over) changes nothing, and learns that it must stop.

Leases are claimed with `FOR UPDATE SKIP LOCKED`, so processes claiming at the
same moment split the free webhooks between them instead of queueing on the
same rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import NotFound
from api.store.database import connection, transaction
from api.store.pool import DirectPool

ENTITY = "webhook"

_COLUMNS = """id, url, secret, description, event_types, team_ids, actor_ids, format, enabled, disabled_reason,
    cursor, attempts, delivered_count, failed_count, version, lease_owner, created_at, updated_at,
    greatest(0, extract(epoch FROM retry_at - now()))::float8 AS retry_in"""


@dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    secret: str
    description: str | None
    event_types: list[str] | None
    team_ids: list[str] | None
    actor_ids: list[str] | None
    format: str
    enabled: bool
    disabled_reason: str | None
    cursor: int
    # Failed attempts at the first event after the cursor; seconds until the next is due (None: now).
    attempts: int
    delivered_count: int
    failed_count: int
    version: int
    lease_owner: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    retry_in: float | None


@dataclass(frozen=True)
class WebhookAttempt:
    """One attempt at delivering one event, as the deliverer reports it."""

    event_id: str
    event_cursor: int
    attempt: int
    delivered: bool
    status: int | None
    latency_ms: float
    error: str | None = None
    # Seconds until the next attempt at this event (None: none is planned).
    retry_in: float | None = None


@dataclass(frozen=True)
class WebhookDelivery:
    """An attempt as the log keeps it."""

    id: int
    webhook_id: str
    event_id: str
    event_cursor: int
    attempt: int
    delivered: bool
    status: int | None
    latency_ms: float
    error: str | None
    retry_at: dt.datetime | None
    attempted_at: dt.datetime


def _webhook(row: Any) -> Webhook:
    return Webhook(**row._mapping)


# Settings a change may name (the management service checks the values first).
SETTINGS = ("url", "description", "event_types", "team_ids", "actor_ids", "format", "enabled")
_CASTS = {"event_types": "text[]", "team_ids": "text[]", "actor_ids": "text[]", "enabled": "boolean"}

_CREATE = text(
    f"""
    INSERT INTO webhooks (url, secret, description, event_types, team_ids, actor_ids, format, cursor)
    VALUES (:url, :secret, :description, CAST(:event_types AS text[]), CAST(:team_ids AS text[]),
            CAST(:actor_ids AS text[]), :format, (SELECT coalesce(max(seq), 0) FROM coordination_events))
    RETURNING {_COLUMNS}
    """
)
_ONE = text(f"SELECT {_COLUMNS} FROM webhooks WHERE id = :id")
_ALL = text(f"SELECT {_COLUMNS} FROM webhooks ORDER BY created_at, id")
_DELETE = text(f"DELETE FROM webhooks WHERE id = :id RETURNING {_COLUMNS}")
# Enabling a disabled webhook starts a fresh retry schedule at its cursor; an enabled one is left as it is.
_ENABLE = text(
    f"""
    UPDATE webhooks SET enabled = true, disabled_reason = NULL,
        attempts = CASE WHEN enabled THEN attempts ELSE 0 END,
        retry_at = CASE WHEN enabled THEN retry_at END,
        version = version + CASE WHEN enabled THEN 0 ELSE 1 END,
        updated_at = CASE WHEN enabled THEN updated_at ELSE now() END
    WHERE id = :id
    RETURNING {_COLUMNS}
    """
)
_DELIVERIES = text(
    """
    SELECT id, webhook_id, event_id, event_cursor, attempt, delivered, status, latency_ms, error, retry_at,
           attempted_at
    FROM webhook_deliveries WHERE webhook_id = :id ORDER BY id DESC LIMIT :first
    """
)
_RENEW = text(
    f"""
    UPDATE webhooks SET lease_expires_at = now() + make_interval(secs => :lease)
    WHERE lease_owner = :owner AND enabled
    RETURNING {_COLUMNS}
    """
)
_CLAIM = text(
    f"""
    UPDATE webhooks SET lease_owner = :owner, lease_expires_at = now() + make_interval(secs => :lease)
    WHERE id IN (
        SELECT id FROM webhooks
        WHERE enabled AND (lease_owner IS NULL OR lease_expires_at < now())
        ORDER BY id LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING {_COLUMNS}
    """
)
_RELEASE = text("UPDATE webhooks SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = :owner")
# The attempt is logged and the row's state saved in one statement, fenced by the lease; a
# delivered attempt moves the cursor, a reason disables the webhook (and gives up its lease).
_RECORD = text(
    """
    WITH saved AS (
        UPDATE webhooks SET
            cursor = coalesce(CAST(:advance_to AS bigint), cursor),
            attempts = CAST(:attempts AS integer),
            retry_at = now() + make_interval(secs => CAST(:retry_in AS float8)),
            delivered_count = delivered_count + CASE WHEN CAST(:delivered AS boolean) THEN 1 ELSE 0 END,
            failed_count = failed_count + CASE WHEN CAST(:delivered AS boolean) THEN 0 ELSE 1 END,
            enabled = enabled AND CAST(:disable AS text) IS NULL,
            disabled_reason = coalesce(CAST(:disable AS text), disabled_reason),
            lease_owner = CASE WHEN CAST(:disable AS text) IS NULL THEN lease_owner END,
            lease_expires_at = CASE WHEN CAST(:disable AS text) IS NULL THEN lease_expires_at END
        WHERE id = :id AND lease_owner = :owner
        RETURNING id
    ),
    logged AS (
        INSERT INTO webhook_deliveries
            (webhook_id, event_id, event_cursor, attempt, delivered, status, latency_ms, error, retry_at)
        SELECT id, CAST(:event_id AS text), CAST(:event_cursor AS bigint), CAST(:attempt AS integer),
               CAST(:delivered AS boolean), CAST(:status AS integer), CAST(:latency_ms AS float8),
               CAST(:error AS text), now() + make_interval(secs => CAST(:retry_in AS float8))
        FROM saved
    )
    SELECT count(*) FROM saved
    """
)
_PRUNE = text("DELETE FROM webhook_deliveries WHERE attempted_at < now() - make_interval(days => :days)")


class WebhookStore:
    """The SQL of webhooks: management (create, change, list) and the deliverer's fenced writes.

    With `pool`, the write after each attempt (one statement) runs on it, prepared, in one round
    trip: it is made once per event delivered."""

    def __init__(self, engine: AsyncEngine, *, pool: DirectPool | None = None) -> None:
        self.engine = engine
        self.pool = pool

    # ------------------------------------------------------------ management

    async def create(
        self,
        *,
        url: str,
        secret: str,
        description: str | None,
        event_types: list[str] | None,
        team_ids: list[str] | None,
        actor_ids: list[str] | None,
        format: str,
    ) -> Webhook:
        """A new webhook, delivering the events committed after this call (its cursor is where the log ends)."""
        values = {
            "url": url,
            "secret": secret,
            "description": description,
            "event_types": event_types,
            "team_ids": team_ids,
            "actor_ids": actor_ids,
            "format": format,
        }
        async with transaction(self.engine) as conn:
            return _webhook((await conn.execute(_CREATE, values)).one())

    async def get(self, id: str) -> Webhook | None:
        async with connection(self.engine) as conn:
            row = (await conn.execute(_ONE, {"id": id})).first()
        return None if row is None else _webhook(row)

    async def all(self) -> list[Webhook]:
        async with connection(self.engine) as conn:
            return [_webhook(row) for row in await conn.execute(_ALL)]

    async def update(self, id: str, changes: dict[str, Any]) -> Webhook:
        """Change the named settings; the retry schedule starts afresh (the deliverer restarts with them)."""
        unknown = set(changes) - set(SETTINGS)
        if unknown:
            raise ValueError(f"not webhook settings: {sorted(unknown)}")
        assignments = [f"{name} = CAST(:{name} AS {_CASTS.get(name, 'text')})" for name in changes]
        if changes.get("enabled") is False:
            # A pause by hand: no reason (none went wrong), and the lease is given up at once.
            assignments += ["disabled_reason = NULL", "lease_owner = NULL", "lease_expires_at = NULL"]
        elif changes.get("enabled") is True:
            assignments.append("disabled_reason = NULL")
        statement = text(
            f"""
            UPDATE webhooks SET {", ".join(assignments)}{"," if assignments else ""}
                attempts = 0, retry_at = NULL, version = version + 1, updated_at = now()
            WHERE id = :id
            RETURNING {_COLUMNS}
            """
        )
        return await self._change(statement, {**changes, "id": id})

    async def delete(self, id: str) -> Webhook:
        """Delete the webhook and its delivery log."""
        return await self._change(_DELETE, {"id": id})

    async def enable(self, id: str) -> Webhook:
        """Enabled again, resuming from its cursor: the event it stopped at is the next one sent."""
        return await self._change(_ENABLE, {"id": id})

    async def _change(self, statement: TextClause, values: dict[str, Any]) -> Webhook:
        """One statement changing the webhook `values["id"]` names, returning it as changed."""
        async with transaction(self.engine) as conn:
            row = (await conn.execute(statement, values)).first()
        if row is None:
            raise NotFound(ENTITY, values["id"])
        return _webhook(row)

    async def deliveries(self, id: str, first: int) -> list[WebhookDelivery]:
        """The webhook's latest attempts, newest first."""
        async with connection(self.engine) as conn:
            return [
                WebhookDelivery(**row._mapping) for row in await conn.execute(_DELIVERIES, {"id": id, "first": first})
            ]

    # ------------------------------------------------------------ the deliverer's side

    async def renew(self, owner: str, lease_s: float) -> list[Webhook]:
        """Extend every lease `owner` holds on an enabled webhook; those it holds, as they are now."""
        async with transaction(self.engine) as conn:
            return [_webhook(row) for row in await conn.execute(_RENEW, {"owner": owner, "lease": lease_s})]

    async def claim(self, owner: str, lease_s: float, limit: int) -> list[Webhook]:
        """Take the lease of up to `limit` enabled webhooks that nobody holds (or whose holder let it expire)."""
        async with transaction(self.engine) as conn:
            rows = await conn.execute(_CLAIM, {"owner": owner, "lease": lease_s, "limit": limit})
            return [_webhook(row) for row in rows]

    async def release(self, owner: str) -> None:
        """Give up every lease `owner` holds (at shutdown), so that another process takes over at once."""
        async with transaction(self.engine) as conn:
            await conn.execute(_RELEASE, {"owner": owner})

    async def record(
        self, id: str, owner: str, attempt: WebhookAttempt, *, attempts: int, disable: str | None = None
    ) -> bool:
        """Log the attempt and save the state after it: a delivered attempt moves the cursor to its
        event; `attempts` failed attempts at the next event remain; `disable` (a reason) disables
        the webhook, keeping its cursor. False when `owner` no longer holds the lease (nothing saved)."""
        values = {
            "id": id,
            "owner": owner,
            "advance_to": attempt.event_cursor if attempt.delivered else None,
            "attempts": attempts,
            "retry_in": attempt.retry_in,
            "delivered": attempt.delivered,
            "disable": disable,
            "event_id": attempt.event_id,
            "event_cursor": attempt.event_cursor,
            "attempt": attempt.attempt,
            "status": attempt.status,
            "latency_ms": attempt.latency_ms,
            "error": attempt.error,
        }
        if self.pool is not None:
            statement = self.pool.compiled(_RECORD)
            return bool((await self.pool.fetch(statement, statement.arguments(values)))[0][0])
        async with transaction(self.engine) as conn:
            return bool((await conn.execute(_RECORD, values)).scalar_one())

    async def prune(self, days: int) -> int:
        """Forget attempts older than `days`; how many were forgotten."""
        async with transaction(self.engine) as conn:
            return (await conn.execute(_PRUNE, {"days": days})).rowcount
