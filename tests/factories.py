"""Plain typed factories for tests: agencies and events through the domain functions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from events_app import accounts
from events_app.agencies import create_agency
from events_app.db import utcnow
from events_app.events import create_event, get_event
from events_app.models import Agency, Event, Seeker
from events_app.settings import Settings
from events_app.web.schemas import event_fields as api_event_fields

PARIS = ZoneInfo("Europe/Paris")
_counter = {"n": 0}


# A France Travail agency in Montreuil (93), placed by its own coordinates.
MONTREUIL_VENUE: dict[str, Any] = {
    "name": "Agence France Travail Montreuil",
    "address": "1 place Jean-Jaurès",
    "postal_code": "93100",
    "city": "Montreuil",
    "lat": 48.8615,
    "lon": 2.4432,
}


def make_agency(
    db: Session, *, slug: str | None = None, name: str | None = None
) -> tuple[Agency, str]:
    _counter["n"] += 1
    n = _counter["n"]
    return create_agency(db, slug=slug or f"agence-{n}", name=name or f"Agence France Travail {n}")


def in_days(days: int, hour: int = 9, minute: int = 30) -> datetime:
    day = datetime.now(PARIS) + timedelta(days=days)
    return day.replace(hour=hour, minute=minute, second=0, microsecond=0)


def event_fields(**overrides: Any) -> dict[str, Any]:
    starts = overrides.pop("starts_at", in_days(7))
    fields: dict[str, Any] = {
        "title": "Job dating logistique",
        "description": "<p>Rencontrez des recruteurs.</p>",
        "type": "job_dating",
        "sectors": ["N"],
        "format": "onsite",
        "starts_at": starts,
        "ends_at": overrides.pop("ends_at", starts + timedelta(hours=3)),
        "venue": {
            "name": "Agence France Travail",
            "address": "1 place Jean-Jaurès",
            "postal_code": "93100",
            "city": "Montreuil",
            "lat": 48.8615,
            "lon": 2.4432,
        },
        "online_url": None,
        "capacity": 20,
        "waitlist": True,
    }
    fields.update(overrides)
    return fields


def make_event(db: Session, agency: Agency, **overrides: Any) -> Event:
    """An event built from API-shaped fields, through the same validation as the API."""
    raw = {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in event_fields(**overrides).items()
    }
    event = create_event(db, agency_id=agency.id, fields=api_event_fields(raw, partial=False))
    return get_event(db, event.id)


def make_seeker(
    db: Session,
    *,
    email: str = "camille.martin@exemple.fr",
    password: str = "une phrase assez longue",  # noqa: S107 - a test account
    settings: Settings | None = None,
    confirmed: bool = True,
) -> Seeker:
    """A seeker's account, as sign-up makes it; confirmed as the link of its mail would."""
    seeker = accounts.sign_up(
        db,
        email=email,
        password=password,
        first_name="Camille",
        last_name="Martin",
        settings=settings or Settings(database_url="sqlite://", base_url="http://testserver"),
    )
    assert seeker is not None, "the address already has an account"
    if confirmed:
        seeker.email_confirmed_at = utcnow()
        db.flush()
    return seeker
