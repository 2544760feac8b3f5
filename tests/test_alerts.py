"""Alerts (SPEC section 10): opt-in, matching through the search, no repeats, periods, the
one-click unsubscribe, the account; the CLI job runner and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from events_app import alerts
from events_app.alerts import AlertInput, create_alert, send_alerts
from events_app.app import create_app
from events_app.db import Database, utcnow
from events_app.models import Alert, AlertSentEvent, Event, OutboxMessage
from events_app.notifications import Notifier, mail_environment
from events_app.registrations import cancel_agency_event
from events_app.settings import Settings
from tests.factories import in_days, make_agency, make_event
from tests.helpers import csrf_token, last_mail, post_form, sign_up
from tests.server import free_port

LYON = {
    "name": "Halle Tony Garnier",
    "address": "20 place Docteurs Mérieux",
    "postal_code": "69007",
    "city": "Lyon",
    "lat": 45.7320,
    "lon": 4.8226,
}
MONTREUIL = {
    "name": "Agence France Travail",
    "address": "1 place Jean-Jaurès",
    "postal_code": "93100",
    "city": "Montreuil",
    "lat": 48.8615,
    "lon": 2.4432,
}
ADDRESS = "alex.durand@exemple.fr"


def _event(db: Session, **overrides: Any) -> int:
    agency, _ = make_agency(db)
    return make_event(db, agency, **overrides).id


def _alert(
    db: Session,
    settings: Settings,
    filters: list[tuple[str, str]],
    *,
    frequency: str = "immediate",
    at: datetime | None = None,
    address: str = ADDRESS,
) -> Alert:
    """A confirmed alert whose mark is `at` (default: an hour ago)."""
    at = at or utcnow() - timedelta(hours=1)
    alert = create_alert(
        db,
        AlertInput(address, filters, frequency),
        settings=settings,
        env=mail_environment(),
        now=at,
    )
    alerts.confirm_alert(db, alert.token, now=at)
    return alert


def _sent(db: Session, alert: Alert) -> set[int]:
    return set(
        db.scalars(select(AlertSentEvent.event_id).where(AlertSentEvent.alert_id == alert.id))
    )


def _alert_mails(db: Session) -> list[OutboxMessage]:
    return list(
        db.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "alert").order_by(OutboxMessage.id)
        )
    )


# --- create, opt-in, scanner-safe confirmation ----------------------------------------------


def test_api_alert_needs_opt_in_and_only_the_button_confirms(
    client: TestClient, committed: Database, settings: Settings
) -> None:
    response = client.post(
        "/api/v1/alerts",
        json={"email": " Alex.Durand@Exemple.fr ", "sector": ["N"], "frequency": "immediate"},
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending_confirmation"
    mail = last_mail(client, "alert_confirm")
    assert mail is not None and mail.to_address == ADDRESS
    match = re.search(r"http://testserver(/alertes/confirmer/\S+)", mail.body_text)
    assert match, mail.body_text
    link = match.group(1)

    with committed.transaction() as db:
        _event(db)
    # Nothing is sent before confirmation.
    with committed.transaction() as db:
        assert send_alerts(db, settings, mail_environment(), now=utcnow()) == 0

    # A mail scanner follows the link (GET, even twice): nothing is confirmed.
    with TestClient(create_app(settings)) as scanner:
        assert scanner.get(link).status_code == 200
        assert scanner.get(link).status_code == 200
    with committed.transaction() as db:
        alert = db.scalars(select(Alert)).one()
        assert alert.confirmed_at is None

    response = post_form(client, link, {})
    assert response.status_code == 303
    with committed.transaction() as db:
        alert = db.scalars(select(Alert)).one()
        assert alert.confirmed_at is not None
        # Events published before the confirmation are not "new" to it.
        assert send_alerts(db, settings, mail_environment(), now=utcnow()) == 0
        new_id = _event(db, title="Forum de l'emploi")
    with committed.transaction() as db:
        assert send_alerts(db, settings, mail_environment(), now=utcnow()) == 1
        [mail] = _alert_mails(db)
        assert "Forum de l'emploi" in mail.body_text
        assert f"/evenements/{new_id}" in mail.body_text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "pas-une-adresse"}, "email"),
        ({"email": ADDRESS, "near": "Xyzzyville-sur-Rien"}, "near"),
        ({"email": ADDRESS, "sector": ["ZZ"]}, "sector"),
        ({"email": ADDRESS, "near": "Lyon", "radius_km": 500}, "radius_km"),
        ({"email": ADDRESS, "frequency": "hourly"}, "frequency"),
        ({"email": ADDRESS, "type": [{"x": 1}]}, "type"),
    ],
)
def test_bad_input_names_the_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    response = client.post("/api/v1/alerts", json=body)
    assert response.status_code == 400, response.text
    assert field in response.text
    assert last_mail(client, "alert_confirm") is None


def test_form_shares_the_validation(client: TestClient) -> None:
    response = post_form(
        client,
        "/alertes",
        {"email": ADDRESS, "near": "Lyon", "radius_km": "500", "frequency": "daily"},
        page="/evenements",
    )
    assert response.status_code == 400
    assert "rayon" in response.text


def test_at_most_five_unconfirmed_per_address(client: TestClient) -> None:
    for n in range(5):
        response = client.post("/api/v1/alerts", json={"email": ADDRESS, "q": f"terme{n}"})
        assert response.status_code == 202, response.text
    response = client.post("/api/v1/alerts", json={"email": ADDRESS, "q": "encore"})
    assert response.status_code == 400
    assert "email" in response.text


def test_non_json_is_refused(client: TestClient) -> None:
    response = client.post("/api/v1/alerts", data={"email": ADDRESS})
    assert response.status_code == 415


def test_unconfirmed_alerts_are_erased_after_seven_days(
    committed: Database, settings: Settings
) -> None:
    now = utcnow()
    with committed.transaction() as db:
        old = create_alert(
            db,
            AlertInput(ADDRESS, [], "daily"),
            settings=settings,
            env=mail_environment(),
            now=now - timedelta(days=8),
        )
        create_alert(
            db, AlertInput(ADDRESS, [], "daily"), settings=settings, env=mail_environment(), now=now
        )
        old_id = old.id
    with committed.transaction() as db:
        assert alerts.erase_unconfirmed(db, now=now) == 1
        assert db.get(Alert, old_id) is None
        assert db.scalar(select(func.count()).select_from(Alert)) == 1


# --- matching through the search -------------------------------------------------------------


def test_the_right_events_only_across_filters(committed: Database, settings: Settings) -> None:
    with committed.transaction(lock=True) as db:
        by_place = _alert(db, settings, [("near", "Lyon"), ("radius_km", "20")])
        by_sector = _alert(db, settings, [("sector", "J")])
        by_type = _alert(db, settings, [("type", "forum")])
        by_format = _alert(db, settings, [("format", "online")])
        by_text = _alert(db, settings, [("q", "boulangerie")])
        lyon = _event(db, venue=LYON, sectors=["F"], title="Chantier")
        montreuil = _event(db, venue=MONTREUIL, sectors=["J"], title="Numérique")
        forum = _event(db, type="forum", title="Forum")
        online = _event(
            db, format="online", venue=None, online_url="https://visio.exemple.fr/x", title="Visio"
        )
        bread = _event(db, title="Job dating boulangerie")
        cancelled = _event(db, venue=LYON, title="Annulé")
        event = db.get(Event, cancelled)
        assert event is not None
        cancel_agency_event(
            db,
            agency_id=event.agency_id,
            event_id=cancelled,
            notifier=Notifier(db, settings),
            message=None,
        )
    with committed.transaction() as db:
        assert send_alerts(db, settings, mail_environment(), now=utcnow()) == 5
        # A place search keeps online events (SPEC section 3): so does the alert.
        assert _sent(db, by_place) == {lyon, online}
        assert _sent(db, by_sector) == {montreuil}
        assert _sent(db, by_type) == {forum}
        assert _sent(db, by_format) == {online}
        assert _sent(db, by_text) == {bread}
        place_mail = next(m for m in _alert_mails(db) if "Chantier" in m.body_text)
        assert "km" in place_mail.body_text and "Places restantes : 20" in place_mail.body_text


def test_no_repeats_and_nothing_when_nothing_is_new(
    committed: Database, settings: Settings
) -> None:
    with committed.transaction() as db:
        alert = _alert(db, settings, [])
        first = _event(db, title="Premier")
    with committed.transaction() as db:
        assert send_alerts(db, settings, mail_environment(), now=utcnow()) == 1
    with committed.transaction() as db:
        assert send_alerts(db, settings, mail_environment(), now=utcnow()) == 0
        second = _event(db, title="Second")
    with committed.transaction() as db:
        assert send_alerts(db, settings, mail_environment(), now=utcnow()) == 1
        mails = _alert_mails(db)
        assert len(mails) == 2
        assert "Premier" not in mails[1].body_text and "Second" in mails[1].body_text
        assert _sent(db, db.get(Alert, alert.id)) == {first, second}  # type: ignore[arg-type]


def test_a_long_digest_lists_the_first_counts_the_rest_and_never_sends_them_later(
    committed: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts, "MAX_EVENTS_PER_MAIL", 2)
    with committed.transaction() as db:
        alert = _alert(db, settings, [("q", "forum")])
        ids = [_event(db, title=f"Forum {n}", starts_at=in_days(n + 3)) for n in range(4)]
        _event(db, title="Atelier CV")  # new, but not a match
    with committed.transaction() as db:
        assert send_alerts(db, settings, mail_environment(), now=utcnow()) == 1
    with committed.transaction() as db:
        assert send_alerts(db, settings, mail_environment(), now=utcnow()) == 0  # none left over
        [mail] = _alert_mails(db)
        assert "Forum 0" in mail.body_text and "Forum 1" in mail.body_text
        assert "Forum 2" not in mail.body_text and "Atelier" not in mail.body_text
        assert "Et 2 autres événements : http://testserver/evenements?q=forum" in mail.body_text
        assert _sent(db, db.get(Alert, alert.id)) == set(ids)  # type: ignore[arg-type]


def test_an_alert_whose_place_no_longer_resolves_waits_and_the_others_are_sent(
    committed: Database, settings: Settings
) -> None:
    with committed.transaction() as db:
        broken = _alert(db, settings, [("near", "Lyon"), ("radius_km", "20")])
        fine = _alert(db, settings, [("q", "forum")], address="bea@exemple.fr")
        # Stored when « Lyon » resolved; the gazetteer no longer knows it (renamed, merged).
        broken.filters = [["near", "Xyzzyville-sur-Rien"], ["radius_km", "20"]]
        _event(db, venue=LYON, title="Forum Lyon")
    with committed.transaction() as db:
        assert send_alerts(db, settings, mail_environment(), now=utcnow()) == 1
        assert len(_sent(db, fine)) == 1 and _sent(db, broken) == set()


def test_mail_escapes_titles(committed: Database, settings: Settings) -> None:
    with committed.transaction() as db:
        _alert(db, settings, [])
        _event(db, title='Forum R&D 1 < 2 "emploi"')
    with committed.transaction() as db:
        send_alerts(db, settings, mail_environment(), now=utcnow())
        [mail] = _alert_mails(db)
        assert mail.body_html is not None
        assert "R&amp;D 1 &lt; 2" in mail.body_html and "1 < 2" not in mail.body_html


# --- periods, with the clock injected ---------------------------------------------------------


def _paris(*args: int) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)


def test_daily_and_weekly_periods(committed: Database, settings: Settings) -> None:
    # Relative to the real week so that the events are still upcoming.
    today = datetime.now(UTC).astimezone(alerts.PARIS).date()
    monday = today - timedelta(days=today.weekday())
    # Tuesday of this week, 6 h (before the sending hour), Paris time.
    tuesday_early = _paris(monday.year, monday.month, monday.day, 6) + timedelta(days=1)
    with committed.transaction() as db:
        daily = _alert(db, settings, [], frequency="daily", at=tuesday_early - timedelta(days=3))
        weekly = _alert(db, settings, [], frequency="weekly", at=tuesday_early - timedelta(days=3))
        daily.last_sent_at = tuesday_early - timedelta(hours=20)  # Monday 10 h
        weekly.last_sent_at = tuesday_early - timedelta(hours=20)
        _event(db, starts_at=in_days(10))
        for event in db.scalars(select(Event)):
            event.created_at = tuesday_early - timedelta(hours=2)
    assert alerts.is_due(daily, tuesday_early) is False
    with committed.transaction() as db:
        # Tuesday 6 h: the daily period (from 7 h) has not begun; the week was already sent.
        assert send_alerts(db, settings, mail_environment(), now=tuesday_early) == 0
    with committed.transaction() as db:
        # Tuesday 7 h 05: the daily one goes, the weekly one waits for Monday.
        assert (
            send_alerts(
                db, settings, mail_environment(), now=tuesday_early + timedelta(hours=1, minutes=5)
            )
            == 1
        )
        assert _sent(db, db.get(Alert, daily.id)) and not _sent(db, db.get(Alert, weekly.id))  # type: ignore[arg-type]
        _event(db, starts_at=in_days(11), title="Deuxième")
        for event in db.scalars(select(Event)):
            if event.title == "Deuxième":
                event.created_at = tuesday_early + timedelta(hours=2)
    with committed.transaction() as db:
        # Same day, later: one mail per period, even with a new event.
        assert (
            send_alerts(db, settings, mail_environment(), now=tuesday_early + timedelta(hours=5))
            == 0
        )
    with committed.transaction() as db:
        # Next Monday 7 h 30: both go (weekly: both events; daily: the new one).
        next_monday = tuesday_early + timedelta(days=6, hours=1, minutes=30)
        assert send_alerts(db, settings, mail_environment(), now=next_monday) == 2
        assert len(_sent(db, db.get(Alert, weekly.id))) == 2  # type: ignore[arg-type]


# --- unsubscribe, account --------------------------------------------------------------------


def test_one_click_unsubscribe_without_cookie(committed: Database, settings: Settings) -> None:
    with committed.transaction() as db:
        alert = _alert(db, settings, [])
        _event(db)
    with committed.transaction() as db:
        send_alerts(db, settings, mail_environment(), now=utcnow())
        [mail] = _alert_mails(db)
        assert mail.headers is not None
        assert mail.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = mail.headers["List-Unsubscribe"].strip("<>")
        assert url == f"http://testserver/alertes/desabonner/{alert.token}"
        assert f"/alertes/gerer/{alert.token}" in mail.body_text
    with TestClient(create_app(settings)) as mail_client:
        page = mail_client.get(url)
        assert page.status_code == 200 and "Ne plus recevoir" in page.text
    with TestClient(create_app(settings)) as mail_client:
        response = mail_client.post(
            url,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200, response.text
    with committed.transaction() as db:
        assert db.get(Alert, alert.id) is None


def test_manage_page_changes_frequency(
    client: TestClient, committed: Database, settings: Settings
) -> None:
    with committed.transaction() as db:
        token = _alert(db, settings, [("q", "vente")], frequency="daily").token
    response = post_form(client, f"/alertes/gerer/{token}", {"frequency": "weekly"})
    assert response.status_code == 303
    with committed.transaction() as db:
        assert db.scalars(select(Alert)).one().frequency == "weekly"


def test_signed_in_alert_needs_no_opt_in_and_goes_with_the_account(
    client: TestClient, committed: Database
) -> None:
    sign_up(client)
    response = post_form(
        client,
        "/alertes",
        {"email": "camille.martin@exemple.fr", "sector": "N", "frequency": "weekly"},
        page="/evenements",
    )
    assert response.status_code == 303, response.text
    assert last_mail(client, "alert_confirm") is None
    assert 'href="/compte/alertes"' in client.get("/compte").text
    page = client.get("/compte/alertes")
    assert page.status_code == 200 and "Chaque semaine".lower() in page.text.lower()
    data = client.get("/compte/donnees.json").json()
    assert data["alertes"][0]["frequence"] == "weekly"
    response = post_form(
        client,
        "/compte/suppression",
        {"password": "une phrase assez longue"},
        page="/compte/suppression",
    )
    assert response.status_code == 303, response.text
    with committed.transaction() as db:
        assert db.scalar(select(func.count()).select_from(Alert)) == 0


def test_results_page_offers_the_form_with_the_filters(client: TestClient) -> None:
    page = client.get("/evenements", params={"q": "vente", "sector": "G"})
    assert "Recevoir les nouveaux événements par e-mail" in page.text
    assert '<input type="hidden" name="q" value="vente">' in page.text
    assert '<input type="hidden" name="sector" value="G">' in page.text
    token = csrf_token(client, "/evenements")
    response = client.post(
        "/alertes",
        data={
            "q": "vente",
            "sector": "G",
            "email": ADDRESS,
            "frequency": "daily",
            "csrftoken": token,
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert last_mail(client, "alert_confirm") is not None


# --- the CLI job runner and a real SMTP server --------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "EVENTS_APP_DEBUG"}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "events_app.cli", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_job_sends_through_smtp(
    committed: Database,
    settings: Settings,
    database_url: str,
    inbox: tuple[Inbox, int],
    tmp_path: Path,
) -> None:
    box, port = inbox
    with committed.transaction() as db:
        alert = _alert(db, settings, [("format", "onsite")])
        _event(db, title="Salon <b>\nBcc: x@evil.example")
    env = {
        "DATABASE_URL": database_url,
        "BASE_URL": "https://emploi.exemple.fr",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
    }
    done = _cli("jobs", "run", "send_alerts", cwd=tmp_path, **env)
    assert done.returncode == 0, done.stderr
    again = _cli("jobs", "run", "send_alerts", cwd=tmp_path, **env)
    assert again.returncode == 0, again.stderr
    sent = _cli("jobs", "run", "deliver_mail", cwd=tmp_path, **env)
    assert sent.returncode == 0, sent.stderr
    [message] = [m for m in box.messages if m["List-Unsubscribe"]]
    assert message["List-Unsubscribe"] == (
        f"<https://emploi.exemple.fr/alertes/desabonner/{alert.token}>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Bcc"] is None
    html = next(p for p in message.walk() if p.get_content_type() == "text/html")
    assert "<b>" not in html.get_payload(decode=True).decode()


def test_the_privacy_page_says_what_an_alert_keeps_and_for_how_long(client: TestClient) -> None:
    page = client.get("/donnees-personnelles").text
    assert "Si vous créez une alerte" in page
    assert "effacée au bout de 7 jours" in page and "jusqu'à ce que vous la supprimiez" in page
