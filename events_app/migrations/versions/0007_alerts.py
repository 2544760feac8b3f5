"""alerts (saved searches mailed when new events match) and extra mail headers

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 20:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import events_app.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("headers", sa.JSON(), nullable=True))
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("seeker_id", sa.Integer(), nullable=True),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("frequency", sa.String(length=10), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("confirmed_at", events_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_sent_at", events_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("since", events_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", events_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["seeker_id"],
            ["seekers.id"],
            name=op.f("fk_alerts_seeker_id_seekers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("token", name=op.f("uq_alerts_token")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_email"), ["email"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_seeker_id"), ["seeker_id"], unique=False)
    op.create_table(
        "alert_sent_events",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_sent_events_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_alert_sent_events_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", "event_id", name=op.f("pk_alert_sent_events")),
    )
    with op.batch_alter_table("alert_sent_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_sent_events_event_id"), ["event_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_sent_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_sent_events_event_id"))
    op.drop_table("alert_sent_events")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_seeker_id"))
        batch_op.drop_index(batch_op.f("ix_alerts_email"))
    op.drop_table("alerts")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("headers")
