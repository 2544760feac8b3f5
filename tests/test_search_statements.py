"""Search statements are built once per shape of search and kept (events_app.search_statements):
a search of the same shape with other values must never see an earlier search's values."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any

import orjson
import pytest
from sqlalchemy.orm import Session

from events_app import fulltext, search
from events_app import search_statements as statements
from events_app.db import utcnow
from events_app.events import get_event, update_event
from events_app.models import SECTOR_BITS, Agency, sector_mask, sectors_of_mask
from events_app.places import distance_km
from events_app.search import SearchQuery, search_event_summaries, search_events
from events_app.settings import load_settings
from events_app.vocab import SECTORS
from events_app.web.answers import EventOut
from events_app.web.schemas import event_fields
from tests.factories import in_days, make_agency, make_event

LYON = {"name": "Halle", "address": "1 rue A", "postal_code": "69007", "city": "Lyon"}
MONTREUIL = {"name": "Agence", "address": "1 place B", "postal_code": "93100", "city": "Montreuil"}


def _ids(db: Session, query: SearchQuery) -> list[int]:
    found = [hit.event.id for hit in search_events(db, query).hits]
    # The API's page reads the same ids through its own kept statement.
    assert [e.id for e, _ in search_event_summaries(db, query).hits] == found
    return found


def test_same_shape_other_values_get_their_own_answer(db: Session) -> None:
    agency, _ = make_agency(db)
    lyon_n, lyon_d, montreuil_d = (
        make_event(
            db,
            agency,
            title=title,
            sectors=[sector],
            venue={**town, "lat": lat, "lon": lon},
            starts_at=in_days(day),
        )
        for title, sector, town, lat, lon, day in (
            ("Salon logistique", "N", LYON, 45.732, 4.8226, 3),
            ("Forum commerce", "D", LYON, 45.733, 4.8227, 10),
            ("Forum vente", "D", MONTREUIL, 48.8615, 2.4432, 5),
        )
    )
    # Place and sector: one shape, four sets of values, asked one after the other.
    for near, sector, expected in (
        ("Lyon", "N", [lyon_n.id]),
        ("Lyon", "D", [lyon_d.id]),
        ("Montreuil", "D", [montreuil_d.id]),
        ("Montreuil", "N", []),
    ):
        assert _ids(db, SearchQuery(near=near, sectors=(sector,))) == expected, (near, sector)
    # Dates: the window's bounds are parameters too.
    early, late = in_days(1).date(), in_days(6).date()
    assert _ids(db, SearchQuery(date_from=early, date_to=late)) == [lyon_n.id, montreuil_d.id]
    assert _ids(db, SearchQuery(date_from=late, date_to=in_days(12).date())) == [lyon_d.id]
    # Text: the words are parameters, whichever plan the engine takes.
    assert _ids(db, SearchQuery(q="logistique")) == [lyon_n.id]
    assert _ids(db, SearchQuery(q="forum")) == [montreuil_d.id, lyon_d.id]
    # Pages by date: the cursor's position is a parameter (same shape, page after page).
    first = search_events(db, SearchQuery(limit=1))
    second = search_events(db, SearchQuery(limit=1, cursor=first.next_cursor))
    third = search_events(db, SearchQuery(limit=1, cursor=second.next_cursor))
    assert [r.hits[0].event.id for r in (first, second, third)] == [
        lyon_n.id,
        montreuil_d.id,
        lyon_d.id,
    ]


def test_kept_statements_hold_no_value() -> None:
    """A kept statement holds the constants of the search (the online format, the scheduled
    status, the empty sector mask) and nothing else: every value of a search is given when the
    statement runs."""
    shape = (
        "only_ids",
        "from",
        "to",
        "sectors",
        "types",
        "formats",
        "available",
        "agency",
        "one_per_group",
    )
    kept = [
        statements.candidates(shape, "cell_json"),
        statements.candidates(shape, "box"),
        statements.date_page(shape, True, True, False),
        statements.date_page(shape, True, True, True, True),
        statements.nearest(shape, "cell_array", True, True),
        statements.near_by_date(shape, "cell_array", True, True),
        statements.count_upto(shape, True),
    ]
    for statement in kept:
        binds = statement.compile().binds.values()
        assert {bind.value for bind in binds} - {None} == {"online", "scheduled", 0}
        assert all(bind.callable is None for bind in binds)
        assert {"date_from", "date_to", "sector_bits", "agency_id"} <= {b.key for b in binds}


def test_sector_mask_follows_every_change_of_sectors(db: Session) -> None:
    agency, _ = make_agency(db)
    event = make_event(db, agency, sectors=["N"], venue={**LYON, "lat": 45.732, "lon": 4.8226})
    assert event.sector_mask == sector_mask(["N"])
    # Changed by an edit (the same ORM path as a re-import), then read back from the table.
    for sectors, asked in (
        (["D", "M"], {"N": False, "D": True, "K": False}),
        (["all"], {"K": True}),
    ):
        update_event(db, event, event_fields({"sectors": sectors}, partial=True))
        db.flush()
        db.expire_all()
        stored = get_event(db, event.id)
        assert stored.sector_mask == sector_mask(sectors)
        for sector, found in asked.items():
            hits = search_event_summaries(db, SearchQuery(near="Lyon", sectors=(sector,))).hits
            assert [e.id for e, _ in hits] == ([event.id] if found else []), sector
        assert search_event_summaries(db, SearchQuery(near="Lyon")).hits[0][0].sectors == sectors
        event = stored


def test_every_sector_has_its_bit() -> None:
    assert set(SECTORS) <= set(SECTOR_BITS)
    assert all(sectors_of_mask(sector_mask([code])) == [code] for code in SECTOR_BITS)


def test_remembered_first_circle_never_changes_the_page(db: Session) -> None:
    """A first page starts at the circle that held the last one around the same place: as
    events come and go, the page is always the one a fresh search gives."""
    agency, _ = make_agency(db)
    query = SearchQuery(near="Lyon", radius_km=30, limit=2)

    def page() -> list[int]:
        return [e.id for e, _ in search_event_summaries(db, query).hits]

    def fresh() -> list[int]:
        search._FIRST_CIRCLE.clear()
        return page()

    far = [
        make_event(db, agency, venue={**LYON, "lat": 45.95 + i / 100, "lon": 4.85}).id
        for i in range(3)
    ]
    first = page()
    assert first == fresh() and set(first) < set(far)  # the whole radius, remembered
    near = [
        make_event(db, agency, venue={**LYON, "lat": 45.764 + i / 1000, "lon": 4.8357}).id
        for i in range(3)
    ]
    nearest = page()  # starts at the whole radius: still the nearest
    assert nearest == fresh() and set(nearest) < set(near)
    assert page() == nearest  # remembered: the smallest circle
    moved = event_fields({"venue": {**LYON, "lat": 47.0, "lon": 4.85}}, partial=True)
    for event_id in near:
        update_event(db, get_event(db, event_id), moved)
    # The smallest circle holds nothing now (its events moved away): the search widens again.
    assert page() == fresh() == first


def test_an_event_deleted_after_the_ranking_is_left_out(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL reads each statement of a transaction in its own snapshot: an event can be
    # ranked, then deleted before its page is loaded. The page goes out without it.
    agency, _ = make_agency(db)
    kept = make_event(db, agency, starts_at=in_days(2)).id
    ranked = search.rank_events

    def with_a_ghost(session: Session, query: SearchQuery, **options: Any) -> search.Ranking:
        ranking = ranked(session, query, **options)
        ranking.hits = [(kept + 1000, None), *ranking.hits]
        return ranking

    monkeypatch.setattr(search, "rank_events", with_a_ghost)
    assert [e.id for e, _ in search_event_summaries(db, SearchQuery()).hits] == [kept]
    assert [h.event.id for h in search_events(db, SearchQuery()).hits] == [kept]


def test_a_remembered_text_plan_finds_the_same_events(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite keeps the plan the last search for the same words took (through the full-text
    index for a rare word, along the dates for a common one): as a word becomes common, the
    remembered plan still finds every event, as a fresh one does."""
    monkeypatch.setattr(fulltext, "FTS_MIN_DRIVE", 3)
    agency, _ = make_agency(db)
    query = SearchQuery(q="boulangerie")

    def found() -> set[int]:
        return {e.id for e, _ in search_event_summaries(db, query).hits}

    made = {make_event(db, agency, title="Boulangerie Martin").id}
    assert found() == made  # rare: through the index, remembered
    made |= {make_event(db, agency, title=f"Boulangerie n°{n}").id for n in range(4)}
    assert found() == made  # common now, the index still remembered
    fulltext._PLANS.clear()
    assert found() == made  # along the dates


def test_postgresql_measures_distances_as_python_does(db: Session) -> None:
    """On PostgreSQL the database ranks a place search's events (search_statements.nearest):
    its distance is places.distance_km's, float for float, so the page shows the distance it
    ranked by and the count agrees with the page."""
    connection = db.connection()
    if connection.dialect.name != "postgresql":
        pytest.skip("SQLite's searches measure distances in Python")
    rng = random.Random(19)
    clause = statements.distance_clause().compile(dialect=connection.dialect)
    for _ in range(20):
        lat, lon = rng.uniform(-21.5, 51.1), rng.uniform(-61.9, 55.8)
        venues = [(lat + rng.uniform(-2, 2), lon + rng.uniform(-2, 2)) for _ in range(50)] + [
            (lat, lon),
            (-lat, lon + 180),
        ]
        rows = ", ".join(f"({a!r}::float8, {b!r}::float8)" for a, b in venues)
        measured = connection.exec_driver_sql(
            f"SELECT {clause} FROM (VALUES {rows}) AS events(venue_lat, venue_lon)",
            statements.distance_params(lat, lon),
        ).scalars()
        expected = [distance_km(lat, lon, a, b) for a, b in venues]
        assert list(measured) == expected
        assert expected[-2] == 0 and math.isclose(expected[-1], math.pi * 6371.009, rel_tol=1e-6)


def _north_of_lyon(
    db: Session, agency: Agency, *, hour: int = 9, zones: tuple[str, ...] = ("Europe/Paris",)
) -> list[int]:
    """Three events north of Lyon's centre, farther and farther, on the next three days (at
    `hour`, in these zones in turn): the same order by distance and by date."""
    return [
        make_event(
            db,
            agency,
            venue={**LYON, "lat": 45.80 + i / 100, "lon": 4.835},
            starts_at=in_days(1 + i, hour=hour),
            timezone=zones[i % len(zones)],
        ).id
        for i in range(3)
    ]


def test_a_page_and_its_events_come_in_one_round_trip_on_postgresql(
    db: Session, queries: list[str]
) -> None:
    """On PostgreSQL a search's page comes with what it shows (search_statements.
    with_summaries) in one statement: near a place, with the first online events after the
    nearby ones, or by date. SQLite, with no round trip to save, reads the page, then its
    events (and the online events in a statement of their own)."""
    agency, _ = make_agency(db)
    near = _north_of_lyon(db, agency)
    online = make_event(
        db, agency, format="online", online_url="https://visio.example/a", starts_at=in_days(5)
    ).id
    postgresql = db.connection().dialect.name == "postgresql"
    search_event_summaries(db, SearchQuery(near="Lyon"))  # the place is read once

    def page(query: SearchQuery) -> tuple[list[int], int]:
        queries.clear()
        hits = search_event_summaries(db, query).hits
        return [event.id for event, _ in hits], len(queries)

    assert page(SearchQuery(near="Lyon", limit=2)) == (near[:2], 1 if postgresql else 2)
    assert page(SearchQuery(limit=2)) == (near[:2], 1 if postgresql else 2)
    assert page(SearchQuery(near="Lyon", limit=5)) == ([*near, online], 1 if postgresql else 3)


@pytest.mark.parametrize("zone", ["America/Cayenne", "Pacific/Noumea"])
def test_a_page_shows_the_same_moments_whatever_the_session_zone(db: Session, zone: str) -> None:
    """PostgreSQL's summaries read their moments as the driver gives them, in the session's
    zone (summaries.summary_columns): the API's items are the same as the ORM's, and the
    cursors still lead to the next page."""
    connection = db.connection()
    if connection.dialect.name != "postgresql":
        pytest.skip("SQLite has no session zone")
    agency, _ = make_agency(db)
    made = _north_of_lyon(db, agency, hour=23, zones=("Europe/Paris", "America/Guadeloupe"))
    connection.exec_driver_sql(f"SET TIME ZONE '{zone}'")
    settings = load_settings({})
    for query in (SearchQuery(near="Lyon", limit=2), SearchQuery(limit=2)):
        seen: list[int] = []
        cursor = None
        while True:
            fast = search_event_summaries(db, replace(query, cursor=cursor))
            slow = search_events(db, replace(query, cursor=cursor))
            now = utcnow()
            items = [EventOut.fast(e, settings, now, distance_km=d) for e, d in fast.hits]
            assert orjson.dumps(items) == orjson.dumps(
                [
                    EventOut.fast(h.event, settings, now, distance_km=h.distance_km)
                    for h in slow.hits
                ]
            )
            seen += [e.id for e, _ in fast.hits]
            if fast.next_cursor is None:
                break
            cursor = fast.next_cursor
        assert seen == made, query
