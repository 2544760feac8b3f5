"""Helpers shared by test modules: browser-like forms and seeker accounts, and the three
calendar parsers (icalendar, vobject, ical.js) that read what the service writes."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
import vobject
from sqlalchemy import select
from starlette.testclient import TestClient
from vobject.icalendar import TimezoneComponent

from events_app.db import Database
from events_app.models import OutboxMessage

CSRF = re.compile(r'name="csrftoken" value="([^"]+)"')
PASSWORD = "une phrase assez longue"
EMAIL = "camille.martin@exemple.fr"
JS_DIR = Path(__file__).parent / "js"
PARIS = ZoneInfo("Europe/Paris")


# --- forms and seeker accounts -------------------------------------------------------------


def csrf_token(client: TestClient, page: str) -> str:
    response = client.get(page)
    assert response.status_code == 200, response.text
    match = CSRF.search(response.text)
    assert match is not None, "no csrftoken input on " + page
    return match.group(1)


def post_form(
    client: TestClient, path: str, data: dict[str, Any], *, page: str | None = None
) -> httpx.Response:
    """POST a form as a browser would: the CSRF token read from the page that shows it."""
    token = csrf_token(client, page or path)
    return client.post(path, data={**data, "csrftoken": token}, follow_redirects=False)


def last_mail(client: TestClient, kind: str) -> OutboxMessage | None:
    database: Database = client.app_state["db"]
    with database.transaction() as db:
        return db.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.kind == kind)
            .order_by(OutboxMessage.id.desc())
        ).first()


def sign_up(
    client: TestClient, email: str = EMAIL, password: str = PASSWORD, *, confirm: bool = True
) -> httpx.Response:
    """Sign up as a browser would; with confirm, then follow the link of the mail and press
    its button, as the owner of the address would (the answer of that last step)."""
    before = last_mail(client, "confirm_account")
    response = post_form(
        client,
        "/compte/inscription",
        {"first_name": "Camille", "last_name": "Martin", "email": email, "password": password},
    )
    mail = last_mail(client, "confirm_account")
    if not confirm or response.status_code != 303 or mail is None or mail == before:
        return response
    if before is not None and mail.id == before.id:
        return response
    match = re.search(r"https?://[^/\s]+(/compte/confirmation\?token=\S+)", mail.body_text)
    assert match, mail.body_text
    page = match.group(1)
    token = page.split("token=", 1)[1]
    return post_form(client, "/compte/confirmation", {"token": token}, page=page)


def sign_in(client: TestClient, email: str = EMAIL, password: str = PASSWORD) -> httpx.Response:
    return post_form(client, "/compte/connexion", {"email": email, "password": password})


def sign_out(client: TestClient) -> httpx.Response:
    return post_form(client, "/compte/deconnexion", {}, page="/compte")


def is_signed_in(client: TestClient) -> bool:
    response = client.get("/compte", follow_redirects=False)
    if response.status_code == 303:
        assert response.headers["location"].startswith("/compte/connexion")
        return False
    assert response.status_code == 200, response.text
    return True


# --- the three parsers ---------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedEvent:
    """What one parser read from a VEVENT."""

    uid: str
    summary: str
    description: str
    location: str | None
    status: str | None
    sequence: int
    start_utc: datetime
    end_utc: datetime
    start_local: datetime  # wall-clock time in the event's zone, naive
    tzid: str | None
    categories: list[str]
    geo: tuple[float, float] | None


def _local(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


def read_icalendar(body: bytes) -> list[ParsedEvent]:
    calendar = icalendar.Calendar.from_ical(body)
    events = []
    for vevent in calendar.walk("VEVENT"):
        start, end = vevent.decoded("DTSTART"), vevent.decoded("DTEND")
        assert start.tzinfo is not None
        tzid = vevent["DTSTART"].params.get("TZID")
        geo = vevent.get("GEO")
        categories = [str(c) for prop in _as_list(vevent.get("CATEGORIES")) for c in prop.cats]
        events.append(
            ParsedEvent(
                uid=str(vevent["UID"]),
                summary=str(vevent["SUMMARY"]),
                description=str(vevent["DESCRIPTION"]),
                location=str(vevent["LOCATION"]) if "LOCATION" in vevent else None,
                status=str(vevent.get("STATUS")) if "STATUS" in vevent else None,
                sequence=int(vevent.decoded("SEQUENCE")),
                start_utc=start.astimezone(UTC),
                end_utc=end.astimezone(UTC),
                start_local=_local(start),
                tzid=tzid,
                categories=categories,
                geo=(geo.latitude, geo.longitude) if geo is not None else None,
            )
        )
    return events


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def read_vobject(body: bytes) -> list[ParsedEvent]:
    calendar = vobject.readOne(body.decode("utf-8"))
    events = []
    for vevent in calendar.vevent_list:
        start, end = vevent.dtstart.value, vevent.dtend.value
        assert start.tzinfo is not None
        geo = vevent.geo.value if hasattr(vevent, "geo") else None
        lat_lon = tuple(float(part) for part in geo.split(";")) if geo else None
        events.append(
            ParsedEvent(
                uid=vevent.uid.value,
                summary=vevent.summary.value,
                description=vevent.description.value,
                location=vevent.location.value if hasattr(vevent, "location") else None,
                status=vevent.status.value if hasattr(vevent, "status") else None,
                sequence=int(vevent.sequence.value),
                start_utc=start.astimezone(UTC),
                end_utc=end.astimezone(UTC),
                start_local=_local(start),
                # vobject moves TZID into the tzinfo it builds from our VTIMEZONE.
                tzid=TimezoneComponent.pickTzid(start.tzinfo),
                categories=[
                    c for prop in vevent.contents.get("categories", []) for c in prop.value
                ],
                geo=(lat_lon[0], lat_lon[1]) if lat_lon else None,
            )
        )
    return events


def node_missing() -> bool:
    return shutil.which("node") is None


def read_icaljs(document: dict[str, Any]) -> list[ParsedEvent]:
    events = []
    for item in document["events"]:
        geo = item["geo"]
        events.append(
            ParsedEvent(
                uid=item["uid"],
                summary=item["summary"],
                description=item["description"],
                location=item["location"],
                status=item["status"],
                sequence=item["sequence"],
                start_utc=datetime.fromisoformat(item["start_utc"]),
                end_utc=datetime.fromisoformat(item["end_utc"]),
                start_local=datetime.fromisoformat(item["start_local"]),
                tzid=item["tzid"],
                categories=item["categories"],
                geo=(geo[0], geo[1]) if geo else None,
            )
        )
    return events


def by_uid(events: list[ParsedEvent]) -> dict[str, ParsedEvent]:
    return {item.uid: item for item in events}
