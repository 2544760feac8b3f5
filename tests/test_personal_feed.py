"""The personal calendar feed of a seeker: /agenda/{token}.ics and its place on /compte.

It holds the person's registrations, each with its own state (STATUS:CANCELLED once they
cancel, TENTATIVE while waitlisted), and the events matching their saved preferences, once
each. Its address is a secret: revocable from the account page, 404 for anything else, sent
`private`, never shared between people by the in-process cache.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import icalendar
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from events_app import accounts
from events_app.calendar_feeds import personal_feed_events
from events_app.calendars import PERSONAL_NAME, personal_ics
from events_app.db import Database, utcnow
from events_app.errors import NotFound
from events_app.events import get_event, update_event
from events_app.models import Event, Registration, Seeker
from events_app.notifications import Notifier
from events_app.registrations import Person, cancel_registration, register
from events_app.settings import Settings
from events_app.web import calendars as web_calendars
from tests.factories import in_days, make_agency, make_event, make_seeker
from tests.helpers import (
    EMAIL,
    PASSWORD,
    ParsedEvent,
    by_uid,
    csrf_token,
    post_form,
    read_icalendar,
    read_vobject,
    sign_out,
    sign_up,
)

FEED_URL = re.compile(r'value="http://testserver(/agenda/([A-Za-z0-9_-]{43})\.ics)"')
OTHER_EMAIL = "dominique.durand@exemple.fr"


# --- helpers -------------------------------------------------------------------------------


def uid(settings: Settings, event_id: int) -> str:
    return f"event-{event_id}@{settings.host}"


def feed_path(client: TestClient) -> str:
    """The personal feed's path, as the account page shows it."""
    page = client.get("/compte")
    assert page.status_code == 200, page.text
    match = FEED_URL.search(page.text)
    assert match is not None, "no personal feed URL on /compte"
    return match.group(1)


def parse_both(body: bytes) -> dict[str, dict[str, ParsedEvent]]:
    """The feed read by icalendar and by vobject, by UID."""
    return {"icalendar": by_uid(read_icalendar(body)), "vobject": by_uid(read_vobject(body))}


def register_on_site(client: TestClient, event_id: int, email: str = EMAIL) -> str:
    """Register through the event page, as the signed-in person; returns the manage path."""
    response = post_form(
        client,
        f"/evenements/{event_id}/inscription",
        {"first_name": "Camille", "last_name": "Martin", "email": email, "consent": "oui"},
        page=f"/evenements/{event_id}",
    )
    assert response.status_code == 303, response.text
    return response.headers["location"].split("?")[0]


def cancel_on_site(client: TestClient, manage_path: str) -> None:
    response = post_form(client, f"{manage_path}/annulation", {}, page=manage_path)
    assert response.status_code == 303, response.text


def save_preferences(client: TestClient, **data: Any) -> None:
    response = post_form(client, "/compte/preferences", data)
    assert response.status_code == 303, response.text


def regenerate(client: TestClient) -> httpx.Response:
    return post_form(client, "/compte/agenda/regenerer", {}, page="/compte")


def ical_property(body: bytes, event_uid: str, name: str) -> str:
    calendar = icalendar.Calendar.from_ical(body)
    [vevent] = [v for v in calendar.walk("VEVENT") if str(v["UID"]) == event_uid]
    return str(vevent[name])


# --- the feed over HTTP ----------------------------------------------------------------------


def test_feed_holds_registrations_with_their_state_and_matching_events(
    client: TestClient, committed: Database, settings: Settings
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        registered = make_event(db, agency, title="Job dating logistique", sectors=["N"]).id
        matching = make_event(
            db, agency, title="Atelier santé", sectors=["J"], type="workshop", starts_at=in_days(9)
        ).id
        other = make_event(db, agency, title="Forum transport", sectors=["N"]).id
        # Matches the preferences but lies beyond the feed window (6 months ahead).
        far = make_event(
            db, agency, title="Atelier lointain", sectors=["J"], starts_at=in_days(250)
        )
        far_id = far.id
    sign_up(client)
    manage_path = register_on_site(client, registered)
    save_preferences(client, sectors=["J"])

    path = feed_path(client)
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert response.headers["cache-control"] == "private, max-age=300"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"] == (
        'inline; filename="mes-evenements-emploi.ics"'
    )
    assert "etag" in response.headers and "last-modified" in response.headers

    for parser, items in parse_both(response.content).items():
        assert set(items) == {uid(settings, registered), uid(settings, matching)}, parser
        assert uid(settings, other) not in items and uid(settings, far_id) not in items
        mine = items[uid(settings, registered)]
        assert (mine.status, mine.summary, mine.sequence) == (
            "CONFIRMED",
            "Job dating logistique",
            1,
        ), parser
        assert "Votre inscription : Confirmée." in mine.description, parser
        # A suggestion is named so, and nothing is confirmed for the person.
        suggested = items[uid(settings, matching)]
        assert (suggested.status, suggested.summary) == (None, "Suggestion : Atelier santé"), parser
        assert suggested.start_utc == in_days(9).astimezone(UTC), parser
    calendar = icalendar.Calendar.from_ical(response.content)
    assert str(calendar["X-WR-CALNAME"]) == PERSONAL_NAME
    assert "URL" not in calendar  # the secret stays out of files people pass around
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/Paris"]
    # Private, and a suggestion does not make the person busy.
    assert ical_property(response.content, uid(settings, registered), "CLASS") == "PRIVATE"
    assert ical_property(response.content, uid(settings, registered), "TRANSP") == "OPAQUE"
    assert ical_property(response.content, uid(settings, matching), "TRANSP") == "TRANSPARENT"

    # The person cancels: the event stays, cancelled for them, above the event's revision as
    # the CANCEL invitation is.
    cancel_on_site(client, manage_path)
    after = client.get(path, headers={"If-None-Match": response.headers["etag"]})
    assert after.status_code == 200
    for parser, items in parse_both(after.content).items():
        assert set(items) == {uid(settings, registered), uid(settings, matching)}, parser
        mine = items[uid(settings, registered)]
        assert mine.status == "CANCELLED", parser
        assert mine.summary == "[Inscription annulée] Job dating logistique", parser
        assert mine.sequence == 2, parser
        assert "Votre inscription : Annulée." in mine.description, parser
        assert items[uid(settings, matching)].status is None, parser
    assert ical_property(after.content, uid(settings, registered), "TRANSP") == "TRANSPARENT"

    # Registered again: one entry, the live registration's.
    register_on_site(client, registered)
    again = parse_both(client.get(path).content)
    for parser, items in again.items():
        assert len(items) == 2, parser
        assert items[uid(settings, registered)].status == "CONFIRMED", parser


def test_registered_event_matching_the_preferences_appears_once(
    client: TestClient, committed: Database, settings: Settings
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        both = make_event(db, agency, sectors=["J"]).id
    sign_up(client)
    register_on_site(client, both)
    save_preferences(client, sectors=["J"])
    body = client.get(feed_path(client)).content
    assert body.count(f"UID:{uid(settings, both)}".encode()) == 1
    [parsed] = read_icalendar(body)
    assert "Votre inscription : Confirmée." in parsed.description


def test_waitlisted_and_cancelled_events(
    client: TestClient, committed: Database, settings: Settings
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        full = make_event(db, agency, title="Atelier CV", capacity=1, waitlist=True).id
        dropped = make_event(db, agency, title="Salon annulé", sectors=["J"]).id
    with committed.transaction(lock=True) as db:
        register(
            db,
            event_id=full,
            person=Person(first_name="Dominique", last_name="Durand", email=OTHER_EMAIL),
            notifier=Notifier(db, settings),
        )
    sign_up(client)
    register_on_site(client, full)
    save_preferences(client, sectors=["J"])
    with committed.transaction() as db:
        event = get_event(db, dropped)
        event.status = "cancelled"
        event.revision += 1
        event.updated_at = utcnow()
    body = client.get(feed_path(client)).content
    for parser, items in parse_both(body).items():
        waiting = items[uid(settings, full)]
        assert (waiting.status, waiting.summary) == (
            "TENTATIVE",
            "[Liste d'attente] Atelier CV",
        ), parser
        assert "Votre inscription : Liste d'attente." in waiting.description, parser
        cancelled = items[uid(settings, dropped)]
        assert (cancelled.status, cancelled.summary, cancelled.sequence) == (
            "CANCELLED",
            "Suggestion : [Annulé] Salon annulé",
            2,
        ), parser


def test_feed_reads_the_same_in_every_parser(
    client: TestClient,
    committed: Database,
    settings: Settings,
    read_all: Callable[[bytes], dict[str, list[ParsedEvent]]],
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        # Four months apart: across a daylight-saving change, whatever today is.
        near = make_event(db, agency, title="Bientôt", starts_at=in_days(3, 14)).id
        later = make_event(db, agency, title="Plus tard", sectors=["J"], starts_at=in_days(120, 14))
        later_id = later.id
    sign_up(client)
    register_on_site(client, near)
    save_preferences(client, sectors=["J"])
    body = client.get(feed_path(client)).content
    for parser, parsed in read_all(body).items():
        items = by_uid(parsed)
        assert set(items) == {uid(settings, near), uid(settings, later_id)}, parser
        for event_id, when in ((near, in_days(3, 14)), (later_id, in_days(120, 14))):
            item = items[uid(settings, event_id)]
            assert item.start_local.hour == 14, parser
            assert item.start_utc == when.astimezone(UTC), parser
        assert items[uid(settings, near)].status == "CONFIRMED", parser


def test_conditional_requests_and_changes(
    client: TestClient, committed: Database, settings: Settings
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        event_id = make_event(db, agency, sectors=["J"]).id
    sign_up(client)
    path = feed_path(client)
    first = client.get(path)
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    assert read_icalendar(first.content) == []  # no preference saved, no registration

    cached = client.get(path, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["etag"] == etag
    assert cached.headers["cache-control"] == "private, max-age=300"
    assert cached.headers["referrer-policy"] == "same-origin"
    assert client.get(path, headers={"If-Modified-Since": last_modified}).status_code == 304
    assert client.get(path, headers={"If-None-Match": '"autre"'}).status_code == 200

    # Saving preferences changes the feed without any timestamp of the data rising: neither
    # validator may hide it.
    save_preferences(client, sectors=["J"])
    by_etag = client.get(path, headers={"If-None-Match": etag})
    by_date = client.get(path, headers={"If-Modified-Since": last_modified})
    for response in (by_etag, by_date):
        assert response.status_code == 200
        assert {item.uid for item in read_icalendar(response.content)} == {uid(settings, event_id)}
    assert parsedate_to_datetime(by_date.headers["last-modified"]) > parsedate_to_datetime(
        last_modified
    )
    new_etag = by_etag.headers["etag"]
    assert new_etag != etag and by_date.headers["etag"] == new_etag

    # An edit of the event shows at once (no time-based cache for personal feeds).
    with committed.transaction() as db:
        update_event(db, get_event(db, event_id), {"title": "Titre modifié"})
    edited = client.get(path, headers={"If-None-Match": new_etag})
    assert edited.status_code == 200
    [parsed] = read_icalendar(edited.content)
    assert (parsed.summary, parsed.sequence) == ("Suggestion : Titre modifié", 2)


def test_unchanged_feed_is_served_from_memory_after_three_small_queries(
    client: TestClient,
    committed: Database,
    queries: list[str],
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        event_id = make_event(db, agency, sectors=["J"]).id
    sign_up(client)
    register_on_site(client, event_id)
    save_preferences(client, sectors=["J"])
    path = feed_path(client)
    first = client.get(path)
    queries.clear()
    second = client.get(path)
    assert second.content == first.content
    assert second.headers["last-modified"] == first.headers["last-modified"]
    selects = [q for q in queries if q.lstrip().upper().startswith("SELECT")]
    # The token, the registrations' fingerprint, the events' fingerprint: no search, no render.
    assert len(selects) == 3, selects


def test_regenerating_revokes_the_old_address(client: TestClient, committed: Database) -> None:
    sign_up(client)
    old_path = feed_path(client)
    assert feed_path(client) == old_path  # stable across visits
    assert client.get(old_path).status_code == 200
    cache = web_calendars.personal_cache_of(client.app)
    old_token = old_path.removeprefix("/agenda/").removesuffix(".ics")
    assert cache.peek(old_token) is not None

    response = regenerate(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/compte?agenda=1#mon-agenda"
    page = client.get("/compte?agenda=1")
    assert "l’ancienne ne fonctionne plus" in page.text
    new_path = feed_path(client)
    assert new_path != old_path
    assert cache.peek(old_token) is None

    gone = client.get(old_path)
    assert gone.status_code == 404
    assert not gone.headers["content-type"].startswith("text/calendar")
    assert client.get(new_path).status_code == 200
    with committed.transaction() as db:
        assert db.scalars(select(Seeker.feed_token)).one() == new_path[8:-4]


def test_regenerating_needs_the_form_token_and_a_session(client: TestClient) -> None:
    sign_up(client)
    path = feed_path(client)
    forged = client.post("/compte/agenda/regenerer", data={}, follow_redirects=False)
    assert forged.status_code == 403
    assert feed_path(client) == path
    token = csrf_token(client, "/compte")
    sign_out(client)
    refused = client.post(
        "/compte/agenda/regenerer", data={"csrftoken": token}, follow_redirects=False
    )
    assert refused.status_code == 303
    assert refused.headers["location"] == "/compte/connexion?suivant=%2Fcompte"
    assert client.get(path).status_code == 200


def test_account_page_shows_the_address_and_subscribe_links(
    client: TestClient, settings: Settings
) -> None:
    sign_up(client)
    page = client.get("/compte")
    assert page.headers["cache-control"] == "no-store"
    path = feed_path(client)
    url = f"http://testserver{path}"
    assert f'href="webcal://testserver{path}"' in page.text
    assert f'href="{url}"' in page.text
    google = re.search(r'href="(https://calendar\.google\.com/[^"]+)"', page.text)
    outlook = re.search(r'href="(https://outlook\.live\.com/[^"]+)"', page.text)
    assert google is not None and outlook is not None
    assert unquote(google.group(1).split("cid=", 1)[1]) == f"webcal://testserver{path}"
    query = parse_qs(urlsplit(outlook.group(1).replace("&amp;", "&")).query)
    assert query["url"] == [url]
    assert query["name"] == [PERSONAL_NAME]
    assert 'action="/compte/agenda/regenerer"' in page.text
    assert "renseignez vos préférences" in page.text  # none saved yet


def test_account_page_lists_registrations_before_suggestions(
    client: TestClient, committed: Database
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        event_id = make_event(db, agency, title="Atelier CV", sectors=["J"]).id
    sign_up(client)
    register_on_site(client, event_id)
    save_preferences(client, sectors=["J"])
    page = client.get("/compte").text
    registrations = page.index('<h2 id="mes-inscriptions">Mes inscriptions</h2>')
    suggestions = page.index('<h2 id="pour-vous">')
    assert registrations < suggestions


def test_each_person_gets_their_own_feed(
    client: TestClient, committed: Database, settings: Settings
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        mine = make_event(db, agency, title="Le mien").id
        theirs = make_event(db, agency, title="Le sien").id
    sign_up(client)
    register_on_site(client, mine)
    my_path = feed_path(client)
    sign_out(client)
    sign_up(client, email=OTHER_EMAIL)
    register_on_site(client, theirs, email=OTHER_EMAIL)
    their_path = feed_path(client)
    assert their_path != my_path
    client.cookies.clear()  # a calendar app has no session
    assert {i.uid for i in read_icalendar(client.get(my_path).content)} == {uid(settings, mine)}
    assert {i.uid for i in read_icalendar(client.get(their_path).content)} == {
        uid(settings, theirs)
    }
    # Each in the personal cache under its own token; nothing in the public feeds' cache.
    personal = web_calendars.personal_cache_of(client.app)
    for path in (my_path, their_path):
        document = personal.peek(path[8:-4])
        assert document is not None
        assert document.body == client.get(path).content
    assert len(web_calendars.feed_cache_of(client.app)._entries) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/agenda/inconnu.ics",
        "/agenda/" + "A" * 43 + ".ics",
        "/agenda/" + "A" * 65 + ".ics",
        "/agenda/%00.ics",
        "/agenda/%C3%A9t%C3%A9.ics",
        "/agenda/a%27%20OR%20%271%27=%271.ics",
        "/agenda/.ics",
        "/agenda/x.ics.ics",
    ],
)
def test_unknown_tokens_are_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert not response.headers["content-type"].startswith("text/calendar")
    assert response.headers["referrer-policy"] == "same-origin"


def test_only_the_exact_token_opens_the_feed(client: TestClient) -> None:
    sign_up(client)
    path = feed_path(client)
    token = path[8:-4]
    assert client.get(f"/agenda/{token.swapcase()}.ics").status_code == 404
    assert client.get(f"/agenda/{token}x.ics").status_code == 404
    assert client.get(f"/agenda/{token[:-1]}.ics").status_code == 404


# --- the domain ------------------------------------------------------------------------------


def _seeker(db: Session, email: str = EMAIL) -> Seeker:
    return make_seeker(db, email=email, password=PASSWORD)


def _register(db: Session, settings: Settings, event: Event, seeker: Seeker) -> Registration:
    outcome = register(
        db,
        event_id=event.id,
        person=Person(first_name="Camille", last_name="Martin", email=seeker.email),
        notifier=Notifier(db, settings),
        seeker_id=seeker.id,
    )
    return outcome.registration


def test_feed_tokens(db: Session) -> None:
    seeker = _seeker(db)
    assert seeker.feed_token is None
    token = accounts.ensure_feed_token(db, seeker)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert accounts.ensure_feed_token(db, seeker) == token
    assert accounts.seeker_by_feed_token(db, token) is seeker

    new = accounts.regenerate_feed_token(db, seeker)
    assert new != token
    assert accounts.seeker_by_feed_token(db, new) is seeker
    for bad in (token, "", "x" * 65, new + "x", new[:-1], "\x00", "é" * 10, new.swapcase()):
        with pytest.raises(NotFound) as refused:
            accounts.seeker_by_feed_token(db, bad)
        assert refused.value.message == "Agenda introuvable."


def test_ensure_feed_token_keeps_a_token_set_meanwhile(db: Session) -> None:
    seeker = _seeker(db)
    # Another request filled the column after this one loaded the row.
    db.execute(
        update(Seeker)
        .where(Seeker.id == seeker.id)
        .values(feed_token="premier")
        .execution_options(synchronize_session=False)
    )
    assert accounts.ensure_feed_token(db, seeker) == "premier"


def test_personal_feed_events(db: Session, settings: Settings) -> None:
    agency, _ = make_agency(db)
    seeker = _seeker(db)
    soon = make_event(db, agency, title="Bientôt", starts_at=in_days(2))
    old = make_event(db, agency, title="Il y a longtemps", starts_at=in_days(3))
    suggestion = make_event(db, agency, title="Suggestion", sectors=["J"], starts_at=in_days(1))
    make_event(db, agency, title="Ni l'un ni l'autre", sectors=["K"], starts_at=in_days(4))
    first = _register(db, settings, soon, seeker)
    cancel_registration(db, token=first.token, notifier=Notifier(db, settings))
    live = _register(db, settings, soon, seeker)
    old_registration = _register(db, settings, old, seeker)
    # Moved out of the window (more than 30 days ago).
    old.starts_at = datetime.now(UTC) - timedelta(days=45)
    old.ends_at = old.starts_at + timedelta(hours=2)
    db.flush()

    # No preference saved: the registrations only.
    assert [(e.id, r) for e, r in personal_feed_events(db, seeker)] == [(soon.id, live)]

    accounts.update_preferences(
        db, seeker, home_place=None, radius_km=None, sectors=["J"], types=[], formats=[]
    )
    entries = personal_feed_events(db, seeker)
    assert [(e.title, r) for e, r in entries] == [("Suggestion", None), ("Bientôt", live)]
    assert old_registration not in [r for _, r in entries]
    # Loaded for rendering: agency and sectors.
    assert entries[0][0].agency.name == agency.name and entries[0][0].sectors == ["J"]
    body = personal_ics(entries, settings)
    assert [str(v["UID"]) for v in icalendar.Calendar.from_ical(body).walk("VEVENT")] == [
        uid(settings, suggestion.id),
        uid(settings, soon.id),
    ]
    # Same data, same bytes (DTSTAMP is the data's last change).
    assert personal_ics(personal_feed_events(db, seeker), settings) == body


def test_a_lost_home_place_keeps_the_other_preferences(db: Session) -> None:
    agency, _ = make_agency(db)
    seeker = _seeker(db)
    kept = make_event(db, agency, sectors=["J"])
    seeker.home_place = "Nullepartville-sur-Rien"
    seeker.sectors = ["J"]
    db.flush()
    assert [e.id for e, _ in personal_feed_events(db, seeker)] == [kept.id]
    seeker.sectors = []
    db.flush()
    assert personal_feed_events(db, seeker) == []


def test_last_modified_only_rises() -> None:
    now = datetime(2030, 5, 1, 12, 0, 0, 300_000, tzinfo=UTC)
    first = web_calendars._personal_document(b"BEGIN:VCALENDAR\r\nA", None, now)
    assert first.last_modified == now.replace(microsecond=0)
    same = web_calendars._personal_document(b"BEGIN:VCALENDAR\r\nA", first, now + timedelta(1))
    assert same is first
    # Other bytes within the same second: one second later, so a client's date cannot match.
    other = web_calendars._personal_document(b"BEGIN:VCALENDAR\r\nB", first, now)
    assert other.last_modified == first.last_modified + timedelta(seconds=1)
    assert format_datetime(other.last_modified, usegmt=True) != format_datetime(
        first.last_modified, usegmt=True
    )
