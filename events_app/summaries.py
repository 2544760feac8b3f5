"""What a result list shows of an event (EventSummary), read with one Core statement built once:
the API's search page is served from these, without the ORM's identity map or the description,
its sectors read from the event's sector_mask."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ARRAY, DateTime, Integer, Select, any_, bindparam, select, type_coerce
from sqlalchemy.orm import Session

from events_app.db import UTCDateTime
from events_app.models import Agency, Event, sectors_of_mask


@dataclass(frozen=True, slots=True)
class AgencyRef:
    id: int
    name: str
    slug: str


@dataclass(slots=True)
class EventSummary:
    """Same attribute names as `Event`, so the serialiser and events.registration_state read
    either. Not frozen: a frozen dataclass sets each of its fields through object.__setattr__,
    which made building the 20 summaries of a page cost as much as reading them."""

    id: int
    title: str
    type: str
    format: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    venue_name: str | None
    venue_address: str | None
    venue_postal_code: str | None
    venue_city: str | None
    venue_lat: float | None
    venue_lon: float | None
    online_url: str | None
    capacity: int | None
    remote_capacity: int | None
    seats_taken: int
    remote_seats_taken: int
    waitlist: bool
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    registration_closed: bool
    job_offers: int | None
    status: str
    revision: int
    agency: AgencyRef
    sectors: list[str]
    # The same event published by other agencies, as stored with its group.
    duplicate_copies: list[dict[str, Any]] | None = None


_SUMMARY_COLUMNS = (
    Event.id,
    Event.title,
    Event.type,
    Event.format,
    Event.starts_at,
    Event.ends_at,
    Event.timezone,
    Event.venue_name,
    Event.venue_address,
    Event.venue_postal_code,
    Event.venue_city,
    Event.venue_lat,
    Event.venue_lon,
    Event.online_url,
    Event.capacity,
    Event.remote_capacity,
    Event.seats_taken,
    Event.remote_seats_taken,
    Event.waitlist,
    Event.registration_opens_at,
    Event.registration_closes_at,
    Event.registration_closed,
    Event.job_offers,
    Event.status,
    Event.revision,
)


@lru_cache(maxsize=2)
def summary_columns(dialect: str) -> tuple[Any, ...]:
    """Every column a summary is built from (summary_of): the event's own, its agency, its
    sectors' bits and its stored copies. On PostgreSQL the moments are read as psycopg gives
    them, aware datetimes in the session's zone, without UTCDateTime's conversion to UTC
    (about a microsecond each, a hundred per page): a summary's reader puts them in the
    event's zone or compares them with another aware datetime."""
    own: tuple[Any, ...] = _SUMMARY_COLUMNS
    if dialect == "postgresql":
        raw = DateTime(timezone=True)
        own = tuple(
            type_coerce(column, raw).label(column.key)
            if isinstance(column.type, UTCDateTime)
            else column
            for column in own
        )
    return (*own, Agency.id, Agency.name, Agency.slug, Event.sector_mask, Event.duplicate_copies)


def summary_of(row: Sequence[Any], start: int = 0) -> EventSummary:
    """The summary read from summary_columns, found in the row from index `start`."""
    width = start + len(_SUMMARY_COLUMNS)
    agency_id, agency_name, agency_slug, mask, copies = row[width : width + 5]
    return EventSummary(  # type: ignore[call-arg]
        *row[start:width],
        AgencyRef(agency_id, agency_name, agency_slug),
        sectors_of_mask(mask),
        copies,
    )


@lru_cache(maxsize=2)
def _statement(dialect: str) -> Select[*tuple[Any, ...]]:
    """The events of the `ids` parameter with their agency. Built once per dialect: a
    statement object executed again is neither rebuilt nor matched column by column against
    its cached compilation (about 1 ms of a search page). On PostgreSQL the ids are one array
    parameter: one prepared statement whatever their number."""
    if dialect == "postgresql":
        wanted = Event.id == any_(bindparam("ids", type_=ARRAY(Integer)))
    else:
        wanted = Event.id.in_(bindparam("ids", expanding=True))
    return (
        select(*summary_columns(dialect)).join(Agency, Agency.id == Event.agency_id).where(wanted)
    )


def load_summaries(db: Session, ids: Sequence[int]) -> dict[int, EventSummary]:
    """The summaries of these events, by id (one statement)."""
    if not ids:
        return {}
    connection = db.connection()
    rows = connection.execute(_statement(connection.dialect.name), {"ids": list(ids)}).all()
    return {row[0]: summary_of(row) for row in rows}
