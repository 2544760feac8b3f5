"""Property tests (hypothesis): the places resolver, the search filters, the capacity rules and
the feed parsers, on SQLite and on PostgreSQL.

Each example runs inside a savepoint of the rolled-back `db` session and is rolled back at its
end, so examples never see each other's rows. Examples are bounded, so the module stays well under a
minute for both backends; the hypothesis profile (tests/conftest.py) fixes them in CI and lets
them vary locally.
"""

from __future__ import annotations

import codecs
import csv
import html
import io
import json
import math
import re
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import nh3
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import event as note
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from events_app import events, models
from events_app.db import utcnow
from events_app.errors import Conflict, InvalidInput
from events_app.events import create_event
from events_app.fulltext import text_terms
from events_app.models import Agency, Commune, CommunePostalCode, Event, Registration
from events_app.notifications import Notifier
from events_app.places import (
    AmbiguousPlace,
    ResolvedPlace,
    distance_km,
    normalise_name,
    resolve_place,
)
from events_app.registrations import Person, cancel_registration, register
from events_app.search import (
    SearchQuery,
    paris_day_start,
    search_event_summaries,
    search_events,
)
from events_app.settings import Settings, load_settings
from events_app.vocab import FORMATS
from events_app.web.answers import EventOut
from events_app.web.schemas import dump, event_fields
from importers import PARSERS
from importers.base import ImportedEvent, Notice, RowError
from importers.csv import _COLUMNS
from importers.sync import Geocoder, collect
from tests.factories import PARIS, make_agency

T = TypeVar("T")

# A function-scoped fixture (the rolled-back session) is shared by the examples of a test on
# purpose: each example undoes its own writes (see `savepoint`).
PROPERTY = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def savepoint(db: Session, work: Callable[[], T]) -> T:
    """Run one example's work and undo its writes."""
    nested = db.begin_nested()
    try:
        return work()
    finally:
        nested.rollback()
        # Nothing of this example may be seen (or flushed) by the next one.
        db.expunge_all()


# --- the places resolver ------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    insee: str
    name: str
    postal_code: str
    lat: float
    lon: float


@pytest.fixture
def communes(db: Session) -> list[Place]:
    rows = db.execute(
        select(
            Commune.insee,
            Commune.name,
            func.min(CommunePostalCode.postal_code),
            Commune.lat,
            Commune.lon,
        )
        .join(CommunePostalCode, CommunePostalCode.insee == Commune.insee)
        .group_by(Commune.insee, Commune.name, Commune.lat, Commune.lon)
        .order_by(Commune.insee)
    ).all()
    assert len(rows) > 30_000
    return [Place(*row) for row in rows]


def _resolve_or_invalid(db: Session, text: str) -> ResolvedPlace | None:
    try:
        place = resolve_place(db, text)
    except InvalidInput as exc:
        assert exc.field == "near"
        return None
    assert -90 <= place.lat <= 90 and -180 <= place.lon <= 180
    return place


# What people type into a place box, and what a script may.
PLACE_TEXT = st.one_of(
    st.text(max_size=60),
    st.text(string.digits + " ,.;-+()", max_size=14),
    st.lists(
        st.sampled_from(
            [
                *("Paris", "Lyon", "3e", "15", "arrondissement", "Saint", "st", "93100", "2A"),
                *("cedex", "(", ")", ",", "-", "Le Havre", "Réunion", "\x00", "²", "ǅ", "ß", "Ⅻ"),
            ]
        ),
        max_size=5,
    ).map(" ".join),
)


@settings(PROPERTY, max_examples=250)
@given(text=PLACE_TEXT)
def test_any_text_resolves_or_is_refused_as_invalid_input(db: Session, text: str) -> None:
    _resolve_or_invalid(db, text)


@settings(PROPERTY, max_examples=120)
@given(data=st.data())
def test_a_commune_is_found_by_its_name_and_postal_code(
    db: Session, communes: list[Place], data: st.DataObject
) -> None:
    commune = data.draw(st.sampled_from(communes), label="commune")
    place = resolve_place(db, f"{commune.name} {commune.postal_code}")
    assert distance_km(place.lat, place.lon, commune.lat, commune.lon) <= 30, place
    # The postal code alone gives one of the communes it serves: within 30 km of this one,
    # unless the postal code itself spreads wider (41160 covers communes 37 km apart).
    served = db.execute(
        select(Commune.insee, Commune.lat, Commune.lon)
        .join(CommunePostalCode, CommunePostalCode.insee == Commune.insee)
        .where(CommunePostalCode.postal_code == commune.postal_code)
    ).all()
    place = resolve_place(db, commune.postal_code)
    assert place.insee in {insee for insee, _, _ in served}
    spread = max(distance_km(lat, lon, commune.lat, commune.lon) for _, lat, lon in served)
    assert distance_km(place.lat, place.lon, commune.lat, commune.lon) <= max(30, spread)
    # The name alone: that commune, or the most populous of those spelt the same but for
    # accents, case and hyphens ("Abbecourt" for "Abbécourt").
    # Or, when several communes of comparable size share the name, the question which one,
    # with this commune among the choices.
    key = normalise_name(commune.name)
    try:
        by_name = resolve_place(db, commune.name)
    except AmbiguousPlace as asked:
        chosen = [resolve_place(db, choice).insee for choice in asked.choices]
        assert commune.insee in chosen
        return
    found = db.get(Commune, by_name.insee)
    assert found is not None and found.name_key == key
    if db.scalar(select(func.count()).where(Commune.name_key == key)) == 1:
        assert found.insee == commune.insee


COORDINATE_SEPARATORS = [",", ", ", ";", "; ", " , "]


@settings(PROPERTY, max_examples=200)
@given(
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    decimals=st.integers(0, 7),
    separator=st.sampled_from(COORDINATE_SEPARATORS),
    french=st.booleans(),
)
def test_coordinates_round_trip(
    db: Session, lat: float, lon: float, decimals: int, separator: str, french: bool
) -> None:
    lat_text, lon_text = f"{lat:.{decimals}f}", f"{lon:.{decimals}f}"
    if french:  # "48,86; 2,35": decimal commas, so the separator must not be a bare comma
        lat_text, lon_text = lat_text.replace(".", ","), lon_text.replace(".", ",")
        separator = separator if separator.strip() != "," else "; "
    place = resolve_place(db, f"{lat_text}{separator}{lon_text}")
    assert place.kind == "coordinates"
    assert place.lat == float(lat_text.replace(",", "."))
    assert place.lon == float(lon_text.replace(",", "."))
    # Its label is a place of its own: the same point, to the 5 decimals it shows (rounded
    # half to even, and in binary: a hair more than 5e-6 away at worst).
    again = resolve_place(db, place.label)
    assert again.lat == pytest.approx(place.lat, abs=6e-6)
    assert again.lon == pytest.approx(place.lon, abs=6e-6)


# --- the search filters -------------------------------------------------------------------

WORDS = [
    "forum",
    "emploi",
    "santé",
    "logistique",
    "atelier",
    "numérique",
    "btp",
    "recrutement",
    "recruteurs",
]
# Few values of each, so that events and filters often meet.
SECTOR_POOL = ["all", "J", "M", "N"]
TYPE_POOL = ["job_dating", "forum", "workshop", "other"]
# Around Paris: about 55 km across, so that radii of 1 to 60 km cut through the events.
CENTRE = (48.85, 2.35)
SPREAD = 0.25


@dataclass
class Generated:
    title_words: list[str]
    type: str
    sectors: list[str]
    format: str
    start_hours: int
    hours: int
    lat: float
    lon: float
    capacity: int | None
    remote_capacity: int | None
    taken: int
    remote_taken: int
    status: str
    agency: int
    # Set: the venue is put at this fraction of the searched radius from the searched place,
    # on this bearing (in degrees), to probe both sides of the circle's edge.
    ring: float | None
    bearing: float


EVENTS = st.builds(
    Generated,
    title_words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
    type=st.sampled_from(TYPE_POOL),
    sectors=st.lists(st.sampled_from(SECTOR_POOL), min_size=1, max_size=2, unique=True),
    format=st.sampled_from(list(FORMATS)),
    # Whole hours plus a half: never within a second of the "not ended yet" cut at run time.
    start_hours=st.integers(-72, 24 * 30),
    hours=st.integers(1, 30),
    lat=st.floats(CENTRE[0] - SPREAD, CENTRE[0] + SPREAD),
    lon=st.floats(CENTRE[1] - SPREAD, CENTRE[1] + SPREAD),
    capacity=st.none() | st.integers(0, 3),
    remote_capacity=st.none() | st.integers(0, 2),
    taken=st.integers(0, 3),
    remote_taken=st.integers(0, 2),
    status=st.sampled_from(["scheduled", "scheduled", "cancelled", "postponed"]),
    agency=st.integers(0, 1),
    ring=st.sampled_from([None, None, None, 0.98, 0.997, 1.003, 1.02, 1.1]),
    bearing=st.floats(0, 360),
)


@dataclass
class Filters:
    q: str | None
    near: str | None
    radius_km: float
    sectors: tuple[str, ...]
    types: tuple[str, ...]
    formats: tuple[str, ...]
    days: tuple[int | None, int | None]
    available: bool
    agency: int | None
    limit: int
    sort: str


def _subset(values: list[str], size: int) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(values), max_size=size, unique=True).map(tuple)


def _days(pair: tuple[int | None, int | None]) -> tuple[int | None, int | None]:
    first, last = pair
    if first is not None and last is not None and first > last:
        return last, first
    return first, last


def _rarely(strategy: st.SearchStrategy[T], absent: T) -> st.SearchStrategy[T]:
    """Absent two times in three: all filters at once would leave little to find."""
    return st.sampled_from([0, 1, 2]).flatmap(lambda n: strategy if n == 0 else st.just(absent))


FILTERS = st.builds(
    Filters,
    q=_rarely(st.sampled_from([*WORDS, "santé forum", "ATELIER", "Btp"]), None),
    near=st.none()
    | st.just(f"{CENTRE[0]},{CENTRE[1]}")
    | st.sampled_from(["Paris", "93100", "Versailles", "75"]),
    radius_km=st.floats(1, 60),
    sectors=_rarely(_subset(SECTOR_POOL[1:], 2), ()),
    types=_rarely(_subset(TYPE_POOL, 2), ()),
    formats=_rarely(_subset(list(FORMATS), 2), ()),
    days=st.tuples(_rarely(st.integers(-3, 30), None), _rarely(st.integers(-3, 30), None)).map(
        _days
    ),
    available=st.booleans(),
    agency=_rarely(st.integers(0, 1), None),
    limit=st.integers(1, 6),
    sort=st.sampled_from(["distance", "date"]),
)


def _create(
    db: Session,
    agencies: list[Agency],
    spec: Generated,
    now: datetime,
    around: tuple[ResolvedPlace, float] | None,
) -> None:
    lat, lon = spec.lat, spec.lon
    if around is not None and spec.ring is not None:
        place, radius = around
        km = radius * spec.ring
        lat = place.lat + km * math.cos(math.radians(spec.bearing)) / 111.2
        lon = place.lon + km * math.sin(math.radians(spec.bearing)) / (
            111.2 * math.cos(math.radians(place.lat))
        )
    starts = (now + timedelta(hours=spec.start_hours, minutes=30)).astimezone(PARIS)
    raw: dict[str, Any] = {
        "title": " ".join(spec.title_words).capitalize(),
        "type": spec.type,
        "sectors": spec.sectors,
        "format": spec.format,
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=spec.hours)).isoformat(),
        "capacity": spec.capacity,
    }
    if spec.format != "online":
        raw["venue"] = {"name": "Salle", "city": "Ville", "lat": lat, "lon": lon}
    if spec.format != "onsite":
        raw["online_url"] = "https://visio.example.org/salle"
    if spec.format == "hybrid":
        raw["remote_capacity"] = spec.remote_capacity
    event = create_event(
        db, agency_id=agencies[spec.agency].id, fields=event_fields(raw, partial=False)
    )
    event.status = spec.status
    if spec.capacity is not None:
        event.seats_taken = min(spec.taken, spec.capacity)
    if spec.format == "hybrid" and spec.remote_capacity is not None:
        event.remote_seats_taken = min(spec.remote_taken, spec.remote_capacity)
    db.flush()


def _matches(
    event: Event,
    query: SearchQuery,
    agency_id: int | None,
    place: ResolvedPlace | None,
    now: datetime,
) -> bool:
    """The brute-force reading of every filter of the spec, in Python."""
    if query.date_from is None:
        if event.ends_at < now:
            return False
    elif event.starts_at < paris_day_start(query.date_from):
        return False
    if query.date_to is not None and event.starts_at >= paris_day_start(
        query.date_to + timedelta(days=1)
    ):
        return False
    if query.q:
        # Each stem of the query begins a word of the title, venue or city.
        words = re.findall(r"[^\W_]+", event.search_key)
        if not all(any(w.startswith(t) for w in words) for t in text_terms(query.q)):
            return False
    if query.sectors and not set(event.sectors) & {*query.sectors, "all"}:
        return False
    if query.types and event.type not in query.types:
        return False
    if query.formats and event.format not in query.formats:
        return False
    if query.available:
        free = (
            event.capacity is None
            or event.seats_taken < event.capacity
            or (
                event.remote_capacity is not None
                and event.remote_seats_taken < event.remote_capacity
            )
        )
        if event.status != "scheduled" or not free:
            return False
    if agency_id is not None and event.agency_id != agency_id:
        return False
    if place is not None and event.format != "online":
        assert event.venue_lat is not None and event.venue_lon is not None
        if distance_km(place.lat, place.lon, event.venue_lat, event.venue_lon) > query.radius_km:
            return False
    return True


SETTINGS = load_settings({})


def _all_pages(db: Session, query: SearchQuery) -> tuple[list[tuple[Event, float | None]], int]:
    hits: list[tuple[Event, float | None]] = []
    cursor: str | None = None
    pages = 0
    while True:
        pages += 1
        assert pages < 200, "paging does not end"
        result = search_events(db, replace(query, cursor=cursor))
        assert len(result.hits) <= query.limit
        hits.extend((hit.event, hit.distance_km) for hit in result.hits)
        # The API's fast path (Core rows, no ORM) serves the very same page, item for item.
        fast = search_event_summaries(db, replace(query, cursor=cursor))
        assert fast.next_cursor == result.next_cursor
        assert [dump(EventOut.of(event, SETTINGS, distance_km=d)) for event, d in fast.hits] == [
            dump(EventOut.of(hit.event, SETTINGS, distance_km=hit.distance_km))
            for hit in result.hits
        ]
        if result.next_cursor is None:
            return hits, pages
        cursor = result.next_cursor


@settings(PROPERTY, max_examples=45)
@given(specs=st.lists(EVENTS, min_size=3, max_size=15), filters=FILTERS)
def test_search_returns_exactly_the_matching_events_in_order(
    db: Session, specs: list[Generated], filters: Filters
) -> None:
    def example() -> None:
        agencies = [make_agency(db)[0], make_agency(db)[0]]
        now = utcnow()
        place = None if filters.near is None else resolve_place(db, filters.near)
        around = None if place is None else (place, filters.radius_km)
        for spec in specs:
            _create(db, agencies, spec, now, around)
        today = now.astimezone(PARIS).date()
        first, last = filters.days
        query = SearchQuery(
            q=filters.q,
            near=filters.near,
            radius_km=filters.radius_km,
            sectors=filters.sectors,
            types=filters.types,
            formats=filters.formats,
            date_from=None if first is None else today + timedelta(days=first),
            date_to=None if last is None else today + timedelta(days=last),
            available=filters.available,
            agency=None if filters.agency is None else agencies[filters.agency].slug,
            limit=filters.limit,
            sort=filters.sort,
        )
        agency_id = None if filters.agency is None else agencies[filters.agency].id
        hits, pages = _all_pages(db, query)
        now = utcnow()
        note(
            "results: none"
            if not hits
            else f"results: {'several pages' if pages > 1 else 'one page'}"
        )

        ids = [event.id for event, _ in hits]
        assert len(ids) == len(set(ids)), "an event came twice"
        for event, distance in hits:
            assert _matches(event, query, agency_id, place, now), event.id
            if place is not None and event.format != "online":
                assert distance is not None and distance <= query.radius_km
                assert distance == pytest.approx(
                    distance_km(place.lat, place.lon, event.venue_lat or 0, event.venue_lon or 0)
                )
        everything = db.scalars(select(Event).options(selectinload(Event.sector_rows))).all()
        expected = {e.id for e in everything if _matches(e, query, agency_id, place, now)}
        assert set(ids) == expected

        if place is None or query.sort == "date":
            keys = [(event.starts_at, event.id) for event, _ in hits]
            assert keys == sorted(keys)
        else:
            # Nearest first (then soonest), then the online events (any place) by date.
            formats = [event.format == "online" for event, _ in hits]
            assert formats == sorted(formats)
            near = [(d, e.starts_at, e.id) for e, d in hits if e.format != "online"]
            online = [(e.starts_at, e.id) for e, _ in hits if e.format == "online"]
            assert near == sorted(near) and online == sorted(online)

    savepoint(db, example)


# --- capacity rules -----------------------------------------------------------------------


@dataclass
class Model:
    """What the registrations of one event must be, kept by hand: seats per pool, then queues."""

    capacity: dict[str, int | None]
    waitlist: bool
    confirmed: dict[str, list[int]] = field(default_factory=lambda: {"onsite": [], "remote": []})
    queue: dict[str, list[int]] = field(default_factory=lambda: {"onsite": [], "remote": []})
    pool_of: dict[int, str] = field(default_factory=dict)

    def free(self, pool: str) -> bool:
        limit = self.capacity[pool]
        return limit is None or len(self.confirmed[pool]) < limit

    def register(self, person: int, pool: str) -> str | None:
        """The new status, or None when the registration must be refused."""
        if person in self.pool_of:
            return "existing"
        if self.free(pool):
            self.confirmed[pool].append(person)
        elif self.waitlist:
            self.queue[pool].append(person)
        else:
            return None
        self.pool_of[person] = pool
        return "confirmed" if person in self.confirmed[pool] else "waitlisted"

    def cancel(self, person: int) -> None:
        pool = self.pool_of.pop(person, None)
        if pool is None:
            return
        if person in self.confirmed[pool]:
            self.confirmed[pool].remove(person)
            while self.queue[pool] and self.free(pool):
                self.confirmed[pool].append(self.queue[pool].pop(0))
        else:
            self.queue[pool].remove(person)


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["register", "register", "cancel"]), st.integers(0, 5), st.booleans()
    ),
    min_size=4,
    max_size=30,
)


@settings(PROPERTY, max_examples=60)
@given(
    hybrid=st.booleans(),
    # Small capacities and a waiting list most of the time: queues form, move and close up.
    capacity=st.sampled_from([None, 0, 1, 1, 2, 2, 3]),
    remote_capacity=st.sampled_from([None, 0, 1, 1, 2]),
    waitlist=st.sampled_from([True, True, True, False]),
    operations=OPERATIONS,
)
def test_capacity_rules_hold_after_any_register_and_cancel(
    db: Session,
    settings: Settings,
    hybrid: bool,
    capacity: int | None,
    remote_capacity: int | None,
    waitlist: bool,
    operations: list[tuple[str, int, bool]],
) -> None:
    def example() -> None:
        agency, _ = make_agency(db)
        starts = datetime.now(PARIS) + timedelta(days=5)
        raw: dict[str, Any] = {
            "title": "Job dating",
            "type": "job_dating",
            "sectors": ["N"],
            "format": "hybrid" if hybrid else "onsite",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "venue": {"city": "Montreuil", "lat": 48.86, "lon": 2.44},
            "capacity": capacity,
            "waitlist": waitlist,
        }
        if hybrid:
            raw |= {"online_url": "https://visio.example.org/a", "remote_capacity": remote_capacity}
        event_id = create_event(db, agency_id=agency.id, fields=event_fields(raw, partial=False)).id
        model = Model({"onsite": capacity, "remote": remote_capacity if hybrid else None}, waitlist)
        tokens: dict[int, str] = {}
        notifier = Notifier(db, settings)
        for action, person, remote in operations:
            pool = "remote" if hybrid and remote else "onsite"
            if action == "register":
                expected = model.register(person, pool)
                who = Person("Prénom", "Nom", f"p{person}@example.org", attendance=pool)
                try:
                    outcome = register(db, event_id=event_id, person=who, notifier=notifier)
                except Conflict:
                    assert expected is None
                    continue
                assert expected is not None
                assert outcome.created == (expected != "existing")
                tokens[person] = outcome.registration.token
            elif person in tokens:
                model.cancel(person)
                cancelled = cancel_registration(db, token=tokens[person], notifier=notifier)
                assert cancelled.status == "cancelled"
            _check(db, event_id, model, tokens, capacity, remote_capacity if hybrid else None)

    savepoint(db, example)


def _check(
    db: Session,
    event_id: int,
    model: Model,
    tokens: dict[int, str],
    capacity: int | None,
    remote_capacity: int | None,
) -> None:
    event = db.get(Event, event_id)
    assert event is not None
    rows = db.scalars(
        select(Registration).where(Registration.event_id == event_id).order_by(Registration.id)
    ).all()
    person_of = {token: person for person, token in tokens.items()}
    for pool, limit, taken in (
        ("onsite", capacity, event.seats_taken),
        ("remote", remote_capacity, event.remote_seats_taken),
    ):
        confirmed = [r for r in rows if r.status == "confirmed" and r.attendance == pool]
        waiting = [r for r in rows if r.status == "waitlisted" and r.attendance == pool]
        assert limit is None or len(confirmed) <= limit
        assert taken == len(confirmed)
        # Positions are 1..n in order of arrival, and nobody waits while a seat is free.
        assert [r.waitlist_position for r in waiting] == list(range(1, len(waiting) + 1))
        assert [r.id for r in waiting] == sorted(r.id for r in waiting)
        assert not waiting or (limit is not None and len(confirmed) >= limit)
        # And exactly who the model says, in the model's order.
        assert sorted(person_of[r.token] for r in confirmed) == sorted(model.confirmed[pool])
        assert [person_of[r.token] for r in waiting] == model.queue[pool]


# --- the feed parsers ---------------------------------------------------------------------

# Values that look like what feeds carry, and near misses of them.
PLAUSIBLE = st.sampled_from(
    [
        "2026-12-10T08:30:00.000+00:00",
        "2026-12-10",
        "08:30:00",
        "25:61:00",
        "10/12/2026 09:30",
        "31/02/2026",
        "99999-01-01T00:00:00Z",
        "0000-00-00",
        "en physique",
        "à distance",
        "Job dating",
        "Salon",
        "J",
        "Z",
        "-3",
        "1e400",
        "NaN",
        "48,86",
        "93100",
        "Europe/Paris",
        "Mars/Olympus",
        "<script>alert(1)</script>",
        "",
        "\x00",
    ]
)
TEXT = PLAUSIBLE | st.text(max_size=20)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
FT_KEYS = [
    "id",
    "titre",
    "description",
    "dateEvenement",
    "heureDebut",
    "heureFin",
    "timezone",
    "type",
    "modalites",
    "ville",
    "codePostal",
    "latitude",
    "longitude",
    "nombrePlaceTotalPresentiel",
    "nombrePlaceTotalDistance",
    "codesRome",
    "multisectoriel",
    "urlDetailEvenement",
    "dateDebut",
    "dateFin",
    "dateDebutCandidature",
    "dateFinCandidature",
    "localisation",
    "typeEvenement",
    "nombreOffres",
    "urlSalonEnLigne",
    "statut",
]
FT_ROW = st.fixed_dictionaries({}, optional=dict.fromkeys(FT_KEYS, PLAUSIBLE | JSON))
FT_DOCUMENT = st.one_of(
    st.fixed_dictionaries(
        {"content": st.lists(FT_ROW | JSON, max_size=4)}, optional={"totalElements": JSON}
    ),
    st.lists(FT_ROW, max_size=4),
    st.dictionaries(st.sampled_from(["salons", "results", "items", "events"]), st.lists(FT_ROW)),
    JSON,
).map(lambda document: json.dumps(document).encode())

CSV_HEADERS = sorted({alias for aliases in _COLUMNS.values() for alias in aliases[:2]})


@st.composite
def csv_documents(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(st.sampled_from(CSV_HEADERS), min_size=1, max_size=8))
    rows = draw(st.lists(st.lists(TEXT, max_size=len(headers) + 2), max_size=4))
    buffer = io.StringIO()
    if draw(st.booleans()):
        buffer.write("sep=;\n")
    writer = csv.writer(buffer, delimiter=draw(st.sampled_from([";", ",", "\t"])))
    writer.writerow(headers)
    writer.writerows(rows)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
    return buffer.getvalue().encode(encoding, errors="replace")


ICS_PROPERTY = st.tuples(
    st.sampled_from(
        [
            *("SUMMARY", "DTSTART", "DTEND", "DURATION", "RRULE", "EXDATE", "RDATE", "LOCATION"),
            *("GEO", "URL", "STATUS", "DESCRIPTION", "RECURRENCE-ID", "UID", "CATEGORIES"),
        ]
    ),
    st.sampled_from(["", ";TZID=Europe/Paris", ";TZID=Nowhere", ";VALUE=DATE", ";X=\x00"]),
    st.sampled_from(
        [
            *("20261210T090000", "20261210T090000Z", "20261210", "PT2H", "-P1D", "FREQ=DAILY"),
            *("FREQ=WEEKLY;COUNT=3", "FREQ=SECONDLY", "FREQ=MONTHLY;BYDAY=-1FR", "48.8;2.3"),
        ]
    )
    | TEXT,
).map(lambda parts: f"{parts[0]}{parts[1]}:{parts[2]}")


@st.composite
def ics_documents(draw: st.DrawFn) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Tests//FR"]
    if draw(st.booleans()):
        lines += ["BEGIN:VTIMEZONE", f"TZID:{draw(TEXT)}", draw(ICS_PROPERTY), "END:VTIMEZONE"]
    for _ in range(draw(st.integers(0, 3))):
        lines += ["BEGIN:VEVENT", *draw(st.lists(ICS_PROPERTY, max_size=8)), "END:VEVENT"]
    if draw(st.booleans()):
        lines.append("END:VCALENDAR")
    text = "\r\n".join(lines)
    if draw(st.booleans()):  # folded at 75 octets, as RFC 5545 writers do
        text = "\r\n ".join(text[i : i + 74] for i in range(0, len(text), 74))
    return text.encode("utf-8", errors="replace")


DOCUMENTS = st.one_of(
    st.binary(max_size=400),
    st.binary(max_size=40).map(lambda tail: codecs.BOM_UTF8 + b"BEGIN:VCALENDAR\r\n" + tail),
    FT_DOCUMENT,
    csv_documents(),
    ics_documents(),
)


@settings(PROPERTY, max_examples=150)
@given(document=DOCUMENTS)
def test_no_document_makes_a_parser_or_the_validation_raise(db: Session, document: bytes) -> None:
    """Every parser reads every document (its own format's near misses, the others' formats,
    and bytes): rows, row errors or notices, never an exception. The validation that follows,
    with the gazetteer, neither."""
    geocoder = Geocoder(db)
    for fmt, parse in PARSERS.items():
        items = list(parse(document))
        assert all(isinstance(item, ImportedEvent | RowError | Notice) for item in items), fmt
        collected = collect(iter(items), geocoder)
        collected.close()


# --- Text cleaning: the fast paths give what the slow ones give ---------------------------------


def _plain_text_slowly(value: str) -> str:
    for _ in range(5):
        cleaned = html.unescape(nh3.clean(value, tags=set()))
        if cleaned == value:
            break
        value = cleaned
    return value.strip()


def _fold_text_slowly(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


TEXT = st.text(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from("éèêëàâîïôöùûüçœæÉÈÀÇ\u00a0\u2028\u034f\u0301\ufeff\x85<>&;\r\n\t \"'"),
    ),
    max_size=40,
)


@given(value=TEXT)
@example(value="\ufeffSalon")  # html5ever drops a leading byte-order mark
@example(value="Salon &amp; forum")
def test_plain_text_matches_the_sanitiser_on_any_text(value: str) -> None:
    assert events.plain_text(value) == _plain_text_slowly(value)


@given(value=TEXT)
def test_fold_text_matches_the_character_by_character_fold(value: str) -> None:
    assert models.fold_text(value) == _fold_text_slowly(value)
