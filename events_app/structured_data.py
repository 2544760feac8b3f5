"""An event as schema.org `Event` JSON-LD, as search engines read it on its page.

`importers.jsonld` reads the same shape back: importing one of our pages gives the same event.
The type and sector labels travel in `keywords`, the capacities in the schema.org
`maximum*AttendeeCapacity` properties, the registration window in the offer's validity.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from events_app.events import plain_text, registration_state
from events_app.models import Event
from events_app.vocab import EVENT_TYPES, SECTORS

SCHEMA = "https://schema.org/"
STATUSES = {
    "scheduled": "EventScheduled",
    "cancelled": "EventCancelled",
    "postponed": "EventPostponed",
}
MODES = {
    "onsite": "OfflineEventAttendanceMode",
    "online": "OnlineEventAttendanceMode",
    "hybrid": "MixedEventAttendanceMode",
}


def _iso(moment: datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).isoformat()


def _place(event: Event) -> dict[str, Any]:
    address: dict[str, Any] = {"@type": "PostalAddress", "addressCountry": "FR"}
    for key, value in (
        ("streetAddress", event.venue_address),
        ("postalCode", event.venue_postal_code),
        ("addressLocality", event.venue_city),
    ):
        if value:
            address[key] = value
    place: dict[str, Any] = {"@type": "Place", "address": address}
    if event.venue_name:
        place["name"] = event.venue_name
    if event.venue_lat is not None and event.venue_lon is not None:
        place["geo"] = {
            "@type": "GeoCoordinates",
            "latitude": event.venue_lat,
            "longitude": event.venue_lon,
        }
    return place


def event_jsonld(event: Event, *, url: str, agency_url: str | None = None) -> dict[str, Any]:
    """The JSON-LD object of an event page (`event.agency` and its sectors loaded)."""
    tz = event.timezone
    locations: list[dict[str, Any]] = []
    if event.format in ("onsite", "hybrid"):
        locations.append(_place(event))
    if event.format in ("online", "hybrid"):
        virtual: dict[str, Any] = {"@type": "VirtualLocation"}
        # The link of an online event is its page when the meeting link is not public.
        virtual["url"] = event.online_url or url
        locations.append(virtual)
    organizer: dict[str, Any] = {"@type": "Organization", "name": event.agency.name}
    if agency_url or event.agency.website:
        organizer["url"] = agency_url or event.agency.website
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Event",
        "@id": url,
        "url": url,
        "name": event.title,
        "description": plain_text(event.description_html) or event.title,
        "startDate": _iso(event.starts_at, tz),
        "endDate": _iso(event.ends_at, tz),
        "eventStatus": SCHEMA + STATUSES.get(event.status, "EventScheduled"),
        "eventAttendanceMode": SCHEMA + MODES[event.format],
        "location": locations[0] if len(locations) == 1 else locations,
        "organizer": organizer,
        # A list: some sector labels hold commas.
        "keywords": [EVENT_TYPES.get(event.type, event.type)]
        + [SECTORS.get(code, code) for code in event.sectors if code != "all"],
        "isAccessibleForFree": True,
        "inLanguage": "fr",
    }
    if event.format == "hybrid":
        if event.capacity is not None:
            data["maximumPhysicalAttendeeCapacity"] = event.capacity
        if event.remote_capacity is not None:
            data["maximumVirtualAttendeeCapacity"] = event.remote_capacity
    elif event.capacity is not None:
        data["maximumAttendeeCapacity"] = event.capacity
    if registration_state(event).open:
        offer: dict[str, Any] = {
            "@type": "Offer",
            "price": 0,
            "priceCurrency": "EUR",
            "availability": SCHEMA + "InStock",
            "url": url + "#inscription",
        }
        if event.registration_opens_at is not None:
            offer["validFrom"] = _iso(event.registration_opens_at, tz)
        if event.registration_closes_at is not None:
            offer["validThrough"] = _iso(event.registration_closes_at, tz)
        data["offers"] = offer
    return data
