"""Event search: every filter of the spec, AND-combined, with keyset (cursor) pagination.

With a place, on-site and hybrid events within the radius come first, nearest first; online
events, which match any place, follow by date. The place filter reads a handful of geo cells
through the (geo_cell, starts_at) index, trims them to the bounding box in SQL, and only then
computes exact distances in Python for what is left.

A page needs only the nearest events, so the search first looks within a sixteenth of the
radius, then a quarter, then the whole radius, and stops at the first circle holding more
matches than the page: every event outside that circle is farther than all of them. In a dense
city with a million events the first small circle is enough, so the time of a search follows
the number of events near the place, not the size of the table.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from events_app.db import PARIS, utcnow
from events_app.errors import InvalidInput
from events_app.models import (
    GEO_CELL_DEG,
    Agency,
    Event,
    EventSector,
    fold_text,
    geo_cell,
)
from events_app.places import ResolvedPlace, distance_km, resolve_place

# Above this many cells (a radius of about 100 km) the IN list stops paying; a plain bounding
# box takes over, read through the date index (only very large radii get there).
MAX_CELLS = 1600
KM_PER_DEG_LAT = 111.2
# The circles a place search tries, as fractions of the radius asked for (see the docstring).
SEARCH_STEPS = (1 / 16, 1 / 4, 1.0)


@dataclass(frozen=True)
class SearchQuery:
    q: str | None = None
    near: str | None = None
    radius_km: float = 30.0
    sectors: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    available: bool = False
    agency: str | None = None
    limit: int = 20
    cursor: str | None = None


@dataclass
class SearchHit:
    event: Event
    distance_km: float | None = None


@dataclass
class SearchResult:
    hits: list[SearchHit]
    next_cursor: str | None
    place: ResolvedPlace | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def encode_cursor(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor", "Curseur de pagination invalide.") from exc
    if not isinstance(data, dict):
        raise InvalidInput("cursor", "Curseur de pagination invalide.")
    return data


# Cursors come back from clients: their numbers must fit a database column (a larger int is a
# driver error, not a 400, if it gets that far).
CURSOR_INT_RANGE = range(0, 2**63)


def _cursor_field(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value) if abs(value) < 2**1000 else math.inf
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidInput("cursor", "Curseur de pagination invalide.")
    if (isinstance(value, int) and value not in CURSOR_INT_RANGE) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        raise InvalidInput("cursor", "Curseur de pagination invalide.")
    return value


def _date_cursor(data: dict[str, Any]) -> tuple[datetime, int]:
    try:
        starts = datetime.fromisoformat(_cursor_field(data, "s", str))
    except ValueError as exc:
        raise InvalidInput("cursor", "Curseur de pagination invalide.") from exc
    if starts.tzinfo is None:
        raise InvalidInput("cursor", "Curseur de pagination invalide.")
    try:
        # Stored in UTC: "0001-01-01T00:00+14:00" has no UTC time a datetime can hold.
        starts.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInput("cursor", "Curseur de pagination invalide.") from exc
    return starts, _cursor_field(data, "i", int)


def paris_day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=PARIS)


def _filters(db: Session, query: SearchQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.date_from is None:
        # By default: what has not ended yet.
        conditions.append(Event.ends_at >= utcnow())
    else:
        conditions.append(Event.starts_at >= paris_day_start(query.date_from))
    if query.date_to is not None:
        conditions.append(Event.starts_at < paris_day_start(query.date_to + timedelta(days=1)))
    if query.q:
        for word in fold_text(query.q).split():
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(Event.search_key.like(f"%{escaped}%", escape="\\"))
    if query.sectors:
        wanted = [*query.sectors, "all"]
        conditions.append(
            exists().where(EventSector.event_id == Event.id, EventSector.sector.in_(wanted))
        )
    if query.types:
        conditions.append(Event.type.in_(query.types))
    if query.formats:
        conditions.append(Event.format.in_(query.formats))
    if query.available:
        conditions.append(Event.status == "scheduled")
        conditions.append(
            or_(
                Event.capacity.is_(None),
                Event.seats_taken < Event.capacity,
                and_(
                    Event.remote_capacity.is_not(None),
                    Event.remote_seats_taken < Event.remote_capacity,
                ),
            )
        )
    if query.agency:
        agency_id = db.scalar(select(Agency.id).where(Agency.slug == query.agency))
        if agency_id is None:
            raise InvalidInput("agency", f"Organisme inconnu : « {query.agency} ».")
        conditions.append(Event.agency_id == agency_id)
    return conditions


def _load(db: Session, ids: Sequence[int]) -> dict[int, Event]:
    if not ids:
        return {}
    rows = db.scalars(
        select(Event)
        .where(Event.id.in_(ids))
        .options(joinedload(Event.agency), selectinload(Event.sector_rows))
    ).unique()
    return {event.id: event for event in rows}


def search_events(db: Session, query: SearchQuery) -> SearchResult:
    """Run a search. Raises InvalidInput for an unknown place, agency or a broken cursor."""
    cursor = decode_cursor(query.cursor) if query.cursor else None
    conditions = _filters(db, query)
    if query.near is None:
        return _search_by_date(db, conditions, query.limit, cursor)
    place = resolve_place(db, query.near)
    result = _search_near(db, conditions, place, query.radius_km, query.limit, cursor)
    result.place = place
    return result


def _date_page(
    db: Session,
    statement: Select[int],
    limit: int,
    after: tuple[datetime, int] | None,
) -> tuple[list[int], bool]:
    if after is not None:
        starts, last_id = after
        statement = statement.where(
            or_(Event.starts_at > starts, and_(Event.starts_at == starts, Event.id > last_id))
        )
    ids = list(db.scalars(statement.order_by(Event.starts_at, Event.id).limit(limit + 1)))
    return ids[:limit], len(ids) > limit


def _search_by_date(
    db: Session, conditions: list[ColumnElement[bool]], limit: int, cursor: dict[str, Any] | None
) -> SearchResult:
    after = _date_cursor(cursor) if cursor is not None else None
    return _search_by_date_from(db, select(Event.id).where(*conditions), limit, after)


def _geo_condition(lat: float, lon: float, radius_km: float) -> ColumnElement[bool]:
    dlat = radius_km / KM_PER_DEG_LAT
    # Near the poles the longitude span explodes; France never gets there, but stay total.
    cos_lat = max(math.cos(math.radians(lat)), 0.01)
    dlon = min(radius_km / (KM_PER_DEG_LAT * cos_lat), 180.0)
    box = and_(
        Event.venue_lat.between(lat - dlat, lat + dlat),
        Event.venue_lon.between(lon - dlon, lon + dlon),
    )
    rows = range(
        math.floor((lat - dlat + 90) / GEO_CELL_DEG),
        math.floor((lat + dlat + 90) / GEO_CELL_DEG) + 1,
    )
    cols = range(
        math.floor((lon - dlon + 180) / GEO_CELL_DEG),
        math.floor((lon + dlon + 180) / GEO_CELL_DEG) + 1,
    )
    if len(rows) * len(cols) > MAX_CELLS:
        return box
    base = geo_cell(-90.0, -180.0)
    cells = [base + r * 10_000 + c for r in rows for c in cols]
    return and_(Event.geo_cell.in_(cells), box)


def _nearest(
    db: Session,
    conditions: list[ColumnElement[bool]],
    place: ResolvedPlace,
    radius_km: float,
    limit: int,
    after: tuple[float, int] | None,
) -> list[tuple[float, int]]:
    """(distance, id) of on-site and hybrid matches within radius_km, nearest first and after
    the cursor: at least limit + 1 of them when there are that many, else all of them."""
    # Circles inside the cursor's distance hold nothing new: start beyond it.
    start = after[0] if after is not None else 0.0
    circles = [radius_km * step for step in SEARCH_STEPS if radius_km * step > start]
    ranked: list[tuple[float, int]] = []
    for circle in circles:
        rows = db.execute(
            select(Event.id, Event.venue_lat, Event.venue_lon).where(
                *conditions,
                Event.format != "online",
                _geo_condition(place.lat, place.lon, circle),
            )
        ).all()
        ranked = sorted(
            (d, event_id)
            for event_id, lat, lon in rows
            # The geo condition only matches rows with coordinates.
            if (d := distance_km(place.lat, place.lon, lat or 0.0, lon or 0.0)) <= circle
            and (after is None or (d, event_id) > after)
        )
        # More than a page inside this circle: nothing outside it can come first.
        if len(ranked) > limit:
            break
    return ranked


def _search_near(
    db: Session,
    conditions: list[ColumnElement[bool]],
    place: ResolvedPlace,
    radius_km: float,
    limit: int,
    cursor: dict[str, Any] | None,
) -> SearchResult:
    phase = cursor.get("p", "d") if cursor is not None else "d"
    if phase not in ("d", "o"):
        raise InvalidInput("cursor", "Curseur de pagination invalide.")
    hits: list[tuple[int, float | None]] = []
    next_cursor: str | None = None
    online_after: tuple[datetime, int] | None = None

    if phase == "d":
        after = None
        if cursor is not None:
            after = (_cursor_field(cursor, "d", float), _cursor_field(cursor, "i", int))
        ranked = _nearest(db, conditions, place, radius_km, limit, after)
        hits = [(event_id, d) for d, event_id in ranked[:limit]]
        if len(ranked) > limit:
            d, event_id = ranked[limit - 1]
            next_cursor = encode_cursor({"p": "d", "d": d, "i": event_id})
    elif cursor is not None and "s" in cursor:
        online_after = _date_cursor(cursor)

    online_ids: list[int] = []
    more_online = False
    online = select(Event.id).where(*conditions, Event.format == "online")
    if next_cursor is None:
        remaining = limit - len(hits)
        if remaining > 0:
            online_ids, more_online = _date_page(db, online, remaining, online_after)
            hits.extend((event_id, None) for event_id in online_ids)
        elif db.scalar(online.limit(1)) is not None:
            # The distance phase filled the page exactly; online events follow from the start.
            next_cursor = encode_cursor({"p": "o"})
    events = _load(db, [event_id for event_id, _ in hits])
    if more_online and online_ids:
        last = events[online_ids[-1]]
        next_cursor = encode_cursor({"p": "o", "s": last.starts_at.isoformat(), "i": last.id})
    return SearchResult([SearchHit(events[i], d) for i, d in hits], next_cursor)


def list_agency_events(
    db: Session, *, agency_id: int, limit: int, cursor: str | None
) -> SearchResult:
    """Every event of one agency (past and cancelled included), by date, paged like search."""
    after = _date_cursor(decode_cursor(cursor)) if cursor else None
    return _search_by_date_from(
        db, select(Event.id).where(Event.agency_id == agency_id), limit, after
    )


def _search_by_date_from(
    db: Session, statement: Select[int], limit: int, after: tuple[datetime, int] | None
) -> SearchResult:
    ids, more = _date_page(db, statement, limit, after)
    events = _load(db, ids)
    hits = [SearchHit(events[i]) for i in ids]
    next_cursor = None
    if more and hits:
        last = hits[-1].event
        next_cursor = encode_cursor({"s": last.starts_at.isoformat(), "i": last.id})
    return SearchResult(hits, next_cursor)
