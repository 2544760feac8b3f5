"""The demo data generator, on throwaway SQLite databases of its own.

Loading the communes takes a few seconds, so they are loaded once into a template database
(built with create_all: only the table shapes matter here) which each test copies.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from events_app.agencies import SLUG_RE
from events_app.db import Base, Database
from events_app.demo import LARGE, MAX_FULL_EVENTS_LARGE, DemoSummary, load_demo
from events_app.events import sanitise_html
from events_app.models import (
    Agency,
    Commune,
    CommunePostalCode,
    Event,
    EventSector,
    Registration,
    geo_cell,
    search_key,
)
from events_app.places import load_communes
from events_app.vocab import AGENCY_KINDS, EVENT_TYPES, FORMATS, SECTORS

# A Tuesday in winter time, with the switch to summer time (29 March) inside the 8 weeks.
NOW = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
HORIZON = NOW + timedelta(weeks=8)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "template.db"
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    with Session(engine) as db:
        assert load_communes(db) > 30_000
        db.commit()
    engine.dispose()
    return path


@pytest.fixture(scope="module")
def databases(template: Path) -> Iterator[list[Database]]:
    opened: list[Database] = []
    yield opened
    for database in opened:
        database.dispose()


def fresh(template: Path, databases: list[Database], name: str) -> Database:
    path = template.with_name(f"{name}.db")
    shutil.copy(template, path)
    database = Database(f"sqlite:///{path}")
    databases.append(database)
    return database


def load(
    database: Database,
    *,
    events: int = 300,
    seed: int = 2026,
    now: datetime = NOW,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    with database.transaction() as db:
        return load_demo(db, events=events, seed=seed, now=now, progress=progress)


@dataclass
class Loaded:
    database: Database
    summary: DemoSummary


@pytest.fixture(scope="module")
def default(template: Path, databases: list[Database]) -> Loaded:
    database = fresh(template, databases, "default")
    return Loaded(database, load(database))


@pytest.fixture(scope="module")
def large(template: Path, databases: list[Database]) -> tuple[Loaded, list[int]]:
    database = fresh(template, databases, "large")
    steps: list[int] = []
    summary = load(database, events=LARGE + 1_000, progress=steps.append)
    return Loaded(database, summary), steps


def all_events(database: Database) -> list[Event]:
    with database.sessions() as db:
        return list(db.scalars(select(Event).order_by(Event.id)))


def titles(database: Database) -> list[str]:
    with database.sessions() as db:
        return list(db.scalars(select(Event.title).order_by(Event.id)))


# --- the default demo -------------------------------------------------------------------------


def test_counts(default: Loaded) -> None:
    with default.database.sessions() as db:
        agencies = db.scalar(select(func.count(Agency.id)))
        events = db.scalar(select(func.count(Event.id)))
        registrations = db.scalar(select(func.count(Registration.id)))
    assert default.summary.events == events == 300
    assert default.summary.agencies == agencies
    assert agencies is not None and agencies >= 35
    assert default.summary.registrations == registrations
    assert registrations is not None and 150 <= registrations <= 1_500


def test_agencies_are_real_places(default: Loaded) -> None:
    with default.database.sessions() as db:
        agencies = list(db.scalars(select(Agency)))
        pairs = set(db.execute(select(CommunePostalCode.postal_code, Commune.name).join(Commune)))
    assert {agency.kind for agency in agencies} == set(AGENCY_KINDS) - {"other"}
    assert len({agency.city for agency in agencies}) >= 35
    for agency in agencies:
        assert SLUG_RE.match(agency.slug), agency.slug
        assert agency.api_token_hash is not None and len(agency.api_token_hash) == 64
        assert agency.lat is not None and agency.lon is not None
        assert agency.postal_code is not None and agency.city is not None
        # Arrondissements carry their city's name: "Paris", 75015.
        names = {name for code, name in pairs if code == agency.postal_code}
        assert any(name.startswith(agency.city) for name in names), agency
    names = {agency.name for agency in agencies}
    assert any(name.startswith("France Travail ") for name in names)
    assert any(name.startswith("Mission locale ") for name in names)


def test_every_type_sector_and_format(default: Loaded) -> None:
    with default.database.sessions() as db:
        types = set(db.scalars(select(Event.type)))
        formats = set(db.scalars(select(Event.format)))
        sectors = set(db.scalars(select(EventSector.sector)))
        orphans = db.scalar(
            select(func.count(Event.id)).where(~Event.id.in_(select(EventSector.event_id)))
        )
        mixed = db.scalar(
            select(func.count(EventSector.event_id)).where(
                EventSector.sector == "all",
                EventSector.event_id.in_(
                    select(EventSector.event_id).where(EventSector.sector != "all")
                ),
            )
        )
    assert types == set(EVENT_TYPES)
    assert formats == set(FORMATS)
    assert sectors == set(SECTORS)
    assert orphans == 0
    assert mixed == 0  # "all" stands alone


def test_dates(default: Loaded) -> None:
    events = all_events(default.database)
    weekdays = 0
    for event in events:
        assert NOW < event.starts_at <= HORIZON
        assert event.ends_at > event.starts_at
        assert timedelta(hours=1) <= event.ends_at - event.starts_at <= timedelta(hours=4)
        start = event.starts_at.astimezone(ZoneInfo(event.timezone))
        end = event.ends_at.astimezone(ZoneInfo(event.timezone))
        assert start.hour >= 9 and (end.hour, end.minute) <= (17, 0), (start, end)
        weekdays += start.weekday() < 5
        if event.registration_opens_at and event.registration_closes_at:
            assert event.registration_opens_at < event.registration_closes_at
        if event.registration_closes_at:
            assert event.registration_closes_at <= event.ends_at
        assert event.created_at <= NOW and event.updated_at <= NOW
    assert weekdays >= 0.85 * len(events)
    assert len({event.starts_at.date() for event in events}) >= 30


def test_places_and_derived_columns(default: Loaded) -> None:
    for event in all_events(default.database):
        if event.format == "online":
            assert event.venue_lat is None and event.geo_cell is None
        else:
            assert event.venue_lat is not None and event.venue_lon is not None
            assert event.venue_city and event.venue_address and event.venue_name
            assert event.venue_postal_code and re.fullmatch(r"\d{5}", event.venue_postal_code)
            assert event.geo_cell == geo_cell(event.venue_lat, event.venue_lon)
        if event.format == "onsite":
            assert event.online_url is None and event.remote_capacity is None
        else:
            assert event.online_url and event.online_url.startswith("https://visio.example.org/")
        if event.format == "hybrid":
            assert event.remote_capacity is not None
        assert event.search_key
        assert event.search_key == search_key(event.title, event.venue_name, event.venue_city)
        assert event.description_html.startswith("<p>")
        assert sanitise_html(event.description_html) == event.description_html
        assert event.timezone in ("Europe/Paris",) or event.timezone.startswith(
            ("America/", "Indian/")
        )


def test_french_titles(default: Loaded) -> None:
    found = titles(default.database)
    joined = "\n".join(found)
    assert "é" in joined and "Réunion d'information\u00a0: " in joined
    assert " :" not in joined.replace("\u00a0:", "")  # no plain space before a colon
    assert not re.search(r"\bà Le |\bà Les |\bde Le ", joined)
    assert len(set(found)) >= 150


def test_seats_match_registrations(default: Loaded) -> None:
    with default.database.sessions() as db:
        events = {event.id: event for event in db.scalars(select(Event))}
        registrations = list(db.scalars(select(Registration)))
    confirmed: Counter[tuple[int, str]] = Counter()
    waiting: dict[int, list[int]] = defaultdict(list)
    emails: Counter[tuple[int, str]] = Counter()
    for registration in registrations:
        event = events[registration.event_id]
        assert event.status != "cancelled"
        assert registration.email.endswith("@example.org")
        assert registration.consent_at is not None and registration.consent_at <= NOW
        assert len(registration.token) >= 24
        emails[(event.id, registration.email)] += 1
        if registration.status == "confirmed":
            assert registration.waitlist_position is None
            remote = event.format == "hybrid" and registration.attendance == "remote"
            confirmed[(event.id, "remote" if remote else "onsite")] += 1
        else:
            assert registration.status == "waitlisted"
            assert registration.waitlist_position is not None
            waiting[event.id].append(registration.waitlist_position)
    assert max(emails.values()) == 1
    assert len({registration.token for registration in registrations}) == len(registrations)

    full = 0
    for event in events.values():
        assert event.seats_taken == confirmed[(event.id, "onsite")]
        assert event.remote_seats_taken == confirmed[(event.id, "remote")]
        if event.capacity is not None:
            assert event.seats_taken <= event.capacity
            full += event.seats_taken == event.capacity
        if event.remote_capacity is not None:
            assert event.remote_seats_taken <= event.remote_capacity
        if event.id in waiting:
            assert event.waitlist and event.seats_taken == event.capacity
            assert sorted(waiting[event.id]) == list(range(1, len(waiting[event.id]) + 1))
    assert full >= 5
    assert waiting


def test_statuses(default: Loaded) -> None:
    events = all_events(default.database)
    cancelled = [event for event in events if event.status == "cancelled"]
    assert 2 <= len(cancelled) <= 30
    assert all(event.cancellation_message and event.revision == 2 for event in cancelled)
    assert any(event.registration_closed for event in events)
    assert any(
        event.registration_closes_at is not None and event.registration_closes_at < NOW
        for event in events
    )
    assert any(event.capacity is None for event in events)
    assert any(event.job_offers for event in events)
    assert any(event.accessibility_notes for event in events)
    assert sum(event.waitlist for event in events) > len(events) / 2


def test_same_seed_same_data(template: Path, databases: list[Database], default: Loaded) -> None:
    again = fresh(template, databases, "again")
    summary = load(again)
    assert summary == default.summary
    assert titles(again) == titles(default.database)
    with again.sessions() as db, default.database.sessions() as other:
        statement = select(Agency.slug, Agency.postal_code).order_by(Agency.id)
        assert db.execute(statement).all() == other.execute(statement).all()

    # Only the dates follow `now`: a demo loaded another day has the same content.
    later = fresh(template, databases, "later")
    load(later, now=NOW + timedelta(days=3, hours=5))
    assert titles(later) == titles(default.database)

    other_seed = fresh(template, databases, "other_seed")
    load(other_seed, seed=7)
    assert titles(other_seed) != titles(default.database)


def test_naive_now_is_refused(default: Loaded) -> None:
    with default.database.sessions() as db, pytest.raises(ValueError, match="aware"):
        load_demo(db, now=datetime(2026, 3, 10, 8, 0))  # noqa: DTZ001


# --- a benchmark-sized load --------------------------------------------------------------------


def test_large_load_in_batches(large: tuple[Loaded, list[int]]) -> None:
    loaded, steps = large
    assert steps == [5_000, LARGE + 1_000]
    assert loaded.summary.events == LARGE + 1_000
    with loaded.database.sessions() as db:
        assert db.scalar(select(func.count(Event.id))) == LARGE + 1_000
        assert db.scalar(select(func.min(Event.id))) == 1
        assert db.scalar(select(func.max(Event.id))) == LARGE + 1_000
        departments = db.scalar(
            select(func.count(func.distinct(func.substr(Event.venue_postal_code, 1, 2))))
        )
    # Spread over France by population, not around the forty agencies only.
    assert departments is not None and departments >= 80


def test_large_load_is_consistent(large: tuple[Loaded, list[int]]) -> None:
    loaded, _steps = large
    with loaded.database.sessions() as db:
        registered = dict(
            db.execute(
                select(Registration.event_id, func.count())
                .where(Registration.status == "confirmed")
                .group_by(Registration.event_id)
            ).all()
        )
        events = list(db.scalars(select(Event)))
    # Only a few full events have people signed up; every other event is empty.
    assert 0 < len(registered) <= MAX_FULL_EVENTS_LARGE
    for event in events:
        seats = event.seats_taken + event.remote_seats_taken
        assert seats == registered.get(event.id, 0)
        if event.id in registered:
            assert event.seats_taken == event.capacity
        assert NOW < event.starts_at <= HORIZON
        if event.venue_lat is not None and event.venue_lon is not None:
            assert event.geo_cell == geo_cell(event.venue_lat, event.venue_lon)
        assert event.search_key == search_key(event.title, event.venue_name, event.venue_city)


def test_second_load_adds_events_and_reuses_agencies(
    template: Path, databases: list[Database]
) -> None:
    database = fresh(template, databases, "twice")
    first = load(database, events=20)
    second = load(database, events=30)
    with database.sessions() as db:
        assert db.scalar(select(func.count(Agency.id))) == first.agencies == second.agencies
        assert db.scalar(select(func.count(Event.id))) == 50
        assert db.scalar(select(func.max(Event.id))) == 50


def test_no_events(template: Path, databases: list[Database]) -> None:
    summary = load(fresh(template, databases, "empty"), events=0)
    assert summary == DemoSummary(agencies=summary.agencies, events=0, registrations=0)
    assert summary.agencies >= 35
