"""schema.org events: our pages carry them (read back with extruct and pyld), the jsonld format
imports them from agencies' pages and JSON documents, and our own pages round-trip."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import extruct
import pytest
from pyld import jsonld
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from starlette.testclient import TestClient

from events_app.db import Database
from events_app.feeds import source_feed
from events_app.models import Event
from events_app.registrations import cancel_event
from events_app.settings import Settings
from importers.base import ImportedEvent, RowError
from importers.jsonld import parse
from importers.run import run_import
from tests.factories import in_days, make_agency, make_event

S = "https://schema.org/"
# pyld must not fetch https://schema.org: the context is given offline. schema.org's own
# context maps every term onto https://schema.org/ (and types date-times); @vocab does the
# first, which is what these tests read.
OFFLINE_CONTEXT = {"@context": {"@vocab": S}}


def _loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    if url.rstrip("/") in ("https://schema.org", "http://schema.org"):
        return {"contextUrl": None, "documentUrl": url, "document": OFFLINE_CONTEXT}
    raise AssertionError(f"network access in a test: {url}")


def page_events(html: str) -> list[dict[str, Any]]:
    """The Event nodes of a page, as extruct reads them and pyld expands them (full IRIs)."""
    blocks = extruct.extract(html, syntaxes=["json-ld"])["json-ld"]
    expanded = jsonld.expand(blocks, {"documentLoader": _loader})
    return [node for node in expanded if S + "Event" in node.get("@type", [])]


def value(node: dict[str, Any], name: str) -> Any:
    found = node[S + name][0]
    return found.get("@value", found.get("@id", found))


def items(data: bytes) -> tuple[list[ImportedEvent], list[RowError]]:
    parsed = list(parse(data))
    return (
        [i for i in parsed if isinstance(i, ImportedEvent)],
        [i for i in parsed if isinstance(i, RowError)],
    )


# --- out: our event pages ------------------------------------------------------------------------


def test_an_onsite_event_page_carries_its_event(client: TestClient, committed: Database) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db, name="Agence France Travail Montreuil")
        event = make_event(db, agency, starts_at=in_days(9, 14), sectors=["N", "J"])
    html = client.get(f"/evenements/{event.id}").text
    [node] = page_events(html)
    assert value(node, "name") == "Job dating logistique"
    start = datetime.fromisoformat(value(node, "startDate"))
    assert start.utcoffset() is not None
    assert start == event.starts_at
    assert datetime.fromisoformat(value(node, "endDate")) == event.ends_at
    assert value(node, "eventStatus") == S + "EventScheduled"
    assert value(node, "eventAttendanceMode") == S + "OfflineEventAttendanceMode"
    assert value(node, "url") == f"http://testserver/evenements/{event.id}"
    place = node[S + "location"][0]
    assert place["@type"] == [S + "Place"]
    address = place[S + "address"][0]
    assert address["@type"] == [S + "PostalAddress"]
    assert value(address, "postalCode") == "93100"
    assert value(address, "addressLocality") == "Montreuil"
    assert value(address, "streetAddress") == "1 place Jean-Jaurès"
    assert float(value(place[S + "geo"][0], "latitude")) == pytest.approx(48.8615)
    assert value(node[S + "organizer"][0], "name") == "Agence France Travail Montreuil"
    assert "recruteurs" in value(node, "description")
    offer = node[S + "offers"][0]
    assert float(value(offer, "price")) == 0


def test_online_and_hybrid_pages_have_a_fitting_location(
    client: TestClient, committed: Database
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        online = make_event(
            db,
            agency,
            format="online",
            venue=None,
            online_url="https://visio.example.org/salon",
            title="Salon en ligne du numérique",
            type="online_fair",
        )
        hybrid = make_event(
            db,
            agency,
            format="hybrid",
            online_url="https://visio.example.org/reunion",
            capacity=10,
            remote_capacity=30,
            title="Réunion d'information",
            type="info_session",
        )
    [node] = page_events(client.get(f"/evenements/{online.id}").text)
    assert value(node, "eventAttendanceMode") == S + "OnlineEventAttendanceMode"
    [virtual] = node[S + "location"]
    assert virtual["@type"] == [S + "VirtualLocation"]
    assert value(virtual, "url") == "https://visio.example.org/salon"

    [node] = page_events(client.get(f"/evenements/{hybrid.id}").text)
    assert value(node, "eventAttendanceMode") == S + "MixedEventAttendanceMode"
    kinds = sorted(location["@type"][0] for location in node[S + "location"])
    assert kinds == [S + "Place", S + "VirtualLocation"]


def test_cancelled_and_postponed_pages_say_so_without_an_offer(
    client: TestClient, committed: Database
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        cancelled = make_event(db, agency)
        cancel_event(db, cancelled, notifier=None, message="Annulé.")  # type: ignore[arg-type]
        postponed = make_event(db, agency)
        postponed.status = "postponed"
    for event, status in ((cancelled, "EventCancelled"), (postponed, "EventPostponed")):
        [node] = page_events(client.get(f"/evenements/{event.id}").text)
        assert value(node, "eventStatus") == S + status
        assert S + "offers" not in node


# --- in: agencies' pages -------------------------------------------------------------------------

AGENCY_PAGE = """<!doctype html><html lang="fr"><head><title>Nos événements</title>
<script type="application/ld+json">
{"@context": "https://schema.org", "@graph": [
  {"@type": "Organization", "@id": "https://agence.example/#org", "name": "Mission locale"},
  {"@type": "ItemList", "itemListElement": [
    {"@type": "ListItem", "position": 1, "item": {
      "@type": "BusinessEvent", "@id": "https://agence.example/e/1",
      "name": "Forum de l'alternance", "startDate": "2030-03-12T09:30:00",
      "endDate": "2030-03-12T12:30:00",
      "eventAttendanceMode": "https://schema.org/OfflineEventAttendanceMode",
      "location": {"@type": "Place", "name": "Halle Tony-Garnier",
        "address": {"@type": "PostalAddress", "streetAddress": "20 place Docteurs Mérieux",
          "postalCode": "69007", "addressLocality": "Lyon"},
        "geo": {"@type": "GeoCoordinates", "latitude": 45.7319, "longitude": 4.8265}}}},
    {"@type": "ListItem", "position": 2, "item": {
      "@type": "EducationEvent", "url": "https://agence.example/e/2",
      "name": "Atelier CV", "startDate": "2030-03-13T14:00:00+01:00",
      "eventStatus": "https://schema.org/EventCancelled",
      "location": {"@type": "VirtualLocation", "url": "https://visio.example.org/cv"}}},
    {"@type": "ListItem", "position": 3, "item": {
      "@type": "Event", "@id": "https://agence.example/e/3", "name": "Sans date"}}
  ]}
]}
</script>
<script type="application/ld+json">
{"@context": "https://schema.org", "@type": "SocialEvent", "@id": "https://agence.example/e/4",
 "name": "Job dating hôtellerie", "startDate": "2030-03-14T10:00:00+01:00",
 "eventAttendanceMode": "https://schema.org/MixedEventAttendanceMode",
 "location": [{"@type": "Place", "address": "Hôtel de ville, 1 rue de la Paix, 13001 Marseille"},
              {"@type": "VirtualLocation", "url": "https://visio.example.org/jd"}],
 "eventStatus": "https://schema.org/EventPostponed"}
</script></head><body><h1>Événements</h1>
<div itemscope itemtype="https://schema.org/Event">
  <span itemprop="name">Portes ouvertes de l'entrepôt</span>
  <meta itemprop="startDate" content="2030-03-15T09:00">
  <link itemprop="url" href="https://agence.example/e/5">
  <div itemprop="location" itemscope itemtype="https://schema.org/Place">
    <span itemprop="name">Entrepôt Nord</span>
    <span itemprop="address">12 rue des Docks, 59000 Lille</span>
  </div>
</div>
</body></html>"""


def test_an_agency_page_gives_its_events() -> None:
    events, errors = items(AGENCY_PAGE.encode())
    by_id = {e.external_id: e for e in events}
    assert sorted(by_id) == [f"https://agence.example/e/{n}" for n in (1, 2, 4, 5)]

    forum = by_id["https://agence.example/e/1"]
    assert forum.title == "Forum de l'alternance"
    assert forum.type == "forum"
    assert forum.format == "onsite"
    # Without an offset: Paris time (UTC+1 in March).
    assert forum.starts_at.astimezone(UTC) == datetime(2030, 3, 12, 8, 30, tzinfo=UTC)
    assert forum.ends_at - forum.starts_at == timedelta(hours=3)
    assert forum.venue.name == "Halle Tony-Garnier"
    assert (forum.venue.postal_code, forum.venue.city) == ("69007", "Lyon")
    assert forum.venue.address == "20 place Docteurs Mérieux"
    assert (forum.venue.lat, forum.venue.lon) == (45.7319, 4.8265)

    workshop = by_id["https://agence.example/e/2"]
    assert (workshop.type, workshop.format, workshop.status) == ("workshop", "online", "cancelled")
    assert workshop.online_url == "https://visio.example.org/cv"
    assert workshop.source_url == "https://agence.example/e/2"

    dating = by_id["https://agence.example/e/4"]
    assert (dating.type, dating.format, dating.status) == ("job_dating", "hybrid", "postponed")
    assert (dating.venue.postal_code, dating.venue.city) == ("13001", "Marseille")
    assert dating.online_url == "https://visio.example.org/jd"

    open_day = by_id["https://agence.example/e/5"]  # microdata
    assert open_day.type == "open_day"
    assert open_day.venue.city == "Lille"
    assert open_day.starts_at.astimezone(UTC) == datetime(2030, 3, 15, 8, 0, tzinfo=UTC)

    [error] = errors
    assert (error.line, error.field) == (3, "starts_at")
    assert error.reason == "date de début absente"


def test_a_json_document_with_a_list_of_events() -> None:
    document = [
        {
            "@context": "http://schema.org",
            "@type": "Event",
            "name": "Conférence métiers du soin",
            "startDate": "2030-05-02",
            "location": {"@type": "Place", "address": "Nantes (44)"},
        },
        {
            "@context": "http://schema.org",
            "@type": "Event",
            "name": "Visite d'entreprise",
            "startDate": "le 3 mai",
        },
    ]
    events, errors = items(json.dumps(document).encode())
    [conference] = events
    assert conference.type == "conference"
    assert conference.venue.city == "Nantes"
    # A date alone: the whole day, Paris time.
    assert conference.starts_at.isoformat() == "2030-05-02T00:00:00+02:00"
    assert conference.ends_at.isoformat() == "2030-05-03T00:00:00+02:00"
    assert conference.external_id.startswith("h-")
    assert [(e.line, e.field) for e in errors] == [(2, "starts_at")]


@pytest.mark.parametrize(
    "data",
    [
        b"<html><body><h1>Nos actualites</h1></body></html>",
        b'<script type="application/ld+json">{"@type": "Organization", "name": "X"}</script>',
        b'{"@context": "https://schema.org", "@type": "WebPage"}',
    ],
)
def test_a_page_without_events_is_a_clear_failure(data: bytes) -> None:
    [error] = list(parse(data))
    assert isinstance(error, RowError)
    assert error.line == 0
    assert error.reason.startswith("aucun événement schema.org")


def test_a_page_without_events_fails_the_run(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    page = tmp_path / "page.html"
    page.write_text("<html><body>Rien</body></html>")
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        feed_id = source_feed(db, agency_id=agency.id, source=str(page), format="jsonld").id
    summary = run_import(committed, settings, feed_id=feed_id)
    assert summary.status == "failed"
    assert (summary.error or "").startswith("aucun événement schema.org")


# --- round trip --------------------------------------------------------------------------------


def test_one_of_our_pages_imports_as_the_same_event(
    client: TestClient, committed: Database, settings: Settings, tmp_path: Path
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        other, _ = make_agency(db)
        original = make_event(
            db,
            agency,
            title="Forum de l'emploi saisonnier",
            type="forum",
            sectors=["A", "G"],
            format="hybrid",
            online_url="https://visio.example.org/forum",
            capacity=40,
            remote_capacity=100,
            starts_at=in_days(12, 9, 30),
            registration_closes_at=in_days(11, 18).isoformat(),
        )
        other_id = other.id
    page = tmp_path / "event.html"
    page.write_text(client.get(f"/evenements/{original.id}").text)
    with committed.transaction() as db:
        feed_id = source_feed(db, agency_id=other_id, source=str(page), format="jsonld").id
    summary = run_import(committed, dataclasses.replace(settings), feed_id=feed_id)
    assert (summary.status, summary.created, summary.rejected) == ("succeeded", 1, 0)
    with committed.transaction() as db:
        copy = db.scalar(
            select(Event).where(Event.feed_id == feed_id).options(selectinload(Event.sector_rows))
        )
        first = db.scalar(
            select(Event).where(Event.id == original.id).options(selectinload(Event.sector_rows))
        )
        assert copy is not None and first is not None
        assert copy.external_id == f"http://testserver/evenements/{first.id}"
        for name in (
            "title",
            "type",
            "format",
            "starts_at",
            "ends_at",
            "venue_name",
            "venue_address",
            "venue_postal_code",
            "venue_city",
            "venue_lat",
            "venue_lon",
            "online_url",
            "capacity",
            "remote_capacity",
            "registration_closes_at",
            "status",
        ):
            assert getattr(copy, name) == getattr(first, name), name
        assert copy.sectors == first.sectors
        assert "recruteurs" in copy.description_html
