"""mail delivery state: outbox status and next attempt, registration links resent

Revision ID: 0012a
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import events_app.db

revision: str = "0012a"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "status",
                sa.String(length=10),
                server_default=sa.text("'pending'"),
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column("next_attempt_at", events_app.db.UTCDateTime(timezone=True), nullable=True)
        )
    # Mails queued before this revision: due now, or already sent.
    op.execute("UPDATE outbox SET next_attempt_at = created_at")
    op.execute("UPDATE outbox SET status = 'sent' WHERE sent_at IS NOT NULL")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column(
            "next_attempt_at",
            existing_type=events_app.db.UTCDateTime(timezone=True),
            nullable=False,
        )
        batch_op.create_index(
            "ix_outbox_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("links_resent_at", events_app.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.drop_column("links_resent_at")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_status_next_attempt_at")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("status")
