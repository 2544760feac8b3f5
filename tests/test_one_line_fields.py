"""One-line fields (titles, venues, names) stay on one line whatever the input path.

A line break in a title used to reach mail subjects, where the email library refuses it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from events_app.agencies import create_agency
from events_app.db import Database
from events_app.events import clean_event_fields
from events_app.feeds import add_feed
from events_app.formatting import one_line
from events_app.models import Event
from events_app.settings import Settings
from importers.run import run_import
from tests.factories import event_fields, make_agency

# Every way of ending a line: an HTML entity (decoded by the sanitiser), CR, LF, CRLF,
# vertical tab, form feed, NEL, and the Unicode line and paragraph separators.
BREAKS = ["&#10;", "&#13;&#10;", "\r", "\n", "\r\n", "\x0b", "\x0c", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("brk", BREAKS)
def test_one_line_folds_every_line_break(brk: str) -> None:
    expected = f"Salon{brk}emploi" if "&" in brk else "Salon emploi"  # entities: not decoded
    assert one_line(f" Salon{brk}emploi ") == expected


def test_one_line_keeps_typography() -> None:
    assert one_line("Forum\u00a0: « 13\u202fh\u00a030 »") == "Forum\u00a0: « 13\u202fh\u00a030 »"


@pytest.mark.parametrize("brk", BREAKS)
def test_event_fields_are_one_line(brk: str) -> None:
    raw = event_fields(title=f"Salon{brk}emploi")
    raw["venue"] = {**raw["venue"], "name": f"Maison{brk}de l'emploi", "city": f"Lyon{brk}"}
    fields = clean_event_fields(
        {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in raw.items()},
        partial=False,
    )
    assert fields["title"] == "Salon emploi"
    assert fields["venue"]["name"] == "Maison de l'emploi"
    assert fields["venue"]["city"] == "Lyon"


def test_api_title_and_venue_are_stored_on_one_line(
    client: TestClient, committed: Database
) -> None:
    with committed.transaction() as db:
        _, token = make_agency(db)
    raw = event_fields(title="Salon\u2028emploi\nLyon")
    body = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in raw.items()}
    body["venue"] = {**body["venue"], "address": "1 rue\r\nde la Paix"}
    response = client.post(
        "/api/v1/agency/events", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "Salon emploi Lyon"
    with committed.transaction() as db:
        event = db.get(Event, response.json()["id"])
        assert event is not None
        assert event.title == "Salon emploi Lyon"
        assert event.venue_address == "1 rue de la Paix"


def test_agency_name_is_one_line(committed: Database) -> None:
    with committed.transaction() as db:
        agency, _ = create_agency(db, slug="multi-ligne", name="Mission\nlocale\u2028de Lyon")
        assert agency.name == "Mission locale de Lyon"


def test_feed_titles_are_stored_on_one_line(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    row = {
        "id": 1,
        "titre": "Salon&#10;emploi\u000bLyon",
        "description": "<p>Rencontrez des recruteurs.</p>",
        "dateEvenement": "2030-12-10T08:30:00.000+00:00",
        "heureDebut": "08:30:00",
        "heureFin": "11:30:00",
        "timezone": "Europe/Paris",
        "type": "Job dating",
        "modalites": "en physique",
        "ville": "Lyon&#13;&#10;3e",
        "codePostal": "69003",
        "latitude": 45.7597,
        "longitude": 4.8422,
        "nombrePlaceTotalPresentiel": 20,
        "codesRome": ["J"],
        "libelleEtablissement": "Agence\u2028Lyon Part-Dieu",
    }
    source = tmp_path / "feed.json"
    source.write_text(json.dumps({"totalElements": 1, "content": [row]}), encoding="utf-8")
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        feed = add_feed(
            db,
            agency_id=agency.id,
            url="https://flux.example.org/f.json",
            format="ft-json",
            interval_minutes=None,
        )
        feed_id = feed.id
    summary = run_import(committed, settings, feed_id=feed_id, source=str(source))
    assert summary.status == "succeeded", summary
    with committed.transaction() as db:
        event = db.scalars(select(Event).where(Event.feed_id == feed_id)).one()
        assert event.title == "Salon emploi Lyon"
        assert "\n" not in (event.venue_city or "") and "\r" not in (event.venue_city or "")
        assert "\u2028" not in (event.venue_name or "")
