"""JSON shapes of the API (spec section 7)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from events_app.events import registration_state, remote_seats_left, seats_left
from events_app.models import Event, Registration
from events_app.search import EventSummary
from events_app.settings import Settings


def event_url(settings: Settings, event_id: int) -> str:
    return f"{settings.base_url}/evenements/{event_id}"


def ics_url(settings: Settings, event_id: int) -> str:
    return f"{settings.base_url}/events/{event_id}.ics"


def local_iso(moment: datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).isoformat()


def event_item(
    event: Event | EventSummary,
    settings: Settings,
    *,
    distance_km: float | None = None,
    with_distance: bool = False,
) -> dict[str, Any]:
    state = registration_state(event)
    item: dict[str, Any] = {
        "id": event.id,
        "title": event.title,
        "type": event.type,
        "sectors": event.sectors,
        "format": event.format,
        "starts_at": local_iso(event.starts_at, event.timezone),
        "ends_at": local_iso(event.ends_at, event.timezone),
        "timezone": event.timezone,
        "venue": {
            "name": event.venue_name,
            "address": event.venue_address,
            "postal_code": event.venue_postal_code,
            "city": event.venue_city,
            "lat": event.venue_lat,
            "lon": event.venue_lon,
        },
        "online_url": event.online_url,
        "agency": {"id": event.agency.id, "name": event.agency.name, "slug": event.agency.slug},
        "capacity": event.capacity,
        "remote_capacity": event.remote_capacity,
        "seats_left": seats_left(event),
        "remote_seats_left": remote_seats_left(event),
        "waitlist": event.waitlist,
        "registration_open": state.open,
        "registration_closed_reason": state.reason,
        "registration_opens_at": _opt_iso(event.registration_opens_at, event.timezone),
        "registration_closes_at": _opt_iso(event.registration_closes_at, event.timezone),
        "job_offers": event.job_offers,
        "status": event.status,
        "revision": event.revision,
        "url": event_url(settings, event.id),
        "ics_url": ics_url(settings, event.id),
        # The same event published by other agencies (SPEC §11), stored with its group.
        "duplicates": list(event.duplicate_copies or ()),
    }
    if with_distance:
        item["distance_km"] = None if distance_km is None else round(distance_km, 2)
    return item


def event_detail(event: Event, settings: Settings) -> dict[str, Any]:
    item = event_item(event, settings)
    item["description"] = event.description_html
    item["accessibility_notes"] = event.accessibility_notes
    return item


def _opt_iso(moment: datetime | None, tz: str) -> str | None:
    return None if moment is None else local_iso(moment, tz)


def registrant_item(registration: Registration) -> dict[str, Any]:
    return {
        "id": registration.id,
        "first_name": registration.first_name,
        "last_name": registration.last_name,
        "email": registration.email,
        "phone": registration.phone,
        "attendance": registration.attendance,
        "status": registration.status,
        "waitlist_position": registration.waitlist_position,
        "created_at": registration.created_at.isoformat(),
    }


def manage_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url}/inscriptions/{token}"


def cancel_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url}/api/v1/registrations/{token}/cancel"


def registration_item(
    registration: Registration, settings: Settings, *, with_links: bool = True
) -> dict[str, Any]:
    """A registration as its owner sees it. Links carry the secret: only for its holder."""
    return {
        "id": registration.id,
        "event_id": registration.event_id,
        "status": registration.status,
        "waitlist_position": registration.waitlist_position,
        "attendance": registration.attendance,
        "first_name": registration.first_name,
        "last_name": registration.last_name,
        "email": registration.email,
        "phone": registration.phone,
        "created_at": registration.created_at.isoformat(),
        "cancelled_at": _opt_iso(registration.cancelled_at, "UTC"),
        "manage_url": manage_url(settings, registration.token) if with_links else None,
        "cancel_url": cancel_url(settings, registration.token) if with_links else None,
        "event": event_item(registration.event, settings),
    }
