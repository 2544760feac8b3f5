"""events.all_day: whole-day events read from ICS feeds

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN on both engines. Not batch_alter_table: on SQLite it would copy the
    # events table into a new one, which drops the full-text triggers of 0002 with the old table.
    op.add_column(
        "events", sa.Column("all_day", sa.Boolean(), server_default=sa.false(), nullable=False)
    )


def downgrade() -> None:
    op.drop_column("events", "all_day")  # SQLite 3.35+ drops a column in place, triggers kept
