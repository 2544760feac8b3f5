"""Calendars: what real clients read from our files, and the HTTP contract of the feeds.

Every calendar produced here is read back by three parsers: Python's icalendar and vobject,
and Mozilla's ical.js (Thunderbird's parser) run by node from tests/js. The time checks are
the point: an event at 14:00 in Paris must read 12:00 UTC in July and 13:00 UTC in January in
each of them (icalendar's own add_missing_timezones() output fails this in ical.js).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams
from starlette.testclient import TestClient

from events_app.calendar_feeds import feed_window, list_feed_events
from events_app.calendars import (
    DEFAULT_NAME,
    event_ics,
    feed_ics,
    feed_name,
    invite_ics,
    subscribe_links,
)
from events_app.db import Database, utcnow
from events_app.events import get_event, update_event
from events_app.models import Event, Registration
from events_app.search import SearchQuery
from events_app.settings import Settings
from events_app.web import calendars as web_calendars
from tests.factories import in_days, make_agency, make_event
from tests.helpers import (
    ParsedEvent,
    by_uid,
    read_icalendar,
    read_vobject,
)

PARIS = ZoneInfo("Europe/Paris")
NEXT_YEAR = datetime.now(UTC).year + 1
ONLINE = {"format": "online", "venue": None, "online_url": "https://visio.example.org/atelier"}


# --- helpers -------------------------------------------------------------------------------


def paris(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def last_sunday(year: int, month: int) -> date:
    day = date(year, month + 1, 1) - timedelta(days=1) if month < 12 else date(year, 12, 31)
    return day - timedelta(days=(day.weekday() + 1) % 7)


def cancel(db: Session, event: Event) -> None:
    # No cancel_event domain function yet: do what it must do for calendars.
    event.status = "cancelled"
    event.revision += 1
    event.updated_at = utcnow()
    db.flush()


def uid(settings: Settings, event_id: int) -> str:
    return f"event-{event_id}@{settings.host}"


@pytest.fixture
def cal_client(client: TestClient) -> TestClient:
    """The app's client, with the calendar routes mounted if the app does not mount them yet."""
    router = client.app.router
    names = {getattr(route, "name", None) for route in router.routes}
    if "calendars:feed" not in names:
        router.routes[0:0] = web_calendars.routes
    return client


@pytest.fixture
def seed(committed: Database) -> Callable[..., list[int]]:
    def make(*specs: dict[str, Any]) -> list[int]:
        with committed.transaction() as db:
            agency, _ = make_agency(db)
            return [make_event(db, agency, **spec).id for spec in specs]

    return make


# --- time zones: the bug to avoid ----------------------------------------------------------


def test_summer_and_winter_times_read_right_in_every_parser(
    db: Session, settings: Settings, read_all: Callable[[bytes], dict[str, list[ParsedEvent]]]
) -> None:
    agency, _ = make_agency(db)
    spring, autumn = last_sunday(NEXT_YEAR, 3), last_sunday(NEXT_YEAR, 10)
    # (local start, expected UTC instant) across both daylight-saving changes.
    cases = [
        (paris(NEXT_YEAR, 7, 9, 14), datetime(NEXT_YEAR, 7, 9, 12, tzinfo=UTC)),
        (paris(NEXT_YEAR, 1, 15, 14), datetime(NEXT_YEAR, 1, 15, 13, tzinfo=UTC)),
        (paris(spring.year, spring.month, spring.day - 1, 10), None),
        (paris(spring.year, spring.month, spring.day, 10), None),
        (paris(autumn.year, autumn.month, autumn.day - 1, 10), None),
        (paris(autumn.year, autumn.month, autumn.day, 10), None),
    ]
    events = [make_event(db, agency, starts_at=start) for start, _ in cases]
    expected = {
        uid(settings, e.id): (start, utc or start.astimezone(UTC))
        for e, (start, utc) in zip(events, cases, strict=True)
    }
    # The day before each change is on the other side of it.
    assert expected[uid(settings, events[2].id)][1].hour == 9  # 10:00 CET
    assert expected[uid(settings, events[3].id)][1].hour == 8  # 10:00 CEST
    assert expected[uid(settings, events[4].id)][1].hour == 8
    assert expected[uid(settings, events[5].id)][1].hour == 9

    bodies = [feed_ics(events, settings, name="Test"), *(event_ics(e, settings) for e in events)]
    for body in bodies:
        for parser, parsed in read_all(body).items():
            for item in parsed:
                start, utc = expected[item.uid]
                assert item.start_utc == utc, (parser, item.uid, item.start_utc)
                assert item.end_utc == utc + timedelta(hours=3), parser
                assert item.start_local == start.replace(tzinfo=None), parser
                assert item.tzid == "Europe/Paris", parser


def test_vtimezone_is_rule_based_without_rdate(
    db: Session,
    settings: Settings,
    icaljs: Callable[[list[bytes]], list[dict[str, Any]]],
) -> None:
    agency, _ = make_agency(db)
    body = event_ics(make_event(db, agency), settings)
    assert b"RDATE" not in body
    calendar = icalendar.Calendar.from_ical(body)
    [vtimezone] = calendar.walk("VTIMEZONE")
    assert vtimezone["TZID"] == "Europe/Paris"
    observances = {sub.name: sub for sub in vtimezone.subcomponents}
    assert set(observances) == {"STANDARD", "DAYLIGHT"}
    daylight, standard = observances["DAYLIGHT"], observances["STANDARD"]
    assert daylight["RRULE"].to_ical() == b"FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3"
    assert standard["RRULE"].to_ical() == b"FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10"
    assert daylight.decoded("DTSTART") == datetime(1970, 3, 29, 2)  # noqa: DTZ001
    assert standard.decoded("DTSTART") == datetime(1970, 10, 25, 3)  # noqa: DTZ001
    assert daylight["TZOFFSETFROM"].to_ical() == "+0100"
    assert daylight["TZOFFSETTO"].to_ical() == "+0200"
    assert standard["TZOFFSETFROM"].to_ical() == "+0200"
    assert standard["TZOFFSETTO"].to_ical() == "+0100"
    [document] = icaljs([body])
    assert document["timezones"] == [{"tzid": "Europe/Paris", "rdate": False}]


def test_zone_without_eu_rules_is_written_in_utc(db: Session, settings: Settings) -> None:
    agency, _ = make_agency(db)
    event_row = make_event(db, agency, starts_at=paris(NEXT_YEAR, 7, 9, 14))
    event_row.timezone = "America/New_York"
    body = event_ics(event_row, settings)
    assert b"BEGIN:VTIMEZONE" not in body
    [parsed] = read_icalendar(body)
    assert parsed.start_utc == datetime(NEXT_YEAR, 7, 9, 12, tzinfo=UTC)
    [parsed] = read_vobject(body)
    assert parsed.start_utc == datetime(NEXT_YEAR, 7, 9, 12, tzinfo=UTC)


# --- content -------------------------------------------------------------------------------


def test_every_property_of_an_event(
    db: Session, settings: Settings, read_all: Callable[[bytes], dict[str, list[ParsedEvent]]]
) -> None:
    agency, _ = make_agency(db, name="Agence France Travail Montreuil")
    event_row = make_event(db, agency, sectors=["N", "A"])
    body = event_ics(event_row, settings)
    calendar = icalendar.Calendar.from_ical(body)
    for name in ("VERSION", "PRODID", "CALSCALE", "METHOD", "NAME", "X-WR-CALNAME"):
        assert name in calendar, name
    assert calendar["METHOD"] == "PUBLISH"
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n" in body
    assert b"X-PUBLISHED-TTL:PT1H\r\n" in body
    [vevent] = calendar.walk("VEVENT")
    assert vevent["DTSTAMP"].to_ical().endswith(b"Z")
    assert vevent.decoded("LAST-MODIFIED") == event_row.updated_at.replace(microsecond=0)
    assert vevent.decoded("CREATED") == event_row.created_at.replace(microsecond=0)
    assert str(vevent["URL"]) == f"http://testserver/evenements/{event_row.id}"
    assert vevent["ORGANIZER"].params["CN"] == "Agence France Travail Montreuil"
    for parser, [parsed] in read_all(body).items():
        assert parsed.uid == f"event-{event_row.id}@testserver", parser
        assert parsed.status == "CONFIRMED", parser
        assert parsed.sequence == 1, parser
        assert parsed.summary == "Job dating logistique", parser
        assert parsed.description == (
            f"Rencontrez des recruteurs.\n\nhttp://testserver/evenements/{event_row.id}"
        ), parser
        assert parsed.location == ("Agence France Travail, 1 place Jean-Jaurès, 93100 Montreuil"), (
            parser
        )
        assert parsed.geo == (48.8615, 2.4432), parser
        assert parsed.categories == [
            "Job dating",
            "Agriculture et pêche, espaces naturels et espaces verts, soins aux animaux",
            "Transport et logistique",
        ], parser


def test_online_event_gives_its_link(
    db: Session, settings: Settings, read_all: Callable[[bytes], dict[str, list[ParsedEvent]]]
) -> None:
    agency, _ = make_agency(db)
    event_row = make_event(db, agency, type="workshop", **ONLINE)
    for parser, [parsed] in read_all(event_ics(event_row, settings)).items():
        assert parsed.location == "https://visio.example.org/atelier", parser
        assert "Lien de connexion : https://visio.example.org/atelier" in parsed.description
        assert parsed.geo is None, parser
        assert parsed.categories == ["Atelier", "Transport et logistique"], parser


def test_special_characters_survive_the_round_trip(
    db: Session, settings: Settings, read_all: Callable[[bytes], dict[str, list[ParsedEvent]]]
) -> None:
    agency, _ = make_agency(db, name='Agence "Est", Montreuil; 93')
    title = "Forum, emploi; été\nsalle « B » \\ 🎉 — œuvre"
    event_row = make_event(
        db,
        agency,
        title=title,
        description="<p>Ligne 1, avec; des\\signes &amp; &lt;balises&gt;</p><p>Ligne 2 🎉</p>",
        venue={
            "name": "Salle, polyvalente; nord",
            "address": "3 rue de l'Église",
            "postal_code": "93100",
            "city": "Montreuil",
            "lat": 48.86,
            "lon": 2.44,
        },
    )
    body = feed_ics([event_row], settings, name="Forum, emploi; été")
    assert all(len(line) <= 75 for line in body.split(b"\r\n")), "lines are folded"
    for parser, [parsed] in read_all(body).items():
        # A title is one line at input (its line break became a space); the rest survives.
        assert parsed.summary == "Forum, emploi; été salle « B » \\ 🎉 — œuvre", parser
        assert parsed.description.startswith(
            "Ligne 1, avec; des\\signes & <balises>\n\nLigne 2 🎉\n\n"
        ), parser
        assert parsed.location == "Salle, polyvalente; nord, 3 rue de l'Église, 93100 Montreuil"
    calendar = icalendar.Calendar.from_ical(body)
    # Names are read raw (NAME is an unknown type to every parser): kept free of escapes.
    assert str(calendar["X-WR-CALNAME"]) == "Forum emploi été"


def test_uid_is_stable_and_sequence_follows_the_revision(db: Session, settings: Settings) -> None:
    agency, _ = make_agency(db)
    event_row = make_event(db, agency)
    first, second = event_ics(event_row, settings), event_ics(event_row, settings)
    assert first == second, "the same data renders to the same bytes"
    [before] = read_icalendar(first)
    update_event(db, event_row, {"title": "Job dating logistique (nouvelle salle)"})
    event_row = get_event(db, event_row.id)
    [after] = read_icalendar(event_ics(event_row, settings))
    assert before.uid == after.uid == f"event-{event_row.id}@testserver"
    assert (before.sequence, after.sequence) == (1, 2)
    # A change no calendar sees (capacity) leaves the sequence alone.
    update_event(db, event_row, {"capacity": 50})
    [same] = read_icalendar(event_ics(get_event(db, event_row.id), settings))
    assert same.sequence == 2


def test_cancelled_and_postponed_statuses(
    db: Session, settings: Settings, read_all: Callable[[bytes], dict[str, list[ParsedEvent]]]
) -> None:
    agency, _ = make_agency(db)
    cancelled, postponed = make_event(db, agency), make_event(db, agency)
    cancel(db, cancelled)
    postponed.status = "postponed"
    for parser, parsed in read_all(feed_ics([cancelled, postponed], settings, name="x")).items():
        items = by_uid(parsed)
        gone, later = items[uid(settings, cancelled.id)], items[uid(settings, postponed.id)]
        assert gone.status == "CANCELLED", parser
        assert gone.sequence == 2, parser
        assert gone.summary.startswith("[Annulé] "), parser
        assert gone.description.startswith("Cet événement est annulé."), parser
        assert later.status == "TENTATIVE", parser


# --- invitations ---------------------------------------------------------------------------


def _registration(event_row: Event, status: str = "confirmed") -> Registration:
    return Registration(
        id=1,
        event_id=event_row.id,
        first_name="Amélie",
        last_name="Poulain, dite « Mélie »",
        email="amelie@example.org",
        status=status,
        token="t" * 40,
    )


def test_invite_request_has_organizer_and_attendee(
    db: Session, settings: Settings, read_all: Callable[[bytes], dict[str, list[ParsedEvent]]]
) -> None:
    agency, _ = make_agency(db, name="Mission locale de Montreuil")
    event_row = get_event(db, make_event(db, agency, starts_at=paris(NEXT_YEAR, 7, 9, 14)).id)
    body = invite_ics(event_row, _registration(event_row), settings, method="REQUEST")
    calendar = icalendar.Calendar.from_ical(body)
    assert calendar["METHOD"] == "REQUEST"
    [vevent] = calendar.walk("VEVENT")
    organizer, attendee = vevent["ORGANIZER"], vevent["ATTENDEE"]
    assert str(organizer) == "mailto:no-reply@evenements-emploi.example"
    assert organizer.params["CN"] == "Mission locale de Montreuil"
    assert str(attendee) == "mailto:amelie@example.org"
    assert attendee.params["CN"] == "Amélie Poulain, dite « Mélie »"
    assert attendee.params["PARTSTAT"] == "ACCEPTED"
    assert attendee.params["RSVP"] == "FALSE"
    assert vevent["DTSTAMP"].to_ical().endswith(b"Z")
    for parser, [parsed] in read_all(body).items():
        assert parsed.uid == uid(settings, event_row.id), parser
        assert parsed.status == "CONFIRMED", parser
        assert parsed.sequence == event_row.revision, parser
        assert parsed.start_utc == datetime(NEXT_YEAR, 7, 9, 12, tzinfo=UTC), parser
    vevent_vobject = vobject.readOne(body.decode()).vevent
    assert vevent_vobject.attendee.params["PARTSTAT"] == ["ACCEPTED"]
    assert vevent_vobject.organizer.params["CN"] == ["Mission locale de Montreuil"]


def test_invite_cancel_outranks_the_request(
    db: Session,
    settings: Settings,
    icaljs: Callable[[list[bytes]], list[dict[str, Any]]],
) -> None:
    agency, _ = make_agency(db)
    event_row = make_event(db, agency)
    registration = _registration(event_row, status="cancelled")
    body = invite_ics(event_row, registration, settings, method="CANCEL")
    calendar = icalendar.Calendar.from_ical(body)
    assert calendar["METHOD"] == "CANCEL"
    [vevent] = calendar.walk("VEVENT")
    assert vevent["STATUS"] == "CANCELLED"
    assert vevent.decoded("SEQUENCE") == event_row.revision + 1
    assert str(vevent["UID"]) == uid(settings, event_row.id)
    assert "ORGANIZER" in vevent and "ATTENDEE" in vevent
    [document] = icaljs([body])
    assert document["method"] == "CANCEL"
    [item] = document["events"]
    assert item["status"] == "CANCELLED"
    assert item["attendee"]["value"] == "mailto:amelie@example.org"
    assert item["organizer"]["cn"] == agency.name
    assert read_vobject(body)[0].status == "CANCELLED"


# --- pure helpers --------------------------------------------------------------------------


def test_feed_window_is_30_days_back_to_6_months_ahead_in_paris() -> None:
    # 23:30 UTC on 14 March is already the 15th in Paris.
    assert feed_window(datetime(2026, 3, 14, 23, 30, tzinfo=UTC)) == (
        date(2026, 2, 13),
        date(2026, 9, 15),
    )
    assert feed_window(datetime(2026, 8, 31, 12, tzinfo=UTC)) == (
        date(2026, 8, 1),
        date(2027, 2, 28),
    )


def test_subscribe_links() -> None:
    links = subscribe_links("https://evenements.example/calendar.ics?sector=J&type=forum")
    assert links["webcal"] == "webcal://evenements.example/calendar.ics?sector=J&type=forum"
    assert links["download"] == "https://evenements.example/calendar.ics?sector=J&type=forum"
    google = urlsplit(links["google"])
    assert (google.netloc, google.path) == ("calendar.google.com", "/calendar/r")
    assert parse_qs(google.query)["cid"] == [links["webcal"]]
    outlook = urlsplit(links["outlook"])
    assert (outlook.netloc, outlook.path) == ("outlook.live.com", "/calendar/0/addfromweb")
    assert parse_qs(outlook.query) == {"url": [links["download"]], "name": [DEFAULT_NAME]}


def test_feed_name_sums_up_the_filters() -> None:
    assert feed_name(SearchQuery()) == DEFAULT_NAME
    name = feed_name(SearchQuery(sectors=("A",), types=("forum",), near="Montreuil"))
    assert (
        name == f"{DEFAULT_NAME} : Forum, salon · Agriculture et pêche · près de Montreuil (30 km)"
    )


def test_agency_feeds_are_named_after_the_agency_not_its_slug(
    cal_client: TestClient, committed: Database
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db, slug="ft-montreuil", name="France Travail Montreuil")
        event_id = make_event(db, agency).id
    expected = f"{DEFAULT_NAME} : France Travail Montreuil"
    feed = cal_client.get("/calendar.ics?agency=ft-montreuil")
    assert feed.status_code == 200
    calendar = icalendar.Calendar.from_ical(feed.content)
    # X-WR-CALNAME is the name Outlook and Apple Calendar give the subscription.
    assert str(calendar["X-WR-CALNAME"]) == str(calendar["NAME"]) == expected
    assert "ft-montreuil" not in str(calendar["X-WR-CALNAME"])
    # The event page's subscribe links name it the same way (Outlook on the web's `name`).
    page = cal_client.get(f"/evenements/{event_id}").text
    outlook = re.search(r'href="(https://outlook\.live\.com/calendar/0/addfromweb[^"]+)"', page)
    assert outlook is not None
    query = parse_qs(urlsplit(outlook.group(1).replace("&amp;", "&")).query)
    assert query["name"] == [expected]
    # And so does the search page filtered on the agency.
    search = cal_client.get("/evenements?agency=ft-montreuil").text
    outlook = re.search(r'href="(https://outlook\.live\.com/calendar/0/addfromweb[^"]+)"', search)
    assert outlook is not None
    query = parse_qs(urlsplit(outlook.group(1).replace("&amp;", "&")).query)
    assert query["name"] == [expected]


def test_feed_events_cover_the_window_and_walk_every_page(db: Session) -> None:
    agency, _ = make_agency(db)
    inside = [make_event(db, agency, starts_at=in_days(d)).id for d in (-20, 1, 2, 150)]
    for days in (-40, 200):
        make_event(db, agency, starts_at=in_days(days))
    found = [e.id for e in list_feed_events(db, SearchQuery(agency=agency.slug))]
    assert found == inside
    capped = list_feed_events(db, SearchQuery(agency=agency.slug), cap=3)
    assert [e.id for e in capped] == inside[:3]
    # The query's own dates narrow the window, never widen it.
    narrowed = SearchQuery(agency=agency.slug, date_from=in_days(-100).date())
    assert [e.id for e in list_feed_events(db, narrowed)] == inside


# --- HTTP: GET /events/{id}.ics --------------------------------------------------------------


def test_event_ics_over_http(cal_client: TestClient, seed: Callable[..., list[int]]) -> None:
    [event_id] = seed({})
    response = cal_client.get(f"/events/{event_id}.ics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'inline; filename="evenement-{event_id}.ics"'
    )
    assert response.headers["cache-control"] == "public, max-age=300"
    etag, last_modified = response.headers["etag"], response.headers["last-modified"]
    assert etag.startswith('"') and etag.endswith('"')
    [parsed] = read_icalendar(response.content)
    assert parsed.uid == f"event-{event_id}@testserver"

    again = cal_client.get(f"/events/{event_id}.ics", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    weak = cal_client.get(f"/events/{event_id}.ics", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    other = cal_client.get(f"/events/{event_id}.ics", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200

    since = cal_client.get(f"/events/{event_id}.ics", headers={"If-Modified-Since": last_modified})
    assert since.status_code == 304
    old = format_datetime(datetime(2020, 1, 1, tzinfo=UTC), usegmt=True)
    assert (
        cal_client.get(f"/events/{event_id}.ics", headers={"If-Modified-Since": old}).status_code
        == 200
    )
    broken = cal_client.get(f"/events/{event_id}.ics", headers={"If-Modified-Since": "hier"})
    assert broken.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/events/999999.ics",
        "/events/abc.ics",
        "/events/0.ics",
        "/events/-1.ics",
        "/events/99999999999999999999999.ics",
        "/events/1.ics.ics",
    ],
)
def test_unknown_event_ics_is_404(cal_client: TestClient, path: str) -> None:
    assert cal_client.get(path).status_code == 404


def test_event_ics_changes_after_an_edit(
    cal_client: TestClient, committed: Database, seed: Callable[..., list[int]]
) -> None:
    [event_id] = seed({})
    first = cal_client.get(f"/events/{event_id}.ics")
    with committed.transaction() as db:
        update_event(db, get_event(db, event_id), {"title": "Nouveau titre"})
    second = cal_client.get(
        f"/events/{event_id}.ics", headers={"If-None-Match": first.headers["etag"]}
    )
    assert second.status_code == 200
    [parsed] = read_icalendar(second.content)
    assert (parsed.summary, parsed.sequence) == ("Nouveau titre", 2)


# --- HTTP: GET /calendar.ics -----------------------------------------------------------------


def feed_uids(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {item.uid for item in read_icalendar(response.content)}


def test_feed_over_http(
    cal_client: TestClient,
    committed: Database,
    settings: Settings,
    seed: Callable[..., list[int]],
    read_all: Callable[[bytes], dict[str, list[ParsedEvent]]],
) -> None:
    soon, cancelled, past = seed(
        {"starts_at": in_days(3, 14)}, {"starts_at": in_days(5)}, {"starts_at": in_days(-10)}
    )
    with committed.transaction() as db:
        cancel(db, get_event(db, cancelled))
    response = cal_client.get("/calendar.ics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert "last-modified" in response.headers
    for parser, parsed in read_all(response.content).items():
        items = by_uid(parsed)
        assert set(items) == {uid(settings, i) for i in (soon, cancelled, past)}, parser
        assert items[uid(settings, cancelled)].status == "CANCELLED", parser
        assert items[uid(settings, cancelled)].sequence == 2, parser
        assert items[uid(settings, soon)].start_local.hour == 14, parser
    calendar = icalendar.Calendar.from_ical(response.content)
    assert str(calendar["X-WR-CALNAME"]) == DEFAULT_NAME
    assert str(calendar["URL"]) == "http://testserver/calendar.ics"


def test_feed_filters_match_the_api(
    cal_client: TestClient, settings: Settings, seed: Callable[..., list[int]]
) -> None:
    health, transport, everyone, online = seed(
        {"sectors": ["J"]},
        {"sectors": ["N"]},
        {"sectors": ["all"]},
        {"sectors": ["J"], "type": "workshop", **ONLINE},
    )
    start, end = in_days(0).date().isoformat(), in_days(30).date().isoformat()
    for params in (
        [("sector", "J")],
        [("sector", "N"), ("type", "job_dating")],
        [("format", "online")],
        [("near", "Montreuil"), ("radius_km", "5")],
        [("q", "logistique"), ("sector", "J,N")],
    ):
        params = [*params, ("from", start), ("to", end)]
        api = cal_client.get("/api/v1/events", params=[*params, ("limit", "100")])
        expected = {uid(settings, item["id"]) for item in api.json()["items"]}
        assert feed_uids(cal_client.get("/calendar.ics", params=params)) == expected, params
    assert feed_uids(cal_client.get("/calendar.ics", params={"sector": "J"})) == {
        uid(settings, i) for i in (health, everyone, online)
    }
    assert uid(settings, transport) in feed_uids(cal_client.get("/calendar.ics?sector=N"))
    # Paging parameters of the API are accepted and ignored.
    assert len(feed_uids(cal_client.get("/calendar.ics?limit=1"))) == 4


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sector=Z", "sector"),
        ("from=demain", "from"),
        ("near=Nullepartville-sur-Rien", "near"),
        ("agency=inconnue", "agency"),
        ("radius_km=-3", "radius_km"),
        ("limit=1000", "limit"),
    ],
)
def test_bad_filters_are_a_plain_400(cal_client: TestClient, query: str, field: str) -> None:
    response = cal_client.get(f"/calendar.ics?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert f"« {field} »" in response.text


def test_feed_conditional_requests(cal_client: TestClient, seed: Callable[..., list[int]]) -> None:
    seed({"sectors": ["J"]})
    first = cal_client.get("/calendar.ics?sector=J")
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    assert (
        cal_client.get("/calendar.ics?sector=J", headers={"If-None-Match": etag}).status_code == 304
    )
    assert (
        cal_client.get(
            "/calendar.ics?sector=J", headers={"If-Modified-Since": last_modified}
        ).status_code
        == 304
    )
    # Another worker (an empty cache) renders the same bytes, so the same ETag.
    web_calendars.feed_cache_of(cal_client.app).clear()
    fresh = cal_client.get("/calendar.ics?sector=J", headers={"If-None-Match": etag})
    assert fresh.status_code == 304


def test_feed_is_gzipped_for_clients_that_accept_it(
    cal_client: TestClient, seed: Callable[..., list[int]]
) -> None:
    seed(*({"starts_at": in_days(day)} for day in range(1, 8)))
    plain = cal_client.get("/calendar.ics", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    raw = cal_client.get("/calendar.ics", headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.headers["vary"] == "Accept-Encoding"
    assert int(raw.headers["content-length"]) < len(plain.content) / 4
    assert raw.content == plain.content  # decoded by the client
    assert raw.headers["etag"] != plain.headers["etag"]
    refused = cal_client.get("/calendar.ics", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers
    # Either representation's ETag validates: the content is the same.
    for etag in (plain.headers["etag"], raw.headers["etag"]):
        again = cal_client.get(
            "/calendar.ics", headers={"Accept-Encoding": "gzip", "If-None-Match": etag}
        )
        assert again.status_code == 304
        assert "content-encoding" not in again.headers


def test_cached_feed_touches_no_database_then_follows_changes(
    cal_client: TestClient,
    committed: Database,
    settings: Settings,
    seed: Callable[..., list[int]],
    queries: list[str],
) -> None:
    [event_id] = seed({})
    clock = {"now": 1000.0}
    cache = web_calendars.feed_cache_of(cal_client.app)
    cache.clock = lambda: clock["now"]
    first = cal_client.get("/calendar.ics")
    queries.clear()
    for _ in range(5):
        assert cal_client.get("/calendar.ics").content == first.content
    assert queries == [], "a cached feed runs no query"

    # Past the TTL with no change: one cheap query, same document, no new search.
    clock["now"] += cache.ttl + 1
    assert cal_client.get("/calendar.ics").content == first.content
    assert [q for q in queries if q.startswith("SELECT")] == [
        q for q in queries if q.startswith("SELECT count(events.id)")
    ]
    assert len([q for q in queries if q.startswith("SELECT")]) == 1

    # Past the maximum age, rendered again even though nothing changed.
    clock["now"] += cache.max_age
    queries.clear()
    assert cal_client.get("/calendar.ics").content == first.content
    assert len([q for q in queries if q.startswith("SELECT")]) > 1

    with committed.transaction() as db:
        update_event(db, get_event(db, event_id), {"title": "Titre modifié"})
    assert cal_client.get("/calendar.ics").content == first.content, "still fresh"
    clock["now"] += cache.ttl + 1
    changed = cal_client.get("/calendar.ics", headers={"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200
    [parsed] = read_icalendar(changed.content)
    assert (parsed.uid, parsed.summary, parsed.sequence) == (
        uid(settings, event_id),
        "Titre modifié",
        2,
    )


def test_feed_links_of_a_search_page() -> None:
    settings = Settings(base_url="https://evenements.example")
    params = QueryParams("sector=J&cursor=abc&limit=5&q=&type=forum")
    links = web_calendars.feed_links(settings, params)
    assert links["download"] == "https://evenements.example/calendar.ics?sector=J&type=forum"
    assert links["webcal"] == "webcal://evenements.example/calendar.ics?sector=J&type=forum"
    assert parse_qs(urlsplit(links["outlook"]).query)["name"] == [
        f"{DEFAULT_NAME} : Forum, salon · Santé"
    ]
    assert web_calendars.feed_links(settings)["download"] == (
        "https://evenements.example/calendar.ics"
    )
    broken = web_calendars.feed_links(settings, QueryParams("sector=Z"))
    assert parse_qs(urlsplit(broken["outlook"]).query)["name"] == [DEFAULT_NAME]


def test_concurrent_misses_render_once() -> None:
    cache = web_calendars.FeedCache()
    document = web_calendars.CalendarDocument.build(b"x", None, filename="x.ics")
    renders = []

    async def render() -> web_calendars.CalendarDocument:
        renders.append(1)
        await asyncio.sleep(0.01)
        return document

    def produce() -> asyncio.Future[web_calendars.CalendarDocument]:
        return asyncio.ensure_future(render())

    async def main() -> list[web_calendars.CalendarDocument]:
        return await asyncio.gather(*(cache.get("k", produce) for _ in range(10)))

    assert asyncio.run(main()) == [document] * 10
    assert len(renders) == 1


def test_feed_cache_is_bounded() -> None:
    cache = web_calendars.FeedCache(max_entries=2)
    document = web_calendars.CalendarDocument.build(b"x", None, filename="x.ics")
    version = object()
    for key in ("a", "b", "c"):
        cache.store(key, document, version)
    assert cache.fresh("a") is None
    assert cache.fresh("b") is document and cache.fresh("c") is document


def test_feeds_and_api_answers_set_no_csrf_cookie(client: TestClient) -> None:
    # No form is read there: a Set-Cookie would only cost time and defeat shared caches.
    for path in ("/calendar.ics", "/api/v1/events"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "set-cookie" not in response.headers, path
    # Pages with forms still get their CSRF cookie.
    assert "csrftoken" in client.get("/compte/inscription").headers.get("set-cookie", "")


def test_feed_of_an_empty_or_quiet_database_is_served(client: TestClient) -> None:
    # Nothing changed today: Last-Modified is the start of the Paris day, written in GMT.
    response = client.get("/calendar.ics")
    assert response.status_code == 200
    assert response.headers["last-modified"].endswith(" GMT")
