"""What goes in a calendar feed: the feed window, the events of a search feed and of a
seeker's personal feed, and the cheap fingerprints (DataVersion, PersonalVersion) that tell
whether a cached feed is still current.

The queries live here and the ICS rendering in calendars.py, which this module's callers hand
the events to; calendars.py needs no query, so mails (notifications.py) can render an
invitation without importing the seekers' accounts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from events_app.accounts import has_preferences, preferences_query
from events_app.calendars import PersonalEntry, add_months
from events_app.db import PARIS, utcnow
from events_app.errors import InvalidInput
from events_app.models import Event, Registration, Seeker
from events_app.search import SearchQuery, paris_day_start, search_events

FEED_DAYS_BACK = 30
FEED_MONTHS_AHEAD = 6
FEED_PAGE_SIZE = 100
# A feed is a list a person subscribes to, not an export: beyond this many events it is cut.
FEED_MAX_EVENTS = 2_000
# Events matching the preferences in a personal feed, at most (registrations always come).
PERSONAL_MAX_MATCHES = 500


# --- the feed window and what goes in a feed ----------------------------------------------


def feed_window(now: datetime | None = None) -> tuple[date, date]:
    """The days a feed covers, in Paris: 30 days back (cancelled events stay visible for a
    while) to 6 months ahead. Usable as SearchQuery(date_from, date_to), both included."""
    today = (now or utcnow()).astimezone(PARIS).date()
    return today - timedelta(days=FEED_DAYS_BACK), add_months(today, FEED_MONTHS_AHEAD)


def window_query(query: SearchQuery, now: datetime | None = None) -> SearchQuery | None:
    """The search of a feed: the query's own dates narrowed to the feed window, first page of
    FEED_PAGE_SIZE. None when the query's dates fall entirely outside the window."""
    start, end = feed_window(now)
    date_from = max(query.date_from or start, start)
    date_to = min(query.date_to or end, end)
    if date_from > date_to:
        return None
    return replace(query, date_from=date_from, date_to=date_to, limit=FEED_PAGE_SIZE, cursor=None)


def list_feed_events(
    db: Session, query: SearchQuery, *, now: datetime | None = None, cap: int = FEED_MAX_EVENTS
) -> list[Event]:
    """The events of a feed: every match of the search (cancelled ones included) over the feed
    window, with agency and sectors loaded, at most `cap`.

    Raises InvalidInput as search_events does (unknown place or agency).
    """
    windowed = window_query(query, now)
    if windowed is None:
        return []
    events: list[Event] = []
    seen: set[int] = set()
    page = windowed
    while len(events) < cap:
        result = search_events(db, page)
        for hit in result.hits:
            if hit.event.id not in seen:
                seen.add(hit.event.id)
                events.append(hit.event)
        if result.next_cursor is None:
            break
        page = replace(windowed, cursor=result.next_cursor)
    return events[:cap]


@dataclass(frozen=True)
class DataVersion:
    """A cheap fingerprint of every event's calendar data: it changes when an event is
    created, edited (its revision or updated_at rises) or deleted."""

    count: int
    max_id: int | None
    last_change: datetime | None
    revisions: int


def events_version(db: Session) -> DataVersion:
    count, max_id, last, revisions = db.execute(
        select(
            func.count(Event.id),
            func.max(Event.id),
            func.max(Event.updated_at),
            func.coalesce(func.sum(Event.revision), 0),
        )
    ).one()
    if isinstance(last, str):  # SQLite may hand the aggregate back untyped
        last = datetime.fromisoformat(last)
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return DataVersion(int(count), max_id, last, int(revisions))


# --- the personal feed of a seeker ------------------------------------------------------------


def _registration_rank(registration: Registration) -> tuple[bool, int]:
    # A live registration outranks the cancelled ones kept as history; then the latest.
    return registration.status != "cancelled", registration.id


def _registrations_in_window(
    db: Session, seeker: Seeker, start: date, end: date
) -> dict[int, Registration]:
    """The seeker's registration of each event of the window (its events loaded with agency
    and sectors): the live one if any, else the latest cancelled one."""
    rows = db.scalars(
        select(Registration)
        .join(Event, Event.id == Registration.event_id)
        .where(
            Registration.seeker_id == seeker.id,
            Event.starts_at >= paris_day_start(start),
            Event.starts_at < paris_day_start(end + timedelta(days=1)),
        )
        .options(
            joinedload(Registration.event).joinedload(Event.agency),
            joinedload(Registration.event).selectinload(Event.sector_rows),
        )
    ).unique()
    chosen: dict[int, Registration] = {}
    for registration in rows:
        current = chosen.get(registration.event_id)
        if current is None or _registration_rank(registration) > _registration_rank(current):
            chosen[registration.event_id] = registration
    return chosen


def _matching_events(db: Session, seeker: Seeker, now: datetime | None) -> list[Event]:
    """The feed's events matching the saved preferences; none when nothing is saved (a
    personal calendar holding every event in France helps nobody). A home place that no
    longer resolves is dropped, as on the account page."""
    if not has_preferences(seeker):
        return []
    query = preferences_query(seeker)
    try:
        return list_feed_events(db, query, now=now, cap=PERSONAL_MAX_MATCHES)
    except InvalidInput as exc:
        if exc.field != "near":
            raise
    query = replace(query, near=None)
    if not (query.sectors or query.types or query.formats):
        return []
    return list_feed_events(db, query, now=now, cap=PERSONAL_MAX_MATCHES)


def personal_feed_events(
    db: Session, seeker: Seeker, *, now: datetime | None = None
) -> list[PersonalEntry]:
    """The events of a seeker's personal feed over the feed window, by start: their
    registrations (every status, with the registration) and the events matching their saved
    preferences (cancelled ones included, without a registration). An event appears once: a
    registered one with its registration. Events come with agency and sectors loaded."""
    start, end = feed_window(now)
    registrations = _registrations_in_window(db, seeker, start, end)
    entries: dict[int, PersonalEntry] = {
        event_id: (registration.event, registration)
        for event_id, registration in registrations.items()
    }
    for event in _matching_events(db, seeker, now):
        entries.setdefault(event.id, (event, None))
    return sorted(entries.values(), key=lambda entry: (entry[0].starts_at, entry[0].id))


@dataclass(frozen=True)
class PersonalVersion:
    """A cheap fingerprint of everything a personal feed shows: the window, every event's
    calendar data, the saved preferences and the person's registrations."""

    window: tuple[date, date]
    events: DataVersion
    preferences: tuple[object, ...]
    registrations: tuple[tuple[object, ...], ...]


def personal_version(
    db: Session, seeker: Seeker, *, now: datetime | None = None
) -> PersonalVersion:
    registrations = db.execute(
        select(Registration.id, Registration.event_id, Registration.status, Registration.updated_at)
        .where(Registration.seeker_id == seeker.id)
        .order_by(Registration.id)
    ).all()
    return PersonalVersion(
        window=feed_window(now),
        events=events_version(db),
        preferences=(
            seeker.home_place,
            seeker.radius_km,
            tuple(seeker.sectors or ()),
            tuple(seeker.types or ()),
            tuple(seeker.formats or ()),
        ),
        registrations=tuple(tuple(row) for row in registrations),
    )
