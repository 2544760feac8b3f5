"""Every mail the product sends, declared once, and queued in the caller's transaction.

A mail kind is one declaration: `@mail("name")` on the function that builds its subject from
a typed context (a dataclass), plus its templates `templates/mail/<name>.txt` and `.html`,
which receive the context's fields. `KIND.queue(db, to=..., context=...)` renders it into the
outbox. A mail is queued in the same transaction as the change it reports, so a rolled-back
registration never sends one, and a committed one always will (see events_app.mail).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any, Generic, Literal, TypeVar

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import delete, func
from sqlalchemy.orm import Session

from events_app.calendars import invite_ics
from events_app.checkin_codes import checkin_qr_svg, format_checkin_code
from events_app.db import utcnow
from events_app.events import html_to_text, one_line, sanitise_html
from events_app.formatting import fr_date, fr_datetime, fr_paris_time, fr_time, fr_zone
from events_app.models import Agency, AgencyStaff, Alert, Event, OutboxMessage, Registration, Seeker
from events_app.resources import TEMPLATES_DIR
from events_app.settings import Settings
from events_app.vocab import EVENT_TYPES, FORMATS

MAX_SUBJECT = 300  # the outbox column


def mail_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR / "mail"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(
        fr_datetime=fr_datetime,
        fr_date=fr_date,
        fr_time=fr_time,
        fr_zone=fr_zone,
        fr_paris_time=fr_paris_time,
        checkin_code=format_checkin_code,
        checkin_qr=checkin_qr_svg,
    )
    env.globals.update(EVENT_TYPES=EVENT_TYPES, FORMATS=FORMATS)
    return env


def safe_subject(subject: str) -> str:
    """A subject any mail header takes: on one line (a line break in a header makes the email
    library refuse the whole mail), within the outbox column."""
    return one_line(subject)[:MAX_SUBJECT]


@dataclass(frozen=True)
class MailContext:
    """Base of the typed contexts: the templates receive the dataclass's fields."""

    def template_values(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


C = TypeVar("C", bound=MailContext)


@dataclass(frozen=True)
class MailKind(Generic[C]):
    """One kind of mail: its name (its templates, and the outbox's `kind`) and its subject."""

    name: str
    subject: Callable[[C], str]

    def queue(
        self,
        db: Session,
        *,
        to: str,
        context: C,
        env: Environment | None = None,
        registration_id: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> OutboxMessage:
        """Render the mail into the outbox (not sent here; see events_app.mail)."""
        env = env or mail_environment()
        values = context.template_values()
        message = OutboxMessage(
            to_address=to,
            subject=safe_subject(self.subject(context)),
            body_text=env.get_template(f"{self.name}.txt").render(values),
            body_html=env.get_template(f"{self.name}.html").render(values),
            kind=self.name,
            registration_id=registration_id,
        )
        if headers:
            message.headers = headers
        db.add(message)
        return message


MAILS: dict[str, MailKind[Any]] = {}


def mail(name: str) -> Callable[[Callable[[C], str]], MailKind[C]]:
    """Declare a mail kind; the decorated function builds its subject from its context."""

    def declare(subject: Callable[[C], str]) -> MailKind[C]:
        if name in MAILS:
            raise ValueError(f"mail {name!r} declared twice")
        kind = MailKind(name, subject)
        MAILS[name] = kind
        return kind

    return declare


# --- The contexts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistrationMail(MailContext):
    """A mail about one registration; the event needs its agency loaded."""

    registration: Registration
    event: Event
    manage_url: str
    event_url: str
    # The event's description as plain text (.txt) and as sanitised HTML (.html).
    description: str
    description_html: str


@dataclass(frozen=True)
class AccountConfirmation(MailContext):
    seeker: Seeker
    confirm_url: str
    valid_days: int
    base_url: str


@dataclass(frozen=True)
class AccountExists(MailContext):
    """Someone tried to create an account with an address that already has one."""

    seeker: Seeker
    base_url: str


@dataclass(frozen=True)
class SeekerPasswordReset(MailContext):
    seeker: Seeker
    reset_url: str
    valid_minutes: int
    base_url: str


@dataclass(frozen=True)
class StaffInvitation(MailContext):
    staff: AgencyStaff
    agency: Agency
    set_password_url: str
    valid_days: int
    base_url: str


@dataclass(frozen=True)
class StaffPasswordReset(MailContext):
    staff: AgencyStaff
    reset_url: str
    valid_minutes: int
    base_url: str


@dataclass(frozen=True)
class AlertConfirmation(MailContext):
    alert: Alert
    filters: str
    frequency: str
    confirm_url: str
    valid_days: int
    base_url: str


@dataclass(frozen=True)
class AlertDigest(MailContext):
    """The new events of one alert; hits are search hits (event, distance)."""

    hits: list[Any]
    # Matching new events beyond those listed, and the search that shows them all.
    more: int
    search_url: str
    filters: str
    frequency: str
    manage_url: str
    unsubscribe_url: str
    base_url: str


# --- The mails ---------------------------------------------------------------------------------


@mail("confirmed")
def CONFIRMED(c: RegistrationMail) -> str:
    return f"Inscription confirmée : {c.event.title}"


@mail("waitlisted")
def WAITLISTED(c: RegistrationMail) -> str:
    return f"Liste d'attente : {c.event.title}"


@mail("promoted")
def PROMOTED(c: RegistrationMail) -> str:
    return f"Une place s'est libérée : {c.event.title}"


@mail("cancelled")
def CANCELLED(c: RegistrationMail) -> str:
    return f"Inscription annulée : {c.event.title}"


@mail("event_changed")
def EVENT_CHANGED(c: RegistrationMail) -> str:
    return f"Changement de date, d'horaire ou de lieu : {c.event.title}"


@mail("event_cancelled")
def EVENT_CANCELLED(c: RegistrationMail) -> str:
    return f"Événement annulé : {c.event.title}"


@mail("reminder")
def REMINDER(c: RegistrationMail) -> str:
    return f"Rappel : {c.event.title}, demain"


@mail("links_resent")
def LINKS_RESENT(c: RegistrationMail) -> str:
    return f"Votre lien d'inscription : {c.event.title}"


@mail("confirm_account")
def CONFIRM_ACCOUNT(c: AccountConfirmation) -> str:
    return "Confirmez votre adresse pour ouvrir votre compte"


@mail("account_exists")
def ACCOUNT_EXISTS(c: AccountExists) -> str:
    return "Une demande de compte avec votre adresse"


@mail("password_reset")
def PASSWORD_RESET(c: SeekerPasswordReset) -> str:
    return "Réinitialiser votre mot de passe"


@mail("staff_invitation")
def STAFF_INVITATION(c: StaffInvitation) -> str:
    return "Votre accès à l’espace organisateur"


@mail("staff_password_reset")
def STAFF_PASSWORD_RESET(c: StaffPasswordReset) -> str:
    return "Réinitialiser votre mot de passe d’organisateur"


@mail("alert_confirm")
def ALERT_CONFIRM(c: AlertConfirmation) -> str:
    return "Confirmez votre alerte Événements emploi"


@mail("alert")
def ALERT(c: AlertDigest) -> str:
    count = len(c.hits)
    if count == 1:
        return "1 nouvel événement pour votre alerte"
    return f"{count} nouveaux événements pour votre alerte"


def delete_mails_to(db: Session, address: str) -> int:
    """Delete every mail written to an address, sent or not (they hold the person's name and
    links): when the person deletes their account."""
    result = db.execute(
        delete(OutboxMessage).where(func.lower(OutboxMessage.to_address) == address.lower())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def purge_old_mails(db: Session, *, retention_days: int) -> int:
    """Delete the mails sent (or given up) more than retention_days ago: the outbox is a
    queue, not an archive of what was written to whom."""
    cutoff = utcnow() - timedelta(days=retention_days)
    result = db.execute(
        delete(OutboxMessage).where(
            OutboxMessage.status.in_(("sent", "failed")), OutboxMessage.created_at < cutoff
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


class Notifier:
    """Queues the registration mails of one transaction (RegistrationMail contexts built from
    the registration). Needs the events' agency loaded."""

    def __init__(self, db: Session, settings: Settings, env: Environment | None = None) -> None:
        self.db = db
        self.settings = settings
        self.env = env or mail_environment()

    def manage_url(self, registration: Registration) -> str:
        return f"{self.settings.base_url}/inscriptions/{registration.token}"

    def event_url(self, event: Event) -> str:
        return f"{self.settings.base_url}/evenements/{event.id}"

    def _queue(
        self,
        kind: MailKind[RegistrationMail],
        registration: Registration,
        event: Event,
        *,
        ics_method: Literal["REQUEST", "CANCEL"] | None = None,
    ) -> OutboxMessage:
        context = RegistrationMail(
            registration=registration,
            event=event,
            manage_url=self.manage_url(registration),
            event_url=self.event_url(event),
            description=html_to_text(event.description_html or ""),
            description_html=sanitise_html(event.description_html or ""),
        )
        message = kind.queue(
            self.db,
            to=registration.email,
            context=context,
            env=self.env,
            registration_id=registration.id,
        )
        if ics_method is not None:
            message.ics = invite_ics(event, registration, self.settings, method=ics_method).decode()
            message.ics_method = ics_method
        return message

    def registration_confirmed(self, registration: Registration) -> None:
        self._queue(CONFIRMED, registration, registration.event, ics_method="REQUEST")

    def registration_waitlisted(self, registration: Registration) -> None:
        self._queue(WAITLISTED, registration, registration.event)

    def registration_promoted(self, registration: Registration) -> None:
        self._queue(PROMOTED, registration, registration.event, ics_method="REQUEST")

    def registration_cancelled(self, registration: Registration) -> None:
        self._queue(CANCELLED, registration, registration.event, ics_method="CANCEL")

    def event_changed(self, registration: Registration, event: Event) -> None:
        method: Literal["REQUEST"] | None = (
            "REQUEST" if registration.status == "confirmed" else None
        )
        self._queue(EVENT_CHANGED, registration, event, ics_method=method)

    def event_cancelled(self, registration: Registration, event: Event) -> None:
        self._queue(EVENT_CANCELLED, registration, event, ics_method="CANCEL")

    def links_resent(self, registration: Registration) -> None:
        self._queue(LINKS_RESENT, registration, registration.event)

    def reminder(self, registration: Registration, event: Event) -> None:
        self._queue(REMINDER, registration, event, ics_method="REQUEST")
