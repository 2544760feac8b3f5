"""the same event published by several agencies: stored groups and dismissals

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 18:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import events_app.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


COVERING = (
    "geo_cell",
    "starts_at",
    "venue_lat",
    "venue_lon",
    "format",
    "type",
    "status",
    "ends_at",
)


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("duplicate_group_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("duplicate_copies", sa.JSON(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_events_duplicate_group_id"), ["duplicate_group_id"], unique=False
        )
    # The search filters on the group (one result per event): the place search's covering
    # index must hold it, or every candidate costs a table lookup again.
    op.drop_index("ix_events_geo_search", table_name="events")
    op.create_index("ix_events_geo_search", "events", [*COVERING, "duplicate_group_id"])
    op.create_table(
        "duplicate_dismissals",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("other_event_id", sa.Integer(), nullable=False),
        sa.Column("created_at", events_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_duplicate_dismissals_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["other_event_id"],
            ["events.id"],
            name=op.f("fk_duplicate_dismissals_other_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "other_event_id", name=op.f("pk_duplicate_dismissals")),
    )
    with op.batch_alter_table("duplicate_dismissals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_duplicate_dismissals_other_event_id"),
            ["other_event_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("duplicate_dismissals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duplicate_dismissals_other_event_id"))
    op.drop_table("duplicate_dismissals")
    op.drop_index("ix_events_geo_search", table_name="events")
    op.create_index("ix_events_geo_search", "events", list(COVERING))
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_duplicate_group_id"))
        batch_op.drop_column("duplicate_copies")
        batch_op.drop_column("duplicate_group_id")
