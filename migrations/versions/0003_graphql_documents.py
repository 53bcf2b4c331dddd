"""GraphQL documents registered by automatic persisted queries, by the SHA-256 of their text, so that every
replica knows a document any of them registered.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "graphql_documents",
        # The lowercase hex SHA-256 of `document` (checked: a row is found by the hash of what it holds).
        sa.Column("sha256", sa.Text, primary_key=True),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.CheckConstraint(
            "sha256 = encode(sha256(convert_to(document, 'UTF8')), 'hex')", name="graphql_documents_sha256_check"
        ),
    )


def downgrade() -> None:
    op.drop_table("graphql_documents")
