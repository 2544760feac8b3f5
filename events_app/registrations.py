"""Registrations: seats that are never oversold, the waiting list, cancellation.

Every function that reads seat counts and then writes holds the event's lock for the whole
transaction: a row lock (SELECT … FOR UPDATE) on PostgreSQL, and on SQLite a write transaction
taken up front (BEGIN IMMEDIATE, see events_app.db). The check constraint on events
(seats_taken <= capacity) and the partial unique index (one live registration per email and
event) are the backstops, never the mechanism.
"""

from __future__ import annotations

import csv
import hmac
import io
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, joinedload, selectinload

from events_app.checkin_codes import new_checkin_code
from events_app.db import PARIS, utcnow
from events_app.duplicates import refresh_duplicates
from events_app.errors import Conflict, InvalidInput, NotFound
from events_app.events import PRACTICAL_FIELDS, registration_state, update_event
from events_app.models import Event, OutboxMessage, Registration
from events_app.notifications import Notifier
from events_app.passwords import clean_email
from events_app.vocab import ATTENDANCE_MODES, REGISTRATION_STATUSES


@dataclass(frozen=True)
class Person:
    first_name: str
    last_name: str
    email: str
    phone: str | None = None
    attendance: str | None = None


@dataclass(frozen=True)
class RegistrationOutcome:
    registration: Registration
    created: bool


def normalise_email(raw: str) -> str:
    return raw.strip().lower()


def lock_event(db: Session, event_id: int) -> Event:
    """Load an event under its lock, for the rest of the transaction. NotFound if unknown."""
    if db.get_bind().dialect.name == "sqlite" and not db.connection().get_execution_options().get(
        "sqlite_immediate"
    ):
        # Without BEGIN IMMEDIATE two transactions could read the same seat count.
        raise RuntimeError("seat changes on SQLite need a transaction opened with lock=True")
    event = db.scalars(
        select(Event)
        .where(Event.id == event_id)
        .options(joinedload(Event.agency), selectinload(Event.sector_rows))
        .with_for_update(of=Event)
        .execution_options(populate_existing=True)
    ).first()
    if event is None:
        raise NotFound("Événement introuvable.", field="id")
    return event


def _pool(event: Event, attendance: str) -> str:
    """Which seat counter a registration uses: remote only for a hybrid event."""
    return "remote" if event.format == "hybrid" and attendance == "remote" else "onsite"


def _has_seat(event: Event, pool: str) -> bool:
    if pool == "remote":
        return event.remote_capacity is None or event.remote_seats_taken < event.remote_capacity
    return event.capacity is None or event.seats_taken < event.capacity


def _take_seat(event: Event, pool: str, delta: int) -> None:
    if pool == "remote":
        event.remote_seats_taken += delta
    else:
        event.seats_taken += delta


def _live(db: Session, event_id: int, email: str) -> Registration | None:
    return db.scalars(
        select(Registration).where(
            Registration.event_id == event_id,
            Registration.email == email,
            Registration.status != "cancelled",
        )
    ).first()


# Whoever types someone's address again gets nothing but this mail sent to that address; not
# more often than this, so that the form cannot be used to flood a mailbox.
LINKS_RESEND_INTERVAL = timedelta(minutes=10)
ALREADY_REGISTERED = (
    "Cette adresse e-mail est déjà inscrite à cet événement. Nous venons d'y renvoyer le lien "
    "pour gérer l'inscription (s'il n'arrive pas, vérifiez les courriers indésirables)."
)


def register(
    db: Session,
    *,
    event_id: int,
    person: Person,
    notifier: Notifier,
    seeker_id: int | None = None,
) -> RegistrationOutcome:
    """Sign a person up: confirmed while seats last, then waitlisted (if the event has a list).

    The same email again returns the existing registration (created=False) whatever the
    event's state, and mails the person their links again, at most once per
    LINKS_RESEND_INTERVAL: the caller must show nothing of it. Raises NotFound,
    Conflict with the French reason (closed, cancelled, past, full without a waiting list), or
    InvalidInput when a hybrid event is missing the attendance mode.
    """
    event = lock_event(db, event_id)
    existing = _live(db, event_id, person.email)
    if existing is not None:
        existing.event = event
        now = utcnow()
        last = existing.links_resent_at
        if last is None or now - last >= LINKS_RESEND_INTERVAL:
            existing.links_resent_at = now
            notifier.links_resent(existing)
        return RegistrationOutcome(existing, created=False)
    state = registration_state(event)
    if not state.open:
        raise Conflict(state.reason or "Inscriptions fermées.", code="registration_closed")
    if event.format == "hybrid":
        if person.attendance is None:
            raise InvalidInput(
                "attendance", "Précisez si vous venez sur place (onsite) ou à distance (remote)."
            )
        attendance = person.attendance
    else:
        attendance = "remote" if event.format == "online" else "onsite"
    pool = _pool(event, attendance)
    now = utcnow()
    registration = Registration(
        event_id=event.id,
        seeker_id=seeker_id,
        first_name=person.first_name,
        last_name=person.last_name,
        email=person.email,
        phone=person.phone,
        attendance=attendance,
        token=secrets.token_urlsafe(32),
        consent_at=now,
        created_at=now,
        updated_at=now,
    )
    if _has_seat(event, pool):
        registration.status = "confirmed"
        registration.checkin_code = new_checkin_code()
        _take_seat(event, pool, +1)
    elif event.waitlist:
        registration.status = "waitlisted"
        registration.waitlist_position = _last_position(db, event.id, attendance) + 1
    else:
        raise Conflict("Cet événement est complet.", code="full")
    registration.event = event
    db.add(registration)
    db.flush()
    if registration.status == "confirmed":
        notifier.registration_confirmed(registration)
    else:
        notifier.registration_waitlisted(registration)
    return RegistrationOutcome(registration, created=True)


# A lost-link request mails at most this many registrations (the soonest events first).
MAX_LINKS_PER_REQUEST = 20


def resend_links(
    db: Session, *, email: str, notifier: Notifier, now: datetime | None = None
) -> int:
    """« J'ai perdu mon lien »: mail the address the link of each of its live registrations
    (confirmed or waitlisted, to an event neither over nor cancelled), one `links_resent`
    mail each, and none for a registration mailed its links less than LINKS_RESEND_INTERVAL
    ago (as when someone registers the same address again).

    Returns how many were mailed, which the caller must not show: the page answers the same
    whether or not the address has any registration. Raises InvalidInput("email") for a
    malformed address only.
    """
    address = clean_email(email)
    moment = now or utcnow()
    due = db.scalars(
        select(Registration)
        .join(Event, Event.id == Registration.event_id)
        .where(
            Registration.email == address,
            Registration.status.in_(("confirmed", "waitlisted")),
            Event.status != "cancelled",
            Event.ends_at > moment,
            or_(
                Registration.links_resent_at.is_(None),
                Registration.links_resent_at <= moment - LINKS_RESEND_INTERVAL,
            ),
        )
        .options(joinedload(Registration.event).joinedload(Event.agency))
        .order_by(Event.starts_at, Registration.id)
        .limit(MAX_LINKS_PER_REQUEST)
    ).all()
    for registration in due:
        registration.links_resent_at = moment
        notifier.links_resent(registration)
    db.flush()
    return len(due)


def _last_position(db: Session, event_id: int, attendance: str) -> int:
    last = db.scalar(
        select(func.max(Registration.waitlist_position)).where(
            Registration.event_id == event_id,
            Registration.status == "waitlisted",
            Registration.attendance == attendance,
        )
    )
    return last or 0


def get_registration(db: Session, token: str) -> Registration:
    """The registration behind a manage token, with its event. NotFound otherwise."""
    if not token or len(token) > 64 or "\x00" in token:
        # NUL would reach PostgreSQL, which refuses it in text (a driver error, not a 404).
        raise NotFound("Inscription introuvable.", field="token")
    registration = db.scalars(
        select(Registration)
        .where(Registration.token == token)
        .options(
            joinedload(Registration.event).joinedload(Event.agency),
            joinedload(Registration.event).selectinload(Event.sector_rows),
        )
    ).first()
    # The lookup goes through the unique index; the final comparison is constant-time, so the
    # answer's timing says nothing about how much of a guessed token was right.
    if registration is None or not hmac.compare_digest(registration.token, token):
        raise NotFound("Inscription introuvable.", field="token")
    return registration


# --- what the registration's own page shows --------------------------------------------------


@dataclass(frozen=True)
class ManageState:
    """What the manage page of a registration (/inscriptions/{token}) shows, for one pair
    (registration × event). Every pair, with `event` being « scheduled » (to come), « cancelled »
    (by the organiser) or « past » (started or over), and the registration confirmed (or
    marked present or absent), waitlisted or cancelled by the person:

    ============  ===========  ========================================  ==========  ======
    registration  event        state shown                               calendar    cancel
    ============  ===========  ========================================  ==========  ======
    confirmed     scheduled    « Confirmée »                             add         yes
    waitlisted    scheduled    « Liste d'attente – position N »          add         leave
    cancelled     scheduled    « Annulée »                               none        no
    confirmed     cancelled    banner with the organiser's message,      .ics        no
                               « Événement annulé par l'organisateur »   CANCELLED
    waitlisted    cancelled    same as above                             .ics        no
                                                                         CANCELLED
    cancelled     cancelled    banner, « Annulée »                       none        no
    confirmed     past         « Confirmée », « L'événement a eu lieu »  none        no
    waitlisted    past         « Liste d'attente », no seat was freed    none        no
    cancelled     past         « Annulée »                               none        no
    ============  ===========  ========================================  ==========  ======

    add: « Ajouter à mon agenda » (the .ics file, Google, Outlook). `.ics CANCELLED`: the
    event's own .ics, which carries STATUS:CANCELLED, offered to take the event out of a
    calendar it was added to. « leave »: the waitlisted person may leave the queue, never
    « libérer votre place » (they hold none). A postponed event reads as scheduled (the page
    says it is postponed).
    """

    event_state: Literal["scheduled", "cancelled", "past"]
    state_label: str
    # "add": the add-to-calendar menu; "cancelled_ics": the event's .ics (STATUS:CANCELLED).
    calendar: Literal["add", "cancelled_ics"] | None
    can_cancel: bool


def manage_state(
    registration: Registration, event: Event, now: datetime | None = None
) -> ManageState:
    """The manage page's state for a registration and its event (see ManageState)."""
    now = now or utcnow()
    status = registration.status
    live = status in ("confirmed", "waitlisted")
    label = REGISTRATION_STATUSES.get(status, status)
    if status == "waitlisted" and registration.waitlist_position:
        label += f" – position {registration.waitlist_position}"
    if event.status == "cancelled":
        if live:
            label = "Événement annulé par l'organisateur"
        return ManageState("cancelled", label, "cancelled_ics" if live else None, False)
    if event.starts_at <= now:
        if status == "waitlisted":
            label = "Liste d'attente : aucune place ne s'est libérée"
        return ManageState("past", label, None, False)
    calendar: Literal["add", "cancelled_ics"] | None = None
    if live:
        calendar = "add"
    return ManageState("scheduled", label, calendar, live)


def cancel_registration(db: Session, *, token: str, notifier: Notifier) -> Registration:
    """Cancel; a freed seat goes at once to the first waitlisted person of the same pool.

    Cancelling twice is harmless and returns the cancelled registration.
    """
    event_id = get_registration(db, token).event_id
    event = lock_event(db, event_id)
    registration = db.scalars(
        select(Registration)
        .where(Registration.token == token)
        .execution_options(populate_existing=True)
    ).one()
    registration.event = event
    if registration.status not in ("confirmed", "waitlisted"):
        return registration
    now = utcnow()
    previous = registration.status
    position = registration.waitlist_position
    registration.status = "cancelled"
    registration.waitlist_position = None
    registration.checkin_code = None  # a cancelled seat's code opens nothing any more
    registration.cancelled_at = now
    registration.updated_at = now
    pool = _pool(event, registration.attendance)
    db.flush()
    if previous == "confirmed":
        _take_seat(event, pool, -1)
        _promote(db, event, registration.attendance, notifier)
    elif position is not None:
        _close_gap(db, event.id, registration.attendance, position)
    db.flush()
    notifier.registration_cancelled(registration)
    return registration


def _waitlisted(db: Session, event_id: int, attendance: str) -> list[Registration]:
    return list(
        db.scalars(
            select(Registration)
            .where(
                Registration.event_id == event_id,
                Registration.status == "waitlisted",
                Registration.attendance == attendance,
            )
            .order_by(Registration.waitlist_position, Registration.id)
        )
    )


def _promote(db: Session, event: Event, attendance: str, notifier: Notifier) -> None:
    """Fill free seats from the head of the waiting list (first come, first served)."""
    pool = _pool(event, attendance)
    queue = _waitlisted(db, event.id, attendance)
    promoted = 0
    while queue and _has_seat(event, pool) and event.status == "scheduled":
        first = queue.pop(0)
        first.status = "confirmed"
        first.checkin_code = new_checkin_code()
        first.waitlist_position = None
        first.updated_at = utcnow()
        first.event = event
        _take_seat(event, pool, +1)
        promoted += 1
        notifier.registration_promoted(first)
    for index, registration in enumerate(queue, start=1):
        registration.waitlist_position = index
    if promoted:
        db.flush()


def _close_gap(db: Session, event_id: int, attendance: str, _position: int) -> None:
    for index, registration in enumerate(_waitlisted(db, event_id, attendance), start=1):
        registration.waitlist_position = index


def promote_waitlist(db: Session, event: Event, notifier: Notifier) -> None:
    """After the capacity of a locked event grew: confirm whoever now fits."""
    for attendance in ("onsite", "remote"):
        _promote(db, event, attendance, notifier)


def send_reminders(db: Session, *, notifier: Notifier, now: datetime | None = None) -> int:
    """Queue the day-before reminder for every confirmed person of tomorrow's events (Paris
    days). Each registration is reminded once; returns how many were queued."""
    now = now or utcnow()
    today = now.astimezone(PARIS).date()
    start = datetime.combine(today + timedelta(days=1), time.min, tzinfo=PARIS)
    end = start + timedelta(days=1)
    due = db.scalars(
        select(Registration)
        .join(Event, Event.id == Registration.event_id)
        .where(
            Event.starts_at >= start,
            Event.starts_at < end,
            Event.status == "scheduled",
            Registration.status == "confirmed",
            Registration.reminder_sent_at.is_(None),
        )
        .options(joinedload(Registration.event).joinedload(Event.agency))
        .order_by(Registration.id)
        .with_for_update(of=Registration, skip_locked=True)
    ).all()
    for registration in due:
        notifier.reminder(registration, registration.event)
        registration.reminder_sent_at = now
    db.flush()
    return len(due)


def _live_registrations(db: Session, event_id: int) -> list[Registration]:
    return list(
        db.scalars(
            select(Registration)
            .where(
                Registration.event_id == event_id,
                Registration.status.in_(("confirmed", "waitlisted")),
            )
            .order_by(Registration.id)
        )
    )


def cancel_event(db: Session, event: Event, *, notifier: Notifier, message: str | None) -> int:
    """Cancel an event (it stays visible as cancelled) and tell its registrants.

    Registrations are kept as they are, for the record; returns how many people were told.
    The event needs its agency loaded.
    """
    if event.status == "cancelled":
        return 0
    event.status = "cancelled"
    event.cancellation_message = message
    event.revision += 1
    event.updated_at = utcnow()
    told = 0
    for registration in _live_registrations(db, event.id):
        notifier.event_cancelled(registration, event)
        told += 1
    db.flush()
    if event.duplicate_group_id is not None:  # its copies get another shown event
        refresh_duplicates(db, [event.id])
    return told


def notify_event_changed(db: Session, event: Event, *, notifier: Notifier) -> int:
    """Tell registrants that the date, time or place changed; returns how many were told."""
    told = 0
    for registration in _live_registrations(db, event.id):
        notifier.event_changed(registration, event)
        told += 1
    return told


def edit_event(
    db: Session, *, event_id: int, agency_id: int, fields: dict[str, Any], notifier: Notifier
) -> Event:
    """An agency edits its event: under the event's lock, so capacity is checked against the
    seats really taken; a larger capacity confirms waitlisted people at once; registrants are
    told when the date, time or place changed. Another agency's event is NotFound."""
    event = lock_event(db, event_id)
    if event.agency_id != agency_id:
        raise NotFound("Événement introuvable.", field="id")
    changed = update_event(db, event, fields)
    if event.feed_id is not None and changed:
        event.edited_by_hand = True
    if changed & {"capacity", "remote_capacity"}:
        promote_waitlist(db, event, notifier)
    if changed & PRACTICAL_FIELDS and event.status == "scheduled":
        notify_event_changed(db, event, notifier=notifier)
    db.flush()
    return event


def cancel_agency_event(
    db: Session, *, event_id: int, agency_id: int, notifier: Notifier, message: str | None
) -> Event:
    event = lock_event(db, event_id)
    if event.agency_id != agency_id:
        raise NotFound("Événement introuvable.", field="id")
    cancel_event(db, event, notifier=notifier, message=message)
    if event.feed_id is not None:
        event.edited_by_hand = True
    return event


def list_registrants(
    db: Session,
    *,
    event_id: int,
    agency_id: int,
    limit: int | None = None,
    after_id: int | None = None,
) -> list[Registration]:
    """An agency's view of one event's registrants, in order of registration.

    Raises NotFound for another agency's event (never a 403 that would confirm it exists).
    """
    owner = db.scalar(select(Event.agency_id).where(Event.id == event_id))
    if owner is None or owner != agency_id:
        raise NotFound("Événement introuvable.", field="id")
    statement = select(Registration).where(Registration.event_id == event_id)
    if after_id is not None:
        statement = statement.where(Registration.id > after_id)
    statement = statement.order_by(Registration.id)
    if limit is not None:
        statement = statement.limit(limit)
    return list(db.scalars(statement))


CSV_HEADERS = (
    "Prénom",
    "Nom",
    "E-mail",
    "Téléphone",
    "Statut",
    "Position en liste d'attente",
    "Participation",
    "Inscrit le",
)


def _csv_cell(value: str) -> str:
    # A cell starting with = + - @ would be run as a formula by Excel (CSV injection).
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def excel_csv(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    """CSV that opens cleanly in French Excel: `;` separated, UTF-8 with BOM, French headers,
    and no cell that Excel would run as a formula."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([_csv_cell(cell) for cell in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def registrants_csv(registrations: list[Registration]) -> bytes:
    return excel_csv(
        CSV_HEADERS,
        (
            [
                r.first_name,
                r.last_name,
                r.email,
                r.phone or "",
                REGISTRATION_STATUSES.get(r.status, r.status),
                "" if r.waitlist_position is None else str(r.waitlist_position),
                ATTENDANCE_MODES.get(r.attendance, r.attendance),
                r.created_at.astimezone(PARIS).strftime("%d/%m/%Y %H:%M"),
            ]
            for r in registrations
        ),
    )


def anonymise_registrations(db: Session, registrations: list[Registration]) -> int:
    """Erase the names, emails and phones of these registrations, keep the rows (and so the
    anonymous counts), unlink the account, and delete the mails written to these people (the
    outbox keeps their address and their name in the body). Returns how many were erased."""
    now = utcnow()
    for registration in registrations:
        registration.first_name = ""
        registration.last_name = ""
        registration.email = f"efface-{registration.id}@anonyme.invalid"
        registration.phone = None
        registration.checkin_code = None
        registration.seeker_id = None
        registration.anonymised_at = now
    ids = [registration.id for registration in registrations]
    for start in range(0, len(ids), 500):
        db.execute(
            delete(OutboxMessage).where(OutboxMessage.registration_id.in_(ids[start : start + 500]))
        )
    db.flush()
    return len(registrations)


def erase_old_personal_data(db: Session, *, retention_days: int, batch: int = 5000) -> int:
    """Anonymise the registrations of events that ended more than retention_days ago."""
    cutoff = utcnow() - timedelta(days=retention_days)
    due = db.scalars(
        select(Registration)
        .join(Event, Event.id == Registration.event_id)
        .where(Event.ends_at < cutoff, Registration.anonymised_at.is_(None))
        .order_by(Registration.id)
        .limit(batch)
    ).all()
    return anonymise_registrations(db, list(due))


def close_due_registrations(db: Session, *, now: datetime | None = None) -> int:
    """Close registrations of the events whose deadline has passed; return how many."""
    moment = now or utcnow()
    result = db.execute(
        update(Event)
        .where(
            Event.registration_closed.is_(False),
            Event.registration_closes_at.is_not(None),
            Event.registration_closes_at <= moment,
        )
        .values(registration_closed=True)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
