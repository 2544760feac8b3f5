"""An agency's figures (SPEC §12) on a known data set, compared with values counted by hand, on
SQLite and PostgreSQL: the domain, GET /api/v1/agency/stats (isolation, 401, days in Paris),
the Bilan page (charts with their tables) and its CSV for French Excel."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from events_app.db import PARIS, Database
from events_app.models import Event, Registration
from events_app.notifications import Notifier
from events_app.registrations import Person, cancel_registration, register
from events_app.settings import Settings
from events_app.staff import create_staff
from events_app.stats import agency_stats
from tests.factories import in_days, make_agency, make_event
from tests.helpers import post_form

STAFF_EMAIL = "claire.dupont@agence.example"
PASSWORD = "une phrase de passe solide"


@dataclass(frozen=True)
class DataSet:
    agency_id: int
    token: str
    other_token: str


def _people(db: Session, event: Event, count: int, notifier: Notifier, tag: str) -> list[str]:
    tokens = []
    for n in range(count):
        person = Person(first_name=f"P{n}", last_name=tag, email=f"{tag}{n}@example.org")
        tokens.append(
            register(db, event_id=event.id, person=person, notifier=notifier).registration.token
        )
    return tokens


def _set_statuses(db: Session, event: Event, statuses: list[str]) -> None:
    seated = db.scalars(
        select(Registration)
        .where(Registration.event_id == event.id, Registration.status == "confirmed")
        .order_by(Registration.id)
    ).all()
    for registration, status in zip(seated, statuses, strict=False):
        registration.status = status


def _move(event: Event, starts: datetime) -> None:
    event.starts_at, event.ends_at = starts, starts + timedelta(hours=2)


def build(db: Session, settings: Settings, future: datetime) -> DataSet:
    """Counted by hand:

    E1 job dating, 15 Oct 2026, 10 seats: 5 registered, 1 cancelled; 3 present, 1 not → 4
       seated, 3 attended, 1 no-show, 4 seats taken.
    E2 forum, 1 Dec 2026 at 00:30 in Paris (still 30 Nov in UTC), 5 seats: 6 registered (1
       waitlisted); 2 present, 1 marked absent, 2 not marked → 5 seated, 2 attended, 3 no-shows.
    E3 workshop, `future`, no limit: 2 registered → 2 seated, no seat offered, no no-show yet.
    E4 job dating, cancelled, with registrations: not counted. Another agency's event: not
    counted either.
    """
    notifier = Notifier(db, settings)
    agency, token = make_agency(db, name="Agence France Travail Montreuil")
    other, other_token = make_agency(db, name="Mission locale de Lyon")
    create_staff(
        db, agency_id=agency.id, email=STAFF_EMAIL, name="Claire Dupont", password=PASSWORD
    )
    e1 = make_event(db, agency, type="job_dating", capacity=10)
    cancel_registration(db, token=_people(db, e1, 5, notifier, "a")[0], notifier=notifier)
    _set_statuses(db, e1, ["attended", "attended", "attended"])
    e2 = make_event(db, agency, type="forum", capacity=5)
    _people(db, e2, 6, notifier, "b")
    _set_statuses(db, e2, ["attended", "attended", "absent"])
    e3 = make_event(db, agency, type="workshop", capacity=None)
    _people(db, e3, 2, notifier, "c")
    e4 = make_event(db, agency, type="job_dating", capacity=10, title="Annulé")
    _people(db, e4, 3, notifier, "d")
    e4.status = "cancelled"
    theirs = make_event(db, other, type="job_dating", capacity=10)
    _people(db, theirs, 4, notifier, "e")
    _set_statuses(db, theirs, ["attended"])
    _move(e1, datetime(2026, 10, 15, 9, 30, tzinfo=PARIS))
    _move(e2, datetime(2026, 12, 1, 0, 30, tzinfo=PARIS))
    _move(e3, future)
    _move(e4, datetime(2026, 10, 20, 9, 30, tzinfo=PARIS))
    _move(theirs, datetime(2026, 10, 15, 9, 30, tzinfo=PARIS))
    db.flush()
    return DataSet(agency.id, token, other_token)


def _figures(f: Any) -> tuple[Any, ...]:
    if isinstance(f, dict):
        return (
            f["events"],
            f["seats"],
            f["registrations"],
            f["attended"],
            f["no_shows"],
            f["fill_rate"],
        )
    return (f.events, f.seats, f.registrations, f.attended, f.no_shows, f.fill_rate)


JOB_DATING = (1, 10, 4, 3, 1, 0.4)
FORUM = (1, 5, 5, 2, 3, 1.0)
WORKSHOP = (1, 0, 2, 0, 0, None)
TOTALS = (3, 15, 11, 5, 4, 0.6)


def test_figures_match_the_hand_count(db: Session, settings: Settings) -> None:
    data = build(db, settings, datetime(2027, 1, 15, 14, 0, tzinfo=PARIS))
    now = datetime(2027, 1, 10, tzinfo=PARIS)
    stats = agency_stats(db, agency_id=data.agency_id, now=now)
    assert _figures(stats.totals) == TOTALS
    assert [(kind, _figures(f)) for kind, f in stats.by_type] == [
        ("job_dating", JOB_DATING),
        ("forum", FORUM),
        ("workshop", WORKSHOP),
    ]
    # Every month from the first to the last, the empty one included; E2 is December in Paris.
    assert [(month, _figures(f)) for month, f in stats.by_month] == [
        ("2026-10", JOB_DATING),
        ("2026-11", (0, 0, 0, 0, 0, None)),
        ("2026-12", FORUM),
        ("2027-01", WORKSHOP),
    ]
    # Paris days, both ends included.
    december_first = agency_stats(
        db,
        agency_id=data.agency_id,
        date_from=date(2026, 12, 1),
        date_to=date(2026, 12, 1),
        now=now,
    )
    assert _figures(december_first.totals) == FORUM
    november_last = agency_stats(
        db,
        agency_id=data.agency_id,
        date_from=date(2026, 11, 30),
        date_to=date(2026, 11, 30),
        now=now,
    )
    assert november_last.totals.events == 0 and november_last.by_month == []
    # Before the workshop is over, its people are no no-shows; after, they are.
    after = agency_stats(db, agency_id=data.agency_id, now=datetime(2027, 2, 1, tzinfo=PARIS))
    assert after.totals.no_shows == 6


def test_stats_api(client: TestClient, committed: Database, settings: Settings) -> None:
    with committed.transaction(lock=True) as db:
        data = build(db, settings, in_days(30, 14, 0))
    response = client.get("/api/v1/agency/stats", headers={"Authorization": f"Bearer {data.token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert _figures(body["totals"]) == TOTALS
    assert [(t["type"], _figures(t)) for t in body["by_type"]] == [
        ("job_dating", JOB_DATING),
        ("forum", FORUM),
        ("workshop", WORKSHOP),
    ]
    assert [m["month"] for m in body["by_month"]][:3] == ["2026-10", "2026-11", "2026-12"]
    # Paris days in the query.
    response = client.get(
        "/api/v1/agency/stats?from=2026-12-01&to=2026-12-01",
        headers={"Authorization": f"Bearer {data.token}"},
    )
    assert _figures(response.json()["totals"]) == FORUM
    # The other agency sees only its own event.
    other = client.get(
        "/api/v1/agency/stats", headers={"Authorization": f"Bearer {data.other_token}"}
    ).json()
    assert _figures(other["totals"]) == (1, 10, 4, 1, 3, 0.4)
    assert client.get("/api/v1/agency/stats").status_code == 401
    bad = client.get(
        "/api/v1/agency/stats?from=2026-13-01", headers={"Authorization": f"Bearer {data.token}"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "from"
    reversed_days = client.get(
        "/api/v1/agency/stats?from=2026-12-02&to=2026-12-01",
        headers={"Authorization": f"Bearer {data.token}"},
    )
    assert reversed_days.status_code == 400


def test_bilan_page_and_csv(client: TestClient, committed: Database, settings: Settings) -> None:
    with committed.transaction(lock=True) as db:
        build(db, settings, in_days(30, 14, 0))
    assert (
        post_form(
            client, "/organisme/connexion", {"email": STAFF_EMAIL, "password": PASSWORD}
        ).status_code
        == 303
    )
    page = client.get("/organisme/bilan")
    assert page.status_code == 200
    # Three charts, each an image with a name, with its table and its summary.
    svgs = re.findall(r'<svg role="img" aria-label="([^"]+)"', page.text)
    assert len(svgs) == 3 and svgs[0].startswith("Inscriptions et présence par mois")
    assert page.text.count("<table") == 3 and page.text.count("<figcaption>") == 3
    # pygal's inline script is gone: only the site's own files are loaded.
    assert all('src="/static/js/' in tag for tag in re.findall(r"<script\b[^>]*>", page.text))
    # pygal's own style is allowed by this page's nonce, and only there.
    nonce = re.search(r"<style nonce=\"([^\"]+)\"", page.text)
    assert nonce is not None
    assert f"'nonce-{nonce.group(1)}'" in page.headers["content-security-policy"]
    assert "40,0\u202f%" in page.text and "60,0\u202f%" in page.text  # fill rates, in French
    response = client.get("/organisme/bilan.csv?from=2026-12-01&to=2026-12-01")
    assert response.status_code == 200
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["Regroupement", "Valeur", "Événements"]
    assert rows[1] == ["Total", "Tous les événements", "1", "5", "5", "2", "3", "100,0\u202f%"]
    assert rows[2][:2] == ["Type", "Forum, salon"]
    assert rows[3][:2] == ["Mois", "décembre 2026"]
    bad = client.get("/organisme/bilan?from=demain")
    assert bad.status_code == 400 and "Date invalide" in bad.text
    # Signed out: no figures.
    client.cookies.clear()
    assert client.get("/organisme/bilan", follow_redirects=False).status_code == 303
