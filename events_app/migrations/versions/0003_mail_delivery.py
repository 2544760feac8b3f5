"""mail delivery in steps, links resent, sign-up confirmed by mail

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import events_app.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column(
                "status", sa.String(length=10), server_default=sa.text("'pending'"), nullable=False
            )
        )
        batch.add_column(
            sa.Column("next_attempt_at", events_app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch.create_index("ix_outbox_status_next_attempt_at", ["status", "next_attempt_at"])
    op.execute("UPDATE outbox SET status = 'sent' WHERE sent_at IS NOT NULL")
    with op.batch_alter_table("registrations") as batch:
        batch.add_column(
            sa.Column("links_resent_at", events_app.db.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("seekers") as batch:
        batch.add_column(
            sa.Column("email_confirmed_at", events_app.db.UTCDateTime(timezone=True), nullable=True)
        )
    # Accounts made before sign-up was confirmed by mail keep working.
    op.execute("UPDATE seekers SET email_confirmed_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("seekers") as batch:
        batch.drop_column("email_confirmed_at")
    with op.batch_alter_table("registrations") as batch:
        batch.drop_column("links_resent_at")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_status_next_attempt_at")
        batch.drop_column("next_attempt_at")
        batch.drop_column("status")
