"""Every table of the product. Relationships are lazy="raise": load what a page needs explicitly."""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import datetime
from functools import lru_cache
from typing import Any, Final

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from events_app.db import Base, UTCDateTime, utcnow

# Venues are filed in cells of GEO_CELL_DEG degrees so that a place search reads a few cells
# through an index instead of scanning every event (see events_app.search). 0.05° is about
# 5.5 km by 3.7 km in France: small enough that the first, small radius of a search in a dense
# city reads only its neighbourhood, large enough that 30 km is about two hundred cells.
GEO_CELL_DEG = 0.05
_GEO_CELL_COLUMNS = 10_000

# An event's sectors as bits (events.sector_mask, next to its event_sector rows): a search by
# sector tests them in the place search's covering index, without a lookup per candidate, and
# a result list reads them without a join. The order is fixed: stored masks depend on it
# (migration 0010 copies it); a new sector takes the next bit.
SECTOR_BITS: Final[tuple[str, ...]] = (*"ABCDEFGHIJKLMN", "all")


def sector_mask(codes: Any) -> int:
    """The bits of these sector codes (unknown codes have none)."""
    return sum(1 << SECTOR_BITS.index(code) for code in set(codes) if code in SECTOR_BITS)


def sectors_of_mask(mask: int) -> list[str]:
    """The codes of a sector mask, sorted as the event's rows are (a new list each time)."""
    return list(_sectors_of_mask(mask))


@lru_cache(maxsize=1024)
def _sectors_of_mask(mask: int) -> tuple[str, ...]:
    return tuple(sorted(code for bit, code in enumerate(SECTOR_BITS) if mask >> bit & 1))


def geo_cell(lat: float, lon: float) -> int:
    row = math.floor((lat + 90.0) / GEO_CELL_DEG)
    col = math.floor((lon + 180.0) / GEO_CELL_DEG)
    return row * _GEO_CELL_COLUMNS + col


# The combining marks of U+0300–U+036F (French accents among them), deleted by str.translate.
_COMMON_MARKS: Final = {
    code: None for code in range(0x300, 0x370) if unicodedata.combining(chr(code))
}


def fold_text(text: str) -> str:
    """Lower case without accents: how free text is stored and matched."""
    decomposed = unicodedata.normalize("NFKD", text.casefold()).translate(_COMMON_MARKS)
    if decomposed.isascii():  # nearly always: no mark left to look for character by character
        return decomposed
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_WORD = re.compile(r"[^\W_]+")


def search_words(text: str) -> list[str]:
    """The words of a text as free-text search sees them: folded, punctuation dropped."""
    return _WORD.findall(fold_text(text))


def search_key(*parts: str | None) -> str:
    """The searchable words of an event (title, venue, city), folded and separated by single
    spaces: what the full-text index reads, and what a word-prefix LIKE can test."""
    return " ".join(word for part in parts if part for word in search_words(part))


class Commune(Base):
    """A French commune (or a municipal arrondissement of Paris, Lyon, Marseille)."""

    __tablename__ = "communes"

    insee: Mapped[str] = mapped_column(String(5), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Lower case, no accents, hyphens and apostrophes as spaces: what a search box is matched on.
    name_key: Mapped[str] = mapped_column(String(200), index=True)
    department: Mapped[str] = mapped_column(String(3), index=True)
    population: Mapped[int] = mapped_column(Integer, default=0)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    is_arrondissement: Mapped[bool] = mapped_column(Boolean, default=False)


class CommunePostalCode(Base):
    __tablename__ = "commune_postal_codes"

    postal_code: Mapped[str] = mapped_column(String(5), primary_key=True)
    insee: Mapped[str] = mapped_column(
        ForeignKey("communes.insee", ondelete="CASCADE"), primary_key=True, index=True
    )


class Agency(Base):
    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30), default="other")
    address: Mapped[str | None] = mapped_column(String(300))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(200))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    email: Mapped[str | None] = mapped_column(String(254))
    website: Mapped[str | None] = mapped_column(String(500))
    # SHA-256 of the bearer token: the token itself is shown once and never stored.
    api_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AgencyStaff(Base):
    __tablename__ = "agency_staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(300))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    agency: Mapped[Agency] = relationship(lazy="raise")


class Feed(Base):
    """A source of events for an agency: a URL polled on a schedule, or a file imported once."""

    __tablename__ = "feeds"
    __table_args__ = (UniqueConstraint("agency_id", "url", "format"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    format: Mapped[str] = mapped_column(String(20))
    interval_minutes: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    agency: Mapped[Agency] = relationship(lazy="raise")

    @property
    def display_name(self) -> str:
        """What staff see: a URL as it is, a file by its name only (never a server path)."""
        if self.url.startswith(("http://", "https://")):
            return self.url
        return self.url.replace("\\", "/").rsplit("/", 1)[-1]


class ImportRun(Base):
    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # running, succeeded, failed, not_modified, interrupted (its process died while running)
    status: Mapped[str] = mapped_column(String(20), default="running")
    # "host:pid" of the process running the import (events_app.leases.OWNER): a run still
    # "running" whose process is gone is marked interrupted (importers.run.interrupt_dead_runs).
    owner: Mapped[str | None] = mapped_column(String(300))
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # [{"line": int, "field": str | None, "reason": str}, ...]
    rejected_rows: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    # How the source was read: "200", "304 not modified", "file", or the fetch error.
    fetch_outcome: Mapped[str | None] = mapped_column(String(300))

    feed: Mapped[Feed] = relationship(lazy="raise")


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("ends_at >= starts_at", name="ends_after_start"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity_positive"),
        CheckConstraint(
            "capacity IS NULL OR seats_taken <= capacity", name="seats_within_capacity"
        ),
        CheckConstraint(
            "remote_capacity IS NULL OR remote_seats_taken <= remote_capacity",
            name="remote_seats_within_capacity",
        ),
        UniqueConstraint("feed_id", "external_id"),
        # Covering for a place search's candidate scan (events_app.search._nearest): the cell
        # and the dates narrow, the rest is read from the index itself, never from the table.
        Index(
            "ix_events_geo_search",
            "geo_cell",
            "starts_at",
            "venue_lat",
            "venue_lon",
            "format",
            "type",
            "status",
            "ends_at",
            "duplicate_group_id",
            "sector_mask",
            # PostgreSQL's indexes hold only what they name (SQLite's hold the rowid too).
            "id",
        ),
        Index("ix_events_starts_at_id", "starts_at", "id"),
        Index("ix_events_agency_id_starts_at", "agency_id", "starts_at"),
        Index("ix_events_format_starts_at", "format", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    description_html: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(30))
    format: Mapped[str] = mapped_column(String(10))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    # Whole days: starts_at is local midnight, ends_at the midnight after the last day.
    all_day: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    venue_name: Mapped[str | None] = mapped_column(String(200))
    venue_address: Mapped[str | None] = mapped_column(String(300))
    venue_postal_code: Mapped[str | None] = mapped_column(String(10))
    venue_city: Mapped[str | None] = mapped_column(String(200))
    venue_lat: Mapped[float | None] = mapped_column(Float)
    venue_lon: Mapped[float | None] = mapped_column(Float)
    # Both kept in step with the columns they derive from by a mapper event below.
    geo_cell: Mapped[int | None] = mapped_column(Integer)
    search_key: Mapped[str] = mapped_column(Text, default="")
    # The sectors of sector_rows as bits (SECTOR_BITS), kept in step on every write.
    sector_mask: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    online_url: Mapped[str | None] = mapped_column(String(2000))
    # None means unlimited. For a hybrid event, capacity is on-site and remote_capacity remote.
    capacity: Mapped[int | None] = mapped_column(Integer)
    remote_capacity: Mapped[int | None] = mapped_column(Integer)
    # Confirmed seats, changed only by events_app.registrations under the event's lock.
    seats_taken: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    remote_seats_taken: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    waitlist: Mapped[bool] = mapped_column(Boolean, default=True)
    registration_opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    registration_closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    registration_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    job_offers: Mapped[int | None] = mapped_column(Integer)
    accessibility_notes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    cancellation_message: Mapped[str | None] = mapped_column(Text)
    feed_id: Mapped[int | None] = mapped_column(
        ForeignKey("feeds.id", ondelete="SET NULL"), index=True
    )
    external_id: Mapped[str | None] = mapped_column(String(300))
    source_url: Mapped[str | None] = mapped_column(String(2000))
    # Hash of the imported content, so that an unchanged re-import writes nothing.
    source_hash: Mapped[str | None] = mapped_column(String(64))
    # An imported event edited by its agency by hand: later imports report, never overwrite.
    edited_by_hand: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The same event published by other agencies (see events_app.duplicates): the id of the
    # group's shown event, on every member of the group; None when it has no copy.
    duplicate_group_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # The other members of the group as the API lists them, [{"id", "agency": {"id", "name"}}],
    # stored with the group so that a search page reads them without another query.
    duplicate_copies: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)

    agency: Mapped[Agency] = relationship(lazy="raise")
    sector_rows: Mapped[list[EventSector]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="EventSector.sector"
    )

    @property
    def sectors(self) -> list[str]:
        return [row.sector for row in self.sector_rows]


@event.listens_for(Event, "before_insert")
@event.listens_for(Event, "before_update")
def _set_derived_columns(_mapper: Any, _conn: Any, target: Event) -> None:
    if target.venue_lat is None or target.venue_lon is None:
        target.geo_cell = None
    else:
        target.geo_cell = geo_cell(target.venue_lat, target.venue_lon)
    target.search_key = search_key(target.title, target.venue_name, target.venue_city)
    # Rows are loaded wherever they are written (they are lazy="raise" otherwise).
    if "sector_rows" in target.__dict__:
        target.sector_mask = sector_mask(row.sector for row in target.sector_rows)


class EventSector(Base):
    __tablename__ = "event_sectors"

    event_id: Mapped[int] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    sector: Mapped[str] = mapped_column(String(3), primary_key=True, index=True)


class DuplicateDismissal(Base):
    """An agency said these two events are not the same (event_id < other_event_id)."""

    __tablename__ = "duplicate_dismissals"

    event_id: Mapped[int] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    other_event_id: Mapped[int] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Seeker(Base):
    """A job seeker's account, with the preferences behind "events for me"."""

    __tablename__ = "seekers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(300))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(30))
    home_place: Mapped[str | None] = mapped_column(String(200))
    radius_km: Mapped[int | None] = mapped_column(Integer)
    sectors: Mapped[list[str]] = mapped_column(JSON, default=list)
    types: Mapped[list[str]] = mapped_column(JSON, default=list)
    formats: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Secret of the personal calendar feed; replaced (and so revoked) on demand.
    feed_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Set when the owner of the address followed the link mailed at sign-up (or a password
    # reset): until then the account cannot be signed in to.
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Registration(Base):
    __tablename__ = "registrations"
    __table_args__ = (
        # One live registration per email and event; cancelled ones are history.
        Index(
            "uq_registrations_live_email",
            "event_id",
            "email",
            unique=True,
            sqlite_where=text("status != 'cancelled'"),
            postgresql_where=text("status != 'cancelled'"),
        ),
        Index("ix_registrations_event_id_status", "event_id", "status", "waitlist_position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    seeker_id: Mapped[int | None] = mapped_column(
        ForeignKey("seekers.id", ondelete="SET NULL"), index=True
    )
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    # Stored trimmed and lower-cased: the identity of a person for one event.
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(30))
    attendance: Mapped[str] = mapped_column(String(10), default="onsite")
    status: Mapped[str] = mapped_column(String(20))
    waitlist_position: Mapped[int | None] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    # What staff scan at the door (SPEC §12): set when the seat is confirmed, never the manage
    # token (a QR seen over a shoulder must not let anyone cancel the place). See
    # events_app.checkins.
    checkin_code: Mapped[str | None] = mapped_column(String(16), unique=True, index=True)
    # When and by whom the person was marked present (a scan, the API or the attendance list).
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_in_by: Mapped[str | None] = mapped_column(String(254))
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the person's links were last mailed again (a second registration with the same
    # address): at most once per LINKS_RESEND_INTERVAL (events_app.registrations).
    links_resent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    event: Mapped[Event] = relationship(lazy="raise")


class OutboxMessage(Base):
    """A mail to send. Written in the transaction that caused it, sent (and retried) later."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    # Which registration or event it concerns, for the back office and the tests.
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("registrations.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40), default="other")
    ics: Mapped[str | None] = mapped_column(Text)
    ics_method: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # pending -> sending (claimed by a sender until next_attempt_at) -> sent | failed; a
    # failure goes back to pending with a later next_attempt_at (see events_app.mail).
    status: Mapped[str] = mapped_column(
        String(10), default="pending", server_default=text("'pending'")
    )
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Extra mail headers (List-Unsubscribe and List-Unsubscribe-Post for alert mails).
    headers: Mapped[dict[str, str] | None] = mapped_column(JSON)


class Alert(Base):
    """A saved search mailed when new events match it (SPEC section 10)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored trimmed and lower-cased.
    email: Mapped[str] = mapped_column(String(254), index=True)
    seeker_id: Mapped[int | None] = mapped_column(
        ForeignKey("seekers.id", ondelete="CASCADE"), index=True
    )
    # The search filters, as the search's own query string pairs.
    filters: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    frequency: Mapped[str] = mapped_column(String(10), default="daily")
    # Secret of the confirmation, manage and unsubscribe links.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Events created at or after this instant are new to the alert.
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertSentEvent(Base):
    """An event already mailed to an alert: never the same event twice."""

    __tablename__ = "alert_sent_events"

    alert_id: Mapped[int] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[int] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class JobLock(Base):
    """A lease per scheduled job, so that with several scheduler processes each run happens once."""

    __tablename__ = "job_locks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime)
    owner: Mapped[str] = mapped_column(String(100))


class WebSession(Base):
    """A signed-in browser session, kept server-side so that ending it (sign-out, a new
    password, a deleted account) takes effect at once, whatever copies of the cookie exist.

    The cookie holds a random token; only its SHA-256 is stored, so the table cannot be
    replayed as cookies. `owner` ("seeker:12", "staff:3") finds every session of a person.
    """

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(40), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
