"""The API's answers: what an event, a page of events, a registration look like in JSON.

Built from the domain's values at the edge (`EventOut.of`); the OpenAPI document reads the
same models (web/openapi.py)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import (
    ConfigDict,
    Field,
)

from events_app.events import (
    registration_state,
    remote_seats_left,
    seats_left,
)
from events_app.models import Event, Registration
from events_app.places import ResolvedPlace
from events_app.settings import Settings
from events_app.summaries import EventSummary
from events_app.web.schemas import (
    Attendance,
    EventStatus,
    EventType,
    Format,
    Moment,
    RegistrationStatus,
    Sector,
    _Output,
)

# --- answers -----------------------------------------------------------------------------


def event_url(settings: Settings, event_id: int) -> str:
    return f"{settings.base_url}/evenements/{event_id}"


def ics_url(settings: Settings, event_id: int) -> str:
    return f"{settings.base_url}/events/{event_id}.ics"


def manage_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url}/inscriptions/{token}"


def cancel_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url}/api/v1/registrations/{token}/cancel"


class VenueOut(_Output):
    name: str | None
    address: str | None
    postal_code: str | None
    city: str | None
    lat: float | None
    lon: float | None


class AgencyOut(_Output):
    id: int
    name: str
    slug: str


class DuplicateAgencyOut(_Output):
    id: int
    name: str


class DuplicateOut(_Output):
    id: int
    agency: DuplicateAgencyOut


def _local(moment: datetime | None, tz: str) -> datetime | None:
    """An instant in the event's zone: `Moment` and orjson both write it as ISO 8601 with its
    offset (orjson in a third of the time of isoformat(), four times per item of a page)."""
    return None if moment is None else moment.astimezone(_zone(tz))


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


class EventOut(_Output):
    """An event as every list of the API shows it."""

    id: int
    title: str
    type: EventType
    sectors: list[Sector]
    format: Format
    starts_at: Moment
    ends_at: Moment
    timezone: str
    venue: VenueOut
    online_url: str | None
    agency: AgencyOut
    capacity: int | None = Field(description="Places sur place (null : illimité).")
    remote_capacity: int | None = Field(description="Places à distance (hybride).")
    seats_left: int | None
    remote_seats_left: int | None
    waitlist: bool
    registration_open: bool
    registration_closed_reason: str | None
    registration_opens_at: Moment | None
    registration_closes_at: Moment | None
    job_offers: int | None
    status: EventStatus
    revision: int = Field(ge=1)
    url: str
    ics_url: str
    duplicates: list[DuplicateOut] = Field(
        description="Le même événement publié par d'autres organismes (une seule fois en "
        "recherche ; chaque copie garde sa page et ses inscriptions)."
    )
    distance_km: float | None = Field(None, description="Avec `near` seulement (null : en ligne).")

    @classmethod
    def values(
        cls, event: Event | EventSummary, settings: Settings, now: datetime | None = None
    ) -> dict[str, Any]:
        """The field values of an event, as values orjson writes (JSON values, and moments in
        the event's zone): the one place that reads an event for the API. A search page is
        these values written by orjson (`fast`), every other answer the model built from them
        (`of`); tests/test_api_contract.py checks that both give the same JSON, and
        schemathesis that both match the document."""
        state = registration_state(event, now)
        tz = event.timezone
        return {
            "id": event.id,
            "title": event.title,
            "type": event.type,
            "sectors": event.sectors,
            "format": event.format,
            "starts_at": _local(event.starts_at, tz),
            "ends_at": _local(event.ends_at, tz),
            "timezone": tz,
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
            "registration_opens_at": _local(event.registration_opens_at, tz),
            "registration_closes_at": _local(event.registration_closes_at, tz),
            "job_offers": event.job_offers,
            "status": event.status,
            "revision": event.revision,
            "url": event_url(settings, event.id),
            "ics_url": ics_url(settings, event.id),
            "duplicates": list(event.duplicate_copies or ()),
        }

    @classmethod
    def of(cls, event: Event | EventSummary, settings: Settings, **extra: Any) -> Self:
        """The item, checked against the model; `distance_km` (searches near a place) is only
        in the answer when given."""
        return cls.model_validate({**cls.values(event, settings), **extra})

    @classmethod
    def fast(
        cls, event: Event | EventSummary, settings: Settings, now: datetime, **extra: Any
    ) -> dict[str, Any]:
        """The same item as plain JSON values, for orjson: the search page, where building
        20 models costs about 1 ms of a 5 ms answer (README, Performance). `now` is read
        once for the page."""
        return {**cls.values(event, settings, now), **extra}


class EventDetailOut(EventOut):
    """One event: the item, its description and accessibility notes (no distance)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=lambda s: _drop(s, "distance_km"))

    description: str = Field(description="HTML nettoyé.")
    accessibility_notes: str | None

    @classmethod
    def of(cls, event: Event | EventSummary, settings: Settings, **extra: Any) -> Self:
        # Only an Event row carries the description (a search summary does not).
        assert isinstance(event, Event)  # noqa: S101
        return cls.model_validate(
            {
                **cls.values(event, settings),
                "description": event.description_html,
                "accessibility_notes": event.accessibility_notes,
            }
        )


def _drop(schema: dict[str, Any], name: str) -> None:
    schema["properties"].pop(name, None)


class PlaceOut(_Output):
    label: str
    kind: Literal["commune", "postal_code", "department", "coordinates"]
    lat: float
    lon: float
    insee: str | None

    @classmethod
    def of(cls, place: ResolvedPlace) -> Self:
        return cls.model_construct(
            label=place.label, kind=place.kind, lat=place.lat, lon=place.lon, insee=place.insee
        )


NextCursor = Annotated[
    str | None, Field(description="À passer en `cursor` pour la page suivante ; null à la fin.")
]


class EventPage(_Output):
    items: list[EventOut]
    next_cursor: NextCursor


class SearchPage(EventPage):
    place: PlaceOut | None = Field(None, description="La commune retenue, avec `near`.")


class RegistrantOut(_Output):
    id: int
    first_name: str
    last_name: str
    email: str
    phone: str | None
    attendance: Attendance
    status: RegistrationStatus
    waitlist_position: int | None = Field(ge=1)
    created_at: Moment

    @classmethod
    def of(cls, registration: Registration) -> Self:
        return cls.model_construct(
            id=registration.id,
            first_name=registration.first_name,
            last_name=registration.last_name,
            email=registration.email,
            phone=registration.phone,
            attendance=registration.attendance,
            status=registration.status,
            waitlist_position=registration.waitlist_position,
            created_at=registration.created_at,
        )


class RegistrantPage(_Output):
    items: list[RegistrantOut]
    next_cursor: NextCursor


class RegistrationOut(_Output):
    """A registration as its holder sees it. The links carry its secret."""

    id: int
    event_id: int
    status: RegistrationStatus
    waitlist_position: int | None = Field(ge=1)
    attendance: Attendance
    first_name: str
    last_name: str
    email: str
    phone: str | None
    created_at: Moment
    cancelled_at: Moment | None
    manage_url: str = Field(description="La page de la personne.")
    cancel_url: str = Field(description="POST sur cette adresse : annule.")
    checkin_code: str | None = Field(
        description="Le code d'entrée (celui du QR code), tant que la place est confirmée ; "
        "null en liste d'attente ou une fois l'inscription annulée."
    )
    event: EventOut

    @classmethod
    def of(cls, registration: Registration, settings: Settings) -> Self:
        return cls.model_construct(
            id=registration.id,
            event_id=registration.event_id,
            status=registration.status,
            waitlist_position=registration.waitlist_position,
            attendance=registration.attendance,
            first_name=registration.first_name,
            last_name=registration.last_name,
            email=registration.email,
            phone=registration.phone,
            created_at=registration.created_at,
            cancelled_at=registration.cancelled_at,
            manage_url=manage_url(settings, registration.token),
            cancel_url=cancel_url(settings, registration.token),
            checkin_code=registration.checkin_code
            if registration.status in ("confirmed", "attended", "absent")
            else None,
            event=EventOut.of(registration.event, settings),
        )


class AlreadyRegisteredOut(_Output):
    """The same address again: nothing about the person (whoever typed it learns nothing)."""

    id: int
    status: Literal["already_registered"]
    message: str = Field(description="En français.")
