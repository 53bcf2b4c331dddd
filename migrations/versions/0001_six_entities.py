"""The six CoCo 1.0.0 tables, their constraints and indexes, and the event cursor sequence.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UUID_DEFAULT = sa.text("gen_random_uuid()::text")
NOW = sa.text("now()")


def _id() -> sa.Column:
    return sa.Column("id", sa.Text, primary_key=True, server_default=UUID_DEFAULT)


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW)


def upgrade() -> None:
    op.create_table(
        "actors",
        _id(),
        sa.Column("actor_type", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text),
        sa.Column("timezone", sa.Text),
        sa.CheckConstraint("actor_type IN ('person', 'agent')", name="actors_actor_type_check"),
    )
    op.create_table(
        "teams",
        _id(),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("member_ids", ARRAY(sa.Text)),
    )
    op.create_index("teams_member_ids_gin", "teams", ["member_ids"], postgresql_using="gin")

    op.create_table(
        "team_checkins",
        _id(),
        sa.Column("actor_id", sa.Text, sa.ForeignKey("actors.id"), nullable=False),
        sa.Column("team_id", sa.Text, sa.ForeignKey("teams.id"), nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("next", ARRAY(sa.Text)),
        sa.Column("previously", ARRAY(sa.Text)),
        sa.Column("blockers", ARRAY(sa.Text)),
        _created_at(),
    )
    op.create_index("team_checkins_team_date", "team_checkins", ["team_id", "date"])
    op.create_index("team_checkins_actor_date", "team_checkins", ["actor_id", "date"])
    op.create_index("team_checkins_created_at", "team_checkins", ["created_at"])

    op.create_table(
        "goal_stories",
        _id(),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("actor_ids", ARRAY(sa.Text)),
        sa.Column("team_ids", ARRAY(sa.Text)),
        sa.Column("parent_id", sa.Text, sa.ForeignKey("goal_stories.id")),
        sa.Column("timeframe_start", sa.Date),
        sa.Column("timeframe_end", sa.Date),
        _created_at(),
        sa.CheckConstraint("timeframe_end >= timeframe_start", name="goal_stories_timeframe_check"),
        sa.CheckConstraint("parent_id <> id", name="goal_stories_parent_check"),
    )
    op.create_index("goal_stories_parent", "goal_stories", ["parent_id"])
    op.create_index("goal_stories_created_at", "goal_stories", ["created_at"])
    op.create_index("goal_stories_actor_ids_gin", "goal_stories", ["actor_ids"], postgresql_using="gin")
    op.create_index("goal_stories_team_ids_gin", "goal_stories", ["team_ids"], postgresql_using="gin")

    op.create_table(
        "goal_story_updates",
        _id(),
        sa.Column("actor_id", sa.Text, sa.ForeignKey("actors.id"), nullable=False),
        sa.Column("goal_story_id", sa.Text, sa.ForeignKey("goal_stories.id"), nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("status", sa.Text),
        sa.Column("progress_percent", sa.Integer),
        _created_at(),
        sa.CheckConstraint(
            "status IN ('on_track', 'at_risk', 'off_track', 'completed', 'paused')",
            name="goal_story_updates_status_check",
        ),
        sa.CheckConstraint("progress_percent BETWEEN 0 AND 100", name="goal_story_updates_progress_check"),
    )
    op.create_index("goal_story_updates_goal_date", "goal_story_updates", ["goal_story_id", "date"])
    op.create_index("goal_story_updates_actor_date", "goal_story_updates", ["actor_id", "date"])

    op.execute(sa.schema.CreateSequence(sa.Sequence("coordination_event_seq")))
    op.create_table(
        "coordination_events",
        _id(),
        sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
        sa.Column("actor_id", sa.Text, sa.ForeignKey("actors.id"), nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("reference_id", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "event_type IN ('team_checkin', 'goal_story_update')", name="coordination_events_event_type_check"
        ),
    )
    op.create_index("coordination_events_actor", "coordination_events", ["actor_id", "seq"])
    op.create_index("coordination_events_reference", "coordination_events", ["reference_id", "seq"])
    op.create_index("coordination_events_occurred_at", "coordination_events", ["occurred_at"])


def downgrade() -> None:
    for table in ("coordination_events", "goal_story_updates", "goal_stories", "team_checkins", "teams", "actors"):
        op.drop_table(table)
    op.execute(sa.schema.DropSequence(sa.Sequence("coordination_event_seq")))
