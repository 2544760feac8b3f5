"""French formatting of dates, times and numbers (Babel), for pages and mails alike."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.numbers import format_decimal

LOCALE = "fr_FR"


def fr_time(moment: datetime, tz: str = "Europe/Paris") -> str:
    """« 9 h 30 », « 14 h »."""
    local = moment.astimezone(ZoneInfo(tz))
    pattern = "H 'h'" if local.minute == 0 else "H 'h' mm"
    return format_time(local, pattern, locale=LOCALE)


def fr_date(moment: datetime, tz: str = "Europe/Paris") -> str:
    """« mardi 8 décembre 2026 »."""
    return format_date(moment.astimezone(ZoneInfo(tz)), "EEEE d MMMM y", locale=LOCALE)


def fr_datetime(moment: datetime, tz: str = "Europe/Paris") -> str:
    """« mardi 8 décembre 2026, 9 h 30 »."""
    return f"{fr_date(moment, tz)}, {fr_time(moment, tz)}"


def fr_km(distance: float | None) -> str:
    """« 4,2 km »."""
    if distance is None:
        return ""
    return f"{format_decimal(round(distance, 1), format='#,##0.0', locale=LOCALE)} km"


def fr_number(value: int) -> str:
    return format_decimal(value, locale=LOCALE)


# Every character that ends a line somewhere (CR, LF, VT, FF, the file/group/record separators,
# NEL, U+2028, U+2029) and every other control character. Not \s: a no-break space is typography.
_BREAKS = re.compile(r" *[\x00-\x1f\x7f-\x9f\u2028\u2029]+ *")


def one_line(text: str) -> str:
    """The text on one line: each run of line breaks or control characters becomes one space.

    For one-line fields (titles, names, addresses) at input, and for mail subjects, where a
    line break would end the header (the email library refuses one).
    """
    if text.isprintable():
        # The common case: isprintable() is False for every character the pattern matches.
        return text.strip()
    return _BREAKS.sub(" ", text).strip()
