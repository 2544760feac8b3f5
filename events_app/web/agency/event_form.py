"""The event form: its French labels and the translation of its fields into the agency API's
field dict (parse_event_form), validated by the same domain functions as the API."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData

from events_app.errors import (
    DomainError,
    InvalidInput,
)
from events_app.events import html_to_markdown
from events_app.models import Event
from events_app.web.agency.session import _text
from events_app.web.schemas import event_fields

# --- Event forms -------------------------------------------------------------------------------

EVENT_FORM_TEXT = (
    "title",
    "description",
    "type",
    "format",
    "starts_at",
    "ends_at",
    "venue_name",
    "venue_address",
    "venue_postal_code",
    "venue_city",
    "venue_lat",
    "venue_lon",
    "online_url",
    "capacity",
    "remote_capacity",
    "registration_opens_at",
    "registration_closes_at",
    "job_offers",
    "accessibility_notes",
    "timezone",
    # The place and coordinates the form was shown with (see parse_event_form).
    "shown_place",
    "shown_lat",
    "shown_lon",
)
# The words a person reads in the form, for the messages that name an API field.
FIELD_LABELS = {
    "title": "Titre",
    "description": "Description",
    "type": "Type d’événement",
    "sectors": "Secteurs",
    "format": "Format",
    "starts_at": "Début",
    "ends_at": "Fin",
    "venue": "Lieu",
    "venue.name": "Nom du lieu",
    "venue.address": "Adresse",
    "venue.postal_code": "Code postal",
    "venue.city": "Commune",
    "venue.lat": "Latitude",
    "venue.lon": "Longitude",
    "online_url": "Lien de connexion",
    "capacity": "Places",
    "remote_capacity": "Places à distance",
    "waitlist": "Liste d’attente",
    "registration_opens_at": "Ouverture des inscriptions",
    "registration_closes_at": "Clôture des inscriptions",
    "job_offers": "Offres d’emploi",
    "accessibility_notes": "Accessibilité",
    "timezone": "Fuseau horaire",
}
# API field -> the form input the error is shown beside.
FORM_FIELD = {
    "venue": "venue_city",
    "venue.name": "venue_name",
    "venue.address": "venue_address",
    "venue.postal_code": "venue_postal_code",
    "venue.city": "venue_city",
    "venue.lat": "venue_lat",
    "venue.lon": "venue_lon",
    "body": "form",
}
_ISO_LOCAL = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?$")
_FRENCH_LOCAL = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})\s+(?:à\s+)?(\d{1,2})\s*[h:]\s*(\d{2})?$")


def form_error(exc: DomainError) -> dict[str, str]:
    """An error as {form input: French message}, the API field name replaced by its label."""
    field = exc.field or "form"
    message = exc.message
    label = FIELD_LABELS.get(field)
    if label is not None:
        for quote in ("« {} »", "«\u00a0{}\u00a0»"):
            message = message.replace(quote.format(field), quote.format(label))
    return {FORM_FIELD.get(field, field): message}


def _local_datetime(raw: str, field: str, *, required: bool) -> str | None:
    """A date and time typed in a form (datetime-local, or jj/mm/aaaa hh:mm where the browser
    shows a plain text box) as a naive ISO string, which the domain reads in Europe/Paris."""
    value = raw.strip()
    if not value:
        if required:
            raise InvalidInput(field, "Indiquez la date et l’heure.")
        return None
    parts: list[int] | None = None
    if match := _ISO_LOCAL.match(value):
        parts = [int(g) if g else 0 for g in match.groups()]
    elif match := _FRENCH_LOCAL.match(value):
        day, month, year, hour, minute = (int(g) if g else 0 for g in match.groups())
        parts = [year, month, day, hour, minute, 0]
    try:
        if parts is None:
            raise ValueError(value)
        year, month, day, hour, minute, second = parts
        # Naive on purpose: the domain reads it in the event's time zone.
        moment = datetime(year, month, day, hour, minute, second)  # noqa: DTZ001
    except ValueError as exc:
        raise InvalidInput(
            field, "Date et heure invalides\u00a0: indiquez-les sous la forme jj/mm/aaaa hh:mm."
        ) from exc
    return moment.isoformat()


def _whole_number(raw: str, field: str, message: str) -> int | None:
    value = raw.strip().replace("\u202f", "").replace("\u00a0", "").replace(" ", "")
    if not value:
        return None
    if not value.isdigit() or len(value) > 9:
        raise InvalidInput(field, message)
    return int(value)


def _coordinate(raw: str, field: str, label: str) -> float | None:
    value = raw.strip().replace(",", ".")
    if not value:
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise InvalidInput(
            field, f"La {label} est un nombre décimal (exemple\u00a0: 48,8615)."
        ) from exc


def _place_key(values: Mapping[str, Any]) -> str:
    return f"{values['venue_postal_code'].strip()}|{values['venue_city'].strip().casefold()}"


def read_event_form(raw: FormData) -> dict[str, Any]:
    """The form's values as typed, for showing the form again."""
    values: dict[str, Any] = {name: _text(raw, name) for name in EVENT_FORM_TEXT}
    values["sectors"] = [
        v.replace("\x00", "") for v in raw.getlist("sectors") if isinstance(v, str)
    ]
    values["waitlist"] = _text(raw, "waitlist") == "1"
    return values


def parse_event_form(values: Mapping[str, Any]) -> dict[str, Any]:
    """The agency API's (cleaned) event fields from the event form's values.

    Coordinates left as they were shown while the postal code or commune changed are dropped,
    so that the domain places the venue in its new commune instead of keeping the old point.
    Raises InvalidInput naming the API field.
    """
    lat = _coordinate(values["venue_lat"], "venue.lat", "latitude")
    lon = _coordinate(values["venue_lon"], "venue.lon", "longitude")
    if (
        values["shown_lat"]
        and values["venue_lat"].strip() == values["shown_lat"]
        and values["venue_lon"].strip() == values["shown_lon"]
        and _place_key(values) != values["shown_place"]
    ):
        lat = lon = None
    payload: dict[str, Any] = {
        "title": values["title"],
        # Markdown (or HTML), rendered and sanitised by the domain (events.description_html).
        "description": values["description"],
        "type": values["type"] or None,
        "sectors": list(values["sectors"]) or None,
        "format": values["format"] or None,
        "starts_at": _local_datetime(values["starts_at"], "starts_at", required=True),
        "ends_at": _local_datetime(values["ends_at"], "ends_at", required=True),
        "venue": {
            "name": values["venue_name"] or None,
            "address": values["venue_address"] or None,
            "postal_code": values["venue_postal_code"] or None,
            "city": values["venue_city"] or None,
            "lat": lat,
            "lon": lon,
        },
        "online_url": values["online_url"].strip() or None,
        "capacity": _whole_number(
            values["capacity"],
            "capacity",
            "Indiquez un nombre entier de places, ou laissez vide pour ne pas limiter.",
        ),
        "remote_capacity": _whole_number(
            values["remote_capacity"],
            "remote_capacity",
            "Indiquez un nombre entier de places, ou laissez vide pour ne pas limiter.",
        ),
        "waitlist": bool(values["waitlist"]),
        "registration_opens_at": _local_datetime(
            values["registration_opens_at"], "registration_opens_at", required=False
        ),
        "registration_closes_at": _local_datetime(
            values["registration_closes_at"], "registration_closes_at", required=False
        ),
        "job_offers": _whole_number(
            values["job_offers"], "job_offers", "Indiquez un nombre entier d’offres, ou rien."
        ),
        "accessibility_notes": values["accessibility_notes"] or None,
        # Empty: the zone of the venue's overseas département, else Paris (the domain's rule).
        "timezone": values["timezone"].strip() or None,
    }
    if payload["type"] is None:
        raise InvalidInput("type", "Choisissez le type d’événement.")
    if payload["sectors"] is None:
        raise InvalidInput(
            "sectors", "Cochez au moins un secteur (ou «\u00a0Tous secteurs\u00a0»)."
        )
    if payload["format"] is None:
        raise InvalidInput("format", "Choisissez le format de l’événement.")
    return event_fields(payload, partial=False)


def _local_input(moment: datetime | None, tz: str = "Europe/Paris") -> str:
    """The value of a datetime-local input, in the event's time zone."""
    if moment is None:
        return ""
    local = moment.astimezone(ZoneInfo(tz))
    return local.strftime("%Y-%m-%dT%H:%M:%S" if local.second else "%Y-%m-%dT%H:%M")


def event_form_values(event: Event) -> dict[str, Any]:
    """The form's values for an existing event."""
    lat = "" if event.venue_lat is None else str(event.venue_lat)
    lon = "" if event.venue_lon is None else str(event.venue_lon)
    values: dict[str, Any] = {
        "title": event.title,
        # Shown as the Markdown the agency types; unchanged_description() tells whether it
        # came back as shown.
        "description": html_to_markdown(event.description_html or ""),
        "type": event.type,
        "format": event.format,
        "sectors": list(event.sectors),
        "starts_at": _local_input(event.starts_at, event.timezone),
        "ends_at": _local_input(event.ends_at, event.timezone),
        "venue_name": event.venue_name or "",
        "venue_address": event.venue_address or "",
        "venue_postal_code": event.venue_postal_code or "",
        "venue_city": event.venue_city or "",
        "venue_lat": lat,
        "venue_lon": lon,
        "online_url": event.online_url or "",
        "capacity": "" if event.capacity is None else str(event.capacity),
        "remote_capacity": "" if event.remote_capacity is None else str(event.remote_capacity),
        "waitlist": event.waitlist,
        "registration_opens_at": _local_input(event.registration_opens_at, event.timezone),
        "registration_closes_at": _local_input(event.registration_closes_at, event.timezone),
        "job_offers": "" if event.job_offers is None else str(event.job_offers),
        "accessibility_notes": event.accessibility_notes or "",
        "timezone": event.timezone,
        "shown_lat": lat,
        "shown_lon": lon,
    }
    values["shown_place"] = _place_key(values)
    return values


NEW_EVENT_VALUES: dict[str, Any] = {
    **dict.fromkeys(EVENT_FORM_TEXT, ""),
    "sectors": [],
    "waitlist": True,
    "format": "onsite",
}


# --- Sign-in, sign-out, password ---------------------------------------------------------------


def unchanged_description(fields: dict[str, Any], values: Mapping[str, Any], event: Event) -> None:
    """Leave the description out of an edit when it comes back as the form showed it: the
    Markdown shown for HTML that came from elsewhere (a feed, the API) would not render to the
    very same bytes, and an untouched field must change nothing (nor the revision)."""
    shown = html_to_markdown(event.description_html or "")
    if values["description"].replace("\r\n", "\n").strip() == shown:
        fields.pop("description", None)
