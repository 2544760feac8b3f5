"""Event search: every filter of the spec, AND-combined, with keyset (cursor) pagination.

With a place, on-site and hybrid events within the radius come first, nearest first; online
events, which match any place, follow by date. The place filter reads a handful of geo cells
through the (geo_cell, starts_at) index, trims them to the bounding box in SQL, and only then
computes exact distances for what is left: in Python on SQLite, whose statements cost no round
trip; on PostgreSQL in the statement itself, which ranks them and returns the page with what
it shows (and the first online events when the whole radius is read): one round trip.

A page needs only the nearest events, so the search first looks within a sixteenth of the
radius, then doubles it up to the whole radius, and stops at the first circle holding more
matches than the page: every event outside that circle is farther than all of them. In a dense
city with a million events the first small circle is enough, so the time of a search follows
the number of events near the place, not the size of the table. A first page starts at the
circle that held the last one around the same place (_FIRST_CIRCLE).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Dialect, select
from sqlalchemy.orm import Session, joinedload, selectinload

from events_app import search_statements as statements
from events_app.db import PARIS, utcnow
from events_app.duplicates import Copy, copies_of
from events_app.errors import InvalidInput
from events_app.fulltext import text_filter, text_terms
from events_app.models import Agency, Event, sector_mask
from events_app.places import ResolvedPlace, distance_km, resolve_place
from events_app.search_statements import Shape
from events_app.summaries import EventSummary, load_summaries, summary_of

# The circles a place search tries, as fractions of the radius asked for (see the docstring):
# doubling, so that the circle a search starts at holds at most about four pages.
SEARCH_STEPS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)
# One rule for every radius a person gives: a search, an account's preferences, an alert.
DEFAULT_RADIUS_KM = 30
MIN_RADIUS_KM = 1
MAX_RADIUS_KM = 200
RADIUS_RULE = f"Le rayon doit être compris entre {MIN_RADIUS_KM} et {MAX_RADIUS_KM}\u00a0km."
SORTS = ("distance", "date")
# A sort by date around a place reads the dates in batches of this many candidates.
DATE_BATCH = 200
# The results page counts matches exactly up to this many, and says « plus de » beyond: the
# count reads at most COUNT_CAP + 1 rows whatever the size of the table.
COUNT_CAP = 1000
# Cursors carry this key when they point backwards: the page *before* an event (the link to
# the previous page), read in reverse order from there.
BEFORE = "b"


def check_radius(radius_km: float) -> float:
    """The radius, or InvalidInput("radius_km") when outside MIN_RADIUS_KM..MAX_RADIUS_KM."""
    if not math.isfinite(radius_km) or not MIN_RADIUS_KM <= radius_km <= MAX_RADIUS_KM:
        raise InvalidInput("radius_km", RADIUS_RULE)
    return radius_km


@dataclass(frozen=True)
class SearchQuery:
    q: str | None = None
    near: str | None = None
    radius_km: float = DEFAULT_RADIUS_KM
    sectors: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    available: bool = False
    agency: str | None = None
    limit: int = 20
    cursor: str | None = None
    # With a place: "distance" (nearest first, then online events by date) or "date" (every
    # match by date, online events among them). Without a place, always by date.
    sort: str = "distance"
    # Restrict the search to these events (alerts: the events created since their last mail).
    only_ids: tuple[int, ...] | None = None


@dataclass
class SearchHit:
    event: Event
    distance_km: float | None = None
    # The same event published by other agencies (events_app.duplicates).
    duplicates: list[Copy] = field(default_factory=list)


@dataclass
class SearchResult:
    hits: list[SearchHit]
    next_cursor: str | None
    place: ResolvedPlace | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The cursor of the previous page (None on the first one), and, when asked for, the number
    # of matches up to COUNT_CAP + 1 (COUNT_CAP + 1 meaning "more than COUNT_CAP").
    prev_cursor: str | None = None
    count: int | None = None


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


@dataclass(frozen=True)
class Filters:
    """A search's conditions: their shape (which filters, in which form: the key under which
    their statements are built once, events_app.search_statements) and their values."""

    shape: Shape
    params: dict[str, Any]

    def with_(self, **params: Any) -> dict[str, Any]:
        return {**self.params, **params}


def _filters(db: Session, query: SearchQuery) -> Filters:
    shape: list[Hashable] = []
    params: dict[str, Any] = {}
    if query.only_ids is not None:
        shape.append("only_ids")
        params["only_ids"] = list(query.only_ids)
    if query.date_from is None:
        # By default: what has not ended yet.
        shape.append("not_ended")
        params["now"] = utcnow()
    else:
        shape.append("from")
        params["date_from"] = paris_day_start(query.date_from)
    if query.date_to is not None:
        shape.append("to")
        params["date_to"] = paris_day_start(query.date_to + timedelta(days=1))
    if query.q:
        text_part, text_params = text_filter(db, text_terms(query.q))
        shape.append(text_part)
        params.update(text_params)
    if query.sectors:
        shape.append("sectors")
        params["sector_bits"] = sector_mask([*query.sectors, "all"])
    for name, values in (("types", query.types), ("formats", query.formats)):
        if values:
            shape.append(name)
            params[name] = list(values)
    if query.available:
        shape.append("available")
    if query.agency:
        agency_id = db.scalar(select(Agency.id).where(Agency.slug == query.agency))
        if agency_id is None:
            raise InvalidInput("agency", f"Organisme inconnu : « {query.agency} ».")
        shape.append("agency")
        params["agency_id"] = agency_id
    else:
        shape.append("one_per_group")
    return Filters(tuple(shape), params)


def _load(db: Session, ids: Sequence[int]) -> dict[int, Event]:
    if not ids:
        return {}
    rows = db.scalars(
        select(Event)
        .where(Event.id.in_(ids))
        .options(joinedload(Event.agency), selectinload(Event.sector_rows))
    ).unique()
    return {event.id: event for event in rows}


@dataclass
class Ranking:
    """A page of a search before its events are loaded: (event id, distance) in order."""

    hits: list[tuple[int, float | None]]
    next_cursor: str | None
    place: ResolvedPlace | None = None
    prev_cursor: str | None = None
    count: int | None = None
    # Summaries of events of the page already read by the ranking (a place search on
    # PostgreSQL reads them with the distances): search_event_summaries reads only the others.
    summaries: dict[int, EventSummary] = field(default_factory=dict)


@dataclass
class SummaryResult:
    hits: list[tuple[EventSummary, float | None]]
    next_cursor: str | None
    place: ResolvedPlace | None = None


def rank_events(db: Session, query: SearchQuery, *, count: bool = False) -> Ranking:
    """The ids of a search's page, in order, and the cursors of the next and previous ones;
    with count, the number of matches (see count_matches). Raises InvalidInput for an unknown
    place, agency or a broken cursor."""
    cursor = decode_cursor(query.cursor) if query.cursor else None
    backward = cursor is not None and cursor.get(BEFORE) == 1
    conditions = _filters(db, query)
    place: ResolvedPlace | None = None
    summaries: dict[int, EventSummary] = {}
    if query.near is None:
        position = _date_cursor(cursor) if cursor is not None else None
        ranking = _rank_by_date(
            db, conditions, query.limit, position, backward=backward, summaries=summaries
        )
    else:
        place = resolve_place(db, query.near)
        if query.sort == "date":
            position = _date_cursor(cursor) if cursor is not None else None
            ranking = _rank_near_by_date(
                db, conditions, place, query.radius_km, query.limit, position, backward=backward
            )
        elif backward and cursor is not None:
            ranking = _search_near_before(
                db, conditions, place, query.radius_km, query.limit, cursor, summaries
            )
        else:
            ranking = _search_near(
                db,
                conditions,
                place,
                query.radius_km,
                query.limit,
                cursor,
                summaries,
                few=query.only_ids is not None,
            )
        ranking.place = place
    ranking.summaries = summaries
    if count:
        ranking.count = _count_matches(db, conditions, place, query.radius_km)
    return ranking


def search_events(db: Session, query: SearchQuery, *, count: bool = False) -> SearchResult:
    """Run a search and load its events (ORM rows, with agency and sectors); with count, the
    number of matches too, up to COUNT_CAP + 1."""
    ranking = rank_events(db, query, count=count)
    return SearchResult(
        hits_of(db, ranking.hits),
        ranking.next_cursor,
        ranking.place,
        prev_cursor=ranking.prev_cursor,
        count=ranking.count,
    )


def hits_of(
    db: Session,
    ranked: Sequence[tuple[int, float | None]],
    loaded: dict[int, SearchHit] | None = None,
) -> list[SearchHit]:
    """The hits of ranked (id, distance) pairs, their events loaded. `loaded` keeps the events
    already read (it is filled): a job that ranks many searches among the same events, such
    as the alerts, reads each event once."""
    known = {} if loaded is None else loaded
    missing = [event_id for event_id, _ in ranked if event_id not in known]
    events = _load(db, missing)
    copies = copies_of(db, list(events.values()))
    known.update(
        (event_id, SearchHit(event, None, copies[event_id])) for event_id, event in events.items()
    )
    # An event deleted between the ranking and the loading (PostgreSQL reads each statement in
    # its own snapshot) is left out rather than failing the page.
    return [
        SearchHit(known[event_id].event, d, known[event_id].duplicates)
        for event_id, d in ranked
        if event_id in known
    ]


def search_event_summaries(db: Session, query: SearchQuery) -> SummaryResult:
    """The same search as search_events, its events read as EventSummary: the API's page."""
    ranking = rank_events(db, query)
    events = ranking.summaries
    missing = [event_id for event_id, _ in ranking.hits if event_id not in events]
    if missing:
        events = {**events, **load_summaries(db, missing)}
    # As in hits_of, an event deleted since the ranking is left out.
    hits = [(events[event_id], d) for event_id, d in ranking.hits if event_id in events]
    return SummaryResult(hits, ranking.next_cursor, ranking.place)


def _count_matches(
    db: Session, conditions: Filters, place: ResolvedPlace | None, radius_km: float
) -> int:
    """How many events match, counted up to COUNT_CAP + 1 and no further: a subquery with a
    LIMIT, and around a place the candidates of the radius's box streamed until that many are
    inside the circle (the exact distance is computed in Python, as for the page)."""
    cap = COUNT_CAP + 1
    connection = db.connection()
    counted = conditions.with_(cap=cap)
    if place is None:
        return connection.scalar(statements.count_upto(conditions.shape, False), counted) or 0
    found = connection.scalar(statements.count_upto(conditions.shape, True), counted) or 0
    if found >= cap:
        return cap
    read, geo = statements.geo_params(
        place.lat, place.lon, radius_km, dialect=connection.dialect.name
    )
    # Streamed (a server-side cursor on PostgreSQL): a dense area stops after about cap rows.
    result = connection.execute(
        statements.candidates(conditions.shape, read),
        conditions.with_(**geo),
        execution_options={"stream_results": True, "yield_per": 500},
    )
    try:
        for _, lat, lon, _ in result:
            if distance_km(place.lat, place.lon, lat or 0.0, lon or 0.0) <= radius_km:
                found += 1
                if found >= cap:
                    break
    finally:
        result.close()
    return found


def _date_page(
    db: Session,
    conditions: Filters,
    limit: int,
    after: tuple[datetime, int] | None,
    *,
    online: bool = False,
    backward: bool = False,
    summaries: dict[int, EventSummary] | None = None,
) -> tuple[list[tuple[int, datetime]], bool]:
    """(id, start) of up to `limit` matches after the cursor, by date (only online ones with
    `online`); and whether more follow. Backward: the `limit` matches before it, nearest first
    (the caller reverses them). On PostgreSQL, with `summaries`, the summaries of the events
    read come in the same round trip (into `summaries`)."""
    connection = db.connection()
    read_summaries = summaries is not None and connection.dialect.name == "postgresql"
    statement = statements.date_page(
        conditions.shape, online, after is not None, backward, read_summaries
    )
    params = conditions.with_(page_limit=limit + 1)
    if after is not None:
        params.update(statements.position_params(after))
    rows = connection.execute(statement, params).all()
    if read_summaries and summaries is not None:
        page = []
        for row in rows:
            summary = summary_of(row, 1)
            summaries[summary.id] = summary
            page.append((summary.id, row[0]))
    else:
        page = [(event_id, starts) for event_id, starts in rows]
    return page[:limit], len(page) > limit


def _date_cursor_of(last: tuple[int, datetime]) -> dict[str, Any]:
    event_id, starts = last
    return {"s": starts.isoformat(), "i": event_id}


def _before(first: tuple[int, datetime], **more: Any) -> str:
    """The cursor of the page before an event."""
    return encode_cursor({BEFORE: 1, **more, **_date_cursor_of(first)})


def _rank_by_date(
    db: Session,
    conditions: Filters,
    limit: int,
    after: tuple[datetime, int] | None,
    *,
    backward: bool = False,
    summaries: dict[int, EventSummary] | None = None,
) -> Ranking:
    page, more = _date_page(db, conditions, limit, after, backward=backward, summaries=summaries)
    if backward:
        page.reverse()
        next_cursor = encode_cursor(_date_cursor_of(page[-1])) if page else None
        prev_cursor = _before(page[0]) if more and page else None
    else:
        next_cursor = encode_cursor(_date_cursor_of(page[-1])) if more and page else None
        prev_cursor = _before(page[0]) if after is not None and page else None
    return Ranking([(event_id, None) for event_id, _ in page], next_cursor, None, prev_cursor)


Ranked = tuple[float, datetime, int]

# The circle (index in SEARCH_STEPS) that held a page at the last first page of a search, by
# place, radius and shape of search, in each worker. The density of events around a place
# changes slowly, so the next such search starts there instead of reading the smaller circles
# again, each of which held too few (two of the three queries of a search in a middle-sized
# town). Any start gives the same page: only the rows read change.
_FIRST_CIRCLE: dict[Hashable, int] = {}
FIRST_CIRCLES_KEPT = 4096


@lru_cache(maxsize=8)
def _moments(dialect: Dialect) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """A start to and from the value the database driver gives (a string on SQLite). A place
    search reads its candidates' starts unconverted, since most are dropped by distance, and
    converts only the ones it returns."""
    kind = Event.starts_at.type.dialect_impl(dialect)
    to_driver = kind.bind_processor(dialect) or (lambda value: value)
    from_driver = kind.result_processor(dialect, None) or (lambda value: value)
    return to_driver, from_driver


def _ranked(
    connection: Connection,
    conditions: Filters,
    place: ResolvedPlace,
    circle: float,
    *,
    within: float,
    count: int,
    bound: Ranked | None = None,
    backward: bool = False,
    by_cells: bool = True,
    summaries: dict[int, EventSummary] | None = None,
    online: bool = False,
) -> tuple[list[Ranked], list[tuple[int, datetime]] | None]:
    """(distance, start, id) of the on-site and hybrid matches read in the box of `circle` km
    around the place and within `within` km of it, in the order of distances (then starts,
    then ids): the first `count` after the bound, or backward the last `count` before it,
    nearest first either way. On PostgreSQL the database ranks them and gives the summaries
    of those it returns too (into `summaries`): one round trip for a page. On SQLite, whose
    statements cost no round trip, the candidates' coordinates are read and ranked here.

    With `online`, PostgreSQL also reads the (id, start) of the first online matches by date,
    as many as the nearby ones leave of `count` (the second item; None when not read)."""
    read, geo = statements.geo_params(
        place.lat, place.lon, circle, dialect=connection.dialect.name, by_cells=by_cells
    )
    if connection.dialect.name == "postgresql":
        params = conditions.with_(
            **geo, **statements.distance_params(place.lat, place.lon), within=within
        )
        params["page_limit"] = count
        if bound is not None:
            params.update(pos_distance=bound[0], pos_starts=bound[1], pos_id=bound[2])
        statement = statements.nearest(conditions.shape, read, bound is not None, backward, online)
        ranked: list[Ranked] = []
        first_online: list[tuple[int, datetime]] = []
        for row in connection.execute(statement, params).all():
            summary = summary_of(row, 2)
            if summaries is not None:
                summaries[summary.id] = summary
            if row[0] is None:
                first_online.append((summary.id, row[1]))
            else:
                ranked.append((row[0], row[1], summary.id))
        return (ranked[::-1] if backward else ranked), (first_online if online else None)
    to_driver, from_driver = _moments(connection.dialect)
    # All at once (one fetchall): iterating a result fetches row by row.
    rows = connection.execute(
        statements.candidates(conditions.shape, read), conditions.with_(**geo)
    ).all()
    found = sorted(
        (d, starts, event_id)
        for event_id, lat, lon, starts in rows
        # The geo condition only matches rows with coordinates.
        if (d := distance_km(place.lat, place.lon, lat or 0.0, lon or 0.0)) <= within
    )
    if bound is not None:
        edge = (bound[0], to_driver(bound[1]), bound[2])
        found = [item for item in found if (item < edge if backward else item > edge)]
    taken = found[-count:] if backward else found[:count]
    return [(d, from_driver(starts), event_id) for d, starts, event_id in taken], None


def _nearest(
    db: Session,
    conditions: Filters,
    place: ResolvedPlace,
    radius_km: float,
    limit: int,
    after: Ranked | None,
    *,
    few: bool = False,
    summaries: dict[int, EventSummary] | None = None,
) -> tuple[list[Ranked], list[tuple[int, datetime]] | None]:
    """(distance, start, id) of the first limit + 1 on-site and hybrid matches within
    radius_km after the cursor, nearest first (all of them when fewer). `few`: the conditions
    already name a handful of ids, so one box around the whole radius reads them at once.
    Second: on PostgreSQL, when the whole radius was read, the (id, start) of the first
    online matches by date, up to limit + 1 with the nearby ones (None when not read); they
    follow the nearby ones when those leave room on the page."""
    steps = (1.0,) if few else SEARCH_STEPS
    # A first page starts at the circle that held the last first page of this search around
    # this place; a next page beyond the circles inside the cursor's distance.
    remembered = (place.lat, place.lon, radius_km, conditions.shape)
    first = 0 if few or after is not None else _FIRST_CIRCLE.get(remembered, 0)
    start = after[0] if after is not None else 0.0
    ranked: list[Ranked] = []
    first_online: list[tuple[int, datetime]] | None = None
    # Core on the session's connection: these rows are plain tuples, not ORM entities.
    connection = db.connection()
    for step in range(first, len(steps)):
        circle = radius_km * steps[step]
        last = step == len(steps) - 1
        if circle <= start and not last:
            continue
        ranked, first_online = _ranked(
            connection,
            conditions,
            place,
            circle,
            within=circle,
            count=limit + 1,
            bound=after,
            by_cells=not few,
            summaries=summaries,
            online=last,
        )
        # More than a page inside this circle: nothing outside it can come first.
        if len(ranked) > limit:
            break
    if not few and after is None:
        if len(_FIRST_CIRCLE) >= FIRST_CIRCLES_KEPT:
            _FIRST_CIRCLE.clear()
        _FIRST_CIRCLE[remembered] = step
    return ranked, first_online


# The box of a circle is cut with a flat degree (KM_PER_DEG_LAT) while distances are great
# circles: reading the events before a distance d, the box of d with this margin holds every
# one of them (capped at the radius's own box, which defines what matches).
BOX_MARGIN = 1.02


def _farthest(
    db: Session,
    conditions: Filters,
    place: ResolvedPlace,
    radius_km: float,
    limit: int,
    before: Ranked | None,
    *,
    summaries: dict[int, EventSummary] | None = None,
) -> list[Ranked]:
    """The last limit + 1 (distance, start, id) of the on-site matches within radius_km
    that come before `before` (all of them without it), in the nearest-first order."""
    circle = radius_km if before is None else min(radius_km, before[0] * BOX_MARGIN + 0.01)
    ranked, _ = _ranked(
        db.connection(),
        conditions,
        place,
        circle,
        within=radius_km,
        count=limit + 1,
        bound=before,
        backward=True,
        summaries=summaries,
    )
    return ranked


def _rank_near_by_date(
    db: Session,
    conditions: Filters,
    place: ResolvedPlace,
    radius_km: float,
    limit: int,
    after: tuple[datetime, int] | None,
    *,
    backward: bool = False,
) -> Ranking:
    """Every match around a place, by date: online events, and on-site or hybrid ones whose
    venue is within the radius (the box narrows in SQL, the exact distance in Python, so the
    dates are read in batches until the page is full). Backward: the page before `after`."""
    connection = db.connection()
    read, geo = statements.geo_params(
        place.lat, place.lon, radius_km, dialect=connection.dialect.name
    )
    params = conditions.with_(**geo, page_limit=DATE_BATCH)
    found: list[tuple[int, float | None, datetime]] = []
    position = after
    while len(found) <= limit:
        statement = statements.near_by_date(conditions.shape, read, position is not None, backward)
        if position is not None:
            params.update(statements.position_params(position))
        rows = connection.execute(statement, params).all()
        for event_id, starts, format_, lat, lon in rows:
            position = (starts, event_id)
            distance = None
            if format_ != "online":
                distance = distance_km(place.lat, place.lon, lat or 0.0, lon or 0.0)
                if distance > radius_km:
                    continue
            found.append((event_id, distance, starts))
            if len(found) > limit:
                # A match beyond a full page: there is another page.
                break
        if len(rows) < DATE_BATCH:
            break
    more = len(found) > limit
    page = found[:limit]
    if backward:
        page.reverse()
    hits: list[tuple[int, float | None]] = [(event_id, d) for event_id, d, _ in page]
    if not page:
        return Ranking(hits, None)
    first, last = (page[0][0], page[0][2]), (page[-1][0], page[-1][2])
    if backward:
        return Ranking(
            hits, encode_cursor(_date_cursor_of(last)), None, _before(first) if more else None
        )
    return Ranking(
        hits,
        encode_cursor(_date_cursor_of(last)) if more else None,
        None,
        _before(first) if after is not None else None,
    )


def _search_near(
    db: Session,
    conditions: Filters,
    place: ResolvedPlace,
    radius_km: float,
    limit: int,
    cursor: dict[str, Any] | None,
    summaries: dict[int, EventSummary],
    *,
    few: bool = False,
) -> Ranking:
    phase = cursor.get("p", "d") if cursor is not None else "d"
    if phase not in ("d", "o"):
        raise InvalidInput("cursor", "Curseur de pagination invalide.")
    hits: list[tuple[int, float | None]] = []
    next_cursor: str | None = None
    prev_cursor: str | None = None
    online_after: tuple[datetime, int] | None = None
    first_online: list[tuple[int, datetime]] | None = None

    if phase == "d":
        after = None
        if cursor is not None:
            starts, event_id = _date_cursor(cursor)
            after = (_cursor_field(cursor, "d", float), starts, event_id)
        ranked, first_online = _nearest(
            db, conditions, place, radius_km, limit, after, few=few, summaries=summaries
        )
        hits = [(event_id, d) for d, _, event_id in ranked[:limit]]
        if len(ranked) > limit:
            d, starts, event_id = ranked[limit - 1]
            next_cursor = encode_cursor({"p": "d", "d": d, **_date_cursor_of((event_id, starts))})
        if cursor is not None and ranked:
            d, starts, event_id = ranked[0]
            prev_cursor = _before((event_id, starts), p="d", d=d)
    elif cursor is not None and "s" in cursor:
        online_after = _date_cursor(cursor)

    if next_cursor is None:
        # The online events follow, from the start after the distance phase.
        remaining = limit - len(hits)
        if first_online is not None:  # read with the nearby ones: up to remaining + 1
            page, more_online = first_online[:remaining], len(first_online) > remaining
        else:
            page, more_online = _date_page(
                db, conditions, remaining, online_after, online=True, summaries=summaries
            )
        hits.extend((event_id, None) for event_id, _ in page)
        if more_online:
            # Without a page (the distance phase filled it exactly): from the first one.
            position = _date_cursor_of(page[-1]) if page else {}
            next_cursor = encode_cursor({"p": "o", **position})
        if cursor is not None and page and prev_cursor is None:
            prev_cursor = _before(page[0], p="o")
    return Ranking(hits, next_cursor, None, prev_cursor)


def _search_near_before(
    db: Session,
    conditions: Filters,
    place: ResolvedPlace,
    radius_km: float,
    limit: int,
    cursor: dict[str, Any],
    summaries: dict[int, EventSummary],
) -> Ranking:
    """The page before a cursor of the distance order: online events before it by date,
    then, going back further, the farthest on-site events of the radius."""
    phase = cursor.get("p")
    starts, event_id = _date_cursor(cursor)
    # (event id, distance, start), nearest to the cursor first.
    page: list[tuple[int, float | None, datetime]] = []
    more = False
    before: Ranked | None = None
    if phase == "o":
        rows, more = _date_page(
            db,
            conditions,
            limit,
            (starts, event_id),
            online=True,
            backward=True,
            summaries=summaries,
        )
        page = [(found_id, None, found_starts) for found_id, found_starts in rows]
    elif phase == "d":
        before = (_cursor_field(cursor, "d", float), starts, event_id)
    else:
        raise InvalidInput("cursor", "Curseur de pagination invalide.")
    remaining = limit - len(page)
    if not more:
        # Before every online event (or a distance): the on-site events, farthest first.
        ranked = _farthest(
            db, conditions, place, radius_km, max(remaining, 0), before, summaries=summaries
        )
        more = len(ranked) > remaining
        taken = ranked[-remaining:] if remaining > 0 else []
        page.extend((found_id, d, found_starts) for d, found_starts, found_id in reversed(taken))
    page.reverse()
    hits: list[tuple[int, float | None]] = [(found_id, d) for found_id, d, _ in page]
    if not page:
        return Ranking(hits, None)

    def position(item: tuple[int, float | None, datetime]) -> dict[str, Any]:
        found_id, d, found_starts = item
        if d is None:
            return {"p": "o", **_date_cursor_of((found_id, found_starts))}
        return {"p": "d", "d": d, **_date_cursor_of((found_id, found_starts))}

    first = position(page[0])
    prev_cursor = encode_cursor({BEFORE: 1, **first}) if more else None
    return Ranking(hits, encode_cursor(position(page[-1])), None, prev_cursor)


def list_agency_events(
    db: Session, *, agency_id: int, limit: int, cursor: str | None
) -> SearchResult:
    """Every event of one agency (past and cancelled included), by date, paged like search."""
    after = _date_cursor(decode_cursor(cursor)) if cursor else None
    own = Filters(("agency",), {"agency_id": agency_id})
    ranking = _rank_by_date(db, own, limit, after)
    events = _load(db, [event_id for event_id, _ in ranking.hits])
    hits = [SearchHit(events[i]) for i, _ in ranking.hits if i in events]
    return SearchResult(hits, ranking.next_cursor)
