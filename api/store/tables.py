"""The six tables as SQLAlchemy 2 typed models.

The constraints here are the database's own backstop; the write service checks
the same rules first so that it can name the field or the ids in its errors.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Sequence,
    Table,
    Text,
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
        Index("goal_stories_parent", "parent_id"),
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
