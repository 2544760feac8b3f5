"""Check-in codes and check-in (SPEC §12), on SQLite and PostgreSQL: a code per confirmed seat
(at registration or promotion, gone once cancelled), shown in the API, the mail, the invite and
the manage page; POST /api/v1/agency/events/{id}/checkins (attended, already, 404, 401, 409);
the Paris-day window; the attendance list writing the same record; the scan page."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest
from alembic import command
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from events_app import migrate
from events_app.checkin_codes import CHECKIN_ALPHABET, CHECKIN_LENGTH, format_checkin_code
from events_app.checkins import check_in, checkin_window
from events_app.db import PARIS, Database
from events_app.errors import Conflict, NotFound
from events_app.models import Agency, Event, OutboxMessage, Registration
from events_app.notifications import Notifier
from events_app.registrations import Person, cancel_registration, register
from events_app.settings import Settings
from events_app.staff import create_staff, mark_attendance
from tests.factories import in_days, make_agency, make_event
from tests.helpers import post_form

STAFF_EMAIL = "claire.dupont@agence.example"
OTHER_STAFF = "marc.leroy@autre.example"
PASSWORD = "une phrase de passe solide"


def person(n: int) -> Person:
    return Person(first_name=f"Prénom{n}", last_name=f"Nom{n}", email=f"p{n}@example.org")


# --- Domain: codes per state, the window --------------------------------------------------------


def test_codes_per_state(db: Session, settings: Settings) -> None:
    notifier = Notifier(db, settings)
    agency, _ = make_agency(db)
    event = make_event(db, agency, capacity=1)
    first = register(db, event_id=event.id, person=person(1), notifier=notifier).registration
    waiting = register(db, event_id=event.id, person=person(2), notifier=notifier).registration
    # Confirmed: a code of the alphabet, not the manage token; waitlisted: none yet.
    assert first.status == "confirmed" and first.checkin_code is not None
    assert len(first.checkin_code) == CHECKIN_LENGTH
    assert set(first.checkin_code) <= set(CHECKIN_ALPHABET)
    assert first.checkin_code not in first.token
    assert waiting.status == "waitlisted" and waiting.checkin_code is None
    old_code = first.checkin_code
    cancel_registration(db, token=first.token, notifier=notifier)
    db.refresh(waiting)
    # Cancelled: the code is gone; promoted: a new code of its own.
    assert first.checkin_code is None
    assert waiting.status == "confirmed" and waiting.checkin_code not in (None, old_code)
    # The promotion mail carries the code.
    mail = db.scalars(
        select(OutboxMessage).where(
            OutboxMessage.registration_id == waiting.id, OutboxMessage.kind == "promoted"
        )
    ).one()
    assert format_checkin_code(waiting.checkin_code or "") in mail.body_text
    assert 'role="img"' in (mail.body_html or "")
    # The cancelled code opens nothing, even on the day.
    now = event.starts_at
    with pytest.raises(NotFound):
        check_in(db, event_id=event.id, agency_id=agency.id, code=old_code, by="x", now=now)
    done = check_in(
        db,
        event_id=event.id,
        agency_id=agency.id,
        code=(waiting.checkin_code or "").lower(),
        by="x",
        now=now,
    )
    assert done.registration.id == waiting.id and not done.already


def _event_on(db: Session, agency: Agency, starts: datetime, hours: int = 3) -> Event:
    event = make_event(db, agency, capacity=5)
    event.starts_at = starts
    event.ends_at = starts + timedelta(hours=hours)
    db.flush()
    return event


def test_window_is_the_day_before_to_the_day_after_in_paris(
    db: Session, settings: Settings
) -> None:
    agency, _ = make_agency(db)
    event = make_event(db, agency, capacity=5)
    registration = register(
        db, event_id=event.id, person=person(1), notifier=Notifier(db, settings)
    ).registration
    # 10 March 2031, 23:30 in Paris: already the 11th in no time zone but the 10th in Paris.
    starts = datetime(2031, 3, 10, 23, 30, tzinfo=PARIS)
    event.starts_at, event.ends_at = starts, starts + timedelta(minutes=20)
    db.flush()
    opens, closes = checkin_window(event)
    assert opens == datetime(2031, 3, 9, tzinfo=PARIS)
    assert closes == datetime(2031, 3, 12, tzinfo=PARIS)
    code = registration.checkin_code or ""

    def scan(now: datetime) -> bool:
        return check_in(
            db, event_id=event.id, agency_id=agency.id, code=code, by="x", now=now
        ).already

    with pytest.raises(Conflict, match="veille"):
        scan(datetime(2031, 3, 8, 23, 59, tzinfo=PARIS))
    with pytest.raises(Conflict, match="lendemain"):
        scan(datetime(2031, 3, 12, 0, 0, tzinfo=PARIS))
    assert scan(datetime(2031, 3, 9, 0, 0, tzinfo=PARIS)) is False  # the day before: open
    assert scan(datetime(2031, 3, 11, 23, 59, tzinfo=PARIS)) is True  # the day after: open


def test_attendance_list_writes_the_same_record(db: Session, settings: Settings) -> None:
    agency, _ = make_agency(db)
    event = make_event(db, agency, capacity=5)
    registration = register(
        db, event_id=event.id, person=person(1), notifier=Notifier(db, settings)
    ).registration
    moment = event.starts_at + timedelta(minutes=5)
    mark_attendance(
        db,
        event_id=event.id,
        agency_id=agency.id,
        registration_id=registration.id,
        present=True,
        now=moment,
        by="Claire Dupont",
    )
    assert registration.status == "attended"
    assert registration.checked_in_at == moment and registration.checked_in_by == "Claire Dupont"
    # A scan afterwards sees the same check-in.
    done = check_in(
        db,
        event_id=event.id,
        agency_id=agency.id,
        code=registration.checkin_code or "",
        by="API",
        now=moment + timedelta(hours=1),
    )
    assert done.already and done.checked_in_at == moment
    mark_attendance(
        db,
        event_id=event.id,
        agency_id=agency.id,
        registration_id=registration.id,
        present=False,
        now=moment,
    )
    assert registration.checked_in_at is None and registration.checked_in_by is None


# --- HTTP --------------------------------------------------------------------------------------


def _setup(committed: Database, days: int = 0) -> dict[str, Any]:
    with committed.transaction() as db:
        agency, token = make_agency(db, name="Agence France Travail Montreuil")
        other, other_token = make_agency(db, name="Mission locale de Lyon")
        create_staff(
            db, agency_id=agency.id, email=STAFF_EMAIL, name="Claire Dupont", password=PASSWORD
        )
        create_staff(
            db, agency_id=other.id, email=OTHER_STAFF, name="Marc Leroy", password=PASSWORD
        )
        # Tomorrow: registrations still open, and check-in already (the day before).
        today = make_event(db, agency, capacity=1, starts_at=in_days(days + 1, 10, 0))
        later = make_event(db, agency, capacity=5, starts_at=in_days(days + 3, 10, 0))
        theirs = make_event(db, other, capacity=5, starts_at=in_days(days + 1, 10, 0))
        return {
            "token": token,
            "other_token": other_token,
            "today": today.id,
            "later": later.id,
            "theirs": theirs.id,
        }


def _register(client: TestClient, event_id: int, n: int) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/events/{event_id}/registrations",
        json={"first_name": f"Inès{n}", "last_name": f"Roux{n}", "email": f"p{n}@example.org"},
    )
    assert response.status_code == 201, response.text
    token = response.json()["manage_url"].rsplit("/", 1)[1]
    shown = client.get(f"/api/v1/registrations/{token}")
    assert shown.status_code == 200
    body: dict[str, Any] = shown.json()
    body["token"] = token
    return body


def _checkin(client: TestClient, event_id: int, code: Any, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(
        f"/api/v1/agency/events/{event_id}/checkins", json={"code": code}, headers=headers
    )


def test_checkin_api(client: TestClient, committed: Database) -> None:
    data = _setup(committed)
    confirmed = _register(client, data["today"], 1)
    waiting = _register(client, data["today"], 2)
    assert confirmed["status"] == "confirmed" and len(confirmed["checkin_code"]) == 12
    assert waiting["status"] == "waitlisted" and waiting["checkin_code"] is None

    first = _checkin(
        client, data["today"], format_checkin_code(confirmed["checkin_code"]), data["token"]
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["attended"] is True and body["already"] is False
    assert (body["first_name"], body["last_name"]) == ("Inès1", "Roux1")
    again = _checkin(client, data["today"], confirmed["checkin_code"].lower(), data["token"])
    assert again.status_code == 200
    assert again.json()["already"] is True
    assert again.json()["checked_in_at"] == body["checked_in_at"]
    assert client.get(f"/api/v1/registrations/{confirmed['token']}").json()["status"] == (
        "attended"
    )

    # Unknown, waitlisted (no code), another event's, another agency's event, no token.
    assert _checkin(client, data["today"], "2222-2222-2222", data["token"]).status_code == 404
    other_reg = _register(client, data["theirs"], 3)
    response = _checkin(client, data["today"], other_reg["checkin_code"], data["token"])
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Code inconnu pour cet événement."
    response = _checkin(client, data["theirs"], other_reg["checkin_code"], data["token"])
    assert response.status_code == 404  # their event, our token
    assert _checkin(client, data["today"], confirmed["checkin_code"], None).status_code == 401
    assert (
        _checkin(client, data["today"], confirmed["checkin_code"], data["other_token"]).status_code
        == 404
    )
    # Bad bodies: a French 400 naming the field.
    response = _checkin(client, data["today"], 12, data["token"])
    assert response.status_code == 400 and response.json()["error"]["field"] == "code"

    # In three days: too early, with the reason.
    later = _register(client, data["later"], 4)
    response = _checkin(client, data["later"], later["checkin_code"], data["token"])
    assert response.status_code == 409
    assert "veille" in response.json()["error"]["message"]

    # Cancelled: the code stops working and is no longer shown.
    second = _register(client, data["theirs"], 5)
    client.post(f"/api/v1/registrations/{second['token']}/cancel")
    assert client.get(f"/api/v1/registrations/{second['token']}").json()["checkin_code"] is None
    response = _checkin(client, data["theirs"], second["checkin_code"], data["other_token"])
    assert response.status_code == 404


def test_code_in_mail_invite_and_manage_page(client: TestClient, committed: Database) -> None:
    data = _setup(committed)
    confirmed = _register(client, data["later"], 1)
    code = format_checkin_code(confirmed["checkin_code"])
    with committed.transaction() as db:
        mail = db.scalars(
            select(OutboxMessage).where(
                OutboxMessage.kind == "confirmed", OutboxMessage.registration_id == confirmed["id"]
            )
        ).one()
        assert code in mail.body_text and code in (mail.body_html or "")
        assert "<svg" in (mail.body_html or "")
        invite = icalendar.Calendar.from_ical(mail.ics or "")
        descriptions = [str(c["DESCRIPTION"]) for c in invite.walk("VEVENT")]
        assert any(code in d for d in descriptions)
        assert confirmed["token"] not in (mail.ics or "")
    page = client.get(f"/inscriptions/{confirmed['token']}")
    assert page.status_code == 200
    assert code in page.text
    assert re.search(r'<svg role="img" aria-label="QR code du code d’entrée ' + code, page.text)


def test_scan_page_and_attendance_list(client: TestClient, committed: Database) -> None:
    data = _setup(committed)
    confirmed = _register(client, data["today"], 1)
    # Not signed in: to the sign-in page.
    response = client.get(f"/organisme/evenements/{data['today']}/pointage", follow_redirects=False)
    assert response.status_code == 303
    assert (
        post_form(
            client, "/organisme/connexion", {"email": STAFF_EMAIL, "password": PASSWORD}
        ).status_code
        == 303
    )
    page = client.get(f"/organisme/evenements/{data['today']}/pointage")
    assert page.status_code == 200
    assert 'aria-live="polite"' in page.text
    assert "camera=(self)" in page.headers["permissions-policy"]
    path = f"/organisme/evenements/{data['today']}/pointage"
    response = post_form(client, path, {"code": confirmed["checkin_code"]})
    assert response.status_code == 200
    assert "Présent·e" in response.text and "Inès1 Roux1" in response.text
    response = post_form(client, path, {"code": confirmed["checkin_code"]})
    assert "Déjà pointé·e à" in response.text
    response = post_form(client, path, {"code": "ABCD"})
    assert response.status_code == 404
    assert "Code inconnu pour cet événement" in response.text
    # Without the CSRF token: refused.
    refused = client.post(path, data={"code": confirmed["checkin_code"]})
    assert refused.status_code == 403
    # Another agency's event: a 404 page.
    assert client.get(f"/organisme/evenements/{data['theirs']}/pointage").status_code == 404
    # The attendance list shows who checked the person in.
    detail = client.get(f"/organisme/evenements/{data['today']}")
    assert "Claire Dupont" in detail.text
    # JSON for the camera script: the same answer, from the same form.
    response = client.post(
        path,
        data={"code": confirmed["checkin_code"], "csrftoken": _csrf(client, path)},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200 and response.json()["already"] is True
    with committed.transaction() as db:
        registration = db.get(Registration, confirmed["id"])
        assert registration is not None and registration.checked_in_by == "Claire Dupont"


def _csrf(client: TestClient, page: str) -> str:
    match = re.search(r'name="csrftoken" value="([^"]+)"', client.get(page).text)
    assert match is not None
    return match.group(1)


def test_migration_gives_existing_seats_a_code(tmp_path: Path) -> None:
    """Registrations confirmed before 0009 get a code from it; waitlisted ones do not."""
    url = f"sqlite:///{tmp_path / 'before.db'}"
    config = migrate.alembic_config(url)
    command.upgrade(config, "0008")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO agencies (id, slug, name, kind, created_at) "
                    "VALUES (1, 'a', 'A', 'other', '2026-01-01 00:00:00')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO events (id, agency_id, title, description_html, type, format, "
                    "starts_at, ends_at, timezone, all_day, search_key, seats_taken, "
                    "remote_seats_taken, waitlist, registration_closed, status, edited_by_hand, "
                    "revision, created_at, updated_at) VALUES (1, 1, 'E', '', 'forum', 'onsite', "
                    "'2031-01-01 09:00:00', '2031-01-01 10:00:00', 'Europe/Paris', 0, 'e', 1, 0, "
                    "1, 0, 'scheduled', 0, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                )
            )
            for n, status in enumerate(("confirmed", "attended", "waitlisted", "cancelled")):
                connection.execute(
                    text(
                        "INSERT INTO registrations (event_id, first_name, last_name, email, "
                        "attendance, status, token, created_at, updated_at) VALUES (1, 'P', 'N', "
                        f"'p{n}@example.org', 'onsite', '{status}', 't{n}', "
                        "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                    )
                )
        command.upgrade(config, "head")
        with engine.connect() as connection:
            rows = dict(
                connection.execute(text("SELECT status, checkin_code FROM registrations")).all()
            )
    finally:
        engine.dispose()
    assert rows["waitlisted"] is None and rows["cancelled"] is None
    codes = [rows["confirmed"], rows["attended"]]
    assert all(len(code) == CHECKIN_LENGTH for code in codes) and codes[0] != codes[1]
