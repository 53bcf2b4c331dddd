"""Check-ins with blockers by date, instead of every check-in by date (0004).

With 0004's index on `date` alone, the planner answered a team's page
(`GET /team_checkins?team_id=eq.t-7&date=gte.2026-01-01&order=date.desc&limit=50`) by reading every team's
newest check-ins backwards and filtering out the other teams' (2,435 rows read for 50 at 1,000,000
check-ins), once the history spanned years: that index is in commit order, so it looked cheaper than the
team's own. The request 0004 was for, "who is blocked" (`blockers=not.is.null&order=date.desc`), needs
only the check-ins that have blockers, and an index of those alone is one no team page can pick.
Found by the benchmark at 10x data (bench/README.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "team_checkins_blocked_date", "team_checkins", ["date"], postgresql_where=sa.text("blockers IS NOT NULL")
    )
    op.drop_index("team_checkins_date", table_name="team_checkins")


def downgrade() -> None:
    op.create_index("team_checkins_date", "team_checkins", ["date"])
    op.drop_index("team_checkins_blocked_date", table_name="team_checkins")
