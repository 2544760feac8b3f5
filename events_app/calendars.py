"""Calendars: the ICS of one event, of the invitation of a registration, and of subscription
feeds. What goes in a feed (the queries) is in calendar_feeds.py; this module renders only.

Every document is built with the icalendar library, which does all escaping and folding.

Two choices here are deliberate:

* The VTIMEZONE is written by hand as a rule-based definition (STANDARD and DAYLIGHT with a
  yearly RRULE), the way Thunderbird and Apple ship theirs. icalendar's own
  `add_missing_timezones()` lists the transitions as one multi-valued RDATE, which ical.js
  (Thunderbird) and vobject only partly read: a 14:00 July event then shows at 15:00. A zone
  whose rules are neither fixed nor the EU rule gets no VTIMEZONE; its events are written in
  UTC instead, which every parser reads right.
* A feed's bytes depend on the data only (DTSTAMP is the event's last change, not the time of
  rendering), so the same data always gives the same ETag, on every worker.

The personal feed of a seeker (calendar_feeds.personal_feed_events, personal_ics) holds
their registrations, each with its own state (a cancelled registration reads STATUS:CANCELLED
for that person, a waitlisted one TENTATIVE and « [Liste d'attente] » in its SUMMARY), and
the events matching their saved preferences, as suggestions: « Suggestion : » in the SUMMARY,
TRANSP:TRANSPARENT and no STATUS:CONFIRMED. It keeps the UIDs of the other feeds and of the
invitations, so a calendar shows each event once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from email.utils import parseaddr
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Timezone, TimezoneDaylight, TimezoneStandard, vCalAddress, vText
from icalendar import Event as VEvent
from icalendar.prop import vDuration

from events_app.checkin_codes import format_checkin_code
from events_app.db import PARIS, utcnow
from events_app.events import html_to_text
from events_app.models import Event, Registration
from events_app.search import SearchQuery
from events_app.settings import Settings
from events_app.vocab import EVENT_TYPES, FORMATS, REGISTRATION_STATUSES, SECTORS

PRODID = "-//Evenements emploi//events-app//FR"
DEFAULT_NAME = "Événements emploi"
# How often calendar apps should poll a feed (RFC 7986 REFRESH-INTERVAL, X-PUBLISHED-TTL).
REFRESH_INTERVAL = timedelta(hours=1)
NO_REPLY = "no-reply@{host}"

ICS_STATUS = {"scheduled": "CONFIRMED", "cancelled": "CANCELLED", "postponed": "TENTATIVE"}
SUMMARY_PREFIX = {"cancelled": "[Annulé] ", "postponed": "[Reporté] "}
PARTSTAT = {"waitlisted": "TENTATIVE", "cancelled": "DECLINED"}

PERSONAL_NAME = "Mes événements emploi"
# An event of the personal feed that only matches the preferences: not a registration.
SUGGESTION_PREFIX = "Suggestion : "
REGISTRATION_PREFIX = {"waitlisted": "[Liste d'attente] ", "cancelled": "[Inscription annulée] "}


# --- the personal feed of a seeker ------------------------------------------------------------

# An event of a personal feed, with the person's registration to it (None: it matches their
# preferences only).
PersonalEntry = tuple[Event, Registration | None]


def feed_name(query: SearchQuery, *, agency_name: str | None = None) -> str:
    """A short French name for a feed, from its filters (what the calendar app shows). The
    agency is named by its display name when given (a slug means nothing to a person)."""
    parts: list[str] = []
    if query.q:
        parts.append(f"« {query.q} »")
    parts.extend(EVENT_TYPES.get(code, code) for code in query.types)
    # The first part of a sector's label: "Agriculture et pêche", not its whole list.
    sectors = [SECTORS.get(code, code).split(",")[0] for code in query.sectors]
    parts.extend(sectors)
    parts.extend(FORMATS.get(code, code).lower() for code in query.formats)
    if query.near:
        parts.append(f"près de {query.near} ({query.radius_km:g} km)")
    if query.agency:
        parts.append(agency_name or query.agency)
    if query.available:
        parts.append("places disponibles")
    if not parts:
        return DEFAULT_NAME
    name = f"{DEFAULT_NAME} : {' · '.join(parts)}"
    return name if len(name) <= 120 else name[:119] + "…"


def subscribe_links(feed_url: str, *, name: str = DEFAULT_NAME) -> dict[str, str]:
    """Links to subscribe to a feed: `webcal` (Apple Calendar, Thunderbird, Outlook desktop),
    `google`, `outlook` (Outlook.com / Microsoft 365 on the web) and a plain `download`."""
    parts = urlsplit(feed_url)
    webcal = urlunsplit(("webcal", *parts[1:]))
    return {
        "webcal": webcal,
        "google": "https://calendar.google.com/calendar/r?cid=" + quote(webcal, safe=""),
        "outlook": "https://outlook.live.com/calendar/0/addfromweb?url="
        + quote(feed_url, safe="")
        + "&name="
        + quote(name, safe=""),
        "download": feed_url,
    }


# --- time zones ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _ZoneRule:
    """A zone as a VTIMEZONE can state it: a fixed offset, or the EU summer-time rule."""

    standard: timedelta
    standard_name: str
    daylight: timedelta | None = None
    daylight_name: str | None = None


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def _last_sunday(year: int, month: int) -> date:
    last = add_months(date(year, month, 1), 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def _offset(zone: tzinfo, moment: datetime) -> timedelta:
    return moment.astimezone(zone).utcoffset() or timedelta(0)


@functools.lru_cache(maxsize=64)
def _zone_rule(tzid: str, years: tuple[int, ...]) -> _ZoneRule | None:
    """The rule of a zone over the given years, or None when it is neither fixed nor EU-style
    (its events are then written in UTC)."""
    try:
        zone = ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    rules: set[_ZoneRule] = set()
    for year in years:
        winter = datetime(year, 1, 15, 12, tzinfo=UTC)
        summer = datetime(year, 7, 15, 12, tzinfo=UTC)
        std, dst = _offset(zone, winter), _offset(zone, summer)
        std_name = winter.astimezone(zone).tzname() or "STD"
        if std == dst:
            # Fixed all year round only if no transition happens in between either.
            checks = [datetime(year, month, 1, tzinfo=UTC) for month in range(1, 13)]
            if any(_offset(zone, moment) != std for moment in checks):
                return None
            rules.add(_ZoneRule(std, std_name))
            continue
        # EU rule: summer time from the last Sunday of March to the last Sunday of October,
        # both changes at 01:00 UTC.
        spring = datetime.combine(_last_sunday(year, 3), datetime.min.time(), UTC) + timedelta(
            hours=1
        )
        autumn = datetime.combine(_last_sunday(year, 10), datetime.min.time(), UTC) + timedelta(
            hours=1
        )
        second = timedelta(seconds=1)
        if not (
            _offset(zone, spring - second) == std
            and _offset(zone, spring) == dst
            and _offset(zone, autumn - second) == dst
            and _offset(zone, autumn) == std
        ):
            return None
        rules.add(_ZoneRule(std, std_name, dst, summer.astimezone(zone).tzname() or "DST"))
    return rules.pop() if len(rules) == 1 else None


def _observance(
    kind: type[TimezoneStandard] | type[TimezoneDaylight],
    start: datetime,
    offset_from: timedelta,
    offset_to: timedelta,
    name: str,
    month: int | None,
) -> TimezoneStandard | TimezoneDaylight:
    observance = kind()
    observance.add("DTSTART", start)
    observance.add("TZOFFSETFROM", offset_from)
    observance.add("TZOFFSETTO", offset_to)
    observance.add("TZNAME", name)
    if month is not None:
        observance.add("RRULE", {"FREQ": "YEARLY", "BYMONTH": month, "BYDAY": "-1SU"})
    return observance


def build_vtimezone(tzid: str, rule: _ZoneRule) -> Timezone:
    """A rule-based VTIMEZONE (no RDATE list), which every client reads the same way."""
    component = Timezone()
    component.add("TZID", tzid)
    component.add("X-LIC-LOCATION", tzid)
    if rule.daylight is None or rule.daylight_name is None:
        component.add_component(
            _observance(
                TimezoneStandard,
                datetime(1970, 1, 1),  # noqa: DTZ001 - a VTIMEZONE onset is local time
                rule.standard,
                rule.standard,
                rule.standard_name,
                None,
            )
        )
        return component
    # Each onset is the local time, in the offset in force until then, of 01:00 UTC.
    utc_change = timedelta(hours=1)
    spring = datetime.combine(_last_sunday(1970, 3), datetime.min.time()) + utc_change
    autumn = datetime.combine(_last_sunday(1970, 10), datetime.min.time()) + utc_change
    component.add_component(
        _observance(
            TimezoneDaylight,
            spring + rule.standard,
            rule.standard,
            rule.daylight,
            rule.daylight_name,
            3,
        )
    )
    component.add_component(
        _observance(
            TimezoneStandard,
            autumn + rule.daylight,
            rule.daylight,
            rule.standard,
            rule.standard_name,
            10,
        )
    )
    return component


class _Zones:
    """Which events are written in their own zone (with a VTIMEZONE) and which in UTC."""

    def __init__(self, events: Sequence[Event]) -> None:
        years: dict[str, set[int]] = {}
        for event in events:
            tzid = event.timezone or "Europe/Paris"
            years.setdefault(tzid, set()).update(
                {event.starts_at.year, event.ends_at.year, event.starts_at.year + 1}
            )
        self.rules: dict[str, _ZoneRule] = {}
        for tzid, zone_years in sorted(years.items()):
            rule = _zone_rule(tzid, tuple(sorted(zone_years)))
            if rule is not None:
                self.rules[tzid] = rule

    def local(self, moment: datetime, tzid: str) -> datetime:
        if tzid in self.rules:
            return moment.astimezone(ZoneInfo(tzid))
        return moment.astimezone(UTC)

    def components(self) -> list[Timezone]:
        return [build_vtimezone(tzid, rule) for tzid, rule in self.rules.items()]


# --- documents -----------------------------------------------------------------------------


def event_uid(event_id: int, settings: Settings) -> str:
    return f"event-{event_id}@{settings.host}"


def event_url(event_id: int, settings: Settings) -> str:
    return f"{settings.base_url}/evenements/{event_id}"


def _sender_address(settings: Settings) -> str:
    address = parseaddr(settings.mail_from)[1]
    return address if "@" in address else NO_REPLY.format(host=settings.host)


def _organizer(event: Event, settings: Settings) -> vCalAddress:
    organizer = vCalAddress(f"mailto:{_sender_address(settings)}")
    organizer.params["CN"] = event.agency.name
    return organizer


def _location(event: Event) -> str | None:
    if event.format == "online":
        return event.online_url
    city = " ".join(part for part in (event.venue_postal_code, event.venue_city) if part)
    parts = [part for part in (event.venue_name, event.venue_address, city) if part]
    return ", ".join(parts) or event.online_url


def _description(event: Event, settings: Settings, lead: Sequence[str] = ()) -> str:
    blocks: list[str] = []
    if event.status == "cancelled":
        blocks.append("Cet événement est annulé.")
        if event.cancellation_message:
            blocks.append(event.cancellation_message.strip())
    elif event.status == "postponed":
        blocks.append("Cet événement est reporté.")
    blocks.extend(lead)
    text = html_to_text(event.description_html or "")
    if text:
        blocks.append(text)
    if event.online_url and event.format in ("online", "hybrid"):
        blocks.append(f"Lien de connexion : {event.online_url}")
    if event.accessibility_notes:
        blocks.append(f"Accessibilité : {event.accessibility_notes.strip()}")
    blocks.append(event_url(event.id, settings))
    return "\n\n".join(blocks)


def _vevent(
    event: Event,
    settings: Settings,
    zones: _Zones,
    *,
    dtstamp: datetime,
    sequence: int,
    status: str | None,
    last_modified: datetime | None = None,
    summary_prefix: str | None = None,
    lead: Sequence[str] = (),
    private: bool = False,
    transparent: bool = False,
) -> VEvent:
    tzid = event.timezone or "Europe/Paris"
    if summary_prefix is None:
        summary_prefix = SUMMARY_PREFIX.get(event.status, "")
    vevent = VEvent()
    vevent.add("UID", event_uid(event.id, settings))
    vevent.add("DTSTAMP", dtstamp.astimezone(UTC))
    if event.all_day:
        # Whole days are dates (VALUE=DATE), the end being the day after the last one.
        try:
            zone: tzinfo = ZoneInfo(tzid)
        except (ZoneInfoNotFoundError, ValueError):
            zone = PARIS
        vevent.add("DTSTART", event.starts_at.astimezone(zone).date())
        vevent.add("DTEND", event.ends_at.astimezone(zone).date())
    else:
        vevent.add("DTSTART", zones.local(event.starts_at, tzid))
        vevent.add("DTEND", zones.local(event.ends_at, tzid))
    vevent.add("SEQUENCE", sequence)
    vevent.add("CREATED", event.created_at.astimezone(UTC))
    vevent.add("LAST-MODIFIED", (last_modified or event.updated_at).astimezone(UTC))
    if status is not None:
        vevent.add("STATUS", status)
    vevent.add("SUMMARY", summary_prefix + event.title)
    vevent.add("DESCRIPTION", _description(event, settings, lead))
    location = _location(event)
    if location:
        vevent.add("LOCATION", location)
    if event.venue_lat is not None and event.venue_lon is not None and event.format != "online":
        vevent.add("GEO", (event.venue_lat, event.venue_lon))
    vevent.add("URL", event_url(event.id, settings))
    categories = [EVENT_TYPES.get(event.type, event.type)]
    categories += [SECTORS.get(code, code) for code in event.sectors]
    vevent.add("CATEGORIES", categories)
    vevent.add("ORGANIZER", _organizer(event, settings))
    vevent.add("CLASS", "PRIVATE" if private else "PUBLIC")
    vevent.add("TRANSP", "TRANSPARENT" if transparent else "OPAQUE")
    return vevent


def _calendar(
    settings: Settings, *, name: str, method: str, zones: _Zones, url: str | None = None
) -> Calendar:
    calendar = Calendar()
    calendar.add("VERSION", "2.0")
    calendar.add("PRODID", PRODID)
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", method)
    name = display_name(name)
    # vText, or icalendar would not escape NAME, a property it does not know.
    calendar.add("NAME", vText(name))
    calendar.add("X-WR-CALNAME", vText(name))
    calendar.add("REFRESH-INTERVAL", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    calendar.add("X-PUBLISHED-TTL", vDuration(REFRESH_INTERVAL))
    if url is not None:
        calendar.add("URL", url)
        calendar.add("SOURCE", url, parameters={"VALUE": "URI"})
    for component in zones.components():
        calendar.add_component(component)
    return calendar


def display_name(name: str) -> str:
    """A calendar name without the characters that TEXT escapes: icalendar, vobject and ical.js
    all read NAME and X-WR-CALNAME raw (as an unknown type), so `\\,` would show as is."""
    cleaned = " ".join(name.replace(",", " ").replace(";", " ").replace("\\", " ").split())
    return cleaned or DEFAULT_NAME


def _feed_vevent(event: Event, settings: Settings, zones: _Zones) -> VEvent:
    # DTSTAMP is the last change, not "now", so that unchanged data renders to the same bytes.
    return _vevent(
        event,
        settings,
        zones,
        dtstamp=event.updated_at,
        sequence=event.revision,
        status=ICS_STATUS.get(event.status, "CONFIRMED"),
    )


def event_ics(event: Event, settings: Settings) -> bytes:
    """One event (METHOD:PUBLISH). The event must have `agency` and `sector_rows` loaded."""
    zones = _Zones([event])
    calendar = _calendar(settings, name=event.title, method="PUBLISH", zones=zones)
    calendar.add_component(_feed_vevent(event, settings, zones))
    return bytes(calendar.to_ical())


def feed_ics(
    events: Sequence[Event], settings: Settings, *, name: str, url: str | None = None
) -> bytes:
    """A subscription feed (METHOD:PUBLISH); cancelled events stay, with STATUS:CANCELLED."""
    zones = _Zones(events)
    calendar = _calendar(settings, name=name, method="PUBLISH", zones=zones, url=url)
    for event in events:
        calendar.add_component(_feed_vevent(event, settings, zones))
    return bytes(calendar.to_ical())


def invite_ics(
    event: Event,
    registration: Registration,
    settings: Settings,
    *,
    method: Literal["REQUEST", "CANCEL"],
) -> bytes:
    """The invitation attached to a registration's emails (iTIP, RFC 5546).

    REQUEST adds (or updates) the event in the person's calendar; its SEQUENCE is the event's
    revision, so a changed event replaces the old copy. CANCEL removes it: STATUS:CANCELLED and
    a SEQUENCE above the event's, as clients ignore a cancellation that is not newer. The UID
    is the feeds' one, so the same event is never shown twice.
    """
    zones = _Zones([event])
    calendar = _calendar(settings, name=event.title, method=method, zones=zones)
    cancel = method == "CANCEL"
    lead: list[str] = []
    if not cancel and registration.status == "confirmed" and registration.checkin_code:
        # The code in words, for the day: what staff type when the QR code cannot be read.
        lead.append(
            f"Votre code d'entrée\u00a0: {format_checkin_code(registration.checkin_code)} "
            f"(son QR code est sur la page de votre inscription)."
        )
    vevent = _vevent(
        event,
        settings,
        zones,
        dtstamp=utcnow(),
        sequence=event.revision + 1 if cancel else event.revision,
        status="CANCELLED" if cancel else ICS_STATUS.get(event.status, "CONFIRMED"),
        lead=lead,
    )
    attendee = vCalAddress(f"mailto:{registration.email}")
    attendee.params["CN"] = f"{registration.first_name} {registration.last_name}".strip()
    attendee.params["CUTYPE"] = "INDIVIDUAL"
    attendee.params["ROLE"] = "REQ-PARTICIPANT"
    attendee.params["PARTSTAT"] = PARTSTAT.get(registration.status, "ACCEPTED")
    attendee.params["RSVP"] = "FALSE"
    vevent.add("ATTENDEE", attendee)
    calendar.add_component(vevent)
    return bytes(calendar.to_ical())


def personal_status(event: Event, registration: Registration | None) -> str:
    """STATUS of an event for one person: CANCELLED when the event or their registration is
    cancelled, TENTATIVE while they wait for a seat (or the event is postponed), else the
    event's own."""
    if event.status == "cancelled":
        return "CANCELLED"
    if registration is not None and registration.status == "cancelled":
        return "CANCELLED"
    if registration is not None and registration.status == "waitlisted":
        return "TENTATIVE"
    return ICS_STATUS.get(event.status, "CONFIRMED")


def _personal_vevent(
    event: Event, registration: Registration | None, settings: Settings, zones: _Zones
) -> VEvent:
    prefix = SUMMARY_PREFIX.get(event.status, "")
    if registration is None:
        # A suggestion, not a commitment: named so, it does not make the person busy, and it
        # has no STATUS:CONFIRMED (nothing is confirmed for them); a cancelled or postponed
        # event still says so.
        status = personal_status(event, None)
        return _vevent(
            event,
            settings,
            zones,
            dtstamp=event.updated_at,
            sequence=event.revision,
            status=None if status == "CONFIRMED" else status,
            summary_prefix=SUGGESTION_PREFIX + prefix,
            private=True,
            transparent=True,
        )
    cancelled = registration.status == "cancelled"
    if event.status != "cancelled":
        prefix += REGISTRATION_PREFIX.get(registration.status, "")
    label = REGISTRATION_STATUSES.get(registration.status, registration.status)
    # The last change of the event or of the registration, whichever is later: the bytes still
    # depend on the data only.
    changed = max(event.updated_at, registration.updated_at)
    return _vevent(
        event,
        settings,
        zones,
        dtstamp=changed,
        # As the CANCEL invitation of the registration: above the event's revision, so a
        # calendar that merged the invitation keeps the cancellation.
        sequence=event.revision + 1 if cancelled else event.revision,
        status=personal_status(event, registration),
        last_modified=changed,
        summary_prefix=prefix,
        lead=[
            f"Votre inscription : {label}.",
            f"Mes inscriptions : {settings.base_url}/compte",
        ],
        private=True,
        transparent=cancelled,
    )


def personal_ics(
    entries: Sequence[PersonalEntry], settings: Settings, *, name: str = PERSONAL_NAME
) -> bytes:
    """A seeker's personal feed (METHOD:PUBLISH) from personal_feed_events(). The feed's own
    URL is left out: it holds the secret, and a downloaded file may be passed around."""
    zones = _Zones([event for event, _ in entries])
    calendar = _calendar(settings, name=name, method="PUBLISH", zones=zones)
    for event, registration in entries:
        calendar.add_component(_personal_vevent(event, registration, settings, zones))
    return bytes(calendar.to_ical())


# --- "add to my calendar" links of the event page -------------------------------------------

# Calendar sites take the whole event in the URL: the description is cut to keep it short.
ADD_LINK_DESCRIPTION_CHARS = 1_000


def add_to_calendar_links(event: Event, settings: Settings) -> dict[str, str]:
    """Links that open the event in a calendar site, ready to save: `google` (Google Calendar's
    event template) and `outlook` (Outlook.com / Microsoft 365 compose page), plus `ics`, the
    event's own file. Times are sent in UTC, which both sites convert to the person's zone.

    The online link is never put in them: it is sent to registrants only."""
    from urllib.parse import urlencode

    text = html_to_text(event.description_html or "")
    if len(text) > ADD_LINK_DESCRIPTION_CHARS:
        text = text[: ADD_LINK_DESCRIPTION_CHARS - 1].rstrip() + "…"
    page = event_url(event.id, settings)
    details = f"{text}\n\n{page}" if text else page
    location = "En ligne" if event.format == "online" else _location(event) or ""
    if event.format == "hybrid" and location:
        location += " (ou en ligne)"
    starts, ends = event.starts_at.astimezone(UTC), event.ends_at.astimezone(UTC)
    google = {
        "action": "TEMPLATE",
        "text": event.title,
        "dates": f"{starts:%Y%m%dT%H%M%SZ}/{ends:%Y%m%dT%H%M%SZ}",
        "details": details,
        "location": location,
    }
    outlook = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": event.title,
        "startdt": f"{starts:%Y-%m-%dT%H:%M:%SZ}",
        "enddt": f"{ends:%Y-%m-%dT%H:%M:%SZ}",
        "body": details,
        "location": location,
    }
    return {
        "google": "https://calendar.google.com/calendar/render?"
        + urlencode(google, quote_via=quote),
        "outlook": "https://outlook.live.com/calendar/0/deeplink/compose?"
        + urlencode(outlook, quote_via=quote),
        "ics": f"{settings.base_url}/events/{event.id}.ics",
    }
