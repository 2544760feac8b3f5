"""An event's time zone (SPEC §7): the agency API and the back office's form accept
`timezone`; by default it is the zone of the venue's overseas département, else Paris; times
sent without an offset are wall-clock times of that zone; an unknown zone is a French 400."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from events_app.db import Database
from events_app.models import Event
from events_app.staff import create_staff
from tests.factories import event_fields, make_agency
from tests.helpers import post_form

STAFF = "claire.dupont@agence.example"
PASSWORD = "une phrase de passe solide"


def _agency(committed: Database) -> dict[str, str]:
    with committed.transaction() as db:
        agency, token = make_agency(db)
        create_staff(db, agency_id=agency.id, email=STAFF, name="Claire", password=PASSWORD)
    return {"Authorization": f"Bearer {token}"}


def _body(**overrides: Any) -> dict[str, Any]:
    starts = overrides.pop("starts_at", "2027-01-12T13:30:00")
    ends = overrides.pop("ends_at", "2027-01-12T16:00:00")
    return {**event_fields(**overrides), "starts_at": starts, "ends_at": ends}


def _create(client: TestClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/agency/events", json=_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    ("postal_code", "city", "zone", "offset"),
    [
        ("97110", "Pointe-à-Pitre", "America/Guadeloupe", "-04:00"),
        ("97200", "Fort-de-France", "America/Martinique", "-04:00"),
        ("97300", "Cayenne", "America/Cayenne", "-03:00"),
        ("97400", "Saint-Denis", "Indian/Reunion", "+04:00"),
        ("97600", "Mamoudzou", "Indian/Mayotte", "+03:00"),
        (None, "Pointe-à-Pitre", "America/Guadeloupe", "-04:00"),
        ("93100", "Montreuil", "Europe/Paris", "+01:00"),
    ],
)
def test_the_zone_defaults_to_the_venues_department(
    client: TestClient,
    committed: Database,
    postal_code: str | None,
    city: str,
    zone: str,
    offset: str,
) -> None:
    headers = _agency(committed)
    venue = {"name": "Agence", "postal_code": postal_code, "city": city}
    item = _create(client, headers, venue=venue)
    assert item["timezone"] == zone
    # 13 h 30 without an offset is 13 h 30 there.
    assert item["starts_at"] == f"2027-01-12T13:30:00{offset}"
    public = client.get(f"/api/v1/events/{item['id']}").json()
    assert public["timezone"] == zone and public["starts_at"] == item["starts_at"]


def test_an_online_event_is_in_paris_unless_told_otherwise(
    client: TestClient, committed: Database
) -> None:
    headers = _agency(committed)
    online = {"format": "online", "venue": None, "online_url": "https://visio.example.org/a"}
    assert _create(client, headers, **online)["timezone"] == "Europe/Paris"
    told = _create(client, headers, **online, timezone="America/Martinique")
    assert told["timezone"] == "America/Martinique"
    assert told["starts_at"] == "2027-01-12T13:30:00-04:00"
    # With an offset, the instant is kept and written in the event's zone.
    instant = _create(
        client,
        headers,
        **online,
        timezone="Indian/Reunion",
        starts_at="2027-01-12T10:00:00+01:00",
        ends_at="2027-01-12T12:00:00+01:00",
    )
    assert instant["starts_at"] == "2027-01-12T13:00:00+04:00"


@pytest.mark.parametrize("value", ["Mars/Olympus", "../../etc/passwd", "x" * 65, "", "paris"])
def test_an_unknown_zone_is_a_french_400_naming_the_field(
    client: TestClient, committed: Database, value: str
) -> None:
    headers = _agency(committed)
    response = client.post("/api/v1/agency/events", json=_body(timezone=value), headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == "timezone"
    assert "Fuseau horaire inconnu" in error["message"] or "timezone" in error["message"]


def test_patch_changes_the_zone_and_a_moved_venue_takes_its_own(
    client: TestClient, committed: Database
) -> None:
    headers = _agency(committed)
    item = _create(client, headers)
    path = f"/api/v1/agency/events/{item['id']}"
    assert item["timezone"] == "Europe/Paris"
    moved = client.patch(
        path,
        json={"venue": {"name": "Agence", "postal_code": "97400", "city": "Saint-Denis"}},
        headers=headers,
    ).json()
    assert moved["timezone"] == "Indian/Reunion"
    # The same instant, now written in La Réunion's hour; the revision rose.
    assert moved["starts_at"] == "2027-01-12T16:30:00+04:00"
    assert moved["revision"] > item["revision"]
    told = client.patch(path, json={"timezone": "Europe/Paris"}, headers=headers).json()
    assert told["timezone"] == "Europe/Paris"
    # A zone chosen by hand stays when the venue moves.
    kept = client.patch(
        path,
        json={"venue": {"name": "Agence", "postal_code": "97110", "city": "Pointe-à-Pitre"}},
        headers=headers,
    ).json()
    assert kept["timezone"] == "Europe/Paris"
    bad = client.patch(path, json={"timezone": "Nowhere/Land"}, headers=headers)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "timezone"


def test_the_openapi_document_lists_the_field(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    schemas = document["components"]["schemas"]
    for name in ("EventIn", "EventPatch"):
        prop = schemas[name]["properties"]["timezone"]
        assert "America/Guadeloupe" in prop["description"]


def test_the_event_form_takes_the_zone_and_shows_local_times(
    client: TestClient, committed: Database
) -> None:
    _agency(committed)
    post_form(client, "/organisme/connexion", {"email": STAFF, "password": PASSWORD})
    form = client.get("/organisme/evenements/nouveau").text
    assert '<select id="timezone" name="timezone"' in form
    assert "Heure de la Guadeloupe (America/Guadeloupe)" in form
    data = {
        "title": "Job dating du port",
        "description": "Rencontrez des recruteurs.",
        "type": "job_dating",
        "sectors": ["N"],
        "format": "onsite",
        "starts_at": "2027-01-12T13:30",
        "ends_at": "2027-01-12T16:00",
        "venue_name": "Agence",
        "venue_address": "",
        "venue_postal_code": "97110",
        "venue_city": "Pointe-à-Pitre",
        "venue_lat": "",
        "venue_lon": "",
        "online_url": "",
        "capacity": "",
        "remote_capacity": "",
        "waitlist": "1",
        "registration_opens_at": "",
        "registration_closes_at": "",
        "job_offers": "",
        "accessibility_notes": "",
        "timezone": "",
        "shown_place": "",
        "shown_lat": "",
        "shown_lon": "",
    }
    created = post_form(client, "/organisme/evenements/nouveau", data)
    assert created.status_code == 303, created.text
    event_id = int(created.headers["location"].split("/")[-1].split("?")[0])
    with committed.transaction() as db:
        event = db.get(Event, event_id)
        assert event is not None and event.timezone == "America/Guadeloupe"
        assert event.starts_at == datetime(2027, 1, 12, 13, 30, tzinfo=ZoneInfo(event.timezone))
    edit = client.get(f"/organisme/evenements/{event_id}/modifier").text
    assert 'value="2027-01-12T13:30"' in edit
    assert '<option value="America/Guadeloupe" selected>' in edit
    refused = post_form(client, "/organisme/evenements/nouveau", {**data, "timezone": "Lune/Mer"})
    assert refused.status_code == 400
    assert 'id="timezone-error"' in refused.text and "Fuseau horaire inconnu" in refused.text
