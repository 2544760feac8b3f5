"""Jinja2 environment: French formatting (Babel) and the vocabularies' labels."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_decimal
from starlette.templating import Jinja2Templates

from events_app import vocab
from events_app.events import sanitise_html

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
LOCALE = "fr_FR"


def fr_datetime(moment: datetime, tz: str = "Europe/Paris") -> str:
    """« mardi 8 décembre 2026, 9 h 30 »."""
    local = moment.astimezone(ZoneInfo(tz))
    return f"{format_date(local, 'EEEE d MMMM y', locale=LOCALE)}, {fr_time(moment, tz)}"


def fr_date(moment: datetime, tz: str = "Europe/Paris") -> str:
    return format_date(moment.astimezone(ZoneInfo(tz)), "EEEE d MMMM y", locale=LOCALE)


def fr_time(moment: datetime, tz: str = "Europe/Paris") -> str:
    local = moment.astimezone(ZoneInfo(tz))
    pattern = "H 'h'" if local.minute == 0 else "H 'h' mm"
    return format_time(local, pattern, locale=LOCALE)


def fr_km(distance: float | None) -> str:
    if distance is None:
        return ""
    return f"{format_decimal(round(distance, 1), format='#,##0.0', locale=LOCALE)} km"


def fr_number(value: int) -> str:
    return format_decimal(value, locale=LOCALE)


def build_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    env = templates.env
    env.filters.update(
        fr_datetime=fr_datetime,
        fr_date=fr_date,
        fr_time=fr_time,
        fr_km=fr_km,
        fr_number=fr_number,
        iso=lambda moment: moment.isoformat(),
        # Descriptions are sanitised when stored; cleaning again on output costs little and
        # protects pages from any row written before or around that rule.
        clean_html=sanitise_html,
    )
    env.globals.update(
        EVENT_TYPES=vocab.EVENT_TYPES,
        SECTORS=vocab.SECTORS,
        FORMATS=vocab.FORMATS,
        EVENT_STATUSES=vocab.EVENT_STATUSES,
        REGISTRATION_STATUSES=vocab.REGISTRATION_STATUSES,
        SERVICE_NAME="Événements emploi",
    )
    return templates
