"""GET /api/v1/events and the event endpoint: every filter, distances, pagination, bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from geopy.distance import geodesic
from starlette.testclient import TestClient

from events_app.db import Database
from events_app.models import Agency, Event
from tests.factories import in_days, make_agency, make_event

LYON = {
    "name": "Halle Tony Garnier",
    "address": "20 place Docteurs Mérieux",
    "postal_code": "69007",
    "city": "Lyon",
    "lat": 45.7320,
    "lon": 4.8226,
}
MONTREUIL = {
    "name": "Agence France Travail",
    "address": "1 place Jean-Jaurès",
    "postal_code": "93100",
    "city": "Montreuil",
    "lat": 48.8615,
    "lon": 2.4432,
}
VINCENNES = {
    "name": "Hôtel de ville",
    "address": "53 bis rue de Fontenay",
    "postal_code": "94300",
    "city": "Vincennes",
    "lat": 48.8475,
    "lon": 2.4392,
}


@pytest.fixture
def seed(committed: Database) -> Callable[..., list[int]]:
    """Create events (each given as field overrides) for one agency; return their ids."""

    def make(*specs: dict[str, Any], agency_slug: str | None = None) -> list[int]:
        with committed.transaction() as db:
            agency, _ = make_agency(db, slug=agency_slug)
            return [make_event(db, agency, **spec).id for spec in specs]

    return make


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_item_has_every_field_of_the_contract(
    client: TestClient, seed: Callable[..., list[int]]
) -> None:
    [event_id] = seed({"starts_at": in_days(3, 9, 30)})
    item = client.get("/api/v1/events").json()["items"][0]
    for key in (
        "id",
        "title",
        "type",
        "sectors",
        "format",
        "starts_at",
        "ends_at",
        "venue",
        "online_url",
        "agency",
        "capacity",
        "seats_left",
        "registration_open",
        "status",
        "url",
        "ics_url",
    ):
        assert key in item
    assert item["id"] == event_id
    assert item["starts_at"].endswith(("+01:00", "+02:00"))
    assert "T09:30:00" in item["starts_at"]
    assert item["venue"]["city"] == "Montreuil"
    assert item["seats_left"] == 20
    assert item["registration_open"] is True
    assert item["url"] == f"http://testserver/evenements/{event_id}"
    assert item["ics_url"] == f"http://testserver/events/{event_id}.ics"
    assert "distance_km" not in item
    detail = client.get(f"/api/v1/events/{event_id}").json()
    assert detail["description"] == "<p>Rencontrez des recruteurs.</p>"


def test_sorted_by_date_by_default(client: TestClient, seed: Callable[..., list[int]]) -> None:
    late, early, middle = seed(
        {"starts_at": in_days(9)}, {"starts_at": in_days(2)}, {"starts_at": in_days(5)}
    )
    assert ids(client.get("/api/v1/events")) == [early, middle, late]


def test_past_events_are_not_listed_by_default(
    client: TestClient, seed: Callable[..., list[int]]
) -> None:
    _past, future = seed({"starts_at": in_days(-3)}, {"starts_at": in_days(3)})
    assert ids(client.get("/api/v1/events")) == [future]


def test_free_text_ignores_case_and_accents(
    client: TestClient, seed: Callable[..., list[int]]
) -> None:
    cafe, _ = seed({"title": "Forum des métiers de la Santé"}, {"title": "Atelier CV"})
    assert ids(client.get("/api/v1/events", params={"q": "metiers sante"})) == [cafe]
    assert ids(client.get("/api/v1/events", params={"q": "MÉTIERS"})) == [cafe]
    assert ids(client.get("/api/v1/events", params={"q": "100%_"})) == []


def test_sector_filter_includes_events_open_to_all(
    client: TestClient, seed: Callable[..., list[int]]
) -> None:
    health, transport, everyone = seed({"sectors": ["J"]}, {"sectors": ["N"]}, {"sectors": ["all"]})
    assert set(ids(client.get("/api/v1/events", params={"sector": "J"}))) == {health, everyone}
    both = client.get("/api/v1/events", params=[("sector", "J"), ("sector", "N")])
    assert set(ids(both)) == {health, transport, everyone}


def test_type_and_format_filters(client: TestClient, seed: Callable[..., list[int]]) -> None:
    dating, workshop_online = seed(
        {"type": "job_dating"},
        {
            "type": "workshop",
            "format": "online",
            "venue": None,
            "online_url": "https://visio.example.org/atelier",
        },
    )
    assert ids(client.get("/api/v1/events", params={"type": "workshop"})) == [workshop_online]
    assert ids(client.get("/api/v1/events", params={"format": "onsite"})) == [dating]
    multi = client.get("/api/v1/events", params=[("type", "workshop"), ("type", "job_dating")])
    assert set(ids(multi)) == {dating, workshop_online}


def test_date_range_is_in_paris_days_with_to_included(
    client: TestClient, seed: Callable[..., list[int]]
) -> None:
    day = in_days(10, 23, 30)
    late_evening, next_morning, _before = seed(
        {"starts_at": day},
        {"starts_at": (day + timedelta(days=1)).replace(hour=8)},
        {"starts_at": day - timedelta(days=2)},
    )
    only = client.get(
        "/api/v1/events", params={"from": day.date().isoformat(), "to": day.date().isoformat()}
    )
    assert ids(only) == [late_evening]
    span = client.get("/api/v1/events", params={"from": day.date().isoformat()})
    assert ids(span) == [late_evening, next_morning]


def test_available_only(
    client: TestClient, seed: Callable[..., list[int]], committed: Database
) -> None:
    free, full, unlimited = seed({"capacity": 5}, {"capacity": 2}, {"capacity": None})
    with committed.transaction() as db:
        event = db.get(Event, full)
        assert event is not None
        event.seats_taken = 2
    assert set(ids(client.get("/api/v1/events", params={"available": "true"}))) == {free, unlimited}
    assert len(ids(client.get("/api/v1/events", params={"available": "false"}))) == 3


def test_agency_filter(client: TestClient, seed: Callable[..., list[int]]) -> None:
    [mine] = seed({}, agency_slug="ml-montreuil")
    seed({}, agency_slug="ft-lyon")
    assert ids(client.get("/api/v1/events", params={"agency": "ml-montreuil"})) == [mine]
    bad = client.get("/api/v1/events", params={"agency": "inconnue"})
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "agency"


def test_near_filters_by_radius_sorts_by_distance_and_keeps_online(
    client: TestClient, seed: Callable[..., list[int]]
) -> None:
    lyon, montreuil, vincennes, online = seed(
        {"venue": LYON, "starts_at": in_days(1)},
        {"venue": MONTREUIL, "starts_at": in_days(8)},
        {"venue": VINCENNES, "starts_at": in_days(2)},
        {
            "format": "online",
            "venue": None,
            "online_url": "https://visio.example.org/x",
            "starts_at": in_days(3),
        },
    )
    response = client.get("/api/v1/events", params={"near": "Montreuil", "radius_km": "30"})
    body = response.json()
    assert ids(response) == [montreuil, vincennes, online]
    assert body["place"]["insee"] == "93048"
    assert body["items"][2]["distance_km"] is None
    # Distances agree with geopy's geodesic between the commune and the venue.
    town_hall = (body["place"]["lat"], body["place"]["lon"])
    for item, venue in zip(body["items"][:2], (MONTREUIL, VINCENNES), strict=True):
        expected = geodesic(town_hall, (venue["lat"], venue["lon"])).km
        assert item["distance_km"] == pytest.approx(expected, rel=0.01, abs=0.02)
    # 200 km, the widest radius: Lyon (390 km away) stays out, and nothing wider is taken.
    wide = client.get("/api/v1/events", params={"near": "93100", "radius_km": "200"})
    assert ids(wide) == [montreuil, vincennes, online]
    wider = client.get("/api/v1/events", params={"near": "93100", "radius_km": "500"})
    assert wider.status_code == 400
    assert wider.json()["error"] == {
        "code": "invalid",
        "field": "radius_km",
        "message": "Le rayon doit être compris entre 1 et 200\u00a0km.",
    }
    # By date around a place: online events among the others, Lyon still out of the radius.
    by_date = client.get("/api/v1/events", params={"near": "93100", "sort": "date"})
    assert ids(by_date) == [vincennes, online, montreuil]
    assert [item["distance_km"] is None for item in by_date.json()["items"]] == [
        False,
        True,
        False,
    ]
    assert lyon not in ids(
        client.get("/api/v1/events", params={"near": "48.86,2.44", "radius_km": "10"})
    )


def test_same_venue_comes_by_date_and_pages_hold_in_both_sorts(
    client: TestClient, seed: Callable[..., list[int]]
) -> None:
    # Four events at one venue: equal distances, so the date decides (then the id).
    days = [20, 7, 10, 8, 7]
    made = seed(*({"venue": MONTREUIL, "starts_at": in_days(day)} for day in days))
    expected = [made[1], made[4], made[3], made[2], made[0]]
    for sort in ("distance", "date"):
        seen: list[int] = []
        cursor = None
        while True:
            params = {"near": "Montreuil", "sort": sort, "limit": "2"}
            if cursor:
                params["cursor"] = cursor
            body = client.get("/api/v1/events", params=params).json()
            seen += [item["id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == expected, sort
    bad = client.get("/api/v1/events", params={"near": "Montreuil", "sort": "prix"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "sort"


def test_distance_never_exceeds_radius(client: TestClient, seed: Callable[..., list[int]]) -> None:
    # Venues every ~2 km eastwards from Paris: the radius cut must be exact, not a box.
    specs = [
        {"venue": {**MONTREUIL, "lat": 48.8566, "lon": 2.3522 + 0.027 * i}, "title": f"E{i}"}
        for i in range(12)
    ]
    seed(*specs)
    body = client.get("/api/v1/events", params={"near": "48.8566,2.3522", "radius_km": "9"}).json()
    distances = [item["distance_km"] for item in body["items"]]
    assert distances == sorted(distances)
    assert all(d <= 9 for d in distances)
    assert len(distances) == 5  # 0, 2, 4, 6, 8 km; the next is at ~9.9 km


@pytest.mark.parametrize("near", [None, "Montreuil"])
def test_cursor_pagination_never_repeats_or_skips(
    client: TestClient, seed: Callable[..., list[int]], near: str | None
) -> None:
    specs: list[dict[str, Any]] = []
    for i in range(23):
        venue = {**MONTREUIL, "lat": 48.8615 + (i % 5) * 0.01, "lon": 2.4432}
        specs.append({"venue": venue, "starts_at": in_days(1 + i % 4), "title": f"Atelier {i}"})
    for i in range(6):
        specs.append(
            {
                "format": "online",
                "venue": None,
                "online_url": "https://visio.example.org/x",
                "starts_at": in_days(2 + i % 2),
            }
        )
    created = seed(*specs)
    seen: list[int] = []
    params: dict[str, str] = {"limit": "4"}
    if near:
        params["near"] = near
    for _ in range(20):
        body = client.get("/api/v1/events", params=params).json()
        seen.extend(item["id"] for item in body["items"])
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert sorted(seen) == sorted(created)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"radius_km": "-3", "near": "Lyon"}, "radius_km"),
        ({"radius_km": "abc"}, "radius_km"),
        ({"radius_km": "nan"}, "radius_km"),
        ({"near": "Zzzyxville"}, "near"),
        ({"near": "91,500"}, "near"),
        ({"sector": "Z"}, "sector"),
        ({"type": "party"}, "type"),
        ({"format": "3d"}, "format"),
        ({"from": "2026-02-30"}, "from"),
        ({"to": "demain"}, "to"),
        ({"from": "2026-12-10", "to": "2026-12-01"}, "from"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "dix"}, "limit"),
        ({"cursor": "!!notacursor"}, "cursor"),
        ({"cursor": "eyJzIjoxfQ"}, "cursor"),
        ({"available": "peut-être"}, "available"),
    ],
)
def test_bad_parameters_get_a_400_naming_the_field(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    response = client.get("/api/v1/events", params=params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert error["message"]


def test_unknown_event_is_404_in_json_and_html(client: TestClient) -> None:
    for path in ("/api/v1/events/999999", "/api/v1/events/99999999999999999999"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    page = client.get("/evenements/424242")
    assert page.status_code == 404
    assert "introuvable" in page.text


def _agency_token(committed: Database) -> tuple[Agency, str]:
    with committed.transaction() as db:
        return make_agency(db)


def test_agency_api_publishes_and_lists(client: TestClient, committed: Database) -> None:
    _, token = _agency_token(committed)
    body = {
        "title": "Forum de l'emploi saisonnier",
        "description": "<p>Bienvenue</p><script>alert(1)</script><img src=x onerror=alert(1)>",
        "type": "forum",
        "sectors": ["G", "D"],
        "format": "hybrid",
        "starts_at": "2030-03-12T09:30:00+01:00",
        "ends_at": "2030-03-12T12:30:00",
        "venue": {"name": "Salle des fêtes", "postal_code": "69003", "city": "Lyon"},
        "online_url": "https://visio.example.org/forum",
        "capacity": 100,
        "remote_capacity": 50,
        "job_offers": 240,
    }
    headers = {"Authorization": f"Bearer {token}"}
    response = client.post("/api/v1/agency/events", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["sectors"] == ["D", "G"]
    assert created["ends_at"] == "2030-03-12T12:30:00+01:00"
    assert "<script>" not in created["description"] and "onerror" not in created["description"]
    assert created["venue"]["lat"] == pytest.approx(45.76, abs=0.05)  # geocoded offline
    listed = client.get("/api/v1/agency/events", headers=headers).json()
    assert [item["id"] for item in listed["items"]] == [created["id"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ends_at": "2030-03-12T08:00:00+01:00"}, "ends_at"),
        ({"type": "party"}, "type"),
        ({"sectors": ["Q"]}, "sectors"),
        ({"sectors": []}, "sectors"),
        ({"starts_at": "12/03/2030"}, "starts_at"),
        ({"title": "x" * 201}, "title"),
        ({"title": "   "}, "title"),
        ({"capacity": -1}, "capacity"),
        ({"capacity": "dix"}, "capacity"),
        ({"registration_closes_at": "2030-03-13T09:00:00+01:00"}, "registration_closes_at"),
        ({"venue": None}, "venue"),
        ({"venue": {"city": "Nullepart-sur-Rien"}}, "venue.city"),
        ({"venue": {"lat": 95, "lon": 2}}, "venue.lat"),
        ({"online_url": "javascript:alert(1)"}, "online_url"),
        ({"colour": "red"}, "colour"),
        ({"title": "Atelier\x00CV"}, "title"),
        ({"venue": {"city": "Lyon\x00"}}, "venue.city"),
    ],
)
def test_agency_api_validation_names_the_field(
    client: TestClient, committed: Database, change: dict[str, Any], field: str
) -> None:
    _, token = _agency_token(committed)
    body = {
        "title": "Atelier CV",
        "type": "workshop",
        "sectors": ["M"],
        "format": "onsite",
        "starts_at": "2030-03-12T09:30:00+01:00",
        "ends_at": "2030-03-12T11:30:00+01:00",
        "venue": {"city": "Montreuil", "postal_code": "93100"},
    }
    body.update(change)
    response = client.post(
        "/api/v1/agency/events", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "Bearer "])
def test_agency_api_needs_a_valid_token(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for response in (
        client.get("/api/v1/agency/events", headers=headers),
        client.post("/api/v1/agency/events", json={}, headers=headers),
    ):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


def test_malformed_json_body_is_a_400(client: TestClient, committed: Database) -> None:
    _, token = _agency_token(committed)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for content in (b"{not json", b"", b"[1,2]", b'"x"'):
        response = client.post("/api/v1/agency/events", content=content, headers=headers)
        assert response.status_code == 400, content
        assert response.json()["error"]["field"] == "body"


def test_openapi_document_lists_the_contract(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/v1/events", "/api/v1/events/{id}", "/api/v1/agency/events"} <= set(doc["paths"])
