"""Agency staff accounts and the back office's own domain rules.

Staff accounts mirror job seeker accounts (events_app.accounts) with a separate table and a
separate role: passwords hashed with argon2id (events_app.passwords), the password stamp kept
in the session and carried by reset links, so that changing the password signs out every other
session and a link serves once.

Invitation and reset. A staff member created without a password gets an invitation link
(valid INVITATION_MAX_AGE_SECONDS); a forgotten password gets a reset link (valid
RESET_MAX_AGE_SECONDS). Both carry the staff id and the stamp of the current password hash, each
signed with its own salt, and both lead to the same page that sets the password.

Every function takes a Session and plain values and never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from events_app import passwords
from events_app.db import PARIS, utcnow
from events_app.errors import Conflict, InvalidInput, NotFound, Unauthorized
from events_app.events import RegistrationState, create_event, get_event, registration_state
from events_app.feeds import feed_runs, get_agency_by_slug, list_feeds
from events_app.models import AgencyStaff, Event, Feed, ImportRun, Registration
from events_app.notifications import (
    STAFF_INVITATION,
    STAFF_PASSWORD_RESET,
    StaffInvitation,
    StaffPasswordReset,
)
from events_app.registrations import list_registrants, lock_event
from events_app.settings import Settings
from events_app.vocab import REGISTRATION_STATUSES

MIN_PASSWORD_LENGTH = passwords.MIN_PASSWORD_LENGTH
RESET_MAX_AGE_SECONDS = 3600
INVITATION_MAX_AGE_SECONDS = 7 * 24 * 3600
RESET_SALT = "staff-password-reset"
INVITATION_SALT = "staff-invitation"
SET_PASSWORD_PATH = "/organisme/mot-de-passe/nouveau"  # noqa: S105 - a path
DASHBOARD_LIMIT = 200
RUNS_PER_FEED = 10

SIGN_IN_FAILED = "Adresse e-mail ou mot de passe incorrect."
LINK_INVALID = (
    "Ce lien n’est plus valable\u00a0: il a déjà servi, il a expiré ou il est incomplet. "
    "Demandez un nouveau lien."
)
# Registrations whose attendance can be marked (and changed again).
ATTENDANCE_STATUSES = ("confirmed", "attended", "absent")


# --- Input -------------------------------------------------------------------------------------


def _staff_by_email(db: Session, email: str) -> AgencyStaff | None:
    return db.scalars(select(AgencyStaff).where(AgencyStaff.email == email)).first()


def password_stamp(staff: AgencyStaff) -> str:
    return passwords.password_stamp(staff.password_hash)


# --- Accounts ----------------------------------------------------------------------------------


def create_staff(
    db: Session,
    *,
    agency_id: int,
    email: str,
    name: str | None = None,
    password: str | None = None,
    settings: Settings | None = None,
) -> tuple[AgencyStaff, str | None]:
    """Create a staff account of an agency.

    With a password, the account can sign in at once and no token is returned. Without one,
    returns an invitation token (signed with settings.secret_key, which is then required; see
    set_password_url) with which the person chooses a password. Raises InvalidInput (email,
    name, password) or Conflict when the address already has an account.
    """
    if password is None and settings is None:
        raise TypeError("create_staff without a password needs the settings to sign the token")
    address = passwords.clean_email(email)
    clean_name = " ".join((name or "").split()) or None
    if clean_name is not None and len(clean_name) > 200:
        raise InvalidInput("name", "Le nom dépasse 200 caractères.")
    if password is not None:
        passwords.check_new_password(password)
    conflict = Conflict(
        f"Un compte d’organisateur existe déjà pour «\u00a0{address}\u00a0».",
        field="email",
        code="staff_exists",
    )
    if _staff_by_email(db, address) is not None:
        raise conflict
    staff = AgencyStaff(
        agency_id=agency_id,
        email=address,
        name=clean_name,
        password_hash=passwords.hash_password(password) if password is not None else None,
        is_active=True,
    )
    try:
        with db.begin_nested():
            db.add(staff)
            db.flush()
    except IntegrityError as exc:
        raise conflict from exc
    if settings is None or password is not None:
        return staff, None
    return staff, invitation_token(staff, settings)


def authenticate_staff(db: Session, *, email: str, password: str) -> AgencyStaff:
    """The active staff account behind an address and password, with its agency.

    Raises Unauthorized with one generic French message whatever went wrong (unknown address,
    wrong password, no password chosen yet, account disabled), after the same argon2 work.
    """
    if not email.strip():
        raise InvalidInput("email", "Indiquez votre adresse e-mail.")
    if not password:
        raise InvalidInput("password", "Indiquez votre mot de passe.")
    staff = _staff_by_email(db, passwords.lookup_email(email)[:254])
    matches, new_hash = passwords.verify_password(
        staff.password_hash if staff is not None else None, password
    )
    if staff is None or not matches or not staff.is_active:
        raise Unauthorized(SIGN_IN_FAILED, code="sign_in_failed")
    if new_hash is not None:
        staff.password_hash = new_hash
    staff.last_login_at = utcnow()
    db.flush()
    return staff


def staff_of_session(db: Session, staff_id: int | None, stamp: object) -> AgencyStaff | None:
    """The signed-in staff member with their agency, or None when the session is empty, the
    account is gone or disabled, or the password changed since the session was opened."""
    if staff_id is None:
        return None
    staff = db.scalars(
        select(AgencyStaff)
        .where(AgencyStaff.id == staff_id)
        .options(joinedload(AgencyStaff.agency))
    ).first()
    if staff is None or not staff.is_active:
        return None
    if not passwords.stamp_matches(staff.password_hash, stamp):
        return None
    return staff


# --- Invitation and password reset -------------------------------------------------------------


def set_password_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url}{SET_PASSWORD_PATH}?token={token}"


def invitation_token(staff: AgencyStaff, settings: Settings) -> str:
    return passwords.password_link_token(
        settings.secret_key, INVITATION_SALT, staff.id, staff.password_hash
    )


def reset_token(staff: AgencyStaff, settings: Settings) -> str:
    return passwords.password_link_token(
        settings.secret_key, RESET_SALT, staff.id, staff.password_hash
    )


def invite_staff(
    db: Session,
    *,
    agency_slug: str,
    email: str,
    name: str | None,
    settings: Settings,
    env: Environment | None = None,
) -> tuple[AgencyStaff, str]:
    """Create a staff account without a password and queue an invitation mail.

    Returns the account and the link to choose a password (valid seven days, single use), for
    the command line to print. Raises NotFound for an unknown agency, InvalidInput or Conflict
    as create_staff does.
    """
    agency = get_agency_by_slug(db, agency_slug)
    staff, token = create_staff(db, agency_id=agency.id, email=email, name=name, settings=settings)
    url = set_password_url(settings, token or invitation_token(staff, settings))
    STAFF_INVITATION.queue(
        db,
        to=staff.email,
        context=StaffInvitation(
            staff=staff,
            agency=agency,
            set_password_url=url,
            valid_days=INVITATION_MAX_AGE_SECONDS // 86400,
            base_url=settings.base_url,
        ),
        env=env,
    )
    db.flush()
    return staff, url


def request_staff_password_reset(
    db: Session, *, email: str, settings: Settings, env: Environment | None = None
) -> None:
    """Queue a reset link for the active staff account with this address, if there is one.

    Says nothing either way; raises InvalidInput only for an empty or malformed address.
    """
    staff = _staff_by_email(db, passwords.clean_email(email))
    if staff is None or not staff.is_active:
        return
    STAFF_PASSWORD_RESET.queue(
        db,
        to=staff.email,
        context=StaffPasswordReset(
            staff=staff,
            reset_url=set_password_url(settings, reset_token(staff, settings)),
            valid_minutes=RESET_MAX_AGE_SECONDS // 60,
            base_url=settings.base_url,
        ),
        env=env,
    )
    db.flush()


def check_staff_token(db: Session, *, token: str, settings: Settings) -> AgencyStaff:
    """The staff account a reset or invitation token is for.

    Raises InvalidInput("token") when the token is forged, malformed, too old (an hour for a
    reset, seven days for an invitation), already used (the password changed since), or the
    account is disabled.
    """
    invalid = InvalidInput("token", LINK_INVALID, code="invalid_token")
    claims = None
    for salt, max_age in (
        (RESET_SALT, RESET_MAX_AGE_SECONDS),
        (INVITATION_SALT, INVITATION_MAX_AGE_SECONDS),
    ):
        try:
            claims = passwords.read_password_link_token(
                settings.secret_key, salt, token, max_age=max_age
            )
        except passwords.LinkExpired as exc:
            raise invalid from exc
        if claims is not None:
            break
    if claims is None:
        raise invalid
    staff = db.get(AgencyStaff, claims[0])
    if (
        staff is None
        or not staff.is_active
        or not passwords.stamp_matches(staff.password_hash, claims[1])
    ):
        raise invalid
    return staff


def reset_staff_password(
    db: Session, *, token: str, new_password: str, settings: Settings
) -> AgencyStaff:
    """Set a password from a reset or invitation link; the link then stops working."""
    staff = check_staff_token(db, token=token, settings=settings)
    passwords.check_new_password(new_password)
    staff.password_hash = passwords.hash_password(new_password)
    db.flush()
    return staff


# --- Back office: the dashboard ----------------------------------------------------------------


@dataclass(frozen=True)
class DashboardRow:
    event: Event
    seats_taken: int
    waitlist_length: int
    state: RegistrationState


def agency_dashboard(
    db: Session, *, agency_id: int, now: datetime, limit: int = DASHBOARD_LIMIT
) -> dict[str, list[DashboardRow]]:
    """An agency's events in three lists: "upcoming" (not over yet, soonest first), "past"
    (over, latest first) and "cancelled" (latest first), each at most `limit` long.

    Four queries whatever the number of events: one per list, and one grouped count of the
    waiting lists. Events come without their sectors or agency loaded.
    """
    live = Event.status != "cancelled"
    sections = {
        "upcoming": select(Event)
        .where(live, Event.ends_at > now)
        .order_by(Event.starts_at, Event.id),
        "past": select(Event)
        .where(live, Event.ends_at <= now)
        .order_by(Event.starts_at.desc(), Event.id.desc()),
        "cancelled": select(Event)
        .where(Event.status == "cancelled")
        .order_by(Event.starts_at.desc(), Event.id.desc()),
    }
    events = {
        name: list(db.scalars(statement.where(Event.agency_id == agency_id).limit(limit)))
        for name, statement in sections.items()
    }
    ids = [event.id for section in events.values() for event in section]
    waiting: dict[int, int] = {}
    if ids:
        rows = db.execute(
            select(Registration.event_id, func.count())
            .where(Registration.event_id.in_(ids), Registration.status == "waitlisted")
            .group_by(Registration.event_id)
        )
        waiting = {event_id: count for event_id, count in rows}
    return {
        name: [
            DashboardRow(
                event=event,
                seats_taken=event.seats_taken + event.remote_seats_taken,
                waitlist_length=waiting.get(event.id, 0),
                state=registration_state(event, now),
            )
            for event in section
        ]
        for name, section in events.items()
    }


# --- Back office: one event --------------------------------------------------------------------


@dataclass(frozen=True)
class EventRegistrants:
    """An event's registrations as the back office shows them."""

    seated: list[Registration]  # confirmed, attended, absent: in order of registration
    waitlisted: list[Registration]  # in order of position (on-site list first, then remote)
    cancelled: list[Registration]


def event_registrants(db: Session, *, event_id: int, agency_id: int) -> EventRegistrants:
    """Raises NotFound for another agency's event."""
    registrations = list_registrants(db, event_id=event_id, agency_id=agency_id)
    return EventRegistrants(
        seated=[r for r in registrations if r.status in ATTENDANCE_STATUSES],
        waitlisted=sorted(
            (r for r in registrations if r.status == "waitlisted"),
            key=lambda r: (r.attendance != "onsite", r.waitlist_position or 0, r.id),
        ),
        cancelled=[r for r in registrations if r.status == "cancelled"],
    )


def _local_naive(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def duplicate_event(
    db: Session, *, event_id: int, agency_id: int, starts_at: datetime, now: datetime | None = None
) -> Event:
    """A copy of an agency's event on a new date: the same fields, the same clock times and
    duration, the registration window moved by as much; no seat taken, revision 1, not linked
    to a feed, registrations open.

    The shift is made on the wall clock of the event's time zone, so that a 9:30 event copied
    across a change of summer time still starts at 9:30. Raises NotFound for another agency's
    event, InvalidInput("starts_at") for a date in the past, and InvalidInput as create_event
    does when the copy would be inconsistent.
    """
    now = now or utcnow()
    source = get_event(db, event_id, agency_id=agency_id)
    if starts_at.tzinfo is None:
        raise InvalidInput("starts_at", "La date du nouvel événement doit avoir un fuseau horaire.")
    if starts_at <= now:
        raise InvalidInput("starts_at", "Choisissez une date à venir pour le nouvel événement.")
    tz = ZoneInfo(source.timezone)
    shift = _local_naive(starts_at, tz) - _local_naive(source.starts_at, tz)

    def moved(moment: datetime | None) -> datetime | None:
        if moment is None:
            return None
        return (_local_naive(moment, tz) + shift).replace(tzinfo=tz)

    fields: dict[str, Any] = {
        "title": source.title,
        "description": source.description_html,
        "type": source.type,
        "sectors": list(source.sectors),
        "format": source.format,
        "starts_at": moved(source.starts_at),
        "ends_at": moved(source.ends_at),
        "venue": {
            "name": source.venue_name,
            "address": source.venue_address,
            "postal_code": source.venue_postal_code,
            "city": source.venue_city,
            "lat": source.venue_lat,
            "lon": source.venue_lon,
        },
        "online_url": source.online_url,
        "capacity": source.capacity,
        "remote_capacity": source.remote_capacity,
        "waitlist": source.waitlist,
        "registration_opens_at": moved(source.registration_opens_at),
        "registration_closes_at": moved(source.registration_closes_at),
        "job_offers": source.job_offers,
        "accessibility_notes": source.accessibility_notes,
    }
    copy = create_event(db, agency_id=agency_id, fields=fields)
    copy.timezone = source.timezone
    db.flush()
    return copy


def _owned_locked(db: Session, event_id: int, agency_id: int) -> Event:
    event = lock_event(db, event_id)
    if event.agency_id != agency_id:
        raise NotFound("Événement introuvable.", field="id")
    return event


def set_registration_closed(
    db: Session, *, event_id: int, agency_id: int, closed: bool, now: datetime | None = None
) -> Event:
    """Close or reopen registrations by hand. Not a change calendars see: no new revision.

    Needs a transaction opened with lock=True. Raises NotFound for another agency's event, and
    Conflict with the reason when a cancelled event is touched or reopening cannot open
    anything (the event started, or the closing date of the window is past).
    """
    now = now or utcnow()
    event = _owned_locked(db, event_id, agency_id)
    if event.status == "cancelled":
        raise Conflict("Cet événement est annulé\u00a0: ses inscriptions restent fermées.")
    if not closed:
        if event.starts_at <= now:
            raise Conflict("Cet événement a déjà commencé\u00a0: impossible de rouvrir.")
        if event.registration_closes_at is not None and event.registration_closes_at <= now:
            raise Conflict(
                "La date de clôture des inscriptions est passée\u00a0: modifiez-la dans le "
                "formulaire de l’événement pour rouvrir les inscriptions.",
                field="registration_closes_at",
            )
    if event.registration_closed != closed:
        event.registration_closed = closed
        event.updated_at = now
        db.flush()
    return event


def attendance_opens_at(event: Event) -> datetime:
    """Midnight of the event's first day, in Paris: attendance can be marked from then on."""
    day = event.starts_at.astimezone(PARIS).date()
    return datetime(day.year, day.month, day.day, tzinfo=PARIS)


def attendance_open(event: Event, now: datetime | None = None) -> bool:
    return event.status != "cancelled" and (now or utcnow()) >= attendance_opens_at(event)


def mark_attendance(
    db: Session,
    *,
    event_id: int,
    agency_id: int,
    registration_id: int,
    present: bool,
    now: datetime | None = None,
    by: str | None = None,
) -> Registration:
    """Mark a confirmed person present (attended) or absent, from the event's day on (Paris
    time). A mark can be changed again. The seat stays taken either way.

    Needs a transaction opened with lock=True (a person may cancel at the same moment).
    Raises NotFound for another agency's event or a registration of another event, and
    Conflict with the French reason for a waitlisted or cancelled registration, a cancelled
    event, or a day before the event's.
    """
    event = _owned_locked(db, event_id, agency_id)
    registration = db.scalars(
        select(Registration)
        .where(Registration.id == registration_id, Registration.event_id == event.id)
        .execution_options(populate_existing=True)
    ).first()
    if registration is None:
        raise NotFound("Inscription introuvable.", field="registration")
    if event.status == "cancelled":
        raise Conflict("Cet événement est annulé\u00a0: la présence ne se note pas.")
    if registration.status not in ATTENDANCE_STATUSES:
        label = REGISTRATION_STATUSES.get(registration.status, registration.status)
        raise Conflict(
            "Seules les inscriptions confirmées se pointent\u00a0; celle-ci est "
            f"«\u00a0{label}\u00a0».",
            field="registration",
        )
    if not attendance_open(event, now):
        raise Conflict("La présence se note à partir du jour de l’événement.", field="registration")
    status = "attended" if present else "absent"
    if registration.status != status:
        moment = now or utcnow()
        registration.status = status
        registration.updated_at = moment
        # The same record as a scan at the door (events_app.checkins): when and by whom.
        registration.checked_in_at = moment if present else None
        registration.checked_in_by = by[:254] if present and by else None
        db.flush()
    registration.event = event
    return registration


# --- Back office: feeds ------------------------------------------------------------------------


def feeds_with_runs(
    db: Session, *, agency_id: int, runs_per_feed: int = RUNS_PER_FEED
) -> list[tuple[Feed, list[ImportRun]]]:
    """An agency's feeds, each with its latest import runs (newest first)."""
    return [
        (feed, feed_runs(db, feed.id, limit=runs_per_feed))
        for feed in list_feeds(db, agency_id=agency_id)
    ]
