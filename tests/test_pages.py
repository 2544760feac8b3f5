"""The public pages render in French, show the right details, and report bad input beside
the form field."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from events_app.app import create_app
from events_app.db import Database
from events_app.settings import DEFAULT_SECRET_KEY, Settings
from tests.factories import in_days, make_agency, make_event


def test_home_lists_upcoming_events_in_french(client: TestClient, committed: Database) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db, name="Mission locale de Montreuil")
        make_event(db, agency, title="Job dating de la logistique", starts_at=in_days(5, 9, 30))
    page = client.get("/")
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    assert page.text.count("<h1") == 1
    assert "Job dating de la logistique" in page.text
    assert " h 30" in page.text  # « mardi 8 décembre 2026, 9 h 30 »
    assert "20 places restantes" in page.text


def test_search_page_filters_and_shows_distance(client: TestClient, committed: Database) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        make_event(db, agency, title="Atelier CV à Montreuil")
    page = client.get("/evenements", params={"near": "93100", "radius_km": "10"})
    assert page.status_code == 200
    assert "Atelier CV à Montreuil" in page.text
    assert "autour de Montreuil" in page.text
    assert "km" in page.text
    empty = client.get("/evenements", params={"q": "introuvable-xyz"})
    assert "Aucun événement ne correspond" in empty.text
    assert "Élargissez la recherche" in empty.text


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"near": "Zzzyxville"}, "near", "Lieu inconnu"),
        ({"radius_km": "-5"}, "radius_km", "rayon"),
        ({"from": "2026-13-45"}, "from", "Date invalide"),
    ],
)
def test_search_page_reports_bad_input_beside_the_field(
    client: TestClient, params: dict[str, str], field: str, message: str
) -> None:
    page = client.get("/evenements", params=params)
    assert page.status_code == 400
    assert f'id="{field}-error"' in page.text
    assert f'aria-describedby="{field}-error"' in page.text
    assert message in page.text


def test_event_page_shows_details_and_map_link(client: TestClient, committed: Database) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db, name="Cap emploi Seine-Saint-Denis")
        event = make_event(
            db,
            agency,
            description="<p>Venez avec votre CV</p><script>alert('x')</script>",
            accessibility_notes="Salle accessible en fauteuil roulant",
            job_offers=35,
        )
    page = client.get(f"/evenements/{event.id}")
    assert page.status_code == 200
    assert "Cap emploi Seine-Saint-Denis" in page.text
    assert "Venez avec votre CV" in page.text and "<script>alert" not in page.text
    assert "openstreetmap.org" in page.text
    assert "Salle accessible en fauteuil roulant" in page.text
    assert "35 offres" in page.text
    assert f"/events/{event.id}.ics" in page.text


def test_unknown_paths_and_ids_are_french_404_pages(client: TestClient) -> None:
    for path in ("/evenements/0", "/evenements/abc", "/nulle-part"):
        page = client.get(path)
        assert page.status_code == 404
        assert "introuvable" in page.text


def test_production_refuses_the_default_secret(settings: Settings) -> None:
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(replace(settings, environment="production", secret_key=DEFAULT_SECRET_KEY))


def test_times_are_given_in_the_events_zone_and_named(
    client: TestClient, committed: Database
) -> None:
    # An online event from Guadeloupe at 13 h 30 there: 18 h 30 in Paris (winter).
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        starts = datetime(2027, 1, 12, 13, 30, tzinfo=ZoneInfo("America/Guadeloupe"))
        event = make_event(
            db,
            agency,
            title="Salon en ligne Antilles",
            format="online",
            venue=None,
            online_url="https://visio.example.org/antilles",
            starts_at=starts,
            ends_at=starts + timedelta(hours=2),
        )
        event.timezone = "America/Guadeloupe"
        event_id = event.id
    page = client.get(f"/evenements/{event_id}").text
    assert "13 h 30</span>, heure de la Guadeloupe" in page
    assert "soit 18 h 30 à Paris" in page
    listing = client.get("/evenements", params={"q": "Antilles"}).text
    assert "heure de la Guadeloupe" in listing and "18 h 30 à Paris" in listing
    # Paris events say nothing of their zone.
    with committed.transaction() as db:
        paris_id = make_event(db, agency, title="Forum à Paris").id
    assert "heure de" not in client.get(f"/evenements/{paris_id}").text
