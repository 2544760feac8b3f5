"""Recurrence expansion for the ICS importer: `recurring-ical-events`, under a work bound.

The library (through dateutil) looks for a rule's next date up to the year 9999, one period
at a time: a rule that never fires (`FREQ=DAILY;BYYEARDAY=366;BYMONTH=1`) costs seconds of CPU
per series, and a feed may hold thousands. So before a series is expanded its work is
estimated in periods (the steps dateutil takes) and charged to the feed's `Budget`; a series
the budget cannot pay for is refused (the caller reports its row), and rules that can match no
date at all are found first by a cheap probe over one 400-year Gregorian cycle (the calendar,
weekdays and leap years included, repeats every 400 years) and dropped with a warning.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Final

import recurring_ical_events  # type: ignore[import-untyped]
from dateutil import rrule as du  # type: ignore[import-untyped]
from icalendar import Calendar

from importers.base import FieldError

# Work units a feed may spend on recurrences: one unit is about one dateutil period (a day of
# a daily rule), 1 to 3 microseconds measured over the corpora; the whole budget is a few
# seconds of CPU at worst, what some 10,000 occurrences cost to build anyway.
WORK_BUDGET: Final = 1_500_000
# What building one occurrence costs the library, in units.
_PER_OCCURRENCE: Final = 150
_DAY_FILTERS: Final = ("BYMONTH", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYDAY")
_TIME_PARTS: Final = ("BYHOUR", "BYMINUTE", "BYSECOND")
_PERIOD: Final = {
    "SECONDLY": timedelta(seconds=1),
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(days=7),
    "MONTHLY": timedelta(days=30),
    "YEARLY": timedelta(days=365),
}
_CYCLE: Final = timedelta(days=146_097)  # 400 Gregorian years


class TooCostly(Exception):
    """The feed's work budget cannot pay for this series."""


class Budget:
    def __init__(self, units: int | None = None) -> None:
        self.left = WORK_BUDGET if units is None else units

    def spend(self, units: int) -> None:
        if units > self.left:
            raise TooCostly
        self.left -= units


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _rule_text(rule: Any, drop: tuple[str, ...] = ()) -> str:
    parts = {k: v for k, v in rule.items() if k not in drop}
    rebuilt = type(rule)(parts)
    raw = rebuilt.to_ical()
    return raw.decode() if isinstance(raw, bytes) else str(raw)


_NEVER: dict[str, bool] = {}
_BARREN: dict[tuple[str, datetime], bool] = {}
_CACHE_SIZE: Final = 4096


def _remember(cache: dict[Any, bool], key: Any, value: bool) -> bool:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


def _never_matches(filters: str, budget: Budget) -> bool:
    """True when no day of a whole 400-year cycle passes the rule's day filters.

    A yearly rule with the same filters (weekday ordinals dropped: a superset) walks the
    cycle in 400 steps. Answers are kept: feeds repeat their rules.
    """
    if filters not in _NEVER:
        budget.spend(_cost(_CYCLE, "YEARLY", 1, {}))
        probe = du.rrulestr(f"FREQ=YEARLY;{filters}", dtstart=datetime(9600, 1, 1))  # noqa: DTZ001
        _remember(_NEVER, filters, next(iter(probe), None) is None)
    return _NEVER[filters]


def _superset_filters(rule: Any) -> str | None:
    parts = []
    for key in _DAY_FILTERS:
        values = rule.get(key)
        if not values:
            continue
        if key == "BYDAY":
            days = sorted({str(v).upper().lstrip("+-0123456789") for v in values})
            parts.append("BYDAY=" + ",".join(days))
        else:
            parts.append(f"{key}=" + ",".join(str(int(v)) for v in values))
    return ";".join(parts) or None


def _risky(rule: Any, frequency: str) -> bool:
    """Rules whose emptiness the day-filter probe cannot decide."""
    if rule.get("BYSETPOS") or rule.get("BYWEEKNO"):
        return True
    if any(str(d).upper()[:1] in "+-0123456789" for d in rule.get("BYDAY", [])):
        return True
    if frequency in ("HOURLY", "MINUTELY", "SECONDLY") and any(rule.get(k) for k in _TIME_PARTS):
        return True
    interval = int(_first(rule.get("INTERVAL")) or 1)
    if interval == 1:
        return False
    # Every other week still holds every weekday, every other month every month day; but a
    # step of days, or of periods against a month or a year filter, can miss them all.
    if frequency in ("DAILY", "HOURLY", "MINUTELY", "SECONDLY"):
        return any(rule.get(key) for key in _DAY_FILTERS)
    return any(rule.get(key) for key in ("BYMONTH", "BYYEARDAY", "BYMONTHDAY"))


def _periods(span: timedelta, frequency: str, interval: int) -> int:
    return max(0, int(span / (_PERIOD[frequency] * interval)))


def _times_per_day(rule: Any) -> int:
    count = 1
    for key in _TIME_PARTS:
        count *= max(1, len(rule.get(key) or []))
    return count


def _cost(span: timedelta, frequency: str, interval: int, rule: Any) -> int:
    days = max(0, span.days)
    per_day = _times_per_day(rule)
    # Each step compares aware times (a few microseconds with a zone of the file's own).
    steps = _periods(span, frequency, interval) + (days * per_day if per_day > 1 else 0)
    return 4 * steps + days // 16


def _barren_exactly(rule: Any, start: datetime, frequency: str, budget: Budget) -> bool:
    """The rule itself, started at the same place of a 400-year cycle near its end."""
    naive = start.replace(tzinfo=None)
    shift = (9599 - naive.year) // 400 * 400
    probe_start = naive.replace(year=naive.year + shift) if shift > 0 else naive
    text = _rule_text(rule, ("COUNT", "UNTIL", "RSCALE", "SKIP"))
    if (text, probe_start) not in _BARREN:
        interval = int(_first(rule.get("INTERVAL")) or 1)
        budget.spend(_cost(_CYCLE, frequency, interval, rule))
        probe = du.rrulestr(text, dtstart=probe_start)
        _remember(_BARREN, (text, probe_start), next(iter(probe), None) is None)
    return _BARREN[(text, probe_start)]


def _check_rule(
    rule: Any, start: datetime, horizon: datetime, budget: Budget, notes: list[str]
) -> bool:
    """Whether to keep a rule; raises FieldError for refused rules, TooCostly."""
    if not rule:
        notes.append("RRULE vide ignorée")
        return False
    frequency = str(_first(rule.get("FREQ")) or "").upper()
    if frequency not in _PERIOD:
        raise FieldError(None, f"RRULE illisible : « {_rule_text(rule)} » (FREQ absent ou inconnu)")
    scale = str(_first(rule.get("RSCALE")) or "GREGORIAN").upper()
    if scale != "GREGORIAN":
        raise FieldError(None, f"calendrier de récurrence « {scale} » non pris en charge")
    try:
        interval = int(_first(rule.get("INTERVAL")) or 1)
    except (TypeError, ValueError):
        raise FieldError(None, f"RRULE illisible : « {_rule_text(rule)} »") from None
    if interval < 1:
        raise FieldError(None, "INTERVAL de récurrence invalide")
    filters = _superset_filters(rule)
    if filters is not None:
        try:
            barren = _never_matches(filters, budget)
        except (ValueError, TypeError, OverflowError) as exc:
            raise FieldError(None, f"RRULE illisible : « {_rule_text(rule)} » ({exc})") from None
        if barren:
            notes.append("règle de récurrence sans aucune date possible, ignorée")
            return False
    if _risky(rule, frequency):
        try:
            if _barren_exactly(rule, start, frequency, budget):
                notes.append("règle de récurrence sans aucune date possible, ignorée")
                return False
        except (ValueError, TypeError, OverflowError) as exc:
            raise FieldError(None, f"RRULE illisible : « {_rule_text(rule)} » ({exc})") from None
    # dateutil walks from DTSTART to past the window (a year's slack for sparse rules).
    budget.spend(_cost(horizon - start + timedelta(days=366), frequency, interval, rule))
    return True


def _checked(
    rule: Any, start: datetime, horizon: datetime, budget: Budget, notes: list[str]
) -> bool:
    try:
        return _check_rule(rule, start, horizon, budget, notes)
    except (FieldError, TooCostly):
        raise
    except Exception as exc:  # a property icalendar could not read ("FREQ=SOUVENT")
        raise FieldError(None, f"RRULE illisible : {exc}") from None


_STEPPED: Final = ("WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")


def _advance(master: Any, start: datetime, window: tuple[datetime, datetime]) -> datetime:
    """Move an old series' DTSTART (and DTEND) to an occurrence just before the window.

    dateutil walks every period from DTSTART: a daily rule started in 1997 takes ten thousand
    steps before the window. For a single rule without COUNT, with a fixed step (weekly or
    finer) and no filter whose result depends on where the walk starts, moving DTSTART by a
    whole number of steps on the wall clock, then to the rule's next date, gives the same
    dates from there on. Anything else is left as it is.
    """
    rules = _as_list(master.get("RRULE"))
    written = getattr(_first(master.get("DTSTART")), "dt", None)
    if len(rules) != 1 or not isinstance(written, datetime) or written.tzinfo is None:
        return start  # all-day series step by days: cheap enough
    rule = rules[0]
    frequency = str(_first(rule.get("FREQ")) or "").upper()
    if frequency not in _STEPPED or rule.get("COUNT") or _risky(rule, frequency):
        return start
    if rule.get("BYYEARDAY"):
        return start
    filters = _superset_filters(rule)
    if filters is not None and _never_matches(filters, Budget(10**9)):
        return start
    interval = int(_first(rule.get("INTERVAL")) or 1)
    step = _PERIOD[frequency] * interval
    local = start.replace(tzinfo=None)
    target = window[0].astimezone(start.tzinfo).replace(tzinfo=None) - timedelta(days=8)
    steps = (target - local) // step
    if steps <= 0:
        return start
    moved = local + step * steps
    probe = du.rrulestr(_rule_text(rule, ("UNTIL", "RSCALE", "SKIP")), dtstart=moved)
    first = next(iter(probe), None)
    if first is None or first >= target + timedelta(days=8):
        return start
    new_start: datetime = first.replace(tzinfo=start.tzinfo)
    end_prop = master.get("DTEND")
    end = getattr(end_prop, "dt", None)
    master.pop("DTSTART")
    master.add("DTSTART", new_start)
    if isinstance(end, datetime) and end.tzinfo is not None:
        length = end.astimezone(start.tzinfo).replace(tzinfo=None) - local
        master.pop("DTEND")
        master.add("DTEND", (first + length).replace(tzinfo=start.tzinfo))
    return new_start


def expand(
    master: Any,
    overrides: list[Any],
    start: datetime,
    window: tuple[datetime, datetime],
    budget: Budget,
    notes: list[str],
    limit: int,
) -> Iterator[Any] | None:
    """Occurrence components of a series in the window (at least the first `limit` of them,
    or all); None when no rule is left.

    `master` is changed in place: the rules dropped are removed from it. Raises FieldError
    for a rule refused and TooCostly when the budget cannot pay for the series.
    """
    rules = _as_list(master.get("RRULE"))
    try:
        start = _advance(master, start, window)
    except (TooCostly, FieldError):
        raise
    except Exception:  # noqa: S110 - a rule dateutil refuses is reported by the checks below
        pass
    kept = [rule for rule in rules if _checked(rule, start, window[1], budget, notes)]
    if len(kept) != len(rules):
        master.pop("RRULE")
        for rule in kept:
            master.add("RRULE", rule)
    if not kept and not master.get("RDATE"):
        return None
    # The library's cost grows with the occurrences it builds (about a millisecond each): a
    # dense rule is expanded over the part of the window that holds the first ones we keep.
    per_day = sum(
        timedelta(days=1)
        / (_PERIOD[str(_first(r.get("FREQ"))).upper()] * int(_first(r.get("INTERVAL")) or 1))
        * _times_per_day(r)
        for r in kept
    )
    span = window[1] - window[0]
    if per_day * span.days > 2 * limit:
        span = min(span, timedelta(days=2 * limit / per_day + 1))
    while True:
        budget.spend(_PER_OCCURRENCE * (int(per_day * span.days) + len(overrides) + 1))
        calendar = Calendar()
        calendar.add_component(master)
        for override in overrides:
            calendar.add_component(override)
        found: list[Any] = recurring_ical_events.of(calendar).between(window[0], window[0] + span)
        if len(found) >= limit or window[0] + span >= window[1]:
            return iter(found)
        span = min(window[1] - window[0], span * 4)
