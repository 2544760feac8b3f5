"""Personal data (GDPR): a seeker downloads their data and deletes their account; the
retention job erases registrants' details after the retention period, keeping the counts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from events_app.db import Database, utcnow
from events_app.models import Event, OutboxMessage, Registration, Seeker
from events_app.notifications import Notifier, purge_old_mails
from events_app.registrations import Person, erase_old_personal_data, register
from events_app.settings import Settings
from tests.factories import in_days, make_agency, make_event
from tests.helpers import EMAIL, PASSWORD, is_signed_in, post_form, sign_up


def _register_signed_in(client: TestClient, event_id: int) -> None:
    response = post_form(
        client,
        f"/evenements/{event_id}/inscription",
        {"first_name": "Camille", "last_name": "Martin", "email": EMAIL, "consent": "oui"},
        page=f"/evenements/{event_id}",
    )
    assert response.status_code == 303, response.text


def test_download_my_data(client: TestClient, committed: Database) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        event_id = make_event(db, agency, title="Forum santé").id
    sign_up(client)
    _register_signed_in(client, event_id)
    response = client.get("/compte/donnees.json")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    data = response.json()
    assert data["compte"]["email"] == EMAIL
    assert [r["evenement"] for r in data["inscriptions"]] == ["Forum santé"]
    assert data["inscriptions"][0]["statut"] == "confirmed"
    client.cookies.clear()
    assert client.get("/compte/donnees.json", follow_redirects=False).status_code == 303


def test_deleting_the_account_cancels_promotes_and_erases(
    client: TestClient, committed: Database
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        event_id = make_event(db, agency, capacity=1).id
    sign_up(client)
    _register_signed_in(client, event_id)
    waiting = client.post(
        f"/api/v1/events/{event_id}/registrations",
        json={"first_name": "Léo", "last_name": "Roux", "email": "leo@example.org"},
    ).json()
    assert waiting["status"] == "waitlisted"
    wrong = post_form(client, "/compte/suppression", {"password": "pas le bon"})
    assert wrong.status_code == 400 and "Mot de passe incorrect" in wrong.text
    done = post_form(client, "/compte/suppression", {"password": PASSWORD})
    assert done.status_code == 303
    assert not is_signed_in(client)
    with committed.transaction() as db:
        assert db.scalar(select(func.count(Seeker.id))) == 0
        mine = db.scalars(select(Registration).where(Registration.event_id == event_id)).all()
        statuses = {r.email: r.status for r in mine}
        assert statuses["leo@example.org"] == "confirmed"  # promoted at once
        erased = [r for r in mine if r.email != "leo@example.org"]
        assert len(erased) == 1 and erased[0].status == "cancelled"
        assert erased[0].first_name == "" and erased[0].anonymised_at is not None
        assert EMAIL not in [m.to_address for m in db.scalars(select(OutboxMessage))]
        event = db.get(Event, event_id)
        assert event is not None and event.seats_taken == 1


def test_retention_job_erases_details_but_keeps_counts(db: Session, settings: Settings) -> None:
    agency, _ = make_agency(db)
    old = make_event(db, agency, starts_at=in_days(5))
    recent = make_event(db, agency, starts_at=in_days(6))
    notifier = Notifier(db, settings)
    for event in (old, recent):
        person = Person(first_name="Inès", last_name="Roux", email=f"ines{event.id}@example.org")
        register(db, event_id=event.id, person=person, notifier=notifier)
    # The first event ended long ago.
    old.starts_at = old.starts_at - timedelta(days=400)
    old.ends_at = old.ends_at - timedelta(days=400)
    db.flush()
    assert erase_old_personal_data(db, retention_days=183) == 1
    rows = {r.event_id: r for r in db.scalars(select(Registration))}
    assert rows[old.id].email.endswith("@anonyme.invalid") and rows[old.id].phone is None
    assert rows[old.id].status == "confirmed"  # the count of registrations remains
    assert rows[recent.id].email == f"ines{recent.id}@example.org"
    assert erase_old_personal_data(db, retention_days=183) == 0


def test_deletion_takes_every_mail_to_the_person(client: TestClient, committed: Database) -> None:
    sign_up(client)
    # A password-reset mail, with the person's name and a link, waits in the outbox.
    post_form(client, "/compte/mot-de-passe/oubli", {"email": EMAIL})
    with committed.transaction() as db:
        kinds = {m.kind for m in db.scalars(select(OutboxMessage)) if m.to_address == EMAIL}
    assert {"password_reset", "confirm_account"} <= kinds
    done = post_form(client, "/compte/suppression", {"password": PASSWORD})
    assert done.status_code == 303
    with committed.transaction() as db:
        left = db.scalars(
            select(OutboxMessage).where(func.lower(OutboxMessage.to_address) == EMAIL)
        ).all()
    assert left == []


def test_sent_mails_are_purged_after_the_retention_period(db: Session) -> None:
    old = utcnow() - timedelta(days=200)
    rows = [
        OutboxMessage(to_address="a@x.fr", subject="s", body_text="b", status=status, created_at=at)
        for status, at in (
            ("sent", old),
            ("failed", old),
            ("pending", old),
            ("sent", utcnow()),
        )
    ]
    db.add_all(rows)
    db.flush()
    assert purge_old_mails(db, retention_days=183) == 2
    left = {(m.status, m.created_at == old) for m in db.scalars(select(OutboxMessage))}
    assert left == {("pending", True), ("sent", False)}
