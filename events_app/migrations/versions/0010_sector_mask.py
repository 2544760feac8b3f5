"""events.sector_mask: an event's sectors as bits, in the place search's covering index (with the id)

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# events_app.models.SECTOR_BITS, copied: a migration must not change when the code does.
_SECTOR_BITS = (*"ABCDEFGHIJKLMN", "all")
# The covering index as 0005 left it.
_COVERING = (
    "geo_cell",
    "starts_at",
    "venue_lat",
    "venue_lon",
    "format",
    "type",
    "status",
    "ends_at",
    "duplicate_group_id",
)


def upgrade() -> None:
    # A plain ADD COLUMN on both engines (see 0008: batch mode would copy the table on SQLite
    # and lose the full-text triggers).
    op.add_column(
        "events", sa.Column("sector_mask", sa.Integer(), server_default="0", nullable=False)
    )
    # Each (event, sector) row is unique, so the sum of the bits is their union.
    events = sa.table("events", sa.column("id", sa.Integer()), sa.column("sector_mask"))
    rows = sa.table("event_sectors", sa.column("event_id", sa.Integer()), sa.column("sector"))
    bit = sa.case(
        {code: 1 << n for n, code in enumerate(_SECTOR_BITS)}, value=rows.c.sector, else_=0
    )
    union = (
        sa.select(sa.func.coalesce(sa.func.sum(bit), 0))
        .where(rows.c.event_id == events.c.id)
        .scalar_subquery()
    )
    op.execute(events.update().values(sector_mask=union))
    # And the id: SQLite's indexes hold the rowid anyway, PostgreSQL's only what they name, and
    # without it every candidate costs a visit to the table (no index-only scan).
    op.drop_index("ix_events_geo_search", table_name="events")
    op.create_index("ix_events_geo_search", "events", [*_COVERING, "sector_mask", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_geo_search", table_name="events")
    op.create_index("ix_events_geo_search", "events", list(_COVERING))
    op.drop_column("events", "sector_mask")  # SQLite 3.35+ drops a column in place
