"""Check-ins by date across teams: the README's `GET /team_checkins?blockers=not.is.null&order=date.desc&limit=5`
("who is blocked") read every check-in and sorted them to find the newest five with blockers, since no index
was ordered by date alone (those by team and by actor lead with their column). With this one it reads the
newest check-ins backwards until five have blockers. tests/test_plans.py found it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("team_checkins_date", "team_checkins", ["date"])


def downgrade() -> None:
    op.drop_index("team_checkins_date", table_name="team_checkins")
