"""« J'ai perdu mon lien » (/inscriptions/lien-perdu): the links of every live registration of
an address, mailed to that address; the same answer whether or not it has any."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from events_app.app import create_app
from events_app.db import Database, utcnow
from events_app.events import get_event
from events_app.models import Event, OutboxMessage
from events_app.notifications import Notifier
from events_app.registrations import (
    Person,
    cancel_event,
    cancel_registration,
    register,
    resend_links,
)
from events_app.settings import Settings
from tests.factories import in_days, make_agency, make_event
from tests.helpers import csrf_token, post_form

AWA = "awa.diallo@example.org"
PAGE = "/inscriptions/lien-perdu"


def _person(email: str = AWA) -> Person:
    return Person(first_name="Awa", last_name="Diallo", email=email)


def _links_mails(db: Session, address: str = AWA) -> list[OutboxMessage]:
    return list(
        db.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.to_address == address, OutboxMessage.kind == "links_resent")
            .order_by(OutboxMessage.id)
        )
    )


def _seed(db: Session, settings: Settings) -> dict[str, str]:
    """Awa's registrations in every case, by name: their manage tokens."""
    agency, _ = make_agency(db)
    notifier = Notifier(db, settings)
    tokens: dict[str, str] = {}

    def sign_up(name: str, email: str = AWA) -> Event:
        event = make_event(db, agency, title=name)
        registration = register(
            db, event_id=event.id, person=_person(email), notifier=notifier
        ).registration
        tokens[name] = registration.token
        return event

    sign_up("Confirmée")
    full = make_event(db, agency, title="Liste d'attente", capacity=1)
    register(db, event_id=full.id, person=_person("autre@example.org"), notifier=notifier)
    tokens["Liste d'attente"] = register(
        db, event_id=full.id, person=_person(), notifier=notifier
    ).registration.token
    sign_up("Annulée par Awa")
    cancel_registration(db, token=tokens["Annulée par Awa"], notifier=notifier)
    dropped = sign_up("Annulé par l'organisme")
    cancel_event(db, get_event(db, dropped.id), notifier=notifier, message=None)
    past = sign_up("Passé")
    past.starts_at = in_days(-3)
    past.ends_at = in_days(-3) + timedelta(hours=2)
    sign_up("D'une autre adresse", email="autre.personne@example.org")
    db.flush()
    return tokens


def test_every_live_registration_gets_its_link_once_per_interval(
    db: Session, settings: Settings
) -> None:
    tokens = _seed(db, settings)
    notifier = Notifier(db, settings)
    assert resend_links(db, email="  AWA.Diallo@example.org ", notifier=notifier) == 2
    mails = _links_mails(db)
    assert len(mails) == 2
    bodies = "\n".join(mail.body_text for mail in mails)
    for live in ("Confirmée", "Liste d'attente"):
        assert f"/inscriptions/{tokens[live]}" in bodies
    for other in ("Annulée par Awa", "Annulé par l'organisme", "Passé", "D'une autre adresse"):
        assert f"/inscriptions/{tokens[other]}" not in bodies
    assert not _links_mails(db, "autre.personne@example.org")

    # Asked again at once: nothing more (the same throttle as registering again).
    assert resend_links(db, email=AWA, notifier=notifier) == 0
    assert len(_links_mails(db)) == 2
    later = utcnow() + timedelta(minutes=11)
    assert resend_links(db, email=AWA, notifier=notifier, now=later) == 2
    assert len(_links_mails(db)) == 4


def test_an_address_without_registration_sends_nothing(db: Session, settings: Settings) -> None:
    assert resend_links(db, email="personne@example.org", notifier=Notifier(db, settings)) == 0
    assert not _links_mails(db, "personne@example.org")


def test_the_page_answers_the_same_whether_or_not_the_address_has_registrations(
    client: TestClient, committed: Database, settings: Settings
) -> None:
    with committed.transaction(lock=True) as db:
        tokens = _seed(db, settings)
    page = client.get(PAGE)
    assert page.status_code == 200
    assert 'action="/inscriptions/lien-perdu"' in page.text and 'name="csrftoken"' in page.text

    known = post_form(client, PAGE, {"email": AWA})
    unknown = post_form(client, PAGE, {"email": "inconnu@example.org"})
    assert known.status_code == unknown.status_code == 303
    assert known.headers["location"] == unknown.headers["location"] == f"{PAGE}?envoye=1"
    done = client.get(known.headers["location"])
    assert "Si des inscriptions à venir correspondent à cette adresse" in done.text
    with committed.transaction() as db:
        mails = _links_mails(db)
        assert len(mails) == 2
        assert f"/inscriptions/{tokens['Confirmée']}" in "".join(m.body_text for m in mails)
        assert not _links_mails(db, "inconnu@example.org")

    bad = post_form(client, PAGE, {"email": "pas-une-adresse"})
    assert bad.status_code == 400
    assert 'id="email-error"' in bad.text and "Adresse e-mail invalide" in bad.text
    # The event page leads to it.
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        event_id = make_event(db, agency).id
    assert f'href="{PAGE}"' in client.get(f"/evenements/{event_id}").text


def test_the_form_needs_its_csrf_token_and_is_rate_limited(
    committed: Database, database_url: str
) -> None:
    settings = Settings(
        database_url=database_url, base_url="http://testserver", rate_limit_signin="3/minute"
    )
    with TestClient(create_app(settings)) as client:
        forged = client.post(PAGE, data={"email": AWA}, follow_redirects=False)
        assert forged.status_code == 403
        token = csrf_token(client, PAGE)
        codes = [
            client.post(
                PAGE, data={"email": AWA, "csrftoken": token}, follow_redirects=False
            ).status_code
            for _ in range(4)
        ]
        assert codes == [303, 303, 303, 429]
