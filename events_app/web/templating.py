"""Jinja2 environment: French formatting (Babel) and the vocabularies' labels."""

from __future__ import annotations

import hashlib
from functools import cache

from starlette.templating import Jinja2Templates

from events_app import vocab
from events_app.checkin_codes import checkin_qr_svg, format_checkin_code
from events_app.events import sanitise_html
from events_app.formatting import (
    fr_date,
    fr_datetime,
    fr_km,
    fr_last_day,
    fr_number,
    fr_paris_time,
    fr_time,
    fr_zone,
)
from events_app.places import OVERSEAS_ZONES
from events_app.resources import STATIC_DIR, TEMPLATES_DIR


@cache
def _static_version(path: str) -> str:
    try:
        return hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"


def static_url(path: str) -> str:
    """The URL of a static file, with a version taken from its bytes: a new release of the
    stylesheet or script is fetched at once, however long browsers keep the old one."""
    return f"/static/{path}?v={_static_version(path)}"


def build_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    env = templates.env
    env.filters.update(
        fr_datetime=fr_datetime,
        fr_date=fr_date,
        fr_last_day=fr_last_day,
        fr_time=fr_time,
        fr_zone=fr_zone,
        fr_paris_time=fr_paris_time,
        fr_km=fr_km,
        fr_number=fr_number,
        iso=lambda moment: moment.isoformat(),
        # Descriptions are sanitised when stored; cleaning again on output costs little and
        # protects pages from any row written before or around that rule.
        clean_html=sanitise_html,
        checkin_code=format_checkin_code,
        checkin_qr=checkin_qr_svg,
    )
    env.globals.update(
        EVENT_TYPES=vocab.EVENT_TYPES,
        SECTORS=vocab.SECTORS,
        FORMATS=vocab.FORMATS,
        EVENT_STATUSES=vocab.EVENT_STATUSES,
        REGISTRATION_STATUSES=vocab.REGISTRATION_STATUSES,
        SERVICE_NAME="Événements emploi",
        # The zones the event form offers beyond Paris (events_app.places).
        OVERSEAS_ZONES=list(dict.fromkeys(OVERSEAS_ZONES.values())),
        static_url=static_url,
    )
    return templates
