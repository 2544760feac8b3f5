"""An agency's figures (SPEC §12): how its events went, in total, per event type and per month.

What each figure counts, for the events of the agency that start within the chosen Paris days
and were not cancelled:
- events: how many;
- seats: the seats offered, on-site and remote (an event without a limit offers none);
- registrations: the people holding a seat (confirmed, then marked present or absent), not
  the waiting list nor cancelled registrations;
- attended: the people marked present (scanned, or ticked on the attendance list);
- no_shows: the people holding a seat of an event that is over and not marked present;
- fill_rate: the seats taken over the seats offered, for the events with a limit (None when
  no event had one), between 0 and 1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from events_app.db import PARIS, utcnow
from events_app.models import Event, Registration
from events_app.registrations import excel_csv
from events_app.vocab import EVENT_TYPES

SEATED = ("confirmed", "attended", "absent")
MONTHS_FR = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


@dataclass
class Figures:
    events: int = 0
    seats: int = 0
    registrations: int = 0
    attended: int = 0
    no_shows: int = 0
    # Seats taken on the events that have a limit: the numerator of fill_rate.
    limited_taken: int = field(default=0, repr=False)

    @property
    def fill_rate(self) -> float | None:
        if self.seats == 0:
            return None
        return round(self.limited_taken / self.seats, 4)

    def add(self, other: Figures) -> None:
        self.events += other.events
        self.seats += other.seats
        self.registrations += other.registrations
        self.attended += other.attended
        self.no_shows += other.no_shows
        self.limited_taken += other.limited_taken


@dataclass(frozen=True)
class AgencyStats:
    date_from: date | None
    date_to: date | None
    totals: Figures
    by_type: list[tuple[str, Figures]]  # in the order of the vocabulary
    by_month: list[tuple[str, Figures]]  # "2026-12", every month from the first to the last


def _paris_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=PARIS)


def _months_between(first: str, last: str) -> Iterable[str]:
    year, month = int(first[:4]), int(first[5:])
    while f"{year:04d}-{month:02d}" <= last:
        yield f"{year:04d}-{month:02d}"
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def agency_stats(
    db: Session,
    *,
    agency_id: int,
    date_from: date | None = None,
    date_to: date | None = None,
    now: datetime | None = None,
) -> AgencyStats:
    """The figures of one agency's events starting from date_from to date_to (Paris days,
    both included; either may be None). Two queries whatever the number of events."""
    now = now or utcnow()
    statement = select(
        Event.id,
        Event.type,
        Event.starts_at,
        Event.ends_at,
        Event.capacity,
        Event.remote_capacity,
        Event.seats_taken,
        Event.remote_seats_taken,
    ).where(Event.agency_id == agency_id, Event.status != "cancelled")
    if date_from is not None:
        statement = statement.where(Event.starts_at >= _paris_start(date_from))
    if date_to is not None:
        statement = statement.where(Event.starts_at < _paris_start(date_to + timedelta(days=1)))
    events = db.execute(statement).all()
    counts: dict[tuple[int, str], int] = {}
    if events:
        owned = select(Event.id).where(Event.agency_id == agency_id).scalar_subquery()
        rows = db.execute(
            select(Registration.event_id, Registration.status, func.count())
            .where(Registration.event_id.in_(owned), Registration.status.in_(SEATED))
            .group_by(Registration.event_id, Registration.status)
        )
        counts = {(event_id, status): count for event_id, status, count in rows}
    totals = Figures()
    by_type: dict[str, Figures] = defaultdict(Figures)
    by_month: dict[str, Figures] = defaultdict(Figures)
    for row in events:
        seated = sum(counts.get((row.id, status), 0) for status in SEATED)
        attended = counts.get((row.id, "attended"), 0)
        one = Figures(
            events=1,
            seats=(row.capacity or 0) + (row.remote_capacity or 0),
            registrations=seated,
            attended=attended,
            no_shows=seated - attended if row.ends_at <= now else 0,
            limited_taken=(row.seats_taken if row.capacity is not None else 0)
            + (row.remote_seats_taken if row.remote_capacity is not None else 0),
        )
        totals.add(one)
        by_type[row.type].add(one)
        by_month[row.starts_at.astimezone(PARIS).strftime("%Y-%m")].add(one)
    months: list[tuple[str, Figures]] = []
    if by_month:
        months = [
            (month, by_month.get(month, Figures()))
            for month in _months_between(min(by_month), max(by_month))
        ]
    return AgencyStats(
        date_from=date_from,
        date_to=date_to,
        totals=totals,
        by_type=[(kind, by_type[kind]) for kind in EVENT_TYPES if kind in by_type],
        by_month=months,
    )


def month_label(month: str) -> str:
    """« décembre 2026 » for "2026-12"."""
    return f"{MONTHS_FR[int(month[5:]) - 1]} {month[:4]}"


def percent(rate: float | None) -> str:
    """« 85,5 % » (French decimal comma, narrow no-break space), or « – » without a rate."""
    if rate is None:
        return "–"
    return f"{rate * 100:.1f}".replace(".", ",") + "\u202f%"


CSV_HEADERS = (
    "Regroupement",
    "Valeur",
    "Événements",
    "Places offertes",
    "Inscrits",
    "Présents",
    "Absents",
    "Taux de remplissage",
)


def stats_csv(stats: AgencyStats) -> bytes:
    """The same figures as the Bilan page, for French Excel (as the registrant export)."""

    def line(group: str, value: str, figures: Figures) -> list[str]:
        return [
            group,
            value,
            str(figures.events),
            str(figures.seats),
            str(figures.registrations),
            str(figures.attended),
            str(figures.no_shows),
            percent(figures.fill_rate),
        ]

    rows = [line("Total", "Tous les événements", stats.totals)]
    rows += [line("Type", EVENT_TYPES.get(kind, kind), f) for kind, f in stats.by_type]
    rows += [line("Mois", month_label(month), f) for month, f in stats.by_month]
    return excel_csv(CSV_HEADERS, rows)
