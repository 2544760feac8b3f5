"""registrations: check-in code, and who checked the person in and when

Revision ID: 0009
Revises: 0008
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import events_app.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same alphabet and length as events_app.checkins (copied: a migration must not change
# when the application code does).
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_LENGTH = 12


def upgrade() -> None:
    # Plain ADD COLUMN and CREATE INDEX on both engines, as 0008: batch_alter_table could copy
    # the table on SQLite, and a copy loses what reflection does not carry over.
    op.add_column("registrations", sa.Column("checkin_code", sa.String(length=16), nullable=True))
    op.add_column(
        "registrations",
        sa.Column("checked_in_at", events_app.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column("registrations", sa.Column("checked_in_by", sa.String(length=254), nullable=True))
    op.create_index(
        op.f("ix_registrations_checkin_code"), "registrations", ["checkin_code"], unique=True
    )
    # Seats confirmed before this revision get their code now.
    registrations = sa.table(
        "registrations",
        sa.column("id", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("checkin_code", sa.String()),
    )
    connection = op.get_bind()
    ids = connection.scalars(
        sa.select(registrations.c.id).where(
            registrations.c.status.in_(("confirmed", "attended", "absent"))
        )
    ).all()
    for registration_id in ids:
        code = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
        connection.execute(
            registrations.update()
            .where(registrations.c.id == registration_id)
            .values(checkin_code=code)
        )


def downgrade() -> None:
    # SQLite 3.35+ drops a column in place (once its index is gone).
    op.drop_index(op.f("ix_registrations_checkin_code"), table_name="registrations")
    op.drop_column("registrations", "checked_in_by")
    op.drop_column("registrations", "checked_in_at")
    op.drop_column("registrations", "checkin_code")
