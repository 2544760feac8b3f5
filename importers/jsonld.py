"""schema.org events ("jsonld"): an agency's web page, or a JSON(-LD) document.

A page is read with `extruct` (its `application/ld+json` blocks and its microdata); a document
that is JSON itself is read as JSON-LD. Events are found at the top level, in `@graph`, in
lists, and in `ItemList`/`itemListElement` (a `ListItem`'s `item`), with every subtype of
`Event` (`EducationEvent`, `BusinessEvent`, ...).

- `startDate`/`endDate`: ISO 8601; a date-time without an offset is Paris time; a date alone
  is a whole day.
- `eventStatus`: `EventCancelled` → cancelled, `EventPostponed` → postponed, the others
  (`EventScheduled`, `EventRescheduled`, `EventMovedOnline`) → scheduled.
- `eventAttendanceMode` (Offline, Online, Mixed) gives the format; without it, the locations
  do: a `Place` is on site, a `VirtualLocation` online, both hybrid.
- `location`: a `Place` with a `PostalAddress` or an address string, and `geo`; a
  `VirtualLocation` (its `url` is the online URL); a bare string is a place's text.
- The external id is the `@id` (unless a blank node), else the `url`, else a hash of title and
  start. `keywords` may carry our type and sector labels (our own pages put them there).

`line` is the 1-based position of the event among the events found, in document order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from importers.base import (
    DEFAULT_DURATION,
    DEFAULT_TIMEZONE,
    MAX_ADDRESS,
    MAX_TITLE,
    MAX_VENUE_TEXT,
    FieldError,
    ImportedEvent,
    ImportedVenue,
    RowError,
    as_html,
    clean_text,
    clip,
    derived_id,
    end_of_day,
    http_url,
    lookup_sector,
    lookup_type,
    map_type,
    normalise,
    normalise_postal_code,
    parse_coordinates,
    parse_datetime_text,
    parse_int,
    parse_place_text,
    seal,
    split_capacities,
    stable_id,
)

PARIS: Final = ZoneInfo(DEFAULT_TIMEZONE)
EVENT_TYPES: Final = frozenset(
    {
        "Event",
        "BusinessEvent",
        "ChildrensEvent",
        "ComedyEvent",
        "CourseInstance",
        "DanceEvent",
        "DeliveryEvent",
        "EducationEvent",
        "EventSeries",
        "ExhibitionEvent",
        "Festival",
        "FoodEvent",
        "Hackathon",
        "LiteraryEvent",
        "MusicEvent",
        "PublicationEvent",
        "SaleEvent",
        "ScreeningEvent",
        "SocialEvent",
        "SportsEvent",
        "TheaterEvent",
        "VisualArtsEvent",
    }
)
STATUSES: Final = {
    "EventCancelled": "cancelled",
    "EventPostponed": "postponed",
    "EventScheduled": "scheduled",
    "EventRescheduled": "scheduled",
    "EventMovedOnline": "scheduled",
}
MODES: Final = {
    "OfflineEventAttendanceMode": "onsite",
    "OnlineEventAttendanceMode": "online",
    "MixedEventAttendanceMode": "hybrid",
}
# Words of a title that give the type when nothing else does, first match wins.
_TITLE_TYPES: Final = (
    ("job dating", "job_dating"),
    ("jobdating", "job_dating"),
    ("salon en ligne", "online_fair"),
    ("forum", "forum"),
    ("salon", "forum"),
    ("atelier", "workshop"),
    ("reunion d information", "info_session"),
    ("information collective", "info_session"),
    ("conference", "conference"),
    ("visite", "company_visit"),
    ("portes ouvertes", "open_day"),
    ("recrutement", "recruitment"),
)
MAX_NODES: Final = 100_000


def short_name(value: Any) -> str:
    """`Event` for `Event`, `schema:Event`, `http://schema.org/Event` or `https://schema.org/Event`."""
    text = str(value)
    return text.rsplit("/", 1)[-1].rsplit(":", 1)[-1].rsplit("#", 1)[-1]


def _types(node: dict[str, Any]) -> set[str]:
    raw = node.get("@type", node.get("type"))
    values = raw if isinstance(raw, list) else [raw]
    return {short_name(v) for v in values if v is not None}


def _documents(data: bytes) -> list[Any]:
    """The JSON-LD items of a document; raises ValueError when it cannot be read at all."""
    text = data.decode("utf-8-sig", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return [json.loads(stripped)]
    # Imported here: extruct pulls in lxml and mf2py (over a second), which every CLI command
    # and worker would pay at start while few feeds are pages.
    import extruct

    found = extruct.extract(text, syntaxes=["json-ld", "microdata"], uniform=True, errors="ignore")
    return [*found.get("json-ld", []), *found.get("microdata", [])]


def find_events(items: list[Any]) -> list[dict[str, Any]]:
    """Every Event node, in document order, looking into @graph, lists and ItemLists."""
    events: list[dict[str, Any]] = []
    stack: list[Any] = list(reversed(items))
    seen = 0
    while stack and seen < MAX_NODES:
        seen += 1
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        types = _types(node)
        if types & EVENT_TYPES:
            events.append(node)
            continue
        children: list[Any] = []
        for key in ("@graph", "itemListElement", "item", "mainEntity", "subEvent", "event"):
            if key in node:
                children.append(node[key])
        stack.extend(reversed(children))
    return events


def parse(data: bytes) -> Iterator[ImportedEvent | RowError]:
    """Events and rejected rows of a page or JSON-LD document; never raises."""
    try:
        events = find_events(_documents(data))
    except (ValueError, RecursionError) as exc:
        yield RowError(0, None, f"document illisible : {exc}")
        return
    except Exception as exc:  # extruct on broken markup: the document, not a row
        yield RowError(0, None, f"page illisible : {type(exc).__name__}")
        return
    if not events:
        yield RowError(
            0,
            None,
            "aucun événement schema.org (Event en JSON-LD ou microdonnées) dans la page",
        )
        return
    seen: dict[str, int] = {}
    for line, node in enumerate(events, start=1):
        try:
            event = _map(line, node)
        except FieldError as exc:
            yield RowError(line, exc.field, exc.reason)
            continue
        except Exception as exc:  # an unforeseen shape rejects one row, not the page
            yield RowError(line, None, f"événement illisible : {exc!r}")
            continue
        if event.external_id in seen:
            yield RowError(
                line,
                "external_id",
                f"identifiant « {event.external_id[:60]} » en double "
                f"(déjà vu à l'événement {seen[event.external_id]})",
            )
            continue
        seen[event.external_id] = line
        yield event


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = next((v for v in value if v is not None), None)
    if isinstance(value, dict):
        value = value.get("@value", value.get("name"))
    if value is None or isinstance(value, dict | list):
        return None
    return clean_text(str(value))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _when(value: Any, field: str, label: str) -> tuple[datetime, bool]:
    text = _text(value)
    if text is None:
        raise FieldError(field, f"{label} absente")
    try:
        return parse_datetime_text(text, PARIS)
    except (ValueError, OverflowError):
        raise FieldError(field, f"{label} illisible : « {text[:40]} »") from None


def _venue(place: dict[str, Any], warnings: list[str]) -> ImportedVenue:
    name = _text(place.get("name"))
    address = place.get("address")
    street = postal_code = city = None
    if isinstance(address, dict):
        street = _text(address.get("streetAddress"))
        postal_code = normalise_postal_code(_text(address.get("postalCode")))
        city = _text(address.get("addressLocality"))
    elif address is not None:
        parts = parse_place_text(_text(address))
        street, postal_code, city = parts.address, parts.postal_code, parts.city
        name = name or parts.name
    geo = place.get("geo")
    lat = lon = None
    if isinstance(geo, dict):
        lat, lon = parse_coordinates(geo.get("latitude"), geo.get("longitude"), warnings)
    return ImportedVenue(
        name=clip(name, MAX_VENUE_TEXT, "lieu", warnings),
        address=clip(street, MAX_ADDRESS, "adresse", warnings),
        postal_code=postal_code,
        city=clip(city, MAX_VENUE_TEXT, "ville", warnings),
        lat=lat,
        lon=lon,
    )


def _type(node: dict[str, Any], title: str, warnings: list[str]) -> str:
    for keyword in _keywords(node):
        code = lookup_type(keyword)
        if code is not None:
            return code
    key = f" {normalise(title)} "
    for words, code in _TITLE_TYPES:
        if f" {words} " in key:
            return code
    return map_type(None, warnings)


def _keywords(node: dict[str, Any]) -> list[str]:
    raw = node.get("keywords")
    if isinstance(raw, list):  # one keyword an item (a label may hold commas)
        return [text for value in raw if (text := _text(value)) is not None]
    text = _text(raw)
    return [part.strip() for part in text.split(",") if part.strip()] if text else []


def _sectors(node: dict[str, Any]) -> tuple[str, ...]:
    found = {code for k in _keywords(node) if (code := lookup_sector(k)) is not None}
    if not found or "all" in found:
        return ("all",)
    return tuple(sorted(found))


def _map(line: int, node: dict[str, Any]) -> ImportedEvent:
    warnings: list[str] = []
    title = clip(_text(node.get("name")), MAX_TITLE, "titre", warnings)
    if title is None:
        raise FieldError("title", "titre (name) absent")
    starts_at, start_has_time = _when(node.get("startDate"), "starts_at", "date de début")
    if "endDate" in node and node["endDate"] is not None:
        ends_at, end_has_time = _when(node.get("endDate"), "ends_at", "date de fin")
        if not end_has_time:
            ends_at = end_of_day(ends_at, PARIS)
    elif start_has_time:
        ends_at = starts_at + DEFAULT_DURATION
    else:
        ends_at = end_of_day(starts_at, PARIS)
    if ends_at < starts_at:
        raise FieldError("ends_at", "la fin de l'événement précède son début")

    venue = ImportedVenue()
    online_url: str | None = None
    has_place = has_virtual = False
    for location in _as_list(node.get("location")):
        if isinstance(location, str):
            parts = parse_place_text(location)
            venue = ImportedVenue(parts.name, parts.address, parts.postal_code, parts.city)
            has_place = has_place or not venue.is_empty()
        elif isinstance(location, dict):
            if "VirtualLocation" in _types(location):
                has_virtual = True
                online_url = online_url or http_url(_text(location.get("url")))
            else:
                venue = _venue(location, warnings)
                has_place = True

    mode = short_name(_text(node.get("eventAttendanceMode")) or "")
    fmt = MODES.get(mode)
    if fmt is None:
        fmt = "hybrid" if has_place and has_virtual else "online" if has_virtual else "onsite"
    status_name = short_name(_text(node.get("eventStatus")) or "EventScheduled")
    status = STATUSES.get(status_name, "scheduled")
    if status_name == "EventMovedOnline":
        fmt = "online"

    onsite = parse_int(
        node.get("maximumPhysicalAttendeeCapacity", node.get("maximumAttendeeCapacity")),
        "capacity",
        "capacité",
    )
    remote = parse_int(node.get("maximumVirtualAttendeeCapacity"), "remote_capacity", "capacité")
    capacity, remote_capacity = split_capacities(fmt, onsite, remote, warnings)

    opens = closes = None
    offers = next((o for o in _as_list(node.get("offers")) if isinstance(o, dict)), None)
    if offers is not None:
        if offers.get("validFrom"):
            opens = _when(offers["validFrom"], "registration_opens_at", "ouverture")[0]
        if offers.get("validThrough"):
            closes = _when(offers["validThrough"], "registration_closes_at", "clôture")[0]

    url = http_url(_text(node.get("url")))
    raw_id = node.get("@id")
    identifier = raw_id if isinstance(raw_id, str) and not raw_id.startswith("_:") else None
    external_id = stable_id(identifier or url or derived_id(title, starts_at))
    organiser = _text(node.get("organizer"))
    return seal(
        ImportedEvent(
            line=line,
            external_id=external_id,
            title=title,
            description_html=as_html(_text(node.get("description"))),
            type=_type(node, title, warnings),
            sectors=_sectors(node),
            format=fmt,
            starts_at=starts_at,
            ends_at=ends_at if ends_at > starts_at else starts_at + timedelta(hours=1),
            timezone=DEFAULT_TIMEZONE,
            venue=venue,
            online_url=online_url,
            capacity=capacity,
            remote_capacity=remote_capacity,
            registration_opens_at=opens,
            registration_closes_at=closes,
            job_offers=None,
            status=status,
            source_url=url,
            organiser=organiser,
            warnings=tuple(warnings),
        )
    )
