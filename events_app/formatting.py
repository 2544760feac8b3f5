"""French formatting of dates, times and numbers (Babel), for pages and mails alike."""

from __future__ import annotations

from datetime import datetime, timedelta
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


def fr_last_day(end: datetime, tz: str = "Europe/Paris") -> str:
    """The last day of an all-day event, whose end is the midnight after it."""
    return fr_date(end - timedelta(microseconds=1), tz)


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
