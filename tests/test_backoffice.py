"""The agency back office under /organisme, through HTTP on SQLite and PostgreSQL: staff
sign-in and password, the dashboard, event forms and their errors, duplication, closing,
cancellation, attendance, CSV export, feeds, token rotation, isolation between agencies, CSRF
and the separation of staff and seeker sessions; then the domain rules HTTP cannot reach."""

from __future__ import annotations

import csv
import html
import io
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from events_app import passwords
from events_app import staff as staff_domain
from events_app.db import Database
from events_app.errors import Conflict, InvalidInput, NotFound, Unauthorized
from events_app.models import Event, Feed, ImportRun, OutboxMessage, Registration
from events_app.notifications import Notifier
from events_app.registrations import Person, register
from events_app.settings import Settings
from events_app.staff import (
    agency_dashboard,
    authenticate_staff,
    create_staff,
    duplicate_event,
    mark_attendance,
    set_registration_closed,
)
from importers import PARSERS
from importers.base import ImportedEvent
from tests.factories import in_days, make_agency, make_event
from tests.helpers import sign_up as seeker_sign_up

PARIS = ZoneInfo("Europe/Paris")
CSRF = re.compile(r'name="csrftoken" value="([^"]+)"')
PASSWORD = "une phrase de passe solide"
EMAIL = "claire.dupont@agence.example"
OTHER_EMAIL = "marc.leroy@autre.example"


# --- Helpers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agencies:
    agency_id: int
    api_token: str
    other_id: int
    other_token: str


def setup_agencies(committed: Database) -> Agencies:
    """Agency A with staff EMAIL, agency B with staff OTHER_EMAIL, both with a password."""
    with committed.transaction() as db:
        agency, token = make_agency(db, name="Agence France Travail Montreuil")
        other, other_token = make_agency(db, name="Mission locale de Lyon")
        create_staff(db, agency_id=agency.id, email=EMAIL, name="Claire Dupont", password=PASSWORD)
        create_staff(
            db, agency_id=other.id, email=OTHER_EMAIL, name="Marc Leroy", password=PASSWORD
        )
        return Agencies(agency.id, token, other.id, other_token)


def new_event(committed: Database, agency_id: int, **overrides: Any) -> int:
    from events_app.models import Agency

    with committed.transaction() as db:
        agency = db.get(Agency, agency_id)
        assert agency is not None
        return make_event(db, agency, **overrides).id


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


def sign_in(client: TestClient, email: str = EMAIL, password: str = PASSWORD) -> httpx.Response:
    return post_form(client, "/organisme/connexion", {"email": email, "password": password})


def register_via_api(client: TestClient, event_id: int, n: int) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/events/{event_id}/registrations",
        json={"first_name": f"Prénom{n}", "last_name": f"Nom{n}", "email": f"p{n}@example.org"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


class FormReader(HTMLParser):
    """The values a browser would send for the first form whose action matches."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.inside = False
        self.done = False
        self.values: list[tuple[str, str]] = []
        self._textarea: str | None = None
        self._select: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.done and a.get("action") == self.action:
            self.inside = True
        if not self.inside:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.values.append((a["name"], a.get("value", "on")))
            elif kind != "submit":
                self.values.append((a["name"], a.get("value", "")))
        elif tag == "textarea":
            self._textarea, self._text = a["name"], ""
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self.values.append((self._select, a.get("value", "")))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea" and self._textarea is not None:
            self.values.append((self._textarea, self._text))
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "form" and self.inside:
            self.inside, self.done = False, True


def read_form(page_html: str, action: str) -> dict[str, Any]:
    """A form's fields as httpx form data (lists for repeated names)."""
    reader = FormReader(action)
    reader.feed(page_html)
    assert reader.done, f"no form for {action}"
    data: dict[str, Any] = {}
    for name, value in reader.values:
        if name in data:
            data[name] = (
                [*data[name], value] if isinstance(data[name], list) else [data[name], value]
            )
        else:
            data[name] = value
    if "sectors" in data and not isinstance(data["sectors"], list):
        data["sectors"] = [data["sectors"]]
    return data


def edit(client: TestClient, event_id: int, **changes: Any) -> httpx.Response:
    """Submit the edit form as shown, with some fields changed."""
    path = f"/organisme/evenements/{event_id}/modifier"
    page = client.get(path)
    assert page.status_code == 200, page.text
    data = read_form(page.text, path)
    data.update(changes)
    return client.post(path, data=data, follow_redirects=False)


def field_has_error(page: str, name: str) -> str:
    """The error message shown beside an input, checking that the input points to it."""
    match = re.search(rf'<p class="field-error" id="{re.escape(name)}-error">([^<]*)</p>', page)
    assert match is not None, f"no error beside {name}"
    tag = re.search(rf'<(?:input|textarea|select|fieldset)[^>]*id="{re.escape(name)}"[^>]*>', page)
    assert tag is not None, f"no input {name}"
    assert f"{name}-error" in tag.group(0) and 'aria-invalid="true"' in tag.group(0)
    return match.group(1)


NEW_EVENT_FORM = {
    "title": "Job dating de l’hôtellerie",
    "description": "Venez rencontrer dix recruteurs.\n\nApportez votre CV.",
    "type": "job_dating",
    "sectors": ["G", "D"],
    "format": "onsite",
    "starts_at": "",
    "ends_at": "",
    "venue_name": "Maison de l’emploi",
    "venue_address": "3 rue de Paris",
    "venue_postal_code": "93100",
    "venue_city": "Montreuil",
    "venue_lat": "",
    "venue_lon": "",
    "online_url": "",
    "capacity": "30",
    "remote_capacity": "",
    "waitlist": "1",
    "registration_opens_at": "",
    "registration_closes_at": "",
    "job_offers": "12",
    "accessibility_notes": "Accessible en fauteuil roulant.",
    "shown_place": "",
    "shown_lat": "",
    "shown_lon": "",
}


def new_event_form(days: int = 10, **changes: Any) -> dict[str, Any]:
    starts = in_days(days, 9, 30)
    return {
        **NEW_EVENT_FORM,
        "starts_at": starts.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (starts + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"),
        **changes,
    }


def create_via_form(client: TestClient, **changes: Any) -> int:
    response = post_form(client, "/organisme/evenements/nouveau", new_event_form(**changes))
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.endswith("?fait=cree")
    return int(location.split("/")[-1].split("?")[0])


def outbox(database: Database, kind: str) -> list[OutboxMessage]:
    with database.transaction() as db:
        return list(
            db.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
            )
        )


# --- Access ------------------------------------------------------------------------------------


def test_no_session_redirects_every_page_to_sign_in(
    client: TestClient, committed: Database
) -> None:
    agencies = setup_agencies(committed)
    event_id = new_event(committed, agencies.agency_id)
    pages = [
        "/organisme",
        "/organisme/evenements/nouveau",
        f"/organisme/evenements/{event_id}",
        f"/organisme/evenements/{event_id}/modifier",
        f"/organisme/evenements/{event_id}/inscrits.csv",
        "/organisme/flux",
        "/organisme/jeton",
    ]
    for page in pages:
        response = client.get(page, follow_redirects=False)
        assert response.status_code == 303, page
        assert response.headers["location"].startswith("/organisme/connexion?suivant=%2Forganisme")
    token = csrf_token(client, "/organisme/connexion")
    for action in (
        "/organisme/evenements/nouveau",
        f"/organisme/evenements/{event_id}/modifier",
        f"/organisme/evenements/{event_id}/annulation",
        f"/organisme/evenements/{event_id}/inscriptions",
        f"/organisme/evenements/{event_id}/duplication",
        f"/organisme/evenements/{event_id}/inscrits/1/presence",
        "/organisme/flux",
        "/organisme/jeton",
    ):
        response = client.post(action, data={"csrftoken": token}, follow_redirects=False)
        assert response.status_code == 303, action
        assert response.headers["location"] == "/organisme/connexion"
    with committed.transaction() as db:
        event = db.get(Event, event_id)
        assert event is not None and event.status == "scheduled"


def test_sign_in_goes_back_to_the_page_asked_for(client: TestClient, committed: Database) -> None:
    setup_agencies(committed)
    page = client.get("/organisme/flux")  # redirected to the sign-in form
    assert page.status_code == 200 and "<h1>Espace organisateur</h1>" in page.text
    token = CSRF.search(page.text)
    assert token is not None
    response = client.post(
        "/organisme/connexion",
        data={
            "email": EMAIL.upper(),
            "password": PASSWORD,
            "suivant": "/organisme/flux",
            "csrftoken": token.group(1),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/organisme/flux"
    for target in ("https://evil.example/", "//evil.example", "/compte", "/organisme//x"):
        token_value = csrf_token(client, "/organisme/connexion")
        response = client.post(
            "/organisme/connexion",
            data={
                "email": EMAIL,
                "password": PASSWORD,
                "suivant": target,
                "csrftoken": token_value,
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == "/organisme", target


def test_wrong_password_gives_a_generic_error(client: TestClient, committed: Database) -> None:
    setup_agencies(committed)
    wrong = sign_in(client, password="pas le bon mot de passe")
    unknown = sign_in(client, email="personne@agence.example")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "Adresse e-mail ou mot de passe incorrect." in response.text
    assert client.get("/organisme", follow_redirects=False).status_code == 303


def test_sign_in_attempts_are_rate_limited(client: TestClient, committed: Database) -> None:
    setup_agencies(committed)
    token = csrf_token(client, "/organisme/connexion")
    data = {"email": EMAIL, "password": "pas le bon", "csrftoken": token}
    statuses = [
        client.post("/organisme/connexion", data=data, follow_redirects=False).status_code
        for _ in range(11)
    ]
    assert statuses == [401] * 10 + [429]
    # Even the right password waits now.
    right = {"email": EMAIL, "password": PASSWORD, "csrftoken": token}
    assert client.post("/organisme/connexion", data=right).status_code == 429


def test_sign_out_ends_the_session(client: TestClient, committed: Database) -> None:
    setup_agencies(committed)
    assert sign_in(client).status_code == 303
    assert client.get("/organisme", follow_redirects=False).status_code == 200
    response = post_form(client, "/organisme/deconnexion", {}, page="/organisme")
    assert response.status_code == 303
    assert response.headers["location"] == "/organisme/connexion?deconnecte=1"
    assert client.get("/organisme", follow_redirects=False).status_code == 303


def test_post_without_csrf_token_is_refused(client: TestClient, committed: Database) -> None:
    agencies = setup_agencies(committed)
    event_id = new_event(committed, agencies.agency_id)
    client.get("/organisme/connexion")
    refused = client.post(
        "/organisme/connexion", data={"email": EMAIL, "password": PASSWORD}, follow_redirects=False
    )
    assert refused.status_code == 403
    sign_in(client)
    for action, data in (
        (f"/organisme/evenements/{event_id}/annulation", {"message": "Annulé"}),
        (f"/organisme/evenements/{event_id}/inscriptions", {"closed": "1"}),
        ("/organisme/jeton", {}),
        ("/organisme/evenements/nouveau", new_event_form()),
    ):
        response = client.post(action, data=data, follow_redirects=False)
        assert response.status_code == 403, action
    with committed.transaction() as db:
        event = db.get(Event, event_id)
        assert event is not None and event.status == "scheduled"
        assert not event.registration_closed
        assert db.scalar(select(Event.id).where(Event.title == NEW_EVENT_FORM["title"])) is None
    assert (
        client.get("/api/v1/agency/events", headers=_bearer(agencies.api_token)).status_code == 200
    )


def test_staff_and_seeker_sessions_are_separate(client: TestClient, committed: Database) -> None:
    setup_agencies(committed)
    sign_in(client)
    assert client.get("/organisme", follow_redirects=False).status_code == 200
    # A staff member is not a seeker.
    seeker_page = client.get("/compte", follow_redirects=False)
    assert seeker_page.status_code == 303
    assert seeker_page.headers["location"].startswith("/compte/connexion")

    # A seeker (signing up starts a fresh session) is not a staff member.
    client.cookies.clear()
    signed_up = seeker_sign_up(client, email="camille@exemple.fr")
    assert signed_up.status_code == 303
    assert client.get("/compte", follow_redirects=False).status_code == 200
    staff_page = client.get("/organisme", follow_redirects=False)
    assert staff_page.status_code == 303
    assert staff_page.headers["location"].startswith("/organisme/connexion")
    # Straying into the back office does not sign the seeker out.
    assert client.get("/compte", follow_redirects=False).status_code == 200
    # The seeker's password is not a staff password, even for the same address.
    assert sign_in(client, email="camille@exemple.fr").status_code == 401

    # Signing in as staff ends the seeker's session.
    sign_in(client)
    assert client.get("/organisme", follow_redirects=False).status_code == 200
    assert client.get("/compte", follow_redirects=False).status_code == 303


# --- Dashboard ---------------------------------------------------------------------------------


def test_dashboard_lists_own_events_by_section(client: TestClient, committed: Database) -> None:
    agencies = setup_agencies(committed)
    upcoming = new_event(committed, agencies.agency_id, title="Forum de l’alternance", capacity=1)
    new_event(
        committed,
        agencies.agency_id,
        title="Atelier CV de l’an dernier",
        starts_at=in_days(-30),
    )
    cancelled = new_event(committed, agencies.agency_id, title="Visite annulée")
    new_event(committed, agencies.other_id, title="Salon d’une autre agence")
    register_via_api(client, upcoming, 1)
    register_via_api(client, upcoming, 2)
    register_via_api(client, upcoming, 3)
    assert (
        client.delete(
            f"/api/v1/agency/events/{cancelled}", headers=_bearer(agencies.api_token)
        ).status_code
        == 200
    )

    sign_in(client)
    page = client.get("/organisme")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert "Salon d’une autre agence" not in html.replace("&#39;", "’")
    sections = {
        name: html.split(f'<h2 id="{name}">', 1)[1].split("</section>", 1)[0]
        for name in ("a-venir", "passes", "annules")
    }
    assert "Forum de l’alternance" in sections["a-venir"]
    assert "1&nbsp;/ 1" in sections["a-venir"]  # seats taken / capacity
    assert "2 personnes" in sections["a-venir"]  # waiting list
    assert "<strong>Ouvertes</strong>" in sections["a-venir"]
    assert "Atelier CV de l’an dernier" in sections["passes"]
    assert "Visite annulée" in sections["annules"]
    assert '<th scope="col">Places prises</th>' in html


# --- Create and edit ---------------------------------------------------------------------------


def test_event_created_with_the_form_is_public(client: TestClient, committed: Database) -> None:
    setup_agencies(committed)
    sign_in(client)
    form = client.get("/organisme/evenements/nouveau")
    assert form.status_code == 200
    assert 'type="datetime-local"' in form.text and 'name="sectors"' in form.text
    event_id = create_via_form(client)

    public = client.get(f"/api/v1/events/{event_id}")
    assert public.status_code == 200
    body = public.json()
    assert body["title"] == NEW_EVENT_FORM["title"]
    assert body["sectors"] == ["D", "G"] and body["format"] == "onsite"
    assert body["capacity"] == 30 and body["registration_open"] is True
    assert body["venue"]["city"] == "Montreuil" and body["venue"]["lat"] is not None
    # The datetime-local value is read in Paris time.
    assert body["starts_at"].startswith(in_days(10, 9, 30).strftime("%Y-%m-%dT09:30:00+0"))
    page = client.get(f"/organisme/evenements/{event_id}?fait=cree")
    assert "L’événement est créé et publié." in page.text
    # Plain text became paragraphs.
    assert "<p>Venez rencontrer dix recruteurs.</p><p>Apportez votre CV.</p>" in page.text


def test_form_accepts_french_dates_where_browsers_show_a_text_box(
    client: TestClient, committed: Database
) -> None:
    setup_agencies(committed)
    sign_in(client)
    day = in_days(20)
    event_id = create_via_form(
        client,
        starts_at=day.strftime("%d/%m/%Y 14h00"),
        ends_at=day.strftime("%d/%m/%Y 16:30"),
    )
    body = client.get(f"/api/v1/events/{event_id}").json()
    assert body["starts_at"][11:16] == "14:00" and body["ends_at"][11:16] == "16:30"


def test_a_markdown_description_is_shown_formatted_and_edited_as_typed(
    client: TestClient, committed: Database
) -> None:
    setup_agencies(committed)
    sign_in(client)
    form = client.get("/organisme/evenements/nouveau").text
    assert "**gras** et *italique*" in form and "[texte du lien](https://adresse)" in form
    typed = (
        "Venez **avec votre CV**.\n\n- CV à jour\n- lettre\n\n"
        "Programme : [le site](https://exemple.fr/programme)"
    )
    event_id = create_via_form(client, description=typed)
    page = client.get(f"/evenements/{event_id}").text
    assert "<strong>avec votre CV</strong>" in page and "**" not in page
    assert "<ul><li>CV à jour</li><li>lettre</li></ul>" in page
    assert '<a href="https://exemple.fr/programme"' in page
    edit_page = client.get(f"/organisme/evenements/{event_id}/modifier").text
    assert "Venez **avec votre CV**." in edit_page and "- CV à jour" in edit_page
    assert edit(client, event_id).status_code == 303
    with committed.transaction() as db:
        event = db.get(Event, event_id)
        assert event is not None and event.revision == 1
    # The confirmation mail: plain text in its text part, the formatted HTML in the other.
    register_via_api(client, event_id, 1)
    [mail] = outbox(committed, "confirmed")
    assert "À propos de l'événement :" in mail.body_text
    assert "• CV à jour\n• lettre" in mail.body_text
    assert "le site (https://exemple.fr/programme)" in mail.body_text
    assert "**" not in mail.body_text and "<" not in mail.body_text
    assert "<strong>avec votre CV</strong>" in (mail.body_html or "")


def test_html_in_the_description_is_sanitised(client: TestClient, committed: Database) -> None:
    setup_agencies(committed)
    sign_in(client)
    event_id = create_via_form(
        client,
        description=(
            '<p>Bienvenue <strong>à tous</strong></p><script>alert("x")</script>'
            '<img src="x" onerror="alert(1)"><a href="javascript:alert(2)">lien</a>'
        ),
    )
    for page in (f"/evenements/{event_id}", f"/organisme/evenements/{event_id}"):
        html = client.get(page).text
        assert "<strong>à tous</strong>" in html
        assert "<script>alert" not in html and "onerror" not in html
        assert "javascript:" not in html


def test_edit_shows_each_error_beside_its_field(client: TestClient, committed: Database) -> None:
    agencies = setup_agencies(committed)
    event_id = new_event(committed, agencies.agency_id, capacity=5)
    for n in range(3):
        register_via_api(client, event_id, n)
    sign_in(client)
    start = in_days(7, 9, 30)

    before = edit(client, event_id, ends_at=(start - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    assert before.status_code == 400
    assert "postérieure au début" in field_has_error(before.text, "ends_at")

    below = edit(client, event_id, capacity="2")
    assert below.status_code == 400
    assert "3 places déjà prises" in field_has_error(below.text, "capacity")

    sector = edit(client, event_id, sectors=["N", "Z"])
    assert sector.status_code == 400
    assert "Secteur inconnu" in field_has_error(sector.text, "sectors")

    long_title = edit(client, event_id, title="T" * 201)
    assert long_title.status_code == 400
    message = field_has_error(long_title.text, "title")
    assert "200 caractères" in message and "Titre" in message

    window = edit(
        client,
        event_id,
        registration_closes_at=(start + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
    )
    assert window.status_code == 400
    assert "doit précéder la fin" in field_has_error(window.text, "registration_closes_at")

    malformed = edit(client, event_id, starts_at="le 8 décembre")
    assert malformed.status_code == 400
    assert "jj/mm/aaaa hh:mm" in field_has_error(malformed.text, "starts_at")

    bad_type = edit(client, event_id, type="garden_party")
    assert bad_type.status_code == 400
    assert "inconnu" in field_has_error(bad_type.text, "type")

    bad_number = edit(client, event_id, capacity="vingt")
    assert bad_number.status_code == 400
    assert "nombre entier" in field_has_error(bad_number.text, "capacity")

    # The value typed is shown again, and nothing was saved.
    assert 'value="vingt"' in bad_number.text
    with committed.transaction() as db:
        event = db.get(Event, event_id)
        assert event is not None and event.capacity == 5 and event.revision == 1


def test_edit_saves_and_a_form_sent_unchanged_changes_nothing(
    client: TestClient, committed: Database
) -> None:
    agencies = setup_agencies(committed)
    event_id = new_event(
        committed,
        agencies.agency_id,
        description='<p>Avec <a href="https://exemple.fr">un lien</a> et <em>du style</em>.</p>',
        registration_closes_at=in_days(6, 18, 0),
    )
    register_via_api(client, event_id, 1)
    sign_in(client)
    unchanged = edit(client, event_id)
    assert unchanged.status_code == 303, unchanged.text
    with committed.transaction() as db:
        event = db.get(Event, event_id)
        assert event is not None and event.revision == 1
    assert outbox(committed, "event_changed") == []

    moved = in_days(8, 14, 0)
    changed = edit(
        client,
        event_id,
        title="Job dating logistique (nouvel horaire)",
        starts_at=moved.strftime("%Y-%m-%dT%H:%M"),
        ends_at=(moved + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
    )
    assert changed.status_code == 303
    assert changed.headers["location"] == f"/organisme/evenements/{event_id}?fait=modifie"
    body = client.get(f"/api/v1/events/{event_id}").json()
    assert body["title"] == "Job dating logistique (nouvel horaire)"
    assert body["starts_at"][11:16] == "14:00"
    with committed.transaction() as db:
        event = db.get(Event, event_id)
        assert event is not None and event.revision == 2
    assert [m.to_address for m in outbox(committed, "event_changed")] == ["p1@example.org"]


def test_a_new_commune_moves_the_venue(client: TestClient, committed: Database) -> None:
    agencies = setup_agencies(committed)
    event_id = new_event(committed, agencies.agency_id)  # Montreuil
    sign_in(client)
    response = edit(client, event_id, venue_postal_code="69003", venue_city="Lyon")
    assert response.status_code == 303, response.text
    venue = client.get(f"/api/v1/events/{event_id}").json()["venue"]
    assert venue["city"] == "Lyon" and 45 < venue["lat"] < 46 and 4 < venue["lon"] < 5


# --- Event actions -----------------------------------------------------------------------------


def test_duplicate_makes_a_new_event_on_the_new_date(
    client: TestClient, committed: Database
) -> None:
    agencies = setup_agencies(committed)
    start = in_days(5, 9, 30)
    event_id = new_event(
        committed,
        agencies.agency_id,
        title="Réunion d’information BTP",
        starts_at=start,
        ends_at=start + timedelta(hours=2, minutes=30),
        registration_closes_at=start - timedelta(days=1),
    )
    register_via_api(client, event_id, 1)
    sign_in(client)
    new_start = in_days(40, 14, 0)
    response = post_form(
        client,
        f"/organisme/evenements/{event_id}/duplication",
        {"starts_at": new_start.strftime("%Y-%m-%dT%H:%M")},
        page=f"/organisme/evenements/{event_id}",
    )
    assert response.status_code == 303, response.text
    copy_id = int(response.headers["location"].split("/")[-1].split("?")[0])
    assert copy_id != event_id
    copy = client.get(f"/api/v1/events/{copy_id}").json()
    assert copy["title"] == "Réunion d’information BTP"
    starts = datetime.fromisoformat(copy["starts_at"])
    ends = datetime.fromisoformat(copy["ends_at"])
    assert starts == new_start and ends - starts == timedelta(hours=2, minutes=30)
    assert copy["seats_left"] == 20 and copy["registration_open"] is True
    closes = datetime.fromisoformat(copy["registration_closes_at"])
    assert closes == new_start - timedelta(days=1)
    with committed.transaction() as db:
        event = db.get(Event, copy_id)
        assert event is not None and event.revision == 1 and event.feed_id is None
        assert event.seats_taken == 0

    past = post_form(
        client,
        f"/organisme/evenements/{event_id}/duplication",
        {"starts_at": in_days(-2).strftime("%Y-%m-%dT%H:%M")},
        page=f"/organisme/evenements/{event_id}",
    )
    assert past.status_code == 400
    assert "date à venir" in field_has_error(past.text, "duplicate_starts_at")


def test_close_and_reopen_registrations(client: TestClient, committed: Database) -> None:
    agencies = setup_agencies(committed)
    event_id = new_event(committed, agencies.agency_id)
    sign_in(client)
    page = f"/organisme/evenements/{event_id}"
    action = f"/organisme/evenements/{event_id}/inscriptions"
    closed = post_form(client, action, {"closed": "1"}, page=page)
    assert closed.status_code == 303
    assert "Les inscriptions sont fermées." in client.get(closed.headers["location"]).text
    assert client.get(f"/api/v1/events/{event_id}").json()["registration_open"] is False
    refused = client.post(
        f"/api/v1/events/{event_id}/registrations",
        json={"first_name": "A", "last_name": "B", "email": "ab@example.org"},
    )
    assert refused.status_code == 409

    reopened = post_form(client, action, {"closed": "0"}, page=page)
    assert reopened.status_code == 303
    assert client.get(f"/api/v1/events/{event_id}").json()["registration_open"] is True
    with committed.transaction() as db:
        event = db.get(Event, event_id)
        assert event is not None and event.revision == 1  # not a calendar change


def test_cancelling_an_event_asks_for_confirmation_first(
    client: TestClient, committed: Database
) -> None:
    agencies = setup_agencies(committed)
    event_id = new_event(committed, agencies.agency_id, capacity=1)
    register_via_api(client, event_id, 1)
    sign_in(client)
    detail = client.get(f"/organisme/evenements/{event_id}").text
    # The native dialog, filled in and opened by static/js/confirm.js, asks the same question.
    assert 'data-confirm="confirmer-annulation"' in detail
    assert '<dialog id="confirmer-annulation"' in detail
    assert 'form="annuler-evenement" name="confirm" value="1"' in detail
    assert "js/confirm.js" in detail
    message = "La salle <b>est</b> indisponible."
    asked = post_form(
        client,
        f"/organisme/evenements/{event_id}/annulation",
        {"message": message},
        page=f"/organisme/evenements/{event_id}",
    )
    # Without JavaScript: a page asks, and nothing is cancelled yet.
    assert asked.status_code == 200
    assert "Annuler l’événement&#8239;?" in asked.text and "définitive" in asked.text
    assert "La salle &lt;b&gt;est&lt;/b&gt; indisponible." in asked.text
    assert 'name="confirm" value="1"' in asked.text
    assert client.get(f"/api/v1/events/{event_id}").json()["status"] == "scheduled"
    assert outbox(committed, "event_cancelled") == []
    # Its « Oui » sends the message it was shown.
    token = re.search(r'name="csrftoken" value="([^"]+)"', asked.text)
    assert token is not None
    hidden = re.search(r'name="message" value="([^"]*)"', asked.text)
    assert hidden is not None and html.unescape(hidden.group(1)) == message
    done = client.post(
        f"/organisme/evenements/{event_id}/annulation",
        data={"csrftoken": token.group(1), "message": message, "confirm": "1"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert client.get(f"/api/v1/events/{event_id}").json()["status"] == "cancelled"
    [mail] = outbox(committed, "event_cancelled")
    assert "La salle <b>est</b> indisponible." in mail.body_text
    # Asked again for an event already cancelled: back to its page.
    again = post_form(
        client,
        f"/organisme/evenements/{event_id}/annulation",
        {"message": ""},
        page=f"/organisme/evenements/{event_id}",
    )
    assert again.status_code == 303


def test_cancel_with_a_message_tells_every_registrant(
    client: TestClient, committed: Database
) -> None:
    agencies = setup_agencies(committed)
    event_id = new_event(committed, agencies.agency_id, capacity=1)
    register_via_api(client, event_id, 1)
    register_via_api(client, event_id, 2)  # waitlisted
    sign_in(client)
    response = post_form(
        client,
        f"/organisme/evenements/{event_id}/annulation",
        {"message": "La salle est indisponible ; une autre date suivra.", "confirm": "1"},
        page=f"/organisme/evenements/{event_id}",
    )
    assert response.status_code == 303
    public = client.get(f"/api/v1/events/{event_id}").json()
    assert public["status"] == "cancelled" and public["registration_open"] is False
    mails = outbox(committed, "event_cancelled")
    assert sorted(m.to_address for m in mails) == ["p1@example.org", "p2@example.org"]
    assert all("La salle est indisponible" in m.body_text for m in mails)
    page = client.get(f"/organisme/evenements/{event_id}").text
    assert "Cet événement est annulé." in page and "/annulation" not in page

    too_long = post_form(
        client,
        f"/organisme/evenements/{new_event(committed, agencies.agency_id)}/annulation",
        {"message": "x" * 2001},
        page="/organisme",
    )
    assert too_long.status_code == 400
    assert "2000 caractères" in field_has_error(too_long.text, "cancel_message")


def test_attendance_is_marked_on_the_day(client: TestClient, committed: Database) -> None:
    agencies = setup_agencies(committed)
    now = datetime.now(PARIS)
    starts = now + timedelta(hours=3)
    late_evening = starts.date() != now.date()
    if late_evening:
        starts = now + timedelta(days=1)  # registered tomorrow, then moved to tonight below
    event_id = new_event(
        committed, agencies.agency_id, starts_at=starts, ends_at=starts + timedelta(hours=2)
    )
    registration = register_via_api(client, event_id, 1)
    if late_evening:
        with committed.transaction() as db:
            event = db.get(Event, event_id)
            assert event is not None
            event.starts_at = now - timedelta(minutes=30)
            event.ends_at = now + timedelta(hours=1)
    with committed.transaction() as db:
        registration_id = db.scalars(select(Registration.id)).one()
    sign_in(client)
    page = client.get(f"/organisme/evenements/{event_id}")
    assert "Présent·e" in page.text
    action = f"/organisme/evenements/{event_id}/inscrits/{registration_id}/presence"
    present = post_form(client, action, {"present": "1"}, page=f"/organisme/evenements/{event_id}")
    assert present.status_code == 303
    token = registration["manage_url"].rsplit("/", 1)[1]
    assert client.get(f"/api/v1/registrations/{token}").json()["status"] == "attended"
    absent = post_form(client, action, {"present": "0"}, page=f"/organisme/evenements/{event_id}")
    assert absent.status_code == 303
    assert client.get(f"/api/v1/registrations/{token}").json()["status"] == "absent"
    # A present or absent person keeps the seat.
    with committed.transaction() as db:
        event = db.get(Event, event_id)
        assert event is not None and event.seats_taken == 1


def test_attendance_waits_for_the_day(client: TestClient, committed: Database) -> None:
    agencies = setup_agencies(committed)
    event_id = new_event(committed, agencies.agency_id, starts_at=in_days(3))
    register_via_api(client, event_id, 1)
    with committed.transaction() as db:
        registration_id = db.scalars(select(Registration.id)).one()
    sign_in(client)
    page = client.get(f"/organisme/evenements/{event_id}").text
    assert "La présence se note à partir du jour de l’événement" in page
    assert "/presence" not in page
    response = post_form(
        client,
        f"/organisme/evenements/{event_id}/inscrits/{registration_id}/presence",
        {"present": "1"},
        page=f"/organisme/evenements/{event_id}",
    )
    assert response.status_code == 409
    with committed.transaction() as db:
        assert db.scalars(select(Registration.status)).one() == "confirmed"


def test_csv_export_opens_in_french_excel(client: TestClient, committed: Database) -> None:
    agencies = setup_agencies(committed)
    event_id = new_event(committed, agencies.agency_id, capacity=1)
    register_via_api(client, event_id, 1)
    client.post(
        f"/api/v1/events/{event_id}/registrations",
        json={"first_name": "=CMD()", "last_name": "Müller", "email": "m@example.org"},
    )
    sign_in(client)
    response = client.get(f"/organisme/evenements/{event_id}/inscrits.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["Prénom", "Nom", "E-mail"]
    assert rows[1][:3] == ["Prénom1", "Nom1", "p1@example.org"] and rows[1][4] == "Confirmée"
    assert rows[2][0] == "'=CMD()" and rows[2][1] == "Müller"
    assert rows[2][4] == "Liste d'attente" and rows[2][5] == "1"


# --- Feeds and token ---------------------------------------------------------------------------


def test_feeds_page_shows_runs_and_rejected_rows(client: TestClient, committed: Database) -> None:
    agencies = setup_agencies(committed)
    started = datetime(2026, 3, 2, 8, 15, tzinfo=UTC)
    with committed.transaction() as db:
        feed = Feed(
            agency_id=agencies.agency_id,
            url="https://agence.example/evenements.json",
            format="ft-json",
            interval_minutes=60,
        )
        other = Feed(
            agency_id=agencies.other_id, url="https://autre.example/flux.ics", format="ics"
        )
        # A file imported on the command line: staff see its name, never the server path.
        from_file = Feed(
            agency_id=agencies.agency_id,
            url="/srv/imports/secret/ml-export-2026-12-05.csv",
            format="csv",
            enabled=False,
        )
        db.add_all([feed, other, from_file])
        db.flush()
        db.add(
            ImportRun(
                feed_id=feed.id,
                started_at=started,
                finished_at=started + timedelta(seconds=4),
                status="succeeded",
                created=12,
                updated=3,
                unchanged=40,
                cancelled=1,
                rejected=2,
                rejected_rows=[
                    {"line": 7, "field": "dateDebut", "reason": "Date illisible : « 31/02 »."},
                    {"line": 19, "field": None, "reason": "Titre manquant."},
                ],
                warnings=[],
                fetch_outcome="200",
            )
        )
    sign_in(client)
    page = client.get("/organisme/flux")
    assert page.status_code == 200
    html = page.text
    assert "https://agence.example/evenements.json" in html
    assert "autre.example" not in html
    assert "ml-export-2026-12-05.csv" in html and "/srv/imports" not in html
    assert "Réussi" in html and "<td>12</td>" in html and "<td>40</td>" in html
    assert '<th scope="row">7</th><td>dateDebut</td><td>Date illisible : « 31/02 ».</td>' in html
    assert "Titre manquant." in html
    assert "lundi 2 mars 2026, 9 h 15" in html  # Paris time

    added = post_form(
        client,
        "/organisme/flux",
        {"url": "https://agence.example/agenda.ics", "format": "ics", "interval_minutes": "120"},
    )
    assert added.status_code == 303
    assert "https://agence.example/agenda.ics" in client.get("/organisme/flux").text
    bad = post_form(
        client, "/organisme/flux", {"url": "ftp://x", "format": "ics", "interval_minutes": ""}
    )
    assert bad.status_code == 400 and field_has_error(bad.text, "url")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_rotation_shows_a_new_token_once(client: TestClient, committed: Database) -> None:
    agencies = setup_agencies(committed)
    old = _bearer(agencies.api_token)
    assert client.get("/api/v1/agency/events", headers=old).status_code == 200
    sign_in(client)
    page = client.get("/organisme/jeton")
    assert page.status_code == 200 and "evt_" not in page.text
    response = post_form(client, "/organisme/jeton", {})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    match = re.search(r'value="(evt_[A-Za-z0-9_-]+)"', response.text)
    assert match is not None
    new_token = match.group(1)
    assert new_token != agencies.api_token
    assert client.get("/api/v1/agency/events", headers=old).status_code == 401
    assert client.get("/api/v1/agency/events", headers=_bearer(new_token)).status_code == 200
    assert new_token not in client.get("/organisme/jeton").text
    # The other agency's token is untouched.
    other = _bearer(agencies.other_token)
    assert client.get("/api/v1/agency/events", headers=other).status_code == 200


# --- Isolation ---------------------------------------------------------------------------------


def test_another_agency_gets_404_on_every_event_page_and_action(
    client: TestClient, committed: Database
) -> None:
    agencies = setup_agencies(committed)
    event_id = new_event(committed, agencies.agency_id, starts_at=datetime.now(PARIS))
    with committed.transaction() as db:
        event = db.get(Event, event_id)
        assert event is not None
        # Starting now (attendance open), with a registrant added directly.
        registration = Registration(
            event_id=event_id,
            first_name="Inès",
            last_name="Moreau",
            email="ines@example.org",
            status="confirmed",
            token="t" * 43,
            attendance="onsite",
        )
        db.add(registration)
        event.seats_taken = 1
        db.flush()
        registration_id = registration.id
    sign_in(client, email=OTHER_EMAIL)
    for page in (
        f"/organisme/evenements/{event_id}",
        f"/organisme/evenements/{event_id}/modifier",
        f"/organisme/evenements/{event_id}/inscrits.csv",
    ):
        response = client.get(page, follow_redirects=False)
        assert response.status_code == 404, page
        assert "Inès" not in response.text
    token = csrf_token(client, "/organisme")
    for action, data in (
        (f"/organisme/evenements/{event_id}/modifier", new_event_form(title="Piraté")),
        (f"/organisme/evenements/{event_id}/modifier", {"title": "x" * 300}),
        (f"/organisme/evenements/{event_id}/annulation", {"message": "Piraté"}),
        (f"/organisme/evenements/{event_id}/annulation", {"message": "Piraté", "confirm": "1"}),
        (f"/organisme/evenements/{event_id}/inscriptions", {"closed": "1"}),
        (f"/organisme/evenements/{event_id}/duplication", {"starts_at": "2031-01-01T10:00"}),
        (f"/organisme/evenements/{event_id}/duplication", {"starts_at": "n'importe quoi"}),
        (
            f"/organisme/evenements/{event_id}/inscrits/{registration_id}/presence",
            {"present": "0"},
        ),
    ):
        response = client.post(action, data={**data, "csrftoken": token}, follow_redirects=False)
        assert response.status_code == 404, action
    with committed.transaction() as db:
        event = db.get(Event, event_id)
        assert event is not None
        assert (event.title, event.status, event.registration_closed) == (
            "Job dating logistique",
            "scheduled",
            False,
        )
        assert db.scalar(select(Registration.status)) == "confirmed"
        assert db.scalar(select(Event.id).where(Event.id != event_id)) is None  # no copy
    # The owner still sees it.
    client.cookies.clear()
    sign_in(client)
    assert client.get(f"/organisme/evenements/{event_id}").status_code == 200
    assert client.get("/organisme/evenements/999999").status_code == 404
    assert client.get("/organisme/evenements/abc").status_code == 404


# --- Password reset and invitation -------------------------------------------------------------


def _link(database: Database, kind: str) -> str:
    mails = outbox(database, kind)
    assert mails, f"no {kind} mail"
    match = re.search(
        r"http://testserver(/organisme/mot-de-passe/nouveau\?token=\S+)", mails[-1].body_text
    )
    assert match is not None
    return match.group(1)


def test_staff_password_reset_works_once(client: TestClient, committed: Database) -> None:
    setup_agencies(committed)
    response = post_form(client, "/organisme/mot-de-passe/oubli", {"email": EMAIL})
    assert response.status_code == 303
    assert response.headers["location"] == "/organisme/mot-de-passe/oubli?envoye=1"
    unknown = post_form(client, "/organisme/mot-de-passe/oubli", {"email": "x@agence.example"})
    assert unknown.headers["location"] == response.headers["location"]
    assert len(outbox(committed, "staff_password_reset")) == 1
    link = _link(committed, "staff_password_reset")
    token = link.split("token=", 1)[1]
    page = client.get(link)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    short = post_form(
        client, "/organisme/mot-de-passe/nouveau", {"token": token, "password": "court"}, page=link
    )
    assert short.status_code == 400 and field_has_error(short.text, "password")
    done = post_form(
        client,
        "/organisme/mot-de-passe/nouveau",
        {"token": token, "password": "un tout nouveau mot de passe"},
        page=link,
    )
    assert done.status_code == 303 and done.headers["location"] == "/organisme?fait=motdepasse"
    assert client.get("/organisme", follow_redirects=False).status_code == 200
    again = client.get(link)
    assert again.status_code == 400 and "n’est plus valable" in again.text
    client.cookies.clear()
    assert sign_in(client).status_code == 401
    assert sign_in(client, password="un tout nouveau mot de passe").status_code == 303
    # A seeker's reset link is not a staff one.
    assert client.get("/compte/mot-de-passe/nouveau?token=" + token).status_code == 400


def test_invited_staff_chooses_a_password(
    client: TestClient, committed: Database, settings: Settings
) -> None:
    agencies = setup_agencies(committed)
    with committed.transaction() as db:
        from events_app.models import Agency

        agency = db.get(Agency, agencies.agency_id)
        assert agency is not None
        staff, url = staff_domain.invite_staff(
            db,
            agency_slug=agency.slug,
            email="Nouvelle.Recrue@Agence.example",
            name="Nina Recrue",
            settings=settings,
        )
        assert staff.email == "nouvelle.recrue@agence.example" and staff.password_hash is None
    assert url.startswith("http://testserver/organisme/mot-de-passe/nouveau?token=")
    mail = outbox(committed, "staff_invitation")[0]
    assert url in mail.body_text and "Agence France Travail Montreuil" in mail.body_text
    # No password yet: nobody signs in with an empty or guessed one.
    assert sign_in(client, email="nouvelle.recrue@agence.example").status_code == 401
    path = url.removeprefix("http://testserver")
    page = client.get(path)
    assert page.status_code == 200 and "Choisir votre mot de passe" in page.text
    done = post_form(
        client,
        "/organisme/mot-de-passe/nouveau",
        {"token": path.split("token=", 1)[1], "password": "ma première phrase"},
        page=path,
    )
    assert done.status_code == 303
    assert "Nina Recrue" in client.get("/organisme").text
    assert client.get(path).status_code == 400  # used


def test_a_password_change_signs_out_other_sessions(
    client: TestClient, committed: Database
) -> None:
    setup_agencies(committed)
    sign_in(client)
    stolen = client.cookies.get("session")
    assert stolen
    with committed.transaction() as db:
        staff = authenticate_staff(db, email=EMAIL, password=PASSWORD)
        staff.password_hash = passwords.hash_password("un autre mot de passe")
    assert client.get("/organisme", follow_redirects=False).status_code == 303


# --- Domain rules ------------------------------------------------------------------------------


def test_dashboard_takes_a_fixed_number_of_queries(db: Session) -> None:
    agency, _ = make_agency(db)
    notifier = Notifier(db, Settings())

    def count_queries(n_events: int) -> int:
        for i in range(n_events):
            event = make_event(db, agency, capacity=1, starts_at=in_days(2 + i))
            for n in range(3):
                register(
                    db,
                    event_id=event.id,
                    person=Person("A", "B", f"q{i}-{n}-{n_events}@example.org"),
                    notifier=notifier,
                )
        db.flush()  # the registrations' mails, so that only the dashboard's queries count
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(str(args[2]))

        engine = db.get_bind()
        sa_event.listen(engine, "before_cursor_execute", count)
        try:
            sections = agency_dashboard(db, agency_id=agency.id, now=datetime.now(UTC))
        finally:
            sa_event.remove(engine, "before_cursor_execute", count)
        assert all(row.waitlist_length == 2 for row in sections["upcoming"])
        return len(statements)

    assert count_queries(2) == count_queries(10) <= 4


def test_attendance_opens_at_midnight_in_paris(db: Session) -> None:
    agency, _ = make_agency(db)
    starts = datetime(2030, 3, 12, 9, 30, tzinfo=PARIS)
    event = make_event(db, agency, starts_at=starts)
    registration = register(
        db,
        event_id=event.id,
        person=Person("Léa", "Petit", "lea@example.org"),
        notifier=Notifier(db, Settings()),
    ).registration
    eve = datetime(2030, 3, 11, 23, 59, tzinfo=PARIS)
    with pytest.raises(Conflict, match="à partir du jour"):
        mark_attendance(
            db,
            event_id=event.id,
            agency_id=agency.id,
            registration_id=registration.id,
            present=True,
            now=eve,
        )
    midnight = datetime(2030, 3, 12, 0, 0, tzinfo=PARIS)
    marked = mark_attendance(
        db,
        event_id=event.id,
        agency_id=agency.id,
        registration_id=registration.id,
        present=True,
        now=midnight,
    )
    assert marked.status == "attended"
    later = mark_attendance(
        db,
        event_id=event.id,
        agency_id=agency.id,
        registration_id=registration.id,
        present=False,
        now=midnight + timedelta(days=3),
    )
    assert later.status == "absent"
    other, _ = make_agency(db)
    with pytest.raises(NotFound):
        mark_attendance(
            db,
            event_id=event.id,
            agency_id=other.id,
            registration_id=registration.id,
            present=True,
            now=midnight,
        )


def test_only_confirmed_registrations_are_marked(db: Session) -> None:
    agency, _ = make_agency(db)
    event = make_event(db, agency, capacity=1, starts_at=in_days(1))
    notifier = Notifier(db, Settings())
    register(db, event_id=event.id, person=Person("A", "B", "a@example.org"), notifier=notifier)
    waiting = register(
        db, event_id=event.id, person=Person("C", "D", "c@example.org"), notifier=notifier
    ).registration
    with pytest.raises(Conflict, match="Liste d'attente"):
        mark_attendance(
            db,
            event_id=event.id,
            agency_id=agency.id,
            registration_id=waiting.id,
            present=True,
            now=datetime.now(UTC) + timedelta(days=2),
        )


def test_duplicate_keeps_the_clock_time_across_summer_time(db: Session) -> None:
    agency, _ = make_agency(db)
    # Winter (UTC+1) to summer (UTC+2): still 9:30 to 12:00, window still "the day before 18h".
    source = make_event(
        db,
        agency,
        starts_at=datetime(2030, 2, 5, 9, 30, tzinfo=PARIS),
        ends_at=datetime(2030, 2, 5, 12, 0, tzinfo=PARIS),
        registration_closes_at=datetime(2030, 2, 4, 18, 0, tzinfo=PARIS),
        sectors=["all"],
    )
    copy = duplicate_event(
        db,
        event_id=source.id,
        agency_id=agency.id,
        starts_at=datetime(2030, 6, 11, 9, 30, tzinfo=PARIS),
    )
    assert copy.id != source.id and copy.title == source.title and copy.revision == 1
    assert copy.starts_at.astimezone(PARIS).hour == 9 and copy.ends_at.astimezone(PARIS).hour == 12
    assert copy.registration_closes_at is not None
    assert copy.registration_closes_at.astimezone(PARIS) == datetime(
        2030, 6, 10, 18, 0, tzinfo=PARIS
    )
    assert copy.sectors == ["all"] and copy.seats_taken == 0
    other, _ = make_agency(db)
    with pytest.raises(NotFound):
        duplicate_event(
            db,
            event_id=source.id,
            agency_id=other.id,
            starts_at=datetime(2030, 6, 11, 9, 30, tzinfo=PARIS),
        )


def test_reopening_after_the_closing_date_is_refused(db: Session) -> None:
    agency, _ = make_agency(db)
    event = make_event(
        db,
        agency,
        starts_at=in_days(5),
        registration_closes_at=in_days(3),
    )
    set_registration_closed(db, event_id=event.id, agency_id=agency.id, closed=True)
    with pytest.raises(Conflict, match="date de clôture"):
        set_registration_closed(
            db,
            event_id=event.id,
            agency_id=agency.id,
            closed=False,
            now=datetime.now(UTC) + timedelta(days=4),
        )
    reopened = set_registration_closed(db, event_id=event.id, agency_id=agency.id, closed=False)
    assert reopened.registration_closed is False


def test_staff_accounts_rules(db: Session, settings: Settings) -> None:
    agency, _ = make_agency(db)
    staff, token = create_staff(
        db, agency_id=agency.id, email="a@agence.example", name=None, password=PASSWORD
    )
    assert token is None and staff.password_hash and staff.password_hash.startswith("$argon2id$")
    with pytest.raises(Conflict):
        create_staff(db, agency_id=agency.id, email="A@Agence.example", password=PASSWORD)
    with pytest.raises(InvalidInput) as bad:
        create_staff(db, agency_id=agency.id, email="pas une adresse", password=PASSWORD)
    assert bad.value.field == "email"
    with pytest.raises(InvalidInput) as short:
        create_staff(db, agency_id=agency.id, email="b@agence.example", password="court")
    assert short.value.field == "password"
    assert authenticate_staff(db, email=" A@agence.example ", password=PASSWORD).id == staff.id
    assert staff.last_login_at is not None
    staff.is_active = False
    with pytest.raises(Unauthorized):
        authenticate_staff(db, email="a@agence.example", password=PASSWORD)
    assert staff_domain.staff_of_session(db, staff.id, staff_domain.password_stamp(staff)) is None

    invited, invitation = create_staff(
        db, agency_id=agency.id, email="c@agence.example", settings=settings
    )
    assert invitation is not None and invited.password_hash is None
    assert staff_domain.check_staff_token(db, token=invitation, settings=settings).id == invited.id


class _LongAgoSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - staff_domain.RESET_MAX_AGE_SECONDS - 60


def test_reset_links_expire_after_an_hour(db: Session, settings: Settings) -> None:
    agency, _ = make_agency(db)
    staff, _ = create_staff(db, agency_id=agency.id, email="d@agence.example", password=PASSWORD)
    fresh = staff_domain.reset_token(staff, settings)
    assert staff_domain.check_staff_token(db, token=fresh, settings=settings).id == staff.id
    # A token signed two hours ago (the signer's clock is set back), with valid claims.
    old = URLSafeTimedSerializer(
        settings.secret_key, salt=staff_domain.RESET_SALT, signer=_LongAgoSigner
    ).dumps({"id": staff.id, "h": passwords.password_stamp(staff.password_hash)})
    with pytest.raises(InvalidInput) as expired:
        staff_domain.check_staff_token(db, token=old, settings=settings)
    assert expired.value.field == "token"


BAD_VALUES = ("x" * 5000, "\x00", "1e400", "nan", "-1", "0001-01-01T00:00", "31/02/2026 10:00")


def test_no_form_input_gives_a_server_error(client: TestClient, committed: Database) -> None:
    agencies = setup_agencies(committed)
    event_id = new_event(committed, agencies.agency_id)
    sign_in(client)
    token = csrf_token(client, "/organisme")
    fields = [name for name in NEW_EVENT_FORM if name != "sectors"]
    for name in [*fields, "sectors"]:
        for value in BAD_VALUES:
            data = {**new_event_form(), name: value, "csrftoken": token}
            for action in (
                "/organisme/evenements/nouveau",
                f"/organisme/evenements/{event_id}/modifier",
            ):
                response = client.post(action, data=data, follow_redirects=False)
                assert response.status_code in (303, 400), (
                    action,
                    name,
                    value[:20],
                    response.text[-300:],
                )
    for value in BAD_VALUES:
        for action, data in (
            (f"/organisme/evenements/{event_id}/duplication", {"starts_at": value}),
            (f"/organisme/evenements/{event_id}/annulation", {"message": value * 3}),
            (
                "/organisme/flux",
                {"url": "https://a.example/" + value, "format": value, "interval_minutes": value},
            ),
            ("/organisme/connexion", {"email": value, "password": value}),
            ("/organisme/mot-de-passe/oubli", {"email": value}),
            ("/organisme/mot-de-passe/nouveau", {"token": value, "password": value}),
        ):
            response = client.post(
                action, data={**data, "csrftoken": token}, follow_redirects=False
            )
            assert response.status_code < 500, (action, value[:20])


def test_the_feeds_page_links_to_the_formats_and_a_csv_template(
    client: TestClient, committed: Database
) -> None:
    setup_agencies(committed)
    for page in ("/organisme/flux/formats", "/organisme/flux/modele.csv"):
        response = client.get(page, follow_redirects=False)
        assert response.status_code == 303  # staff only, like the rest of the back office
    sign_in(client)
    feeds = client.get("/organisme/flux").text
    assert (
        'href="/organisme/flux/formats"' in feeds and 'href="/organisme/flux/modele.csv"' in feeds
    )
    formats = client.get("/organisme/flux/formats")
    assert formats.status_code == 200
    assert "Tableur (CSV)" in formats.text and "dateEvenement" in formats.text
    template = client.get("/organisme/flux/modele.csv")
    assert template.status_code == 200
    assert template.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in template.headers["content-disposition"]
    [event] = [item for item in PARSERS["csv"](template.content)]
    assert isinstance(event, ImportedEvent) and event.starts_at > datetime.now(UTC)
