"""Stored XSS: hostile text typed or imported into every field is neutralised in pages, mails
and feeds."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import select
from starlette.testclient import TestClient

from events_app.db import Database
from events_app.feeds import source_feed
from events_app.models import OutboxMessage
from events_app.settings import Settings
from importers.run import run_import
from tests.factories import make_agency

PAYLOAD = '<script>alert("x")</script><img src=x onerror=alert(1)>'
LIVE_MARKUP = re.compile(r"<script>alert|<img src=x onerror|onerror=alert\(1\)>", re.I)


def _no_live_markup(html: str, where: str) -> None:
    match = LIVE_MARKUP.search(html)
    context = html[max(0, match.start() - 80) : match.end() + 40] if match else ""
    assert match is None, f"hostile markup rendered live in {where}: …{context}…"


def _created(client: TestClient, committed: Database) -> tuple[int, str]:
    with committed.transaction() as db:
        _, token = make_agency(db, name=f"Agence {PAYLOAD}")
    body = {
        "title": f"Forum {PAYLOAD}",
        "description": f'<p>Bienvenue</p>{PAYLOAD}<a href="javascript:alert(1)">lien</a>',
        "type": "forum",
        "sectors": ["J"],
        "format": "onsite",
        "starts_at": "2030-03-12T09:30:00+01:00",
        "ends_at": "2030-03-12T12:30:00+01:00",
        "venue": {
            "name": f"Salle {PAYLOAD}",
            "address": f"1 rue {PAYLOAD}",
            "postal_code": "69003",
            "city": "Lyon",
        },
        "accessibility_notes": PAYLOAD,
        "capacity": 10,
    }
    response = client.post(
        "/api/v1/agency/events", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], token


def test_typed_fields_are_neutralised_in_pages_mails_and_feeds(
    client: TestClient, committed: Database
) -> None:
    event_id, _ = _created(client, committed)
    detail = client.get(f"/api/v1/events/{event_id}").json()
    # Markup is removed from plain-text fields when they are stored.
    assert detail["title"] == "Forum"
    assert detail["venue"]["name"] == "Salle" and detail["agency"]["name"] == "Agence"
    assert "<script" not in detail["description"] and "javascript:" not in detail["description"]
    for path in ("/", "/evenements", f"/evenements/{event_id}", "/evenements?q=forum"):
        page = client.get(path)
        assert page.status_code == 200
        _no_live_markup(page.text, path)
    registered = client.post(
        f"/api/v1/events/{event_id}/registrations",
        json={"first_name": PAYLOAD[:90], "last_name": "Nom", "email": "x@example.org"},
    )
    assert registered.status_code == 201, registered.text
    manage = client.get(registered.json()["manage_url"].replace("http://testserver", ""))
    _no_live_markup(manage.text, "manage page")
    with committed.transaction() as db:
        mail = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "confirmed")).one()
        assert mail.body_html is not None
        _no_live_markup(mail.body_html, "confirmation mail")
    for path in (f"/events/{event_id}.ics", "/calendar.ics"):
        feed = client.get(path).text
        assert "BEGIN:VCALENDAR" in feed
        # Feeds are plain text: no HTML tags survive into DESCRIPTION.
        assert "<script" not in feed and "<img" not in feed


def test_imported_fields_are_neutralised(
    client: TestClient, committed: Database, settings: Settings, tmp_path: Path
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db, slug="import-xss")
    path = tmp_path / "flux.json"
    row = {
        "id": 1,
        "titre": f"Job dating {PAYLOAD}",
        "description": f"<p>Texte</p>{PAYLOAD}",
        "dateEvenement": "2030-12-10T08:30:00.000+00:00",
        "heureDebut": "08:30:00",
        "heureFin": "11:30:00",
        "ville": "Lyon",
        "codePostal": "69003",
        "latitude": 45.76,
        "longitude": 4.85,
        "codesRome": ["J"],
        "type": "Job dating",
        "modalites": "en physique",
        "libelleEtablissement": f"Agence {PAYLOAD}",
    }
    path.write_text(json.dumps({"totalElements": 1, "content": [row]}), encoding="utf-8")
    with committed.transaction() as db:
        feed_id = source_feed(db, agency_id=agency.id, source=str(path), format="ft-json").id
    summary = run_import(committed, settings, feed_id=feed_id)
    assert summary.created == 1, summary
    [item] = client.get("/api/v1/events", params={"agency": "import-xss"}).json()["items"]
    page = client.get(f"/evenements/{item['id']}")
    _no_live_markup(page.text, "imported event page")
    assert "<script" not in client.get(f"/api/v1/events/{item['id']}").json()["description"]
