"""Time zones named by an iCalendar TZID, including the labels Exchange and Outlook write.

Order (see `ZoneResolver.resolve`): an IANA name; the file's own VTIMEZONE with that TZID;
a Windows zone id through icalendar's Windows → IANA table; a Windows display label such as
"(UTC-05:00) Eastern Time (US & Canada)" or "Canberra, Melbourne, Sydney", read through the
same table and the tz database's own place names, and accepted only when the zone's offset
agrees with the label's; a bare "(GMT +01:00)" becomes that fixed offset. Anything else is
unknown, and the caller warns.
"""

from __future__ import annotations

import bisect
import functools
import re
import zoneinfo
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from importers.base import get_zone

_LABEL = re.compile(
    r"^\(?\s*(?:UTC|GMT)\s*(?:([+-])\s*(\d{1,2})(?::?(\d{2}))?)?\s*\)?\s*(.*)$", re.IGNORECASE
)
_PARENTHESES = re.compile(r"\([^)]*\)")
_PLACES = re.compile(r"[,/;]| and | et ")


@functools.lru_cache(maxsize=1)
def _places() -> dict[str, str]:
    """Last component of every IANA name ("sydney") → the name ("Australia/Sydney")."""
    table: dict[str, str] = {}
    for name in sorted(zoneinfo.available_timezones()):
        if "/" in name and not name.startswith(("Etc/", "SystemV/", "posix/", "right/")):
            table.setdefault(name.rsplit("/", 1)[-1].replace("_", " ").casefold(), name)
    return table


def _offsets(zone: tzinfo) -> set[timedelta]:
    # A label gives the standard offset; allow the summer one too.
    found = set()
    for month in (1, 7):
        offset = datetime(2024, month, 15, 12, tzinfo=zone).utcoffset()
        if offset is not None:
            found.add(offset)
    return found


def _windows(name: str) -> tzinfo | None:
    return get_zone(WINDOWS_TO_OLSON.get(name.strip()))


@functools.lru_cache(maxsize=256)
def zone_for_label(tzid: str) -> tuple[tzinfo, str] | None:
    """(zone, IANA name or "UTC±hh:mm") for a Windows id or display label; None when unknown."""
    text = tzid.strip().strip('"').strip()
    known = _windows(text)
    if known is not None:
        return known, WINDOWS_TO_OLSON[text]
    match = _LABEL.match(text)
    offset: timedelta | None = None
    rest = text
    if match and (match.group(2) or text.upper().startswith(("(UTC", "(GMT", "UTC", "GMT"))):
        sign, hours, minutes, rest = match.groups()
        if hours is not None:
            offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
            offset = -offset if sign == "-" else offset
        else:
            offset = timedelta(0)
    rest = rest.strip()
    candidates: list[str] = []
    if rest:
        bare = _PARENTHESES.sub("", rest).strip()
        for label in (rest, bare):
            candidates.append(WINDOWS_TO_OLSON.get(label, ""))
            if label.endswith(" Time") and not label.endswith("Standard Time"):
                candidates.append(WINDOWS_TO_OLSON.get(label[:-5] + " Standard Time", ""))
        places = _places()
        candidates.extend(
            places.get(part.strip().casefold(), "") for part in _PLACES.split(bare) if part.strip()
        )
    for name in candidates:
        zone = get_zone(name) if name else None
        if zone is not None and (offset is None or offset in _offsets(zone)):
            return zone, name
    if offset is not None and abs(offset) <= timedelta(hours=14):
        minutes_total = int(offset.total_seconds()) // 60
        sign = "-" if minutes_total < 0 else "+"
        hours, minutes = divmod(abs(minutes_total), 60)
        return timezone(offset), f"UTC{sign}{hours:02d}:{minutes:02d}"
    return None


class TableZone(tzinfo):
    """A VTIMEZONE as a table of its transitions (UTC instants, offsets), searched by bisection.

    The zone icalendar builds from a VTIMEZONE recomputes the definition's rules on every
    offset asked, which made a year of hourly occurrences cost seconds.
    """

    def __init__(self, name: str, times: list[datetime], info: list[Any]) -> None:
        self._name = name
        self._times = times
        self._info = info

    def _at(self, naive_utc: datetime) -> tuple[timedelta, timedelta, str]:
        index = max(bisect.bisect_right(self._times, naive_utc) - 1, 0)
        offset, dst, abbreviation = self._info[index]
        return offset, dst, str(abbreviation)

    def _local(self, dt: datetime | None) -> tuple[timedelta, timedelta, str]:
        if dt is None:
            return self._info[-1][0], self._info[-1][1], str(self._info[-1][2])
        local = dt.replace(tzinfo=None)
        guess = self._at(local)[0]
        return self._at(local - guess)

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return self._local(dt)[0]

    def dst(self, dt: datetime | None) -> timedelta:
        return self._local(dt)[1]

    def tzname(self, dt: datetime | None) -> str:
        return self._local(dt)[2]

    def fromutc(self, dt: datetime) -> datetime:
        naive = dt.replace(tzinfo=None)
        return (naive + self._at(naive)[0]).replace(tzinfo=self)

    def __repr__(self) -> str:
        return f"TableZone({self._name!r})"


def _from_definition(tzid: str, definition: Any) -> tzinfo | None:
    try:
        times, info = definition.get_transitions()
        if times and len(times) == len(info):
            return TableZone(tzid, list(times), list(info))
    except Exception:  # noqa: S110 - fall back on the library's own zone below
        pass
    try:
        # Not icalendar's process-wide cache: two feeds may give one TZID two meanings.
        made = definition.to_tz(lookup_tzid=False)
    except Exception:  # an unusable VTIMEZONE: the caller tries the name instead
        return None
    return made if isinstance(made, tzinfo) else None


class ZoneResolver:
    """Resolves the TZIDs of one calendar; remembers the ones it could not."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions  # TZID → the calendar's VTIMEZONE component
        self._cache: dict[str, tuple[tzinfo, str | None] | None] = {}
        self.unknown: set[str] = set()

    def resolve(self, tzid: str) -> tuple[tzinfo, str | None] | None:
        """(zone, IANA name when there is one) for a TZID; None when unknown."""
        if tzid not in self._cache:
            self._cache[tzid] = self._resolve(tzid)
            if self._cache[tzid] is None:
                self.unknown.add(tzid)
        return self._cache[tzid]

    def _resolve(self, tzid: str) -> tuple[tzinfo, str | None] | None:
        clean = tzid.strip().strip("/")
        iana = get_zone(clean)
        if iana is not None and clean.upper() not in ("UTC", "GMT"):
            return iana, clean
        definition = self.definitions.get(tzid)
        if definition is not None:
            made = _from_definition(tzid, definition)
            if made is not None:
                label = zone_for_label(tzid)
                return made, label[1] if label and "/" in label[1] else None
        if iana is not None:
            return iana, None
        label = zone_for_label(tzid)
        if label is not None:
            return label[0], label[1] if "/" in label[1] else None
        return None
