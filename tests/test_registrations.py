"""Registrations: capacity, waiting list, promotion, idempotence, window, mails, API, forms."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from events_app.db import Database, utcnow
from events_app.errors import Conflict, InvalidInput
from events_app.models import Event, OutboxMessage, Registration
from events_app.notifications import Notifier
from events_app.registrations import (
    Person,
    cancel_registration,
    clean_person,
    register,
    send_reminders,
)
from events_app.settings import Settings
from tests.factories import in_days, make_agency, make_event


def person(n: int, **extra: Any) -> Person:
    return Person(first_name=f"Prénom{n}", last_name=f"Nom{n}", email=f"p{n}@example.org", **extra)


@pytest.fixture
def notifier(db: Session, settings: Settings) -> Notifier:
    return Notifier(db, settings)


@pytest.fixture
def event(db: Session) -> Event:
    agency, _ = make_agency(db)
    return make_event(db, agency, capacity=2)


def outbox(db: Session, email: str) -> list[OutboxMessage]:
    return list(
        db.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.to_address == email)
            .order_by(OutboxMessage.id)
        )
    )


def test_confirmed_then_waitlisted_in_order(db: Session, event: Event, notifier: Notifier) -> None:
    outcomes = [
        register(db, event_id=event.id, person=person(i), notifier=notifier) for i in range(5)
    ]
    assert [o.registration.status for o in outcomes] == ["confirmed"] * 2 + ["waitlisted"] * 3
    assert [o.registration.waitlist_position for o in outcomes] == [None, None, 1, 2, 3]
    db.refresh(event)
    assert event.seats_taken == 2


def test_cancel_promotes_the_first_waitlisted_and_renumbers(
    db: Session, event: Event, notifier: Notifier
) -> None:
    regs = [
        register(db, event_id=event.id, person=person(i), notifier=notifier).registration
        for i in range(5)
    ]
    cancel_registration(db, token=regs[0].token, notifier=notifier)
    for r in regs:
        db.refresh(r)
    assert regs[0].status == "cancelled"
    assert regs[2].status == "confirmed" and regs[2].waitlist_position is None
    assert [regs[3].waitlist_position, regs[4].waitlist_position] == [1, 2]
    db.refresh(event)
    assert event.seats_taken == 2
    promoted = outbox(db, regs[2].email)
    assert [m.kind for m in promoted] == ["waitlisted", "promoted"]
    assert promoted[-1].ics_method == "REQUEST"
    # A waitlisted person leaving closes the gap without touching seats.
    cancel_registration(db, token=regs[3].token, notifier=notifier)
    db.refresh(regs[4])
    assert regs[4].waitlist_position == 1
    # Cancelling twice is harmless.
    again = cancel_registration(db, token=regs[0].token, notifier=notifier)
    assert again.status == "cancelled"
    db.refresh(event)
    assert event.seats_taken == 2


def test_same_email_returns_the_existing_registration(
    db: Session, event: Event, notifier: Notifier
) -> None:
    first = register(db, event_id=event.id, person=person(1), notifier=notifier)
    raw = clean_person({"first_name": "X", "last_name": "Y", "email": "  P1@Example.ORG "})
    again = register(db, event_id=event.id, person=raw, notifier=notifier)
    assert again.created is False
    assert again.registration.id == first.registration.id
    db.refresh(event)
    assert event.seats_taken == 1
    # After a cancellation the same person may sign up again.
    cancel_registration(db, token=first.registration.token, notifier=notifier)
    third = register(db, event_id=event.id, person=person(1), notifier=notifier)
    assert third.created and third.registration.id != first.registration.id


def test_full_without_waitlist_is_a_conflict(db: Session, notifier: Notifier) -> None:
    agency, _ = make_agency(db)
    event = make_event(db, agency, capacity=1, waitlist=False)
    register(db, event_id=event.id, person=person(1), notifier=notifier)
    with pytest.raises(Conflict, match="complet"):
        register(db, event_id=event.id, person=person(2), notifier=notifier)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"registration_opens_at": in_days(3)}, "pas encore ouvertes"),
        ({"registration_closes_at": in_days(-1), "registration_opens_at": in_days(-5)}, "closes"),
        ({"starts_at": in_days(-1)}, "passé"),
    ],
)
def test_window_and_state_refuse_with_a_reason(
    db: Session, notifier: Notifier, overrides: dict[str, Any], reason: str
) -> None:
    agency, _ = make_agency(db)
    event = make_event(db, agency, **overrides)
    with pytest.raises(Conflict, match=reason):
        register(db, event_id=event.id, person=person(1), notifier=notifier)


def test_cancelled_and_closed_events_refuse(db: Session, event: Event, notifier: Notifier) -> None:
    event.registration_closed = True
    db.flush()
    with pytest.raises(Conflict, match="closes"):
        register(db, event_id=event.id, person=person(1), notifier=notifier)
    event.registration_closed = False
    event.status = "cancelled"
    db.flush()
    with pytest.raises(Conflict, match="annulé"):
        register(db, event_id=event.id, person=person(1), notifier=notifier)
    assert db.scalar(select(Registration.id).where(Registration.event_id == event.id)) is None


def test_hybrid_event_has_two_pools(db: Session, notifier: Notifier) -> None:
    agency, _ = make_agency(db)
    event = make_event(
        db,
        agency,
        format="hybrid",
        capacity=1,
        remote_capacity=1,
        online_url="https://visio.example.org/x",
    )
    with pytest.raises(InvalidInput) as error:
        register(db, event_id=event.id, person=person(1), notifier=notifier)
    assert error.value.field == "attendance"
    on = register(db, event_id=event.id, person=person(1, attendance="onsite"), notifier=notifier)
    remote = register(
        db, event_id=event.id, person=person(2, attendance="remote"), notifier=notifier
    )
    late = register(db, event_id=event.id, person=person(3, attendance="remote"), notifier=notifier)
    assert [on.registration.status, remote.registration.status, late.registration.status] == [
        "confirmed",
        "confirmed",
        "waitlisted",
    ]
    db.refresh(event)
    assert (event.seats_taken, event.remote_seats_taken) == (1, 1)
    # An on-site seat freed does not go to the remote queue.
    cancel_registration(db, token=on.registration.token, notifier=notifier)
    db.refresh(late.registration)
    assert late.registration.status == "waitlisted"
    cancel_registration(db, token=remote.registration.token, notifier=notifier)
    db.refresh(late.registration)
    assert late.registration.status == "confirmed"


def test_confirmation_mail_has_the_invite_and_the_manage_link(
    db: Session, event: Event, notifier: Notifier
) -> None:
    reg = register(db, event_id=event.id, person=person(7), notifier=notifier).registration
    [mail] = outbox(db, "p7@example.org")
    assert mail.subject.startswith("Inscription confirmée")
    assert f"/inscriptions/{reg.token}" in mail.body_text
    assert mail.body_html and f"/inscriptions/{reg.token}" in mail.body_html
    assert mail.ics is not None and "METHOD:REQUEST" in mail.ics
    assert f"event-{event.id}@" in mail.ics
    cancel_registration(db, token=reg.token, notifier=notifier)
    cancelled = outbox(db, "p7@example.org")[-1]
    assert cancelled.kind == "cancelled" and cancelled.ics and "METHOD:CANCEL" in cancelled.ics


def test_reminders_go_once_to_confirmed_people_of_tomorrow(db: Session, notifier: Notifier) -> None:
    agency, _ = make_agency(db)
    tomorrow = make_event(db, agency, starts_at=in_days(1, 10), capacity=1)
    later = make_event(db, agency, starts_at=in_days(3, 10))
    register(db, event_id=tomorrow.id, person=person(1), notifier=notifier)
    register(db, event_id=tomorrow.id, person=person(2), notifier=notifier)  # waitlisted
    register(db, event_id=later.id, person=person(3), notifier=notifier)
    assert send_reminders(db, notifier=notifier) == 1
    assert send_reminders(db, notifier=notifier) == 0
    assert [m.kind for m in outbox(db, "p1@example.org")] == ["confirmed", "reminder"]
    assert "reminder" not in [m.kind for m in outbox(db, "p2@example.org")]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"last_name": "N", "email": "a@example.org"}, "first_name"),
        ({"first_name": "  ", "last_name": "N", "email": "a@example.org"}, "first_name"),
        ({"first_name": "P", "email": "a@example.org"}, "last_name"),
        ({"first_name": "P", "last_name": "N", "email": "pas-un-email"}, "email"),
        ({"first_name": "P", "last_name": "N", "email": "a@"}, "email"),
        ({"first_name": "P" * 101, "last_name": "N", "email": "a@example.org"}, "first_name"),
        (
            {"first_name": "P", "last_name": "N", "email": "a@example.org", "phone": "<script>"},
            "phone",
        ),
        ({"first_name": 3, "last_name": "N", "email": "a@example.org"}, "first_name"),
        ({"first_name": "P", "last_name": "N\x00", "email": "a@example.org"}, "last_name"),
        (
            {"first_name": "P", "last_name": "N", "email": "a@example.org", "attendance": "x"},
            "attendance",
        ),
        ({"first_name": "P", "last_name": "N", "email": "a@example.org", "age": 3}, "age"),
    ],
)
def test_bad_person_fields_are_named(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        clean_person(payload)
    assert error.value.field == field


# --- through HTTP --------------------------------------------------------------------------


def _event(committed: Database, **overrides: Any) -> int:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        return make_event(db, agency, **overrides).id


def test_api_register_idempotent_then_cancel(client: TestClient, committed: Database) -> None:
    event_id = _event(committed, capacity=1)
    body = {
        "first_name": "Awa",
        "last_name": "Diallo",
        "email": "awa@example.org",
        "phone": "06 12 34 56 78",
    }
    first = client.post(f"/api/v1/events/{event_id}/registrations", json=body)
    assert first.status_code == 201, first.text
    data = first.json()
    assert data["status"] == "confirmed" and data["waitlist_position"] is None
    token = data["manage_url"].rsplit("/", 1)[1]
    assert len(token) >= 40 and str(data["id"]) != token
    assert data["cancel_url"].endswith(f"/api/v1/registrations/{token}/cancel")
    again = client.post(
        f"/api/v1/events/{event_id}/registrations", json={**body, "email": " AWA@example.org"}
    )
    assert again.status_code == 200
    # Whoever types someone's address learns nothing about them (SPEC §7).
    assert again.json() == {
        "id": data["id"],
        "status": "already_registered",
        "message": again.json()["message"],
    }
    assert "déjà inscrite" in again.json()["message"]
    second = client.post(
        f"/api/v1/events/{event_id}/registrations",
        json={"first_name": "Léo", "last_name": "Martin", "email": "leo@example.org"},
    )
    assert second.status_code == 201 and second.json()["status"] == "waitlisted"
    assert second.json()["waitlist_position"] == 1
    shown = client.get(f"/api/v1/registrations/{token}")
    assert shown.status_code == 200 and shown.json()["status"] == "confirmed"
    cancelled = client.post(f"/api/v1/registrations/{token}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    leo = client.get(
        second.json()["manage_url"].replace(
            "http://testserver/inscriptions/", "/api/v1/registrations/"
        )
    )
    assert leo.json()["status"] == "confirmed"


def test_api_registration_errors(client: TestClient, committed: Database) -> None:
    event_id = _event(committed, capacity=1, waitlist=False)
    ok = {"first_name": "A", "last_name": "B", "email": "a@example.org"}
    assert client.post("/api/v1/events/999999/registrations", json=ok).status_code == 404
    bad = client.post(f"/api/v1/events/{event_id}/registrations", json={**ok, "email": "x"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "email"
    not_json = client.post(
        f"/api/v1/events/{event_id}/registrations",
        content=b"{}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert not_json.status_code == 415
    assert not_json.json()["error"]["field"] == "content-type"
    assert client.post(f"/api/v1/events/{event_id}/registrations", json=ok).status_code == 201
    full = client.post(
        f"/api/v1/events/{event_id}/registrations", json={**ok, "email": "c@example.org"}
    )
    assert full.status_code == 409
    assert "complet" in full.json()["error"]["message"]
    for token in ("forged-token", "x" * 300):
        assert client.get(f"/api/v1/registrations/{token}").status_code == 404
        assert client.post(f"/api/v1/registrations/{token}/cancel").status_code == 404
    with committed.transaction() as db:
        count = len(db.scalars(select(Registration).where(Registration.event_id == event_id)).all())
    assert count == 1


def test_api_refuses_past_and_cancelled_events_with_409(
    client: TestClient, committed: Database
) -> None:
    past = _event(committed, starts_at=in_days(-2))
    ok = {"first_name": "A", "last_name": "B", "email": "a@example.org"}
    response = client.post(f"/api/v1/events/{past}/registrations", json=ok)
    assert response.status_code == 409 and "passé" in response.json()["error"]["message"]


def _csrf(html: str) -> str:
    match = re.search(r'name="csrftoken" value="([^"]+)"', html)
    assert match, "no CSRF field in the form"
    return match.group(1)


def test_form_registration_manage_page_and_cancel(client: TestClient, committed: Database) -> None:
    event_id = _event(committed, capacity=5)
    page = client.get(f"/evenements/{event_id}")
    assert page.status_code == 200 and "Je m'inscris" in page.text
    token = _csrf(page.text)
    form = {
        "csrftoken": token,
        "first_name": "Inès",
        "last_name": "Roux",
        "email": "ines@example.org",
    }
    missing_consent = client.post(f"/evenements/{event_id}/inscription", data=form)
    assert missing_consent.status_code == 400
    assert 'id="consent-error"' in missing_consent.text and "accepter" in missing_consent.text
    created = client.post(
        f"/evenements/{event_id}/inscription",
        data={**form, "consent": "oui"},
        follow_redirects=False,
    )
    assert created.status_code == 303
    manage = created.headers["location"]
    page = client.get(manage)
    assert "Votre inscription est confirmée" in page.text
    assert page.headers["cache-control"] == "no-store"
    # Opening the link (as a mail scanner would) cancels nothing.
    client.get(manage)
    cancel_action = manage.split("?")[0] + "/annulation"
    done = client.post(cancel_action, data={"csrftoken": _csrf(page.text)}, follow_redirects=True)
    assert "Votre inscription est annulée" in done.text
    assert "Annulée" in done.text


def test_forms_without_csrf_token_are_refused(client: TestClient, committed: Database) -> None:
    event_id = _event(committed)
    response = client.post(
        f"/evenements/{event_id}/inscription",
        data={"first_name": "A", "last_name": "B", "email": "a@example.org", "consent": "oui"},
    )
    assert response.status_code == 403
    assert "formulaire" in response.text


def test_security_headers_on_pages_and_api(client: TestClient) -> None:
    for path in ("/", "/api/v1/events", "/nope"):
        headers = client.get(path).headers
        assert (
            "unsafe-inline"
            not in headers["content-security-policy"].split("script-src")[1].split(";")[0]
        )
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"


def test_registration_rate_limit(committed: Database, database_url: str) -> None:
    from events_app.app import create_app

    settings = Settings(
        database_url=database_url, base_url="http://testserver", rate_limit_registration="3/minute"
    )
    event_id = _event(committed, capacity=50)
    with TestClient(create_app(settings)) as client:
        codes = [
            client.post(
                f"/api/v1/events/{event_id}/registrations",
                json={"first_name": "A", "last_name": "B", "email": f"r{i}@example.org"},
            ).status_code
            for i in range(4)
        ]
        assert codes == [201, 201, 201, 429]
        limited = client.post(f"/api/v1/events/{event_id}/registrations", json={})
        assert limited.json()["error"]["code"] == "rate_limited"


def test_form_registration_is_one_transaction_whatever_the_answer(
    client: TestClient, committed: Database
) -> None:
    event_id = _event(committed, capacity=5)
    past = _event(committed, starts_at=in_days(-2))
    token = _csrf(client.get(f"/evenements/{event_id}").text)
    form = {
        "csrftoken": token,
        "first_name": "Inès",
        "last_name": "Roux",
        "email": "ines@example.org",
        "consent": "oui",
    }
    begins: list[object] = []

    def count(connection: object) -> None:
        begins.append(connection)

    sa_event.listen(Engine, "begin", count)
    try:
        answers = []
        for target in (event_id, event_id, past):
            begins.clear()
            response = client.post(
                f"/evenements/{target}/inscription", data=form, follow_redirects=False
            )
            answers.append((response.status_code, len(begins)))
    finally:
        sa_event.remove(Engine, "begin", count)
    # Registered, already registered (the event page again), refused (a past event).
    assert answers == [(303, 1), (200, 1), (409, 1)]


def _mails_to(database: Database, address: str, kind: str) -> list[OutboxMessage]:
    with database.transaction() as db:
        return list(
            db.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.to_address == address, OutboxMessage.kind == kind
                )
            )
        )


@pytest.mark.parametrize("state", ["open", "closed", "past", "cancelled"])
def test_a_known_address_reveals_nothing_and_gets_its_links_mailed(
    client: TestClient, committed: Database, state: str
) -> None:
    event_id = _event(committed, capacity=1)
    awa = {
        "first_name": "Awa",
        "last_name": "Diallo",
        "email": "awa@example.org",
        "phone": "06 12 34 56 78",
    }
    assert client.post(f"/api/v1/events/{event_id}/registrations", json=awa).status_code == 201
    with committed.transaction() as db:
        event = db.get(Event, event_id)
        assert event is not None
        if state == "closed":
            event.registration_closed = True
        elif state == "cancelled":
            event.status = "cancelled"
        elif state == "past":
            event.starts_at -= timedelta(days=30)
            event.ends_at -= timedelta(days=30)
    stranger = {"first_name": "Eve", "last_name": "Curieuse", "email": "AWA@example.org "}
    answer = client.post(f"/api/v1/events/{event_id}/registrations", json=stranger)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"id", "status", "message"} and body["status"] == "already_registered"
    for secret in ("Awa", "Diallo", "06 12", "awa@", "inscriptions/"):
        assert secret not in answer.text
    # The links go to the address itself, once per 10 minutes whatever the attempts.
    client.post(f"/api/v1/events/{event_id}/registrations", json=stranger)
    [mail] = _mails_to(committed, "awa@example.org", "links_resent")
    assert "/inscriptions/" in mail.body_text and mail.subject.startswith("Votre lien")
    with committed.transaction() as db:
        registration = db.scalars(
            select(Registration).where(Registration.event_id == event_id)
        ).one()
        registration.links_resent_at = utcnow() - timedelta(minutes=11)
    client.post(f"/api/v1/events/{event_id}/registrations", json=stranger)
    assert len(_mails_to(committed, "awa@example.org", "links_resent")) == 2


def test_the_page_form_behaves_the_same(client: TestClient, committed: Database) -> None:
    event_id = _event(committed)
    form = {
        "first_name": "Awa",
        "last_name": "Diallo",
        "email": "awa@example.org",
        "phone": "0612345678",
        "consent": "on",
    }
    token = _csrf(client.get(f"/evenements/{event_id}").text)
    first = client.post(
        f"/evenements/{event_id}/inscription",
        data={**form, "csrftoken": token},
        follow_redirects=False,
    )
    assert first.status_code == 303
    again = client.post(
        f"/evenements/{event_id}/inscription",
        data={**form, "first_name": "Eve", "phone": "", "csrftoken": token},
        follow_redirects=False,
    )
    assert again.status_code == 200
    assert "déjà inscrite" in again.text and "0612345678" not in again.text
    assert "Diallo" not in again.text.replace('value="Diallo"', "")
    assert len(_mails_to(committed, "awa@example.org", "links_resent")) == 1
