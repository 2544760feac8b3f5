"""iCalendar feeds ("ics"): Google, Outlook, Exchange, Apple, Thunderbird exports and the like.

Reading: the document's encoding comes from its BOM (UTF-8, UTF-16, UTF-32), else UTF-8, else
Windows-1252. The `icalendar` library parses it (VTIMEZONEs included). A document it refuses is
retried once after dropping malformed lines and adding a missing END:VCALENDAR, then once more
without its VTIMEZONEs; only then is it reported as unreadable (a single RowError on line 0).

Time zones: a TZID is an IANA name, else the file's own VTIMEZONE of that TZID, else a Windows
zone or an Exchange label ("(UTC-05:00) Eastern Time (US & Canada)"), see importers.ics_zones.
An unknown TZID, and a floating time, are read in the calendar's X-WR-TIMEZONE when it names a
real zone, else Europe/Paris; an unknown TZID is warned about. The event's `timezone` is the
IANA name found, else that default.

Mapping: SUMMARY → title (required); DESCRIPTION, or X-ALT-DESC in HTML → description; LOCATION →
venue ("name, street, 75011 Paris" is split; a URL in it is the online link; "En ligne",
"Teams", "Zoom"… with no address make the event online); GEO → coordinates; CONFERENCE,
X-GOOGLE-CONFERENCE, a Teams link or a meeting URL in the description → online link; CATEGORIES
matching a type label or France Travail number → type, matching a sector → sectors; URL →
source_url; ORGANIZER → organiser; STATUS:CANCELLED (or METHOD:CANCEL) → cancelled. A DATE start
is an all-day event (`all_day`): local midnight to the midnight after DTEND's eve (DTEND equal to
DTSTART, or none, is one day). A timed event with no DTEND, DURATION, or an end equal to its
start, lasts the default two hours. One UID given twice: the copy with the highest SEQUENCE,
then the latest DTSTAMP or LAST-MODIFIED, is kept, with a warning.

Recurring events (RRULE, RDATE, EXDATE, RECURRENCE-ID overrides) are expanded by
`recurring-ical-events` (importers.ics_recurrence) over a bounded horizon: occurrences starting
from 30 days before `now` to 365 days after it, at most 500 per series, within a work budget per
feed (a series past it is a RowError). An empty `RRULE:`, or a rule matching no date, is
ignored with a warning. Each occurrence's external id is ``{UID}/{original start in UTC, ISO}``:
an override keeps the id of the occurrence it replaces. Non-recurring events are kept whatever
their date. A calendar with events that yields none says why (a `Notice`).

`line` is the physical line of the event's BEGIN:VEVENT; when the library's view of the
document does not match its lines (a repaired document, lone CR line ends), it is the
event's 1-based ordinal among the VEVENTs instead.
"""

from __future__ import annotations

import re
import warnings as warnings_module
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo

from icalendar import Component

from importers.base import (
    DEFAULT_DURATION,
    DEFAULT_TIMEZONE,
    MAX_ADDRESS,
    MAX_TITLE,
    MAX_VENUE_TEXT,
    FieldError,
    ImportedEvent,
    ImportedVenue,
    Notice,
    RowError,
    as_html,
    clean_text,
    clip,
    decode_bytes,
    derived_id,
    get_zone,
    http_url,
    infer_format,
    localise,
    lookup_sector,
    lookup_type,
    parse_coordinates,
    parse_place_text,
    seal,
    stable_id,
)
from importers.ics_online import find_online_url, online_place
from importers.ics_recurrence import Budget, TooCostly, expand
from importers.ics_zones import ZoneResolver

HORIZON_PAST: Final = timedelta(days=30)
HORIZON_FUTURE: Final = timedelta(days=365)
MAX_OCCURRENCES: Final = 500

_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_CONTENT_LINE = re.compile(r"^[A-Za-z0-9-]+(?:;[^:]*)?:")
_VTIMEZONE = re.compile(r"^BEGIN:VTIMEZONE\s*$.*?^END:VTIMEZONE\s*$", re.I | re.M | re.S)
_DATE_PROPERTIES: Final = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE")


class _Unreadable(Exception):
    pass


class _Rejected(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(errors[0].reason if errors else "")
        self.errors = errors


@dataclass
class _Context:
    """What a VEVENT inherits from its calendar."""

    zone: tzinfo  # for floating times, unknown TZIDs and all-day events
    zone_name: str
    cancelled: bool
    notes: tuple[str, ...]  # warnings about the whole document
    zones: ZoneResolver


@dataclass
class _Entry:
    line: int
    component: Any  # an icalendar Event (typed loosely: its properties are dynamic)
    context: _Context


@dataclass
class _Group:
    uid: str | None
    master: _Entry | None = None
    overrides: list[_Entry] = field(default_factory=list)
    duplicates: list[_Entry] = field(default_factory=list)


@dataclass(frozen=True)
class _Event:
    """One VEVENT read, before expansion."""

    line: int
    uid: str | None
    component: Any
    template: ImportedEvent  # its own dates, external_id unset
    all_day: bool
    zone: tzinfo  # the zone its times were read in
    recurrence_id: date | datetime | None
    sequence: int

    @property
    def recurring(self) -> bool:
        return self.component.get("RRULE") is not None or bool(self.component.get("RDATE"))


@dataclass
class _Outcome:
    """What became of a calendar's VEVENTs, to say why none was imported."""

    vevents: int = 0
    imported: int = 0
    rejected: int = 0
    costly: int = 0
    empty_series: int = 0
    limited: int = 0


def parse(
    data: bytes, *, now: datetime | None = None
) -> Iterator[ImportedEvent | RowError | Notice]:
    """Events (recurrences expanded around `now`) and rejected VEVENTs; never raises."""
    moment = datetime.now(UTC) if now is None else localise(now, UTC)
    window = (moment - HORIZON_PAST, moment + HORIZON_FUTURE)
    try:
        with warnings_module.catch_warnings():
            # icalendar warns about guessed TZIDs and the like; the guesses are what we want.
            warnings_module.simplefilter("ignore")
            groups = _groups(data)
    except _Unreadable as exc:
        yield RowError(0, None, str(exc))
        return
    except Exception as exc:  # a parser never raises
        yield RowError(0, None, f"calendrier illisible : {exc}")
        return
    seen: dict[str, int] = {}
    budget = Budget()
    outcome = _Outcome()
    for group in groups:
        outcome.vevents += 1
        # Computed whole before yielding: the warnings filter must not outlive this block.
        with warnings_module.catch_warnings():
            warnings_module.simplefilter("ignore")
            items = _safe_expand(group, window, budget, outcome)
        for item in items:
            if isinstance(item, ImportedEvent):
                if item.external_id in seen:
                    yield RowError(
                        item.line,
                        "external_id",
                        f"UID « {item.external_id} » en double (déjà vu ligne "
                        f"{seen[item.external_id]})",
                    )
                    continue
                seen[item.external_id] = item.line
                outcome.imported += 1
            yield item
    if outcome.vevents and not outcome.imported:
        yield Notice(_why_nothing(outcome, window))


def _why_nothing(outcome: _Outcome, window: tuple[datetime, datetime]) -> str:
    reasons = []
    if outcome.empty_series:
        low, high = (moment.astimezone(UTC).strftime("%d/%m/%Y") for moment in window)
        reasons.append(
            f"{outcome.empty_series} série(s) sans occurrence entre le {low} et le {high}"
        )
    if outcome.costly:
        reasons.append(f"{outcome.costly} série(s) trop coûteuse(s) à calculer")
    if outcome.rejected:
        reasons.append(f"{outcome.rejected} événement(s) rejeté(s)")
    if not reasons:
        reasons.append("aucun événement lisible")
    return f"Aucun événement importé de ce calendrier : {', '.join(reasons)}."


# --- reading the document ------------------------------------------------------------------------


def _repair(text: str) -> tuple[str, list[str]]:
    """Drop lines that are no content line, close an unclosed VCALENDAR."""
    notes: list[str] = []
    kept: list[str] = []
    dropped = 0
    for line in re.split(r"\r\n|\n|\r", text):
        if not line.strip() or line[0] in " \t" or _CONTENT_LINE.match(line):
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        notes.append(f"{dropped} ligne(s) mal formée(s) ignorée(s) dans le calendrier")
    repaired = "\r\n".join(kept)
    upper = repaired.upper()
    if "BEGIN:VCALENDAR" in upper and "END:VCALENDAR" not in upper:
        repaired += "\r\nEND:VCALENDAR\r\n"
        notes.append("END:VCALENDAR manquant, calendrier refermé")
    return repaired, notes


def _read(text: str) -> tuple[list[Component], list[str]]:
    """Components of the document and notes about repairs; raises _Unreadable."""
    attempts: list[tuple[str, list[str]]] = [(text, [])]
    repaired, notes = _repair(text)
    if notes:
        attempts.append((repaired, notes))
    without_zones = _VTIMEZONE.sub("", repaired)
    if without_zones != repaired:
        attempts.append(
            (without_zones, [*notes, "définitions de fuseaux (VTIMEZONE) illisibles ignorées"])
        )
    error = "aucun composant iCalendar (BEGIN:VCALENDAR … END:VCALENDAR)"
    for candidate, candidate_notes in attempts:
        try:
            components = Component.from_ical(candidate, multiple=True)
        except Exception as exc:  # whatever the library raises on bad input
            error = str(exc) or type(exc).__name__
            continue
        if any(c.name in ("VCALENDAR", "VEVENT") or c.walk("VEVENT") for c in components):
            return components, candidate_notes
    raise _Unreadable(f"calendrier illisible : {error}")


def _begin_lines(text: str) -> list[int]:
    return [
        number
        for number, line in enumerate(text.split("\n"), start=1)
        if line.strip().upper() == "BEGIN:VEVENT"
    ]


def _context(calendar: Component, notes: list[str]) -> _Context:
    zone: tzinfo = ZoneInfo(DEFAULT_TIMEZONE)
    zone_name = DEFAULT_TIMEZONE
    extra = list(notes)
    declared = clean_text(str(calendar.get("X-WR-TIMEZONE") or ""))
    if declared:
        found = get_zone(declared)
        if found is None:
            extra.append(f"X-WR-TIMEZONE « {declared} » inconnu, {DEFAULT_TIMEZONE} utilisé")
        else:
            zone, zone_name = found, declared
    method = str(calendar.get("METHOD") or "").strip().upper()
    definitions = {}
    for definition in calendar.walk("VTIMEZONE"):
        tzid = str(definition.get("TZID") or "")
        if tzid:
            definitions[tzid] = definition
    return _Context(zone, zone_name, method == "CANCEL", tuple(extra), ZoneResolver(definitions))


def _groups(data: bytes) -> list[_Group]:
    text = decode_bytes(data)
    if not text.strip():
        raise _Unreadable("calendrier vide")
    components, notes = _read(text)
    entries: list[tuple[Component, _Context]] = []
    for component in components:
        context = _context(component, notes)
        entries.extend((event, context) for event in component.walk("VEVENT"))
    lines = _begin_lines(text)
    if len(lines) != len(entries):
        lines = list(range(1, len(entries) + 1))
    groups: dict[str, _Group] = {}
    ordered: list[_Group] = []
    for line, (component, context) in zip(lines, entries, strict=True):
        entry = _Entry(line, component, context)
        uid = clean_text(str(component.get("UID") or ""))
        if uid is None:
            ordered.append(_Group(uid=None, master=entry))
            continue
        group = groups.get(uid)
        if group is None:
            group = groups[uid] = _Group(uid=uid)
            ordered.append(group)
        if component.get("RECURRENCE-ID") is not None:
            group.overrides.append(entry)
        elif group.master is None:
            group.master = entry
        elif _version(component) > _version(group.master.component):
            group.duplicates.append(group.master)
            group.master = entry
        else:
            group.duplicates.append(entry)
    return ordered


def _version(component: Any) -> tuple[int, datetime, datetime]:
    """How recent a copy of an event is: SEQUENCE, then DTSTAMP, then LAST-MODIFIED."""
    try:
        sequence = int(_first(component.get("SEQUENCE")) or 0)
    except (TypeError, ValueError):
        sequence = 0
    stamps = []
    for name in ("DTSTAMP", "LAST-MODIFIED"):
        try:
            value = _first(component.get(name)).dt
            stamps.append(_as_aware(value, UTC).astimezone(UTC))
        except Exception:  # absent or unreadable: the oldest
            stamps.append(datetime.min.replace(tzinfo=UTC))
    return sequence, stamps[0], stamps[1]


# --- reading one VEVENT --------------------------------------------------------------------------


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _text(component: Any, name: str) -> str | None:
    value = _first(component.get(name))
    return None if value is None else clean_text(str(value))


def _raw(prop: Any) -> str:
    try:
        raw = prop.to_ical()
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    except Exception:  # a broken property may not even serialise
        return "?"


def _moment(component: Any, name: str, field_name: str) -> tuple[Any, date | datetime]:
    prop = _first(component.get(name))
    try:
        value = prop.dt
    except Exception:
        raise FieldError(field_name, f"{name} illisible : « {_raw(prop)} »") from None
    if isinstance(value, tuple):  # a PERIOD: its start
        value = value[0]
    if not isinstance(value, date):
        raise FieldError(field_name, f"{name} illisible : « {_raw(prop)} »")
    return prop, value


def _as_aware(value: date | datetime, zone: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return localise(value, zone)
    return localise(datetime.combine(value, time()), zone)


def _fix_times(component: Any, context: _Context, warnings: list[str]) -> None:
    """Give every time of the VEVENT the zone its TZID names, or the calendar's zone.

    icalendar leaves unknown TZIDs floating and shares VTIMEZONEs between documents by TZID;
    the times are set again from their wall clock so that the expansion sees the same zones.
    """
    # Floating values beside a zoned DTSTART are in its zone (as the expansion reads them).
    floating_zone = context.zone
    for name in _DATE_PROPERTIES:
        for prop in _as_list(component.get(name)):
            tzid = str(getattr(prop, "params", {}).get("TZID") or "")
            try:
                values = getattr(prop, "dts", None) or [prop]
                moments = [(value, value.dt) for value in values]
            except Exception:  # noqa: S112 - unreadable: reported where the value is read
                continue
            for value, moment in moments:
                if isinstance(moment, tuple):  # a PERIOD
                    continue
                if not isinstance(moment, datetime):
                    continue
                if tzid:
                    found = context.zones.resolve(tzid)
                    if found is None:
                        warnings.append(
                            f"fuseau « {tzid} » inconnu, heure lue en {context.zone_name}"
                        )
                    zone = found[0] if found else context.zone
                    value.dt = localise(moment.replace(tzinfo=None), zone)
                elif moment.utcoffset() is None:
                    value.dt = localise(moment, floating_zone)
                if name == "DTSTART" and value.dt.tzinfo is not None:
                    floating_zone = value.dt.tzinfo


def _zone_name(component: Any, value: datetime, context: _Context) -> str:
    tzid = str(getattr(_first(component.get("DTSTART")), "params", {}).get("TZID") or "")
    if tzid:
        found = context.zones.resolve(tzid)
        if found is not None and found[1]:
            return found[1]
    key = getattr(value.tzinfo, "key", None)
    if isinstance(key, str) and key not in ("UTC", "Etc/UTC") and get_zone(key):
        return key
    return context.zone_name


def _span(
    component: Any, context: _Context, warnings: list[str]
) -> tuple[datetime, datetime, bool, tzinfo, str]:
    """(start, end, all day, zone for recurrences, timezone name); raises FieldError."""
    if component.get("DTSTART") is None:
        raise FieldError("starts_at", "DTSTART absent : l'événement n'a pas de date de début")
    if isinstance(component.get("DTSTART"), list):
        warnings.append("plusieurs DTSTART, le premier est retenu")
    _, value = _moment(component, "DTSTART", "starts_at")
    if isinstance(value, datetime):
        all_day = False
        start = localise(value, context.zone)
        zone = start.tzinfo or context.zone
        zone_name = _zone_name(component, start, context)
    else:
        all_day, zone, zone_name = True, context.zone, context.zone_name
        start = _as_aware(value, zone)
    end: datetime | None = None
    if component.get("DTEND") is not None:
        _, end_value = _moment(component, "DTEND", "ends_at")
        if isinstance(end_value, datetime) == (not all_day):
            end = _as_aware(end_value, zone)
        else:
            warnings.append("DTEND d'un autre type que DTSTART, ignoré")
    elif component.get("DURATION") is not None:
        duration_prop = _first(component.get("DURATION"))
        try:
            duration = duration_prop.dt
        except Exception:
            raise FieldError("ends_at", f"DURATION illisible : « {_raw(duration_prop)} »") from None
        if not isinstance(duration, timedelta):
            raise FieldError("ends_at", f"DURATION illisible : « {_raw(duration_prop)} »")
        end = _wall_add(start, duration, zone) if all_day else start + duration
    if end is not None and end < start:
        raise FieldError("ends_at", "la fin (DTEND) précède le début (DTSTART)")
    if end is None or end == start:
        # RFC 5545: an all-day event without a later end lasts its day; a timed one without
        # a duration gets ours.
        end = _wall_add(start, timedelta(days=1), zone) if all_day else start + DEFAULT_DURATION
    return start, end, all_day, zone, zone_name


def _wall_add(moment: datetime, delta: timedelta, zone: tzinfo) -> datetime:
    """Add a nominal duration on the wall clock (a day stays a day across DST)."""
    local = moment.astimezone(zone).replace(tzinfo=None)
    return localise(local + delta, zone)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _categories(component: Any) -> list[str]:
    try:
        return [str(c) for c in component.categories]
    except Exception:  # categories are a bonus; a broken one is skipped
        return []


def _organiser(component: Any) -> str | None:
    organiser = _first(component.get("ORGANIZER"))
    if organiser is None:
        return None
    params = getattr(organiser, "params", {})
    name = clean_text(str(params.get("CN") or ""))
    if name:
        return name
    return clean_text(re.sub(r"^mailto:", "", str(organiser), flags=re.IGNORECASE))


def _read_event(entry: _Entry, uid: str | None) -> _Event:
    """One VEVENT as a template event plus its recurrence data; raises _Rejected."""
    component, context = entry.component, entry.context
    errors: list[FieldError] = []
    warnings: list[str] = list(context.notes)
    _fix_times(component, context, warnings)

    title = _text(component, "SUMMARY")
    if title is None:
        errors.append(FieldError("title", "SUMMARY absent : l'événement n'a pas de titre"))
    else:
        title = clip(title, MAX_TITLE, "titre", warnings)
    try:
        start, end, all_day, zone, zone_name = _span(component, context, warnings)
    except FieldError as exc:
        errors.append(exc)
    if errors:
        raise _Rejected(errors)
    assert title is not None  # noqa: S101 - errors is empty

    location = _text(component, "LOCATION")
    online_url = find_online_url(component, location)
    online = online_url is not None or online_place(location)
    if online_place(location):
        location = None
    place = parse_place_text(_URL_IN_TEXT.sub(" ", location).strip(" ,-/") if location else None)
    lat = lon = None
    geo = _first(component.get("GEO"))
    if geo is not None:
        try:
            lat, lon = parse_coordinates(geo.latitude, geo.longitude, warnings)
        except (FieldError, AttributeError, TypeError, ValueError):
            warnings.append("GEO illisible, coordonnées ignorées")
    venue = ImportedVenue(
        name=clip(place.name, MAX_VENUE_TEXT, "lieu", warnings),
        address=clip(place.address, MAX_ADDRESS, "adresse", warnings),
        postal_code=place.postal_code,
        city=clip(place.city, MAX_VENUE_TEXT, "ville", warnings),
        lat=lat,
        lon=lon,
    )

    categories = _categories(component)
    types = [t for t in map(lookup_type, categories) if t]
    sectors = sorted({s for s in map(lookup_sector, categories) if s})
    if categories and not types:
        warnings.append("aucune catégorie ne désigne un type connu, classé « Autre »")

    alt = _first(component.get("X-ALT-DESC"))
    html = None
    if alt is not None and "html" in str(getattr(alt, "params", {}).get("FMTTYPE", "")).lower():
        html = clean_text(str(alt), multiline=True)
    description = html or as_html(_text_multiline(component, "DESCRIPTION"))

    status = "scheduled"
    if context.cancelled or (_text(component, "STATUS") or "").upper() == "CANCELLED":
        status = "cancelled"
    try:
        sequence = int(_first(component.get("SEQUENCE")) or 0)
    except (TypeError, ValueError):
        sequence = 0

    recurrence_id = None
    if component.get("RECURRENCE-ID") is not None:
        recurrence_id = _moment(component, "RECURRENCE-ID", "starts_at")[1]

    template = ImportedEvent(
        line=entry.line,
        external_id="",
        title=title,
        description_html=description,
        type=types[0] if types else "other",
        sectors=("all",) if not sectors or "all" in sectors else tuple(sectors),
        format="online" if venue.is_empty() and online else infer_format(venue, online_url),
        starts_at=start,
        ends_at=end,
        timezone=zone_name,
        venue=venue,
        online_url=online_url,
        capacity=None,
        remote_capacity=None,
        registration_opens_at=None,
        registration_closes_at=None,
        job_offers=None,
        status=status,
        source_url=http_url(_text(component, "URL")),
        organiser=_organiser(component),
        warnings=tuple(dict.fromkeys(warnings)),
        all_day=all_day,
    )
    return _Event(
        line=entry.line,
        uid=uid,
        component=component,
        template=template,
        all_day=all_day,
        zone=zone,
        recurrence_id=recurrence_id,
        sequence=sequence,
    )


def _text_multiline(component: Any, name: str) -> str | None:
    value = _first(component.get(name))
    return None if value is None else clean_text(str(value), multiline=True)


# --- recurrences ---------------------------------------------------------------------------------


def _occurrence_id(uid: str, original: datetime) -> str:
    return stable_id(f"{uid}/{original.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}")


def _final(event: ImportedEvent, external_id: str, notes: list[str]) -> ImportedEvent:
    warnings = tuple(dict.fromkeys((*event.warnings, *notes)))
    return seal(replace(event, external_id=external_id, warnings=warnings))


def _safe_expand(
    group: _Group, window: tuple[datetime, datetime], budget: Budget, outcome: _Outcome
) -> list[ImportedEvent | RowError]:
    items: list[ImportedEvent | RowError] = []
    line = (group.master or group.overrides[0]).line
    # A lone event's id is its UID: a rejected one keeps its stored event (see importers.sync).
    single = group.master is not None and not group.overrides
    if single and group.master is not None:
        single = group.master.component.get("RRULE") is None
        single = single and group.master.component.get("RDATE") is None
    known = stable_id(group.uid) if single and group.uid else None
    try:
        items.extend(_expand(group, window, budget, outcome))
    except _Rejected as exc:
        items.extend(RowError(line, e.field, e.reason, known) for e in exc.errors)
    except FieldError as exc:
        items.append(RowError(line, exc.field, exc.reason, known))
    except TooCostly:
        outcome.costly += 1
        items.append(
            RowError(
                line,
                "RRULE",
                "récurrence trop coûteuse à calculer : la limite de calcul du calendrier est "
                "atteinte, série ignorée",
            )
        )
    except Exception as exc:  # whatever a strange event throws, the others still come through
        items.append(RowError(line, None, f"événement illisible : {exc!r}", known))
    if any(isinstance(item, RowError) for item in items):
        outcome.rejected += 1
    return items


def _read_overrides(group: _Group, uid: str) -> tuple[list[_Event], list[RowError]]:
    """The overrides readable, the latest SEQUENCE winning for one RECURRENCE-ID."""
    chosen: dict[Any, _Event] = {}
    errors: list[RowError] = []
    for entry in group.overrides:
        try:
            event = _read_event(entry, uid)
        except _Rejected as exc:
            errors.extend(RowError(entry.line, e.field, e.reason) for e in exc.errors)
            continue
        except FieldError as exc:
            errors.append(RowError(entry.line, exc.field, exc.reason))
            continue
        key = _key(event.recurrence_id, event.zone)
        if key not in chosen or event.sequence >= chosen[key].sequence:
            chosen[key] = event
    return list(chosen.values()), errors


def _key(value: date | datetime | None, zone: tzinfo) -> date | datetime | None:
    """A recurrence id comparable across zones: an instant in UTC, or a day."""
    if isinstance(value, datetime):
        return localise(value, zone).astimezone(UTC)
    return value


def _duplicates_note(group: _Group) -> list[str]:
    if not group.duplicates or group.master is None:
        return []
    lines = ", ".join(str(entry.line) for entry in group.duplicates)
    return [
        f"UID « {group.uid} » présent plusieurs fois : la version la plus récente (ligne "
        f"{group.master.line}) est retenue, ligne(s) {lines} ignorée(s)"
    ]


def _expand(
    group: _Group, window: tuple[datetime, datetime], budget: Budget, outcome: _Outcome
) -> list[ImportedEvent | RowError]:
    master = _read_event(group.master, group.uid) if group.master else None
    if group.uid is not None:
        uid = group.uid
    else:
        assert master is not None  # noqa: S101 - a group without UID is one lone VEVENT
        uid = derived_id(master.template.title, master.template.starts_at)
    overrides, errors = _read_overrides(group, uid)
    items: list[ImportedEvent | RowError] = list(errors)
    notes = _duplicates_note(group)

    def override_id(event: _Event) -> str:
        assert event.recurrence_id is not None  # noqa: S101 - overrides have one
        zone = master.zone if master else event.zone
        return _occurrence_id(uid, _as_aware(event.recurrence_id, zone))

    occurrences = None
    if master is not None and master.recurring:
        occurrences = expand(
            master.component,
            [o.component for o in overrides],
            master.template.starts_at,
            window,
            budget,
            notes,
            MAX_OCCURRENCES,
        )
    if master is None or occurrences is None:
        if master is not None:
            items.append(_final(master.template, stable_id(uid), notes))
        items.extend(_final(o.template, override_id(o), []) for o in overrides)
        return items

    by_key = {_key(o.recurrence_id, o.zone): o for o in overrides}
    length = _wall_length(master.template)
    expanded: list[ImportedEvent] = []
    for occurrence in occurrences:
        original = _first(occurrence.get("RECURRENCE-ID")).dt
        replacement = by_key.get(_key(original, master.zone))
        external_id = _occurrence_id(uid, _as_aware(original, master.zone))
        if replacement is not None:
            expanded.append(_final(replacement.template, external_id, notes))
            continue
        expanded.append(_final(_occurrence(master, occurrence, length), external_id, notes))
    if not expanded:
        outcome.empty_series += 1
    expanded.sort(key=lambda e: e.starts_at)
    if len(expanded) > MAX_OCCURRENCES:
        notes.append(f"série limitée à {MAX_OCCURRENCES} occurrences")
        expanded = [_final(e, e.external_id, notes) for e in expanded[:MAX_OCCURRENCES]]
    items.extend(expanded)
    return items


def _wall_length(event: ImportedEvent) -> timedelta:
    zone = event.starts_at.tzinfo or UTC
    start = event.starts_at.replace(tzinfo=None)
    return event.ends_at.astimezone(zone).replace(tzinfo=None) - start


def _occurrence(master: _Event, occurrence: Any, length: timedelta) -> ImportedEvent:
    """The master's fields at an occurrence's start; an RDATE period keeps its own end."""
    start_value = _first(occurrence.get("DTSTART")).dt
    starts_at = _as_aware(start_value, master.zone)
    ends_at = localise(starts_at.replace(tzinfo=None) + length, starts_at.tzinfo or master.zone)
    end_prop = _first(occurrence.get("DTEND"))
    if end_prop is not None and isinstance(start_value, datetime):
        given = _as_aware(end_prop.dt, master.zone)
        own = (
            localise(
                master.template.starts_at.replace(tzinfo=None) + length,
                master.template.starts_at.tzinfo or master.zone,
            )
            - master.template.starts_at
        )
        if given > starts_at and given - starts_at != own:
            ends_at = given
    return replace(master.template, starts_at=starts_at, ends_at=ends_at)
