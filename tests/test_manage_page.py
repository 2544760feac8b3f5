"""The registration's own page (/inscriptions/{token}) for every pair registration × event:
confirmed, waitlisted or cancelled by the person, on an event to come, cancelled by its
organiser, or past (see events_app.registrations.ManageState for the table)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from events_app.db import Database
from events_app.models import Event
from events_app.notifications import Notifier
from events_app.registrations import Person, cancel_event, cancel_registration, register
from events_app.settings import Settings
from tests.factories import make_agency, make_event

ORGANISER_MESSAGE = "La salle est indisponible ; nous vous proposerons une autre date."
ADD = "Ajouter à mon agenda"
FREE_SEAT = "libérer votre place"


@dataclass(frozen=True)
class Pair:
    token: str
    event_id: int


def _pair(committed: Database, settings: Settings, registration: str, event_state: str) -> Pair:
    """One registration in the given state, on an event in the given state."""
    with committed.transaction(lock=True) as db:
        agency, _ = make_agency(db)
        event = make_event(db, agency, capacity=1, title="Forum de l'alternance")
        notifier = Notifier(db, settings)
        first = register(
            db,
            event_id=event.id,
            person=Person("Awa", "Diallo", "awa@example.org"),
            notifier=notifier,
        ).registration
        chosen = first
        if registration == "waitlisted":
            chosen = register(
                db,
                event_id=event.id,
                person=Person("Inès", "Roux", "ines@example.org"),
                notifier=notifier,
            ).registration
            assert chosen.status == "waitlisted"
        elif registration == "cancelled":
            cancel_registration(db, token=first.token, notifier=notifier)
        if event_state == "cancelled":
            cancel_event(db, event, notifier=notifier, message=ORGANISER_MESSAGE)
        elif event_state == "past":
            row = db.get(Event, event.id)
            assert row is not None
            row.starts_at -= timedelta(days=30)
            row.ends_at -= timedelta(days=30)
        return Pair(chosen.token, event.id)


REGISTRATIONS = ["confirmed", "waitlisted", "cancelled"]
EVENTS = ["scheduled", "cancelled", "past"]


@pytest.mark.parametrize("event_state", EVENTS)
@pytest.mark.parametrize("registration", REGISTRATIONS)
def test_every_pair_shows_what_it_should(
    client: TestClient,
    committed: Database,
    settings: Settings,
    registration: str,
    event_state: str,
) -> None:
    pair = _pair(committed, settings, registration, event_state)
    page = client.get(f"/inscriptions/{pair.token}")
    assert page.status_code == 200
    html = page.text
    cancel_form = f'action="/inscriptions/{pair.token}/annulation"'
    live = registration in ("confirmed", "waitlisted")

    # Whatever the pair: a waitlisted person never « frees their seat ».
    if registration == "waitlisted":
        assert FREE_SEAT not in html
    # A registration the person cancelled offers no calendar at all.
    if registration == "cancelled":
        assert ADD not in html and ".ics" not in html
        assert cancel_form not in html
        assert ">Annulée<" in html

    if event_state == "cancelled":
        assert "annulé par l&#39;organisateur" in html or "annulé par l'organisateur" in html
        assert "La salle est indisponible" in html
        assert cancel_form not in html
        assert ADD not in html
        assert ">Confirmée<" not in html
        if live:
            # The calendar link left is the event's .ics, which says it is cancelled.
            assert f'href="/events/{pair.event_id}.ics"' in html
            ics = client.get(f"/events/{pair.event_id}.ics")
            assert ics.status_code == 200 and "STATUS:CANCELLED" in ics.text
            assert "STATUS:CONFIRMED" not in ics.text
    elif event_state == "past":
        assert cancel_form not in html and ADD not in html
        assert ".ics" not in html
        if registration == "waitlisted":
            assert "aucune place ne s" in html
    else:
        assert "est annulé par" not in html
        if registration == "confirmed":
            assert ">Confirmée<" in html
            assert ADD in html and cancel_form in html and FREE_SEAT in html
        elif registration == "waitlisted":
            assert "Liste d&#39;attente – position 1" in html
            assert ADD in html and cancel_form in html
            assert "Quitter la liste d&#39;attente" in html
        else:
            assert "vous inscrire de nouveau" in html


@pytest.mark.parametrize("registration", ["confirmed", "waitlisted"])
def test_cancelling_asks_for_confirmation_first(
    client: TestClient, committed: Database, settings: Settings, registration: str
) -> None:
    pair = _pair(committed, settings, registration, "scheduled")
    manage = client.get(f"/inscriptions/{pair.token}").text
    confirm_path = f"/inscriptions/{pair.token}/annulation"
    # Without JavaScript, the button is a GET to the confirmation page; with it, the dialog.
    assert f'<form method="get" action="{confirm_path}" data-confirm="confirmer-annulation">' in (
        manage
    )
    assert '<dialog id="confirmer-annulation"' in manage and "js/confirm.js" in manage
    page = client.get(confirm_path)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    # Opening it (as a mail scanner would) cancels nothing.
    assert (
        ">" + ("Confirmée" if registration == "confirmed" else "Liste d")
        in client.get(f"/inscriptions/{pair.token}").text
    )
    if registration == "waitlisted":
        assert "Quitter la liste d&#39;attente&#8239;?" in page.text or (
            "Quitter la liste d'attente&#8239;?" in page.text
        )
        assert FREE_SEAT not in page.text
    else:
        assert "Annuler votre inscription&#8239;?" in page.text
    assert f'<form method="post" action="{confirm_path}">' in page.text
    token = re.search(r'name="csrftoken" value="([^"]+)"', page.text)
    assert token is not None
    done = client.post(confirm_path, data={"csrftoken": token.group(1)}, follow_redirects=True)
    assert "Votre inscription est annulée" in done.text
    # Nothing left to confirm: the page sends back to the registration.
    again = client.get(confirm_path, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == f"/inscriptions/{pair.token}"
