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
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checkin_code", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("checked_in_at", events_app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("checked_in_by", sa.String(length=254), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_registrations_checkin_code"), ["checkin_code"], unique=True
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
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registrations_checkin_code"))
        batch_op.drop_column("checked_in_by")
        batch_op.drop_column("checked_in_at")
        batch_op.drop_column("checkin_code")
