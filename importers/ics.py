"""iCalendar feeds ("ics"): Google, Outlook, Thunderbird exports and whatever else produces them.

Reading: the `icalendar` library parses the document (VTIMEZONEs included). A document it
refuses is retried once after dropping malformed lines and adding a missing END:VCALENDAR, then
once more without its VTIMEZONEs (well-known TZIDs resolve without them); only then is it
reported as unreadable (a single RowError on line 0).

Mapping: SUMMARY → title (required); DESCRIPTION, or X-ALT-DESC in HTML → description; LOCATION →
venue ("name, street, 75011 Paris" is split; a URL in it is the online link); GEO → coordinates;
CONFERENCE, X-GOOGLE-CONFERENCE or a Teams link → online link; CATEGORIES matching a type label
("Job dating", "Atelier"…) or France Travail number → type, matching a sector (letter A to N,
ROME code, label) → sectors; URL → source_url; ORGANIZER → organiser; STATUS:CANCELLED (or
METHOD:CANCEL) → cancelled. A DATE start is an all-day event: local midnight to the next
midnight (or DTEND). Floating times are read in the calendar's X-WR-TIMEZONE when it names a real
zone, else Europe/Paris; the event's `timezone` is its TZID when that is an IANA (or Windows)
name, else that same default.

Recurring events (RRULE, RDATE, EXDATE, RECURRENCE-ID overrides) are expanded in the event's own
timezone, so a weekly 10:00 Europe/Paris event stays at 10:00 across DST changes, over a bounded
horizon: occurrences starting from 30 days before `now` to 365 days after it, at most 500 per
series. Each occurrence's external id is ``{UID}/{original start in UTC, ISO}``: an override
keeps the id of the occurrence it replaces. Non-recurring events are kept whatever their date.
FREQ=HOURLY and finer, and non-Gregorian RSCALE rules, are refused (RowError): no job event
recurs that way, and their expansion costs are unbounded.

`line` is the physical line of the event's BEGIN:VEVENT; when the library's view of the
document does not match its lines (a repaired document, lone CR line ends), it is the
event's 1-based ordinal among the VEVENTs instead.
"""

from __future__ import annotations

import re
import time as time_module
import warnings as warnings_module
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo

from dateutil import rrule as du  # type: ignore[import-untyped]
from icalendar import Component
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

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

HORIZON_PAST: Final = timedelta(days=30)
HORIZON_FUTURE: Final = timedelta(days=365)
MAX_OCCURRENCES: Final = 500
# Candidates walked through per series (from its DTSTART, however old) before giving up.
MAX_SCANNED: Final = 100_000
# CPU time a feed may spend expanding recurrences, all its events together: past it, the
# recurring events left are rejected with a row error saying so, so that one hostile or broken
# file (rules that never fire, each costing dateutil a search of centuries) cannot stall the
# imports of every other agency.
EXPANSION_BUDGET_SECONDS: Final = 5.0

_FREQUENCIES: Final = {
    "YEARLY": du.YEARLY,
    "MONTHLY": du.MONTHLY,
    "WEEKLY": du.WEEKLY,
    "DAILY": du.DAILY,
}
_WEEKDAYS: Final = {"MO": du.MO, "TU": du.TU, "WE": du.WE, "TH": du.TH, "FR": du.FR, "SA": du.SA}
_WEEKDAYS_ALL: Final = {**_WEEKDAYS, "SU": du.SU}
_BYDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_MONTH_DAYS: Final = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31}
_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_CONTENT_LINE = re.compile(r"^[A-Za-z0-9-]+(?:;[^:]*)?:")
_VTIMEZONE = re.compile(r"^BEGIN:VTIMEZONE\s*$.*?^END:VTIMEZONE\s*$", re.I | re.M | re.S)
_CONFERENCE_PROPERTIES: Final = (
    "X-GOOGLE-CONFERENCE",
    "X-MICROSOFT-SKYPETEAMSMEETINGURL",
    "X-MICROSOFT-ONLINEMEETINGCONFLINK",
)


class _Unreadable(Exception):
    pass


class _Rejected(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(errors[0].reason if errors else "")
        self.errors = errors


@dataclass(frozen=True)
class _Context:
    """What a VEVENT inherits from its calendar."""

    zone: tzinfo  # for floating times and all-day events
    zone_name: str
    cancelled: bool
    notes: tuple[str, ...]  # warnings about the whole document
    # The calendar's VTIMEZONEs by TZID, for times the library left naive because their
    # VTIMEZONE comes after them in the file.
    definitions: dict[str, Any] = field(default_factory=dict)

    def resolve(self, tzid: str) -> tzinfo | None:
        known = get_zone(tzid) or get_zone(WINDOWS_TO_OLSON.get(tzid))
        if known is not None:
            return known
        definition = self.definitions.get(tzid)
        if definition is None:
            return None
        try:
            made = definition.to_tz()
        except Exception:  # an unusable VTIMEZONE: the time stays floating
            return None
        return made if isinstance(made, tzinfo) else None


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
    template: ImportedEvent  # its own dates, external_id unset
    all_day: bool
    zone: tzinfo  # the zone the recurrence rules are computed in
    rrules: tuple[Any, ...]
    rdates: tuple[tuple[date | datetime, date | datetime | None], ...]
    exdates: tuple[date | datetime, ...]
    recurrence_id: date | datetime | None
    sequence: int

    @property
    def recurring(self) -> bool:
        return bool(self.rrules or self.rdates)


def parse(data: bytes, *, now: datetime | None = None) -> Iterator[ImportedEvent | RowError]:
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
    spent = 0.0
    for group in groups:
        recurring = group.master is not None and "RRULE" in group.master.component
        if recurring and spent > EXPANSION_BUDGET_SECONDS:
            assert group.master is not None  # noqa: S101 - recurring implies it
            yield RowError(
                group.master.line,
                "RRULE",
                "récurrence non développée : le calcul des récurrences de ce calendrier a "
                f"dépassé {EXPANSION_BUDGET_SECONDS:g} s",
                # No id: its occurrences are unknown, so the run stays incomplete and none of
                # the series' stored occurrences is cancelled as vanished.
            )
            continue
        started = time_module.process_time()
        # Computed whole before yielding: the warnings filter must not outlive this block.
        with warnings_module.catch_warnings():
            warnings_module.simplefilter("ignore")
            items = _safe_expand(group, window)
        spent += time_module.process_time() - started
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
            yield item


# --- reading the document ------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


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
        tzid = clean_text(str(definition.get("TZID") or ""))
        if tzid:
            definitions[tzid] = definition
    return _Context(zone, zone_name, method == "CANCEL", tuple(extra), definitions)


def _groups(data: bytes) -> list[_Group]:
    text = _decode(data)
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
        else:
            group.duplicates.append(entry)
    return ordered


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


def _zone_name(value: datetime, prop: Any, context: _Context) -> str:
    key = getattr(value.tzinfo, "key", None)
    if isinstance(key, str) and key not in ("UTC", "Etc/UTC") and get_zone(key):
        return key
    tzid = str(getattr(prop, "params", {}).get("TZID") or "")
    for candidate in (tzid, WINDOWS_TO_OLSON.get(tzid, "")):
        if candidate and candidate.upper() != "UTC" and get_zone(candidate):
            return candidate
    return context.zone_name


def _as_aware(value: date | datetime, zone: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return localise(value, zone)
    return localise(datetime.combine(value, time()), zone)


def _span(
    component: Any, context: _Context, warnings: list[str]
) -> tuple[datetime, datetime, bool, tzinfo, str]:
    """(start, end, all day, zone for recurrences, timezone name); raises FieldError."""
    if component.get("DTSTART") is None:
        raise FieldError("starts_at", "DTSTART absent : l'événement n'a pas de date de début")
    if isinstance(component.get("DTSTART"), list):
        warnings.append("plusieurs DTSTART, le premier est retenu")
    prop, value = _moment(component, "DTSTART", "starts_at")
    if isinstance(value, datetime):
        all_day = False
        floating = value.tzinfo is None or value.utcoffset() is None
        tzid = str(getattr(prop, "params", {}).get("TZID") or "")
        declared = context.resolve(tzid) if floating and tzid else None
        if declared is not None:
            value, floating = value.replace(tzinfo=declared), False
        zone = context.zone if floating else value.tzinfo
        assert zone is not None  # noqa: S101 - checked just above
        zone_name = context.zone_name if floating else _zone_name(value, prop, context)
        start = localise(value, zone)
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
    if end is None:
        end = _wall_add(start, timedelta(days=1), zone) if all_day else start + DEFAULT_DURATION
    if end < start:
        raise FieldError("ends_at", "la fin (DTEND) précède le début (DTSTART)")
    return start, end, all_day, zone, zone_name


def _wall_add(moment: datetime, delta: timedelta, zone: tzinfo) -> datetime:
    """Add a nominal duration on the wall clock (a day stays a day across DST)."""
    local = moment.astimezone(zone).replace(tzinfo=None)
    return localise(local + delta, zone)


def _online(component: Any, location: str | None) -> str | None:
    candidates: list[str] = []
    try:
        candidates.extend(str(conference.uri) for conference in component.conferences)
    except Exception:  # a malformed CONFERENCE is no reason to refuse the event
        candidates.extend(str(v) for v in _as_list(component.get("CONFERENCE")))
    for name in _CONFERENCE_PROPERTIES:
        candidates.extend(str(v) for v in _as_list(component.get(name)))
    if location:
        candidates.extend(_URL_IN_TEXT.findall(location))
    return next((url for url in map(http_url, candidates) if url), None)


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
    online_url = _online(component, location)
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
    rrules = tuple(_as_list(component.get("RRULE")))
    rdates: tuple[tuple[date | datetime, date | datetime | None], ...] = ()
    try:
        rdates = tuple(component.rdates)
    except Exception:  # an unreadable RDATE loses extra dates, not the series
        warnings.append("RDATE illisible, ignoré")
    try:
        exdates = tuple(component.exdates)
    except Exception:
        # Ignoring exclusions would resurrect cancelled occurrences: refuse the series.
        raise _Rejected([FieldError(None, "EXDATE illisible")]) from None

    template = ImportedEvent(
        line=entry.line,
        external_id="",
        title=title,
        description_html=description,
        type=types[0] if types else "other",
        sectors=("all",) if not sectors or "all" in sectors else tuple(sectors),
        format=infer_format(venue, online_url),
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
    )
    return _Event(
        line=entry.line,
        uid=uid,
        template=template,
        all_day=all_day,
        zone=zone,
        rrules=rrules,
        rdates=rdates,
        exdates=exdates,
        recurrence_id=recurrence_id,
        sequence=sequence,
    )


def _text_multiline(component: Any, name: str) -> str | None:
    value = _first(component.get(name))
    return None if value is None else clean_text(str(value), multiline=True)


# --- recurrences ---------------------------------------------------------------------------------


def _local(value: date | datetime, zone: tzinfo, clock: time) -> datetime:
    """Naive wall time in `zone`; a date gets `clock`, a floating time stays as written."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return value.replace(tzinfo=None)
        return value.astimezone(zone).replace(tzinfo=None)
    return datetime.combine(value, clock)


def _ints(rule: Any, key: str) -> list[int]:
    return [int(v) for v in rule.get(key, [])]


def _rule(rule: Any, start: datetime, event: _Event) -> du.rrule | None:
    """A dateutil rule in naive wall time; None when it can produce nothing but DTSTART.

    Raises FieldError for rules we refuse.
    """
    try:
        frequency = str(_first(rule.get("FREQ")) or "").upper()
        if frequency not in _FREQUENCIES:
            raise FieldError(None, f"fréquence de récurrence « {frequency} » non prise en charge")
        scale = str(_first(rule.get("RSCALE")) or "GREGORIAN").upper()
        if scale != "GREGORIAN":
            raise FieldError(None, f"calendrier de récurrence « {scale} » non pris en charge")
        options: dict[str, Any] = {"interval": int(_first(rule.get("INTERVAL")) or 1)}
        if options["interval"] < 1:
            raise FieldError(None, "INTERVAL de récurrence invalide")
        if rule.get("COUNT"):
            options["count"] = int(_first(rule["COUNT"]))
        elif rule.get("UNTIL"):
            until = _first(rule["UNTIL"])
            end_clock = time() if event.all_day else time(23, 59, 59)
            options["until"] = _local(until, event.zone, end_clock)
        if rule.get("WKST"):
            options["wkst"] = _WEEKDAYS_ALL[str(_first(rule["WKST"])).upper()]
        months = rule.get("BYMONTH", [])
        if any(getattr(m, "leap", False) for m in months):
            raise FieldError(None, "mois intercalaires (BYMONTH=…L) non pris en charge")
        names: list[tuple[str, str]] = [
            ("BYMONTH", "bymonth"),
            ("BYMONTHDAY", "bymonthday"),
            ("BYYEARDAY", "byyearday"),
            ("BYWEEKNO", "byweekno"),
            ("BYSETPOS", "bysetpos"),
        ]
        if not event.all_day:
            names += [("BYHOUR", "byhour"), ("BYMINUTE", "byminute"), ("BYSECOND", "bysecond")]
        for key, option in names:
            if rule.get(key):
                options[option] = _ints(rule, key)
        weekdays = []
        for value in rule.get("BYDAY", []):
            match = _BYDAY.match(str(value).upper())
            if match is None:
                raise FieldError(None, f"BYDAY invalide : « {value} »")
            weekday = _WEEKDAYS_ALL[match.group(2)]
            weekdays.append(weekday(int(match.group(1))) if match.group(1) else weekday)
        if weekdays:
            options["byweekday"] = weekdays
        if _impossible(options, frequency):
            return None
        built = du.rrule(_FREQUENCIES[frequency], dtstart=start, **options)
        return None if _barren(built, start) else built
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise FieldError(None, f"RRULE illisible : « {_raw(rule)} » ({exc})") from None


def _impossible(options: dict[str, Any], frequency: str) -> bool:
    """Rules that match no date at all, which dateutil would search up to the year 9999."""
    year_days = options.get("byyearday")
    if year_days and options.get("bymonth"):
        # BYYEARDAY=366;BYMONTH=1: that day of the year is never in those months.
        wanted = set(options["bymonth"])
        if not any(_months_of_year_day(d) & wanted for d in year_days):
            return True
    month_days = options.get("bymonthday")
    if month_days:
        months = options.get("bymonth") or list(range(1, 13))
        if not any(abs(d) <= _MONTH_DAYS.get(m, 31) for m in months for d in month_days):
            return True
    positions = options.get("bysetpos")
    if positions and frequency == "DAILY":
        per_day = 1
        for option in ("byhour", "byminute", "bysecond"):
            per_day *= len(options.get(option) or [0])
        if all(abs(p) > per_day for p in positions):
            return True
    return False


def _months_of_year_day(day: int) -> set[int]:
    """The months the day-th day of a year (negative: from its end) falls in, in a common
    year or a leap year."""
    found = set()
    for length, year in ((365, 2027), (366, 2028)):
        index = day - 1 if day > 0 else length + day
        if 0 <= index < length:
            found.add((date(year, 1, 1) + timedelta(days=index)).month)
    return found


def _barren(rule: du.rrule, start: datetime) -> bool:
    """True when the rule gives no date in a whole 400-year Gregorian cycle.

    dateutil looks for a rule's next date up to the year 9999, one period at a time: seconds
    for a barren daily rule. The calendar (weekdays and leap years included) repeats every 400
    years, so the same rule started at the same place of a cycle near the year 9600 answers in
    at most 800 years of periods. (A phase set by INTERVAL may differ there: the answer is then
    approximate, and the cost of a wrong one is only a slow expansion, or a rule so sparse that
    it is skipped with a warning.)
    """
    shift = (9599 - start.year) // 400 * 400
    probe_start = start.replace(year=start.year + shift) if shift > 0 else start
    probe = rule.replace(dtstart=probe_start, count=None, until=None)
    return next(iter(probe), None) is None


def _occurrences(
    event: _Event, window: tuple[datetime, datetime], notes: list[str]
) -> list[tuple[datetime, datetime | None]]:
    """(naive wall start, end of an RDATE period or None), in order, within the window."""
    zone = event.zone
    start = event.template.starts_at.astimezone(zone).replace(tzinfo=None)
    rules = du.rruleset()
    rules.rdate(start)  # DTSTART is always the first instance, matching the rule or not
    for rule in event.rrules:
        built = _rule(rule, start, event)
        if built is None:
            notes.append("règle de récurrence sans aucune date possible, ignorée")
        else:
            rules.rrule(built)
    periods: dict[datetime, datetime] = {}
    for rdate, period_end in event.rdates:
        local = _local(rdate, zone, start.time())
        rules.rdate(local)
        if isinstance(period_end, datetime):
            periods[local] = _as_aware(period_end, zone)
    excluded_days: set[date] = set()
    for exdate in event.exdates:
        if isinstance(exdate, datetime) or event.all_day:
            rules.exdate(_local(exdate, zone, time()))
        else:
            excluded_days.add(exdate)
    low = window[0].astimezone(zone).replace(tzinfo=None)
    high = window[1].astimezone(zone).replace(tzinfo=None)
    found: list[tuple[datetime, datetime | None]] = []
    for scanned, occurrence in enumerate(rules):
        if occurrence > high:
            break
        if scanned >= MAX_SCANNED:
            notes.append(f"série trop longue : expansion arrêtée après {MAX_SCANNED} dates")
            break
        if occurrence < low or occurrence.date() in excluded_days:
            continue
        found.append((occurrence, periods.get(occurrence)))
        if len(found) >= MAX_OCCURRENCES:
            notes.append(f"série limitée à {MAX_OCCURRENCES} occurrences")
            break
    return found


def _occurrence_id(uid: str, original: datetime) -> str:
    return stable_id(f"{uid}/{original.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}")


def _final(event: ImportedEvent, external_id: str, notes: list[str]) -> ImportedEvent:
    warnings = tuple(dict.fromkeys((*event.warnings, *notes)))
    return seal(replace(event, external_id=external_id, warnings=warnings))


def _safe_expand(
    group: _Group, window: tuple[datetime, datetime]
) -> list[ImportedEvent | RowError]:
    items: list[ImportedEvent | RowError] = []
    line = (group.master or group.overrides[0]).line
    try:
        items.extend(_expand(group, window))
    except _Rejected as exc:
        items.extend(RowError(line, e.field, e.reason) for e in exc.errors)
    except FieldError as exc:
        items.append(RowError(line, exc.field, exc.reason))
    except Exception as exc:  # whatever a strange event throws, the others still come through
        items.append(RowError(line, None, f"événement illisible : {exc!r}"))
    first = group.master.line if group.master else 0
    items.extend(
        RowError(
            duplicate.line,
            "external_id",
            f"UID « {group.uid} » en double (déjà vu ligne {first})",
        )
        for duplicate in group.duplicates
    )
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
        key = event.recurrence_id
        if key not in chosen or event.sequence >= chosen[key].sequence:
            chosen[key] = event
    return list(chosen.values()), errors


def _expand(group: _Group, window: tuple[datetime, datetime]) -> list[ImportedEvent | RowError]:
    master = _read_event(group.master, group.uid) if group.master else None
    if group.uid is not None:
        uid = group.uid
    else:
        assert master is not None  # noqa: S101 - a group without UID is one lone VEVENT
        uid = derived_id(master.template.title, master.template.starts_at)
    overrides, errors = _read_overrides(group, uid)
    items: list[ImportedEvent | RowError] = list(errors)

    def override_id(event: _Event) -> str:
        assert event.recurrence_id is not None  # noqa: S101 - overrides have one
        zone = master.zone if master else event.zone
        return _occurrence_id(uid, _as_aware(event.recurrence_id, zone))

    if master is None or not master.recurring:
        if master is not None:
            items.append(_final(master.template, stable_id(uid), []))
        items.extend(_final(o.template, override_id(o), []) for o in overrides)
        return items

    notes: list[str] = []
    zone = master.zone
    by_moment: dict[datetime, _Event] = {}
    by_day: dict[date, _Event] = {}
    for override in overrides:
        assert override.recurrence_id is not None  # noqa: S101 - overrides have one
        if isinstance(override.recurrence_id, datetime) or master.all_day:
            by_moment[_local(override.recurrence_id, zone, time())] = override
        else:
            by_day[override.recurrence_id] = override
    length = master.template.ends_at.astimezone(zone).replace(
        tzinfo=None
    ) - master.template.starts_at.astimezone(zone).replace(tzinfo=None)
    used: set[int] = set()
    expanded: list[ImportedEvent] = []
    for local_start, period_end in _occurrences(master, window, notes):
        original = localise(local_start, zone)
        external_id = _occurrence_id(uid, original)
        replacement = by_moment.get(local_start) or by_day.pop(local_start.date(), None)
        if replacement is not None:
            used.add(id(replacement))
            expanded.append(_final(replacement.template, external_id, notes))
            continue
        ends_at = period_end or localise(local_start + length, zone)
        occurrence = replace(master.template, starts_at=original, ends_at=ends_at)
        expanded.append(_final(occurrence, external_id, notes))
    for override in overrides:
        # Overrides of occurrences the rule does not give (moved in from elsewhere, or beyond
        # the expansion): kept when they fall in the window.
        if id(override) in used:
            continue
        if window[0] <= override.template.starts_at <= window[1]:
            expanded.append(_final(override.template, override_id(override), notes))
    expanded.sort(key=lambda e: e.starts_at)
    items.extend(expanded)
    return items
