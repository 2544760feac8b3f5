"""Check-in on the day of the event (SPEC §12): a confirmed seat's code, scanned from a phone in
the back office or sent to the agency API, marks the person present.

The code is drawn when the seat is confirmed (events_app.registrations: at registration, or at
promotion from the waiting list) and dropped when the registration is cancelled. Scanning
writes the same data as the « Présent·e » button of the attendance list: status "attended",
checked_in_at and checked_in_by. A second scan changes nothing and says when the first was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from events_app.checkin_codes import normalise_checkin_code
from events_app.db import PARIS, utcnow
from events_app.errors import Conflict, NotFound
from events_app.formatting import fr_date
from events_app.models import Event, Registration
from events_app.registrations import lock_event

# Registrations holding a seat: only these have a code that works.
SEATED = ("confirmed", "attended", "absent")
UNKNOWN_CODE = "Code inconnu pour cet événement."


@dataclass(frozen=True)
class CheckIn:
    registration: Registration
    already: bool
    # When the person was first checked in (now, unless already).
    checked_in_at: datetime


def _paris_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=PARIS)


def checkin_window(event: Event) -> tuple[datetime, datetime]:
    """From the start of the day before the event's first day to the end of the day after its
    last day, in Paris days: early arrivals and late corrections both happen."""
    first = event.starts_at.astimezone(PARIS).date()
    # An all-day event ends at the midnight after its last day: that midnight is not a day of it.
    last = (max(event.ends_at, event.starts_at) - timedelta(microseconds=1)).astimezone(PARIS)
    last_day = max(last.date(), first)
    return (
        _paris_midnight(first - timedelta(days=1)),
        _paris_midnight(last_day + timedelta(days=2)),
    )


def checkin_closed_reason(event: Event, now: datetime) -> str | None:
    """Why check-in is refused now (in French), or None when it is open."""
    if event.status == "cancelled":
        return "Cet événement est annulé\u00a0: le pointage est fermé."
    opens, closes = checkin_window(event)
    if now < opens:
        return (
            "Le pointage ouvre la veille de l’événement, le "
            f"{fr_date(opens)}\u00a0: ce code ne peut pas encore être pointé."
        )
    if now >= closes:
        last = closes - timedelta(days=1)
        return f"Le pointage a fermé le {fr_date(last)} au soir, le lendemain de l’événement."
    return None


def check_in(
    db: Session,
    *,
    event_id: int,
    agency_id: int,
    code: str,
    by: str,
    now: datetime | None = None,
) -> CheckIn:
    """Mark the holder of `code` present at this event of this agency.

    Needs a transaction opened with lock=True (a person may cancel at the same moment). Raises
    NotFound for another agency's event, and for a code that is unknown, of another event, or
    of a registration that holds no seat (waitlisted, cancelled); Conflict with the French
    reason outside the check-in window (the day before the event to the day after) or for a
    cancelled event. A code already checked in returns already=True and the first time.
    """
    now = now or utcnow()
    event = lock_event(db, event_id)
    if event.agency_id != agency_id:
        raise NotFound("Événement introuvable.", field="id")
    reason = checkin_closed_reason(event, now)
    if reason is not None:
        raise Conflict(reason, code="checkin_closed")
    normalised = normalise_checkin_code(code)
    registration = (
        None
        if normalised is None
        else db.scalars(
            select(Registration)
            .where(
                Registration.checkin_code == normalised,
                Registration.event_id == event.id,
                Registration.status.in_(SEATED),
            )
            .execution_options(populate_existing=True)
        ).first()
    )
    if registration is None:
        raise NotFound(UNKNOWN_CODE, field="code")
    registration.event = event
    if registration.status == "attended":
        return CheckIn(registration, True, registration.checked_in_at or registration.updated_at)
    registration.status = "attended"
    registration.checked_in_at = now
    registration.checked_in_by = by[:254]
    registration.updated_at = now
    db.flush()
    return CheckIn(registration, False, now)
