"""The only database code of the importers: validate parsed rows, then upsert them.

An import is keyed by (feed, external id). It creates what is new, updates what changed (the
revision rises only when a calendar would show the difference), leaves the rest untouched, and
cancels (never deletes) what vanished from the feed, telling the registrants. Registrations are
never touched by an import.
"""

from __future__ import annotations

import math
import pickle
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session, joinedload, selectinload

from events_app.db import insert_many, utcnow
from events_app.errors import InvalidInput
from events_app.events import CALENDAR_FIELDS, PRACTICAL_FIELDS, one_line_text, sanitise_html
from events_app.models import Event, EventSector, Feed, geo_cell, search_key, sector_mask
from events_app.notifications import Notifier
from events_app.places import resolve_place
from events_app.registrations import cancel_event, notify_event_changed, promote_waitlist
from importers.base import ImportedEvent, Notice, RowError, Unchanged, content_hash

# Metropolitan France, Corsica and the overseas departments, as (lat_min, lat_max, lon_min,
# lon_max): a venue outside all of them is a swapped or broken coordinate.
FRANCE_BOXES = (
    (41.0, 51.5, -5.8, 10.0),  # metropolitan France and Corsica
    (15.8, 16.6, -61.9, -60.9),  # Guadeloupe
    (14.3, 15.0, -61.3, -60.7),  # Martinique
    (2.0, 6.0, -54.7, -51.5),  # Guyane
    (-21.5, -20.8, 55.1, 55.9),  # La Réunion
    (-13.1, -12.5, 44.9, 45.4),  # Mayotte
    (46.7, 47.2, -56.5, -56.1),  # Saint-Pierre-et-Miquelon
    (17.8, 18.2, -63.2, -62.7),  # Saint-Martin, Saint-Barthélemy
)
# A feed that suddenly has no event while it had at least this many is not applied.
EMPTY_FEED_GUARD = 3
# The field of the RowError every parser gives a second row with an id already seen.
DUPLICATE_FIELD = "external_id"
# Events changed or cancelled are loaded and locked this many at a time; new ones are
# inserted this many at a time.
UPDATE_CHUNK = 500
INSERT_BATCH = 2000
KNOWN_ROWS_BATCH = 5000
# Prepared rows beyond this many bytes go to a temporary file (see RowSpool).
SPOOL_IN_MEMORY = 8 * 1024 * 1024
MAX_WARNINGS = 1000


def in_france(lat: float, lon: float) -> bool:
    return any(a <= lat <= b and c <= lon <= d for a, b, c, d in FRANCE_BOXES)


@dataclass
class PreparedEvent:
    line: int
    external_id: str
    source_hash: str
    values: dict[str, Any]
    sectors: tuple[str, ...]
    warnings: list[str] = field(default_factory=list)


@dataclass
class SyncReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    cancelled: int = 0
    rejected: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    # Why the run was not applied (an empty feed that had events), if it was not.
    refused: str | None = None
    people_told: int = 0


class Geocoder:
    """Fills missing venue coordinates from the offline gazetteer, once per place."""

    def __init__(self, db: Session) -> None:
        self.db = db
        self.cache: dict[str, tuple[float, float] | None] = {}

    def locate(self, city: str | None, postal_code: str | None) -> tuple[float, float] | None:
        query = " ".join(part for part in (city, postal_code) if part).strip()
        if not query:
            return None
        if query not in self.cache:
            try:
                place = resolve_place(self.db, query)
                self.cache[query] = (place.lat, place.lon)
            except InvalidInput:
                self.cache[query] = None
        return self.cache[query]


def prepare(
    item: ImportedEvent, geocoder: Geocoder, source_hash: str | None = None
) -> PreparedEvent | RowError:
    """Turn a parsed row into column values, or a RowError naming the field."""
    if item.ends_at <= item.starts_at:
        return RowError(
            item.line, "ends_at", "La fin doit être postérieure au début.", item.external_id
        )
    venue = item.venue
    lat, lon = venue.lat, venue.lon
    warnings = list(item.warnings)
    if (lat is not None and lon is not None) and (
        not (math.isfinite(lat) and math.isfinite(lon)) or not in_france(lat, lon)
    ):
        # A swapped or foreign point: the event stays, placed by its address if possible.
        warnings.append(f"ligne {item.line} : coordonnées hors de France ({lat}, {lon}) ignorées")
        lat = lon = None
    if (lat is None or lon is None) and (venue.city or venue.postal_code):
        found = geocoder.locate(venue.city, venue.postal_code)
        if found is None:
            warnings.append(
                f"ligne {item.line} : lieu « {venue.city or venue.postal_code} » non localisé"
            )
        else:
            lat, lon = found
    closes = item.registration_closes_at
    if closes is not None and closes > item.ends_at:
        closes = None
    opens = item.registration_opens_at
    if opens is not None and closes is not None and opens >= closes:
        opens = None
    values: dict[str, Any] = {
        "title": one_line_text(item.title)[:200] or "Sans titre",
        "description_html": sanitise_html(item.description_html or ""),
        "type": item.type,
        "format": item.format,
        "starts_at": item.starts_at,
        "ends_at": item.ends_at,
        "timezone": item.timezone,
        "all_day": item.all_day,
        "venue_name": _cut(_plain(venue.name), 200),
        "venue_address": _cut(_plain(venue.address), 300),
        "venue_postal_code": _cut(venue.postal_code, 10),
        "venue_city": _cut(_plain(venue.city), 200),
        "venue_lat": lat,
        "venue_lon": lon,
        "online_url": _cut(item.online_url, 2000),
        "capacity": item.capacity,
        "remote_capacity": item.remote_capacity if item.format == "hybrid" else None,
        "registration_opens_at": opens,
        "registration_closes_at": closes,
        "job_offers": item.job_offers,
        "status": item.status if item.status in ("scheduled", "cancelled") else "scheduled",
        "source_url": _cut(item.source_url, 2000),
    }
    return PreparedEvent(
        item.line,
        item.external_id,
        source_hash or content_hash(item),
        values,
        item.sectors,
        warnings,
    )


def _plain(value: str | None) -> str | None:
    return (one_line_text(value) or None) if value else None


def _cut(value: str | None, size: int) -> str | None:
    return None if value is None else value[:size]


class RowSpool:
    """Prepared rows kept in a temporary file between the validation and the write.

    A 100,000-event feed's prepared rows take more memory than its document: on disk they
    leave room for it, and the write reads them back one at a time. Small feeds stay in memory.
    """

    def __init__(self) -> None:
        # Closed by close(), which run_import calls once the write is over.
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        self.count = 0

    def add(self, row: PreparedEvent) -> None:
        pickle.dump(row, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.count += 1

    def __iter__(self) -> Iterator[PreparedEvent]:
        self._file.seek(0)
        for _ in range(self.count):
            # Our own file, written just above: not outside data.
            yield pickle.load(self._file)  # noqa: S301

    def close(self) -> None:
        self._file.close()


@dataclass
class Collected:
    """What the validation pass hands to the write."""

    # Every external id read from the feed (rejected rows whose id is known included), with
    # its line: an id absent from here has vanished from the feed.
    lines: dict[str, int]
    # The rows to create or update, prepared.
    spool: RowSpool
    # Ids whose row hashed as in `known` at validation time: nothing to write for them.
    unchanged: set[str]
    # What was stored of the feed's events when validation started (see known_rows).
    known: dict[str, Known]
    errors: list[RowError]
    warnings: list[str]
    # False when a row was rejected without its id being known, or the document was not read
    # to its end: then an absent id does not prove that an event vanished.
    complete: bool

    def close(self) -> None:
        self.spool.close()


class Known(NamedTuple):
    source_hash: str | None
    status: str
    # Whether leaving the feed would cancel it (not cancelled yet, not started).
    cancellable: bool


def known_rows(db: Session, feed_id: int) -> dict[str, Known]:
    """external id -> what collect() and apply() need to know of a feed's stored events."""
    cancellable = (Event.status != "cancelled") & (Event.starts_at > utcnow())
    return {
        external_id: Known(source_hash, status, bool(flag))
        for external_id, source_hash, status, flag in db.execute(
            select(Event.external_id, Event.source_hash, Event.status, cancellable)
            .where(Event.feed_id == feed_id)
            # Streamed (a server-side cursor on PostgreSQL): a 100,000-event feed's rows are
            # never all in the driver's buffer next to the dict built from them.
            .execution_options(yield_per=KNOWN_ROWS_BATCH)
        )
        if external_id is not None
    }


def raw_known(known: dict[str, Known]) -> dict[str, str | None]:
    """external id -> stored hash, for a parser that recognises unchanged rows by their raw
    text (importers.ftjson). Cancelled events are left out: the same row may revive them."""
    return {eid: k.source_hash for eid, k in known.items() if k.status != "cancelled"}


def collect(
    items: Iterable[ImportedEvent | RowError | Unchanged | Notice],
    geocoder: Geocoder,
    known: dict[str, Known] | None = None,
) -> Collected:
    """Validate every row first; duplicates of an external id are rejected after the first.

    A row whose content hash equals the one stored (`known`) was validated when it was
    imported: it is neither prepared again nor kept, which makes an unchanged re-import cheap.
    """
    known = known or {}
    collected = Collected({}, RowSpool(), set(), known, [], [], True)
    lines = collected.lines
    for item in items:
        if isinstance(item, Notice):  # about the whole document: shown first
            collected.warnings.insert(0, item.reason)
            continue
        if isinstance(item, Unchanged):
            # Its raw text hashes as stored (see raw_known): neither mapped nor validated again.
            if item.external_id in lines:
                collected.errors.append(
                    RowError(
                        item.line,
                        DUPLICATE_FIELD,
                        f"Identifiant « {item.external_id[:60]} » en double "
                        f"(déjà vu ligne {lines.get(item.external_id)}).",
                    )
                )
                continue
            lines[item.external_id] = item.line
            collected.unchanged.add(item.external_id)
            continue
        if isinstance(item, RowError):
            collected.errors.append(item)
            if item.line == 0 or (item.external_id is None and item.field != DUPLICATE_FIELD):
                # A truncated document, or a row that could be any event: an absent id no
                # longer proves that its event vanished.
                collected.complete = False
            elif item.external_id is not None:
                # A rejected row whose id is known keeps its own event as stored (neither
                # updated nor cancelled); the other vanished events are still cancelled.
                lines.setdefault(item.external_id, item.line)
            continue
        if item.external_id in lines:
            collected.errors.append(
                RowError(
                    item.line,
                    DUPLICATE_FIELD,
                    f"Identifiant « {item.external_id[:60]} » en double "
                    f"(déjà vu ligne {lines[item.external_id]}).",
                )
            )
            continue
        lines[item.external_id] = item.line
        _warn(collected.warnings, item.warnings)
        source_hash = item.raw_hash or content_hash(item)
        stored = known.get(item.external_id)
        revived = stored is not None and stored.status == "cancelled" and item.status == "scheduled"
        if stored is not None and stored.source_hash == source_hash and not revived:
            collected.unchanged.add(item.external_id)
            continue
        result = prepare(item, geocoder, source_hash)
        if isinstance(result, RowError):
            collected.errors.append(result)
            continue
        _warn(collected.warnings, result.warnings[len(item.warnings) :])
        result.warnings = []
        collected.spool.add(result)
    return collected


def _warn(warnings: list[str], new: Iterable[str]) -> None:
    # Enough to show; a feed with the same problem on every row would otherwise fill memory.
    for warning in new:
        if len(warnings) >= MAX_WARNINGS:
            return
        warnings.append(warning)


def _insert_rows(db: Session, feed: Feed, rows: list[PreparedEvent], now: datetime) -> int:
    if not rows:
        return 0
    records = []
    for row in rows:
        values = row.values
        lat, lon = values["venue_lat"], values["venue_lon"]
        records.append(
            {
                **values,
                "agency_id": feed.agency_id,
                "feed_id": feed.id,
                "external_id": row.external_id,
                "source_hash": row.source_hash,
                "revision": 1,
                "seats_taken": 0,
                "remote_seats_taken": 0,
                "waitlist": True,
                "registration_closed": False,
                "edited_by_hand": False,
                "geo_cell": None if lat is None or lon is None else geo_cell(lat, lon),
                "sector_mask": sector_mask(row.sectors),
                "search_key": search_key(
                    values["title"], values["venue_name"], values["venue_city"]
                ),
                "created_at": now,
                "updated_at": now,
            }
        )
    # Core inserts (mapper events do not run: the derived columns are set above); the new ids
    # come back by external id, unique in a feed.
    connection = db.connection()
    ids = insert_many(connection, cast(Table, Event.__table__), records, ids_by="external_id")
    sector_rows = [
        {"event_id": ids[row.external_id], "sector": sector}
        for row in rows
        for sector in row.sectors
    ]
    if sector_rows:
        connection.execute(insert(cast(Table, EventSector.__table__)), sector_rows)
    return len(rows)


def apply(
    db: Session,
    *,
    feed: Feed,
    collected: Collected,
    notifier: Notifier,
) -> SyncReport:
    """Write one feed's validated rows. The caller owns the (single) transaction, which must
    hold the write lock from its start on SQLite (seat counts are read, then written).

    Vanished events are cancelled only when `collected.complete`. Events that already started
    are never cancelled for leaving the feed: feeds list upcoming events, and drop the ones
    that took place.
    """
    report = SyncReport()
    now = utcnow()
    lines = collected.lines
    gone = any(
        known.cancellable and external_id not in lines
        for external_id, known in collected.known.items()
    )
    if lines and not collected.spool.count and not gone:
        # Every row as stored, none to cancel: nothing to write (an unchanged re-import).
        report.unchanged = len(collected.unchanged)
        return report
    existing = {
        external_id: (event_id, source_hash, status, edited, starts_at)
        for event_id, external_id, source_hash, status, edited, starts_at in db.execute(
            select(
                Event.id,
                Event.external_id,
                Event.source_hash,
                Event.status,
                Event.edited_by_hand,
                Event.starts_at,
            ).where(Event.feed_id == feed.id)
        )
        if external_id is not None
    }
    # The events that an absence from the feed would cancel.
    live_before = sum(
        1
        for _, _, status, _, starts_at in existing.values()
        if _cancellable(status, starts_at, now)
    )
    if collected.complete and not collected.lines and live_before >= EMPTY_FEED_GUARD:
        report.refused = (
            f"Le flux ne contient plus aucun événement alors qu'il en avait {live_before} : "
            "import non appliqué (export probablement cassé)."
        )
        return report

    for external_id in collected.unchanged:
        stored = existing.get(external_id)
        if stored is None or stored[1] != collected.known[external_id].source_hash:
            # Another import of this feed wrote in between: the next run will catch up.
            report.warnings.append(
                f"ligne {collected.lines[external_id]} : l'événement a changé pendant l'import, "
                "il sera mis à jour au prochain import."
            )
        report.unchanged += 1

    new_rows: list[PreparedEvent] = []
    changed: dict[int, PreparedEvent] = {}
    for row in collected.spool:
        stored = existing.get(row.external_id)
        if stored is None:
            new_rows.append(row)
            if len(new_rows) >= INSERT_BATCH:
                report.created += _insert_rows(db, feed, new_rows, now)
                new_rows = []
            continue
        event_id, source_hash, status, edited, _starts_at = stored
        # An event cancelled because it had left the feed comes back with the very same row.
        revived = status == "cancelled" and row.values["status"] == "scheduled" and not edited
        if source_hash == row.source_hash and not revived:
            report.unchanged += 1
        elif edited:
            report.unchanged += 1
            report.conflicts.append(
                f"ligne {row.line} : « {row.values['title'][:80]} » a été modifié à la main "
                "dans le back-office ; la version du flux n'a pas été appliquée."
            )
        else:
            changed[event_id] = row
            if len(changed) >= UPDATE_CHUNK:
                _update_rows(db, changed, notifier, now, report)
                changed = {}
    report.created += _insert_rows(db, feed, new_rows, now)
    _update_rows(db, changed, notifier, now, report)

    vanished = [
        event_id
        for external_id, (event_id, _, status, _, starts_at) in existing.items()
        if external_id not in collected.lines and _cancellable(status, starts_at, now)
    ]
    if not collected.complete and vanished:
        report.warnings.append(
            f"{len(vanished)} événement(s) absent(s) du flux n'ont pas été annulés : des lignes "
            "ont été rejetées sans que l'on sache de quel événement il s'agit, ou le flux est "
            "incomplet."
        )
    if collected.complete:
        for event in _locked(db, vanished):
            report.people_told += cancel_event(
                db, event, notifier=notifier, message="Événement retiré par l'organisme."
            )
            report.cancelled += 1
    db.flush()
    return report


def _update_rows(
    db: Session,
    rows: dict[int, PreparedEvent],
    notifier: Notifier,
    now: datetime,
    report: SyncReport,
) -> None:
    for event in _locked(db, list(rows)):
        report.updated += 1
        report.people_told += _update(db, event, rows[event.id], notifier, now, report.warnings)
    # Flushed, the events are clean: the session's weak identity map lets them go.
    db.flush()


def _cancellable(status: str, starts_at: datetime, now: datetime) -> bool:
    return status != "cancelled" and starts_at > now


def _locked(db: Session, ids: list[int]) -> Iterator[Event]:
    """The events, locked, loaded UPDATE_CHUNK at a time (a large feed never all at once)."""
    for start in range(0, len(ids), UPDATE_CHUNK):
        chunk = ids[start : start + UPDATE_CHUNK]
        yield from db.scalars(
            select(Event)
            .where(Event.id.in_(chunk))
            .options(joinedload(Event.agency), selectinload(Event.sector_rows))
            .with_for_update(of=Event)
        ).unique()


def _update(
    db: Session,
    event: Event,
    row: PreparedEvent,
    notifier: Notifier,
    now: datetime,
    warnings: list[str],
) -> int:
    """Apply a changed row (under the event's lock); returns how many registrants were told.

    Seats already taken are kept: a capacity below them is raised to them, with a warning (the
    check constraint would otherwise fail the whole import), and a larger one confirms the
    waiting list, as an edit in the back office does.
    """
    values = dict(row.values)
    new_status = values.pop("status")
    for column, taken in (
        ("capacity", event.seats_taken),
        ("remote_capacity", event.remote_seats_taken),
    ):
        wanted = values[column]
        if wanted is not None and wanted < taken:
            values[column] = taken
            warnings.append(
                f"ligne {row.line} : « {values['title'][:80]} » : capacité de {wanted} places "
                f"inférieure aux {taken} places déjà prises, gardée à {taken}."
            )
    changed = {name for name, value in values.items() if getattr(event, name) != value}
    for name in changed:
        setattr(event, name, values[name])
    if list(row.sectors) != event.sectors:
        event.sector_rows = [EventSector(sector=code) for code in sorted(row.sectors)]
        changed.add("sectors")
    event.source_hash = row.source_hash
    if "registration_closes_at" in changed and (
        event.registration_closes_at is None or event.registration_closes_at > now
    ):
        # Closed by the close_registrations job under the former deadline.
        event.registration_closed = False
    if new_status == "cancelled" and event.status != "cancelled":
        return cancel_event(
            db, event, notifier=notifier, message="Événement annulé par l'organisme."
        )
    revived = new_status == "scheduled" and event.status == "cancelled"
    if revived:
        event.status = "scheduled"
        event.cancellation_message = None
        changed.add("status")
    if changed & CALENDAR_FIELDS:
        event.revision += 1
    if changed:
        event.updated_at = now
    db.flush()
    if changed & {"capacity", "remote_capacity"}:
        promote_waitlist(db, event, notifier)
    if event.status == "scheduled" and (revived or changed & PRACTICAL_FIELDS):
        # A revived event's registrants were told it was cancelled: the update (with its
        # calendar invitation) puts it back in their calendars.
        return notify_event_changed(db, event, notifier=notifier)
    return 0
