"""Every calendar of the shared corpora through the ICS importer (issue 13).

`../shared/corpus/ics-peers` holds 353 calendars from the test suites of five calendar libraries
(see its README); `ics-realworld` the icalendar library's own. For each file: parsing never
raises; a file with VEVENTs imports events or says why (a Notice, or a RowError); and where
`recurring-ical-events` can expand the file, the starts we store in the window are the starts it
gives, except for the choices listed in DIFFERENCES with their reason.
"""

from __future__ import annotations

import signal
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events  # type: ignore[import-untyped]
from icalendar import Calendar

from importers import ics
from importers.base import ImportedEvent, Notice, RowError, decode_bytes, get_zone

SHARED = Path(__file__).resolve().parents[3] / "shared" / "corpus"
FOLDERS = ("ics-peers", "ics-realworld")
# The fixed "now" of the other corpus tests (tests/importers/test_ics.py).
NOW = datetime(2026, 6, 1, tzinfo=UTC)
WINDOW = (NOW - ics.HORIZON_PAST, NOW + ics.HORIZON_FUTURE)
# The reference gets this long per file; a file it cannot expand in time is not compared.
REFERENCE_SECONDS = 1

# File (relative to the corpus folder) → why our starts differ from recurring-ical-events'.
_NO_TITLE = "no SUMMARY: an event needs a title, the row is rejected (a RowError says so)"
_CAP = f"more than {ics.MAX_OCCURRENCES} occurrences in the window: we keep the first ones"
DIFFERENCES: dict[str, str] = {
    "ics-peers/ical-org+ical.net/Ical.Net.Tests_Calendars_Recurrence_Bug2966236.ics": _NO_TITLE,
    "ics-realworld/events__issue_157_removes_trailing_semicolon.ics": _NO_TITLE,
    "ics-peers/ical-org+ical.net/Ical.Net.Tests_Calendars_Recurrence_HourlyInterval1.ics": _CAP,
    "ics-peers/ical-org+ical.net/Ical.Net.Tests_Calendars_Recurrence_HourlyInterval2.ics": _CAP,
    # X-WR-TIMEZONE:Europe/Kiev beside a DTSTART in UTC: the reference moves UTC times into that
    # zone (the x-wr-timezone convention), so the weekly series follows Kiev's DST; we keep the
    # series in UTC as RFC 5545 writes it, and use X-WR-TIMEZONE for floating times only.
    "ics-peers/jens-maus+node-ical/test_fixtures_biweekly-exdate-until.ics": (
        "UTC series kept in UTC, not moved into X-WR-TIMEZONE"
    ),
}


def _files() -> list[Path]:
    found: list[Path] = []
    for folder in FOLDERS:
        if (SHARED / folder).is_dir():
            found.extend(sorted((SHARED / folder).rglob("*.ics")))
    return found


FILES = _files()


def _name(path: Path) -> str:
    return str(path.relative_to(SHARED))


def test_corpora_are_here() -> None:
    if not SHARED.is_dir():
        pytest.skip(
            f"!!! SHARED CORPORA ABSENT ({SHARED}): the {len(FOLDERS)} ICS corpora are NOT "
            "tested. Lay ../shared beside the repository to run them. !!!"
        )
    assert len([p for p in FILES if "ics-peers" in p.parts]) == 353


class _Slow(Exception):
    pass


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    def stop(signum: int, frame: Any) -> None:
        # The alarm may land in a garbage-collection callback, where the exception is only
        # reported, not raised: ring again soon, so that one lands in the library's code.
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        raise _Slow

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _default_zone(calendar: Calendar) -> tzinfo:
    declared = calendar.get("X-WR-TIMEZONE")
    return (
        get_zone(str(declared))
        if declared and get_zone(str(declared))
        else ZoneInfo("Europe/Paris")
    )


def _key(value: date | datetime, zone: tzinfo) -> tuple[str, str]:
    if isinstance(value, datetime):
        moment = value if value.utcoffset() is not None else value.replace(tzinfo=zone)
        return ("at", moment.astimezone(UTC).isoformat())
    return ("day", value.isoformat())


def _reference(data: bytes) -> list[tuple[str, str]] | None:
    """Starts recurring-ical-events gives in the window; None when it cannot expand the file."""
    try:
        with warnings.catch_warnings(), _deadline(REFERENCE_SECONDS):
            warnings.simplefilter("ignore")
            calendars = Calendar.from_ical(decode_bytes(data), multiple=True)
            starts = []
            for calendar in calendars:
                zone = _default_zone(calendar)
                for occurrence in recurring_ical_events.of(calendar).between(*WINDOW):
                    key = _key(occurrence["DTSTART"].dt, zone)
                    if _in_window(key, zone):
                        starts.append(key)
            return sorted(starts)
    except Exception:  # the reference cannot read or expand it: nothing to compare
        return None


def _in_window(key: tuple[str, str], zone: tzinfo) -> bool:
    kind, text = key
    if kind == "at":
        moment = datetime.fromisoformat(text)
    else:
        moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=zone)
    return WINDOW[0] <= moment <= WINDOW[1]


def _ours(items: list[ImportedEvent | RowError | Notice]) -> list[tuple[str, str]]:
    starts = []
    for item in items:
        if not isinstance(item, ImportedEvent):
            continue
        zone = item.starts_at.tzinfo or UTC
        key = (
            ("day", item.starts_at.date().isoformat())
            if item.all_day
            else ("at", item.starts_at.astimezone(UTC).isoformat())
        )
        if _in_window(key, zone):
            starts.append(key)
    return sorted(starts)


@pytest.mark.parametrize("path", FILES, ids=_name)
# An alarm swallowed by a gc callback is reported as unraisable; the next one stops the run.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_corpus_file(path: Path) -> None:
    data = path.read_bytes()
    items = list(ics.parse(data, now=NOW))
    assert all(isinstance(item, ImportedEvent | RowError | Notice) for item in items)
    if "BEGIN:VEVENT" in decode_bytes(data).upper():
        imported = any(isinstance(item, ImportedEvent) for item in items)
        said = any(isinstance(item, Notice | RowError) for item in items)
        assert imported or said, "a calendar with events imported none and said nothing"
    expected = _reference(data)
    if expected is None:
        return
    ours = _ours(items)
    if _name(path) in DIFFERENCES:
        assert ours != expected, f"listed as a difference but agrees: {DIFFERENCES[_name(path)]}"
        return
    assert ours == expected
