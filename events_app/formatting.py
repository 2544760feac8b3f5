"""French formatting of dates, times and numbers (Babel), for pages and mails alike."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.numbers import format_decimal

LOCALE = "fr_FR"


# Babel formats a date in about 100 µs; a page or a mail digest shows the same few again and
# again. Both are pure functions of hashable values.
@lru_cache(maxsize=8192)
def fr_time(moment: datetime, tz: str = "Europe/Paris") -> str:
    """« 9 h 30 », « 14 h »."""
    local = moment.astimezone(ZoneInfo(tz))
    pattern = "H 'h'" if local.minute == 0 else "H 'h' mm"
    return format_time(local, pattern, locale=LOCALE)


@lru_cache(maxsize=8192)
def fr_date(moment: datetime, tz: str = "Europe/Paris") -> str:
    """« mardi 8 décembre 2026 »."""
    return format_date(moment.astimezone(ZoneInfo(tz)), "EEEE d MMMM y", locale=LOCALE)


def fr_last_day(end: datetime, tz: str = "Europe/Paris") -> str:
    """The last day of an all-day event, whose end is the midnight after it."""
    return fr_date(end - timedelta(microseconds=1), tz)


def fr_datetime(moment: datetime, tz: str = "Europe/Paris") -> str:
    """« mardi 8 décembre 2026, 9 h 30 »."""
    return f"{fr_date(moment, tz)}, {fr_time(moment, tz)}"


PARIS_ZONE = "Europe/Paris"
# How a French page names the clock of an event held in another zone (« 13 h 30, heure de la
# Guadeloupe »): the overseas departments and collectivities; any other zone by its name.
ZONE_NAMES = {
    "America/Guadeloupe": "heure de la Guadeloupe",
    "America/Martinique": "heure de la Martinique",
    "America/Cayenne": "heure de la Guyane",
    "Indian/Reunion": "heure de La Réunion",
    "Indian/Mayotte": "heure de Mayotte",
    "America/Miquelon": "heure de Saint-Pierre-et-Miquelon",
    "America/St_Barthelemy": "heure de Saint-Barthélemy",
    "America/Marigot": "heure de Saint-Martin",
    "Pacific/Wallis": "heure de Wallis-et-Futuna",
    "Pacific/Tahiti": "heure de Tahiti",
    "Pacific/Noumea": "heure de la Nouvelle-Calédonie",
}


def fr_zone(tz: str) -> str:
    """« heure de la Guadeloupe » for an event held outside Paris time; "" in Paris time."""
    if tz == PARIS_ZONE:
        return ""
    return ZONE_NAMES.get(tz, f"heure locale ({tz})")


def fr_paris_time(moment: datetime, tz: str) -> str:
    """For an event outside Paris time, the same instant in Paris: « 18 h 30 à Paris »."""
    if tz == PARIS_ZONE:
        return ""
    local_day = fr_date(moment, tz)
    paris_day = fr_date(moment, PARIS_ZONE)
    day = "" if paris_day == local_day else f" le {paris_day}"
    return f"{fr_time(moment, PARIS_ZONE)} à Paris{day}"


def fr_km(distance: float | None) -> str:
    """« 4,2 km »."""
    if distance is None:
        return ""
    return f"{format_decimal(round(distance, 1), format='#,##0.0', locale=LOCALE)} km"


def fr_number(value: int) -> str:
    return format_decimal(value, locale=LOCALE)
