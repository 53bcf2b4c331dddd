"""The six tables as SQLAlchemy 2 typed models, and the webhooks' two.

The constraints here are the database's own backstop; the write service checks
the same rules first so that it can name the field or the ids in its errors.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Insert,
    Integer,
    Sequence,
    Table,
    Text,
    bindparam,
    cast,
    insert,
    literal,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from api.entities import ACTOR_TYPES, EVENT_TYPES, GOAL_STORY_STATUSES

UUID_DEFAULT = text("gen_random_uuid()::text")
NOW = text("now()")

# Event cursors come from this sequence while the event lock is held, which is
# what makes their order the commit order (see api/store/events.py).
event_seq = Sequence("coordination_event_seq", metadata=None)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    pass


class Actor(Base):
    __tablename__ = "actors"
    __table_args__ = (CheckConstraint(_in("actor_type", ACTOR_TYPES), name="actors_actor_type_check"),)

    id: Mapped[str] = mapped_column(Text, primary_key=True, server_default=UUID_DEFAULT)
    actor_type: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str | None] = mapped_column(Text)


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (Index("teams_member_ids_gin", "member_ids", postgresql_using="gin"),)

    id: Mapped[str] = mapped_column(Text, primary_key=True, server_default=UUID_DEFAULT)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    member_ids: Mapped[list[str] | None] = mapped_column(ARRAY(Text))


class TeamCheckin(Base):
    __tablename__ = "team_checkins"
    __table_args__ = (
        Index("team_checkins_team_date", "team_id", "date"),
        Index("team_checkins_actor_date", "actor_id", "date"),
        Index("team_checkins_created_at", "created_at"),
        # Migration 0005: "who is blocked" by date; an index of every check-in by date drew team pages to it.
        Index("team_checkins_blocked_date", "date", postgresql_where=text("blockers IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True, server_default=UUID_DEFAULT)
    actor_id: Mapped[str] = mapped_column(Text, ForeignKey("actors.id"))
    team_id: Mapped[str] = mapped_column(Text, ForeignKey("teams.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    next: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    previously: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    blockers: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)


class GoalStory(Base):
    __tablename__ = "goal_stories"
    __table_args__ = (
        CheckConstraint("timeframe_end >= timeframe_start", name="goal_stories_timeframe_check"),
        CheckConstraint("parent_id <> id", name="goal_stories_parent_check"),
        # Migration 0006: a parent's children in id order, the order nested reads list them in.
        Index("goal_stories_parent_id", "parent_id", "id"),
        Index("goal_stories_created_at", "created_at"),
        Index("goal_stories_actor_ids_gin", "actor_ids", postgresql_using="gin"),
        Index("goal_stories_team_ids_gin", "team_ids", postgresql_using="gin"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True, server_default=UUID_DEFAULT)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    actor_ids: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    team_ids: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    parent_id: Mapped[str | None] = mapped_column(Text, ForeignKey("goal_stories.id"))
    timeframe_start: Mapped[dt.date | None] = mapped_column(Date)
    timeframe_end: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)


class GoalStoryUpdate(Base):
    __tablename__ = "goal_story_updates"
    __table_args__ = (
        CheckConstraint(_in("status", GOAL_STORY_STATUSES), name="goal_story_updates_status_check"),
        CheckConstraint("progress_percent BETWEEN 0 AND 100", name="goal_story_updates_progress_check"),
        Index("goal_story_updates_goal_date", "goal_story_id", "date"),
        Index("goal_story_updates_actor_date", "actor_id", "date"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True, server_default=UUID_DEFAULT)
    actor_id: Mapped[str] = mapped_column(Text, ForeignKey("actors.id"))
    goal_story_id: Mapped[str] = mapped_column(Text, ForeignKey("goal_stories.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    title: Mapped[str] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(Text)
    progress_percent: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)


class CoordinationEvent(Base):
    __tablename__ = "coordination_events"
    __table_args__ = (
        CheckConstraint(_in("event_type", EVENT_TYPES), name="coordination_events_event_type_check"),
        Index("coordination_events_actor", "actor_id", "seq"),
        Index("coordination_events_reference", "reference_id", "seq"),
        Index("coordination_events_occurred_at", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True, server_default=UUID_DEFAULT)
    # Internal commit-order cursor; never part of the CoCo document.
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    actor_id: Mapped[str] = mapped_column(Text, ForeignKey("actors.id"))
    event_type: Mapped[str] = mapped_column(Text)
    # No foreign key: deleting a check-in or update keeps its events.
    reference_id: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class GraphQLDocument(Base):
    """A GraphQL document registered by an automatic persisted query (api/store/documents.py)."""

    __tablename__ = "graphql_documents"
    __table_args__ = (
        CheckConstraint(
            "sha256 = encode(sha256(convert_to(document, 'UTF8')), 'hex')", name="graphql_documents_sha256_check"
        ),
    )

    sha256: Mapped[str] = mapped_column(Text, primary_key=True)
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)


# From the metadata: a model's `__table__` is typed as any FromClause.
TABLES: dict[str, Table] = {
    entity_name: Base.metadata.tables[model.__tablename__]
    for entity_name, model in (
        ("actor", Actor),
        ("team", Team),
        ("team_checkin", TeamCheckin),
        ("goal_story", GoalStory),
        ("goal_story_update", GoalStoryUpdate),
        ("coordination_event", CoordinationEvent),
    )
}


# ---------------------------------------------------------------- sending dates and timestamps

# asyncpg sends the first and last date and instant Python has (date.min and max, datetime.min and max)
# as PostgreSQL's -infinity and infinity, which then read back as such ("-infinity" in a document). So
# every date and timestamp a write binds goes as text, parsed by PostgreSQL, as the values of a create do
# (they travel as JSON): 0001-01-01 is stored as 0001-01-01.


def _dated(column: Column[Any]) -> bool:
    return isinstance(column.type, (Date, DateTime))


def as_sent(column: Column[Any], value: Any) -> Any:
    """`value` for `column` in a statement (see above)."""
    if isinstance(value, dt.date) and _dated(column):
        return cast(literal(value.isoformat(), Text), column.type)
    return value


def insert_as_sent(table: Table, **extra: Any) -> Insert:
    """An INSERT into `table` for `rows_as_sent(table, rows)` (executemany), its dates and timestamps as text."""
    values = {c.name: cast(bindparam(c.name, type_=Text), c.type) for c in table.columns if _dated(c)}
    return insert(table).values({**values, **extra})


def rows_as_sent(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    dated = [c.name for c in table.columns if _dated(c)]
    return [{**row, **{n: _text(row.get(n)) for n in dated if n in row}} for row in rows]


def _text(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


# Webhooks (api/store/webhooks.py): not CoCo entities, so not in TABLES.

WEBHOOK_FORMATS = ("standard", "slack")


class WebhookRow(Base):
    __tablename__ = "webhooks"
    __table_args__ = (CheckConstraint(_in("format", WEBHOOK_FORMATS), name="webhooks_format_check"),)

    id: Mapped[str] = mapped_column(Text, primary_key=True, server_default=UUID_DEFAULT)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    # Null: no filter on that field.
    event_types: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    team_ids: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    actor_ids: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    format: Mapped[str] = mapped_column(Text, server_default=text("'standard'"))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # The cursor of the last event acknowledged; saved after each acknowledgement.
    cursor: Mapped[int] = mapped_column(BigInteger)
    # Failed attempts at the first event after the cursor, and when the next one is due.
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    retry_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    failed_count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    # Raised by every change of the settings, so that the deliverer picks them up.
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # Which process delivers this webhook, until when (renewed while it lives).
    lease_owner: Mapped[str | None] = mapped_column(Text)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)


class WebhookDeliveryRow(Base):
    """One attempt at delivering one event to one webhook (kept COCO_WEBHOOK_LOG_DAYS)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("webhook_deliveries_webhook", "webhook_id", "id"),
        Index("webhook_deliveries_attempted_at", "attempted_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(Text, ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(Text)
    event_cursor: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(Integer)
    delivered: Mapped[bool] = mapped_column(Boolean)
    # The HTTP status; null when no response came (a timeout, a refused connection).
    status: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Double)
    error: Mapped[str | None] = mapped_column(Text)
    retry_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    attempted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
