"""A parent's children in id order, instead of by parent alone.

A nested read lists each goal story's children in id order (the connection's default order),
once per parent row. With the index on `parent_id` alone the prepared statement's generic plan
walked the primary key in id order and filtered on the parent, every goal story once per parent;
with `(parent_id, id)` it reads just the parent's children, already in order. The nested goal
query's statement: 1,053-1,114 tps before, 1,367-1,398 after (pgbench, bench/README.md).
The new index answers everything the old one did (the foreign key's lookups by parent).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("goal_stories_parent_id", "goal_stories", ["parent_id", "id"])
    op.drop_index("goal_stories_parent", table_name="goal_stories")


def downgrade() -> None:
    op.create_index("goal_stories_parent", "goal_stories", ["parent_id"])
    op.drop_index("goal_stories_parent_id", table_name="goal_stories")
