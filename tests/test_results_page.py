"""The results page of the search (issue 16): both-way pages, the bounded count, the sort
control, the place candidates as links, and the map's data. Both engines."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import exists, literal, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from events_app.app import create_app
from events_app.db import Database
from events_app.models import Event, EventSector
from events_app.search import COUNT_CAP, SearchQuery, search_events
from events_app.settings import Settings
from events_app.web.public import COUNT_CACHE_SECONDS, counts_of
from tests.factories import in_days, make_agency, make_event


def _venue(
    lat: float, lon: float, city: str = "Montreuil", postal_code: str = "93100"
) -> dict[str, Any]:
    return {
        "name": "Salle",
        "address": "1 rue",
        "postal_code": postal_code,
        "city": city,
        "lat": lat,
        "lon": lon,
    }


def _mixed_events(db: Session) -> list[int]:
    """Eleven on-site events at growing distances from Montreuil, some at one venue, and
    four online ones."""
    agency, _ = make_agency(db)
    ids = []
    for n in range(11):
        # Three at the same venue (equal distances), the rest further and further east.
        offset = 0.0 if n < 3 else 0.01 * n
        ids.append(
            make_event(
                db,
                agency,
                title=f"Sur place {n}",
                venue=_venue(48.8615, 2.4432 + offset),
                starts_at=in_days(3 + (n * 7) % 11, 9, 0),
            ).id
        )
    for n in range(4):
        ids.append(
            make_event(
                db,
                agency,
                title=f"En ligne {n}",
                format="online",
                venue=None,
                online_url="https://visio.example/salle",
                starts_at=in_days(2 + n, 14, 0),
            ).id
        )
    return ids


def _walk(db: Session, query: SearchQuery) -> list[list[int]]:
    pages = []
    cursor = None
    while True:
        result = search_events(db, dataclasses.replace(query, cursor=cursor))
        pages.append([hit.event.id for hit in result.hits])
        if cursor is None:
            assert result.prev_cursor is None
        else:
            assert result.prev_cursor is not None
        if result.next_cursor is None:
            return pages
        cursor = result.next_cursor


def _walk_back(db: Session, query: SearchQuery, last_cursor: str | None) -> list[list[int]]:
    """From the last page, the previous links back to the first page."""
    result = search_events(db, dataclasses.replace(query, cursor=last_cursor))
    pages = [[hit.event.id for hit in result.hits]]
    while result.prev_cursor is not None:
        previous = search_events(db, dataclasses.replace(query, cursor=result.prev_cursor))
        # The way back comes forward again to the same page.
        assert previous.next_cursor is not None
        again = search_events(db, dataclasses.replace(query, cursor=previous.next_cursor))
        assert [h.event.id for h in again.hits] == pages[0]
        result = previous
        pages.insert(0, [hit.event.id for hit in result.hits])
    return pages


def _last_cursor(db: Session, query: SearchQuery) -> str | None:
    cursor = None
    while True:
        result = search_events(db, dataclasses.replace(query, cursor=cursor))
        if result.next_cursor is None:
            return cursor
        cursor = result.next_cursor


@pytest.mark.parametrize(
    "query",
    [
        SearchQuery(limit=4),
        SearchQuery(near="Montreuil", limit=4),
        SearchQuery(near="Montreuil", limit=4, sort="date"),
        SearchQuery(near="Montreuil", limit=5),
        SearchQuery(near="Montreuil", limit=3),
        SearchQuery(near="Montreuil", limit=1),
    ],
    ids=["date", "distance-4", "near-date", "distance-5", "distance-3", "distance-1"],
)
def test_previous_pages_are_the_pages_walked_forward(db: Session, query: SearchQuery) -> None:
    _mixed_events(db)
    forward = _walk(db, query)
    assert len(forward) > 2
    backward = _walk_back(db, query, _last_cursor(db, query))
    assert backward == forward


def test_count_is_exact_then_bounded(db: Session, backend: str) -> None:
    ids = _mixed_events(db)
    result = search_events(db, SearchQuery(near="Montreuil", radius_km=5, limit=2), count=True)
    on_site_within_5_km = 11 - sum(1 for n in range(3, 11) if 0.01 * n * 73.2 > 5)
    assert result.count == on_site_within_5_km + 4
    assert search_events(db, SearchQuery(limit=2), count=True).count == len(ids)
    # Counting is only done when asked: the API's search does not pay for it.
    assert search_events(db, SearchQuery(limit=2)).count is None


@pytest.mark.parametrize("near", [None, "Montreuil"])
def test_count_stops_after_the_cap(db: Session, near: str | None) -> None:
    """COUNT_CAP + 1 matches and more read at most COUNT_CAP + 1 rows: the count says
    « more than », not the real number."""
    agency, _ = make_agency(db)
    base = make_event(db, agency, title="Modèle", starts_at=in_days(5))
    _add_copies(db, base, COUNT_CAP + 200)
    statements: list[str] = []

    def capture(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = db.get_bind().engine  # type: ignore[union-attr]
    sa_event.listen(engine, "before_cursor_execute", capture)
    try:
        result = search_events(db, SearchQuery(near=near, limit=20), count=True)
    finally:
        sa_event.remove(engine, "before_cursor_execute", capture)
    assert result.count == COUNT_CAP + 1
    assert len(result.hits) == 20
    # A bounded number of statements, whatever the number of results.
    assert len(statements) <= 12, statements


# --- The page, over HTTP -------------------------------------------------------------------


def _add_copies(db: Session, base: Event, count: int) -> None:
    """`count` copies of an event, written in bulk (create_event for each would take minutes)."""
    columns = {c.key: getattr(base, c.key) for c in Event.__table__.columns if c.key != "id"}
    rows = []
    for n in range(count):
        row = dict(columns)
        row["title"] = f"Copie {n}"
        row["starts_at"] = base.starts_at + timedelta(minutes=n + 1)
        row["ends_at"] = base.ends_at + timedelta(minutes=n + 1)
        rows.append(row)
    db.execute(Event.__table__.insert(), rows)
    db.execute(
        EventSector.__table__.insert().from_select(
            ["event_id", "sector"],
            select(Event.id, literal("N")).where(~exists().where(EventSector.event_id == Event.id)),
        )
    )


def _cards(html: str) -> list[str]:
    return re.findall(r'id="event-\d+-title"><a href="/evenements/\d+">([^<]+)</a>', html)


def _links(html: str) -> dict[str, str]:
    """Link texts to their (unescaped) href."""
    return {
        text.strip(): href.replace("&amp;", "&")
        for href, text in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', html)
    }


@contextmanager
def _client(committed: Database, settings: Settings, **changes: Any) -> Iterator[TestClient]:
    app = create_app(dataclasses.replace(settings, **changes))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_an_ambiguous_place_lists_its_communes_as_links(client: TestClient) -> None:
    page = client.get("/evenements", params={"near": "Saint-Denis", "q": "vente"})
    assert page.status_code == 400
    assert "Plusieurs communes portent ce nom" in page.text
    links = _links(page.text)
    assert "Saint-Denis (93)" in links and "Saint-Denis (974)" in links
    # Each link runs the same search with that commune, and nothing is picked for the person.
    chosen = links["Saint-Denis (93)"]
    assert "q=vente" in chosen and "near=Saint-Denis+%2893%29" in chosen
    again = client.get(chosen)
    assert again.status_code == 200
    assert "autour de Saint-Denis (93)" in again.text


def test_a_misspelt_place_suggests_close_names_as_links(client: TestClient) -> None:
    page = client.get("/evenements", params={"near": "Marseile"})
    assert page.status_code == 400
    assert "Lieu inconnu" in page.text
    links = _links(page.text)
    assert links["Marseille (13)"].endswith("near=Marseille+%2813%29")
    assert client.get(links["Marseille (13)"]).status_code == 200


def test_sort_control_orders_the_page(client: TestClient, committed: Database) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        make_event(db, agency, title="Proche et tard", starts_at=in_days(9))
        make_event(
            db,
            agency,
            title="Loin et tôt",
            starts_at=in_days(2),
            venue=_venue(48.8615, 2.60),
        )
    by_distance = client.get("/evenements", params={"near": "Montreuil"})
    assert _cards(by_distance.text) == ["Proche et tard", "Loin et tôt"]
    assert re.search(r'id="sort-distance"[^>]*checked', by_distance.text)
    by_date = client.get("/evenements", params={"near": "Montreuil", "sort": "date"})
    assert _cards(by_date.text) == ["Loin et tôt", "Proche et tard"]
    assert re.search(r'id="sort-date"[^>]*checked', by_date.text)
    assert "2 événements correspondent à votre recherche autour de Montreuil (93)" in by_date.text
    wrong = client.get("/evenements", params={"near": "Montreuil", "sort": "prix"})
    assert wrong.status_code == 400 and 'id="sort-error"' in wrong.text


def test_count_then_more_than_a_thousand(client: TestClient, committed: Database) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        base = make_event(db, agency, title="Modèle")
    page = client.get("/evenements")
    assert "1 événement correspond à votre recherche." in page.text
    with committed.transaction() as db:
        _add_copies(db, db.get(Event, base.id), COUNT_CAP - 1)  # type: ignore[arg-type]
    # Counts are kept a minute per worker (next test): start afresh after each write.
    counts_of(client.app).clear()  # type: ignore[arg-type]
    page = client.get("/evenements", params={"near": "93100"})
    assert "1\u202f000 événements correspondent" in page.text, page.text[:3000]
    with committed.transaction() as db:
        _add_copies(db, db.get(Event, base.id), 1)  # type: ignore[arg-type]
    counts_of(client.app).clear()  # type: ignore[arg-type]
    for params in ({}, {"near": "93100"}, {"near": "93100", "sort": "date"}):
        page = client.get("/evenements", params=params)
        assert "Plus de 1\u202f000 événements correspondent" in page.text


def test_a_count_is_reused_for_a_minute(client: TestClient, committed: Database) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        for n in range(3):
            make_event(db, agency, title=f"Forum {n}", starts_at=in_days(3 + n))
    counts = counts_of(client.app)  # type: ignore[arg-type]
    now = [1000.0]
    counts.clock = lambda: now[0]
    first = client.get("/evenements", params={"limit": "2"})
    assert "3 événements correspondent" in first.text
    with committed.transaction() as db:
        make_event(db, agency, title="Forum 3", starts_at=in_days(9))
    # The next page, in the other order, is the same search: its count is not read again.
    second = client.get(_links(first.text)["Résultats suivants"] + "&sort=date")
    assert "3 événements correspondent" in second.text
    now[0] += COUNT_CACHE_SECONDS + 1
    assert "4 événements correspondent" in client.get("/evenements").text


def test_previous_and_next_links(client: TestClient, committed: Database) -> None:
    with committed.transaction() as db:
        _mixed_events(db)
    first = client.get("/evenements", params={"near": "Montreuil", "limit": "4"})
    links = _links(first.text)
    assert "Résultats précédents" not in links
    second = client.get(links["Résultats suivants"])
    third = client.get(_links(second.text)["Résultats suivants"])
    back = client.get(_links(third.text)["Résultats précédents"])
    assert _cards(back.text) == _cards(second.text)
    start = client.get(_links(back.text)["Résultats précédents"])
    assert _cards(start.text) == _cards(first.text)
    assert 'rel="prev"' not in start.text
    assert "near=Montreuil" in _links(back.text)["Résultats précédents"]


def test_map_data_csp_and_approximate_pins(
    client: TestClient, committed: Database, settings: Settings
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        exact = make_event(db, agency, title="À l'adresse")
        # Known by its postal code and commune only: the gazetteer puts it at the centre.
        centre = make_event(
            db,
            agency,
            title="Au centre",
            venue={
                "name": "Salle",
                "address": None,
                "postal_code": "93100",
                "city": "Montreuil",
                "lat": None,
                "lon": None,
            },
        )
        make_event(
            db,
            agency,
            title="En ligne",
            format="online",
            venue=None,
            online_url="https://visio.example/salle",
        )
    page = client.get("/evenements", params={"near": "Montreuil", "radius_km": "10"})
    data = json.loads(
        re.search(r'id="results-map-data">(.*?)</script>', page.text, re.S).group(1)  # type: ignore[union-attr]
    )
    assert data["tiles"] == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert "OpenStreetMap" in data["attribution"]
    assert data["circle"]["radius_m"] == 10_000 and data["circle"]["label"] == "Montreuil (93)"
    pins = {pin["title"]: pin for pin in data["pins"]}
    assert set(pins) == {"À l'adresse", "Au centre"}
    assert pins["Au centre"]["approximate"] and not pins["À l'adresse"]["approximate"]
    assert "vendor/leaflet/leaflet.js" in page.text and "js/place-combobox.js" in page.text
    # The map page, and only it, may load images from the tile server.
    csp = page.headers["content-security-policy"]
    assert "img-src 'self' data: https://tile.openstreetmap.org;" in csp
    assert "tile.openstreetmap.org" not in client.get("/").headers["content-security-policy"]
    # The event page's map link says when the position is the commune's.
    assert "Position approximative" in client.get(f"/evenements/{centre.id}").text
    assert "Position approximative" not in client.get(f"/evenements/{exact.id}").text
    # The place field stays a plain input (the combobox is added by the script).
    assert re.search(r'<input id="near" name="near" type="text"', page.text)

    with _client(
        committed,
        settings,
        map_tiles_url="http://127.0.0.1:9/tuiles/{z}/{x}/{y}.png",
        map_tiles_attribution="Tuiles maison",
    ) as other:
        page = other.get("/evenements")
        assert "img-src 'self' data: http://127.0.0.1:9;" in page.headers["content-security-policy"]
        assert '"attribution": "Tuiles maison"' in page.text
    with _client(committed, settings, map_tiles_url="") as without:
        page = without.get("/evenements")
        assert page.status_code == 200
        assert "results-map" not in page.text and "leaflet" not in page.text
        assert _cards(page.text)
