"""The mails the product sends, written to the outbox in the caller's transaction.

A mail is queued in the same transaction as the change it reports, so a rolled-back
registration never sends one, and a committed one always will (see events_app.mail).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import delete, func
from sqlalchemy.orm import Session

from events_app.calendars import invite_ics
from events_app.db import utcnow
from events_app.events import html_to_text, one_line
from events_app.formatting import fr_date, fr_datetime, fr_paris_time, fr_time, fr_zone
from events_app.models import Event, OutboxMessage, Registration
from events_app.resources import TEMPLATES_DIR
from events_app.settings import Settings
from events_app.vocab import EVENT_TYPES, FORMATS

MAX_SUBJECT = 300  # the outbox column
SUBJECTS = {
    "confirmed": "Inscription confirmée : {title}",
    "waitlisted": "Liste d'attente : {title}",
    "promoted": "Une place s'est libérée : {title}",
    "cancelled": "Inscription annulée : {title}",
    "event_changed": "Changement de date, d'horaire ou de lieu : {title}",
    "event_cancelled": "Événement annulé : {title}",
    "reminder": "Rappel : {title}, demain",
    "links_resent": "Votre lien d'inscription : {title}",
}


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
    )
    env.globals.update(EVENT_TYPES=EVENT_TYPES, FORMATS=FORMATS)
    return env


def queue_mail(
    db: Session,
    env: Environment,
    *,
    to: str,
    subject: str,
    template: str,
    context: dict[str, Any],
    kind: str,
    registration_id: int | None = None,
) -> OutboxMessage:
    """Render `template`.txt and `template`.html into an outbox message (not sent here).

    The subject is put on one line whatever the data holds: a line break in a header makes
    the email library refuse the whole mail.
    """
    message = OutboxMessage(
        to_address=to,
        subject=one_line(subject)[:MAX_SUBJECT],
        body_text=env.get_template(f"{template}.txt").render(context),
        body_html=env.get_template(f"{template}.html").render(context),
        kind=kind,
        registration_id=registration_id,
    )
    db.add(message)
    return message


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
    """Queues mails for one transaction. Needs the events' agency loaded."""

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
        kind: str,
        registration: Registration,
        event: Event,
        *,
        ics_method: Literal["REQUEST", "CANCEL"] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> OutboxMessage:
        context = {
            "registration": registration,
            "event": event,
            "manage_url": self.manage_url(registration),
            "event_url": self.event_url(event),
            "description": html_to_text(event.description_html or ""),
            **(extra or {}),
        }
        message = queue_mail(
            self.db,
            self.env,
            to=registration.email,
            subject=SUBJECTS[kind].format(title=event.title),
            template=kind,
            context=context,
            kind=kind,
            registration_id=registration.id,
        )
        if ics_method is not None:
            message.ics = invite_ics(event, registration, self.settings, method=ics_method).decode()
            message.ics_method = ics_method
        return message

    def registration_confirmed(self, registration: Registration) -> None:
        self._queue("confirmed", registration, registration.event, ics_method="REQUEST")

    def registration_waitlisted(self, registration: Registration) -> None:
        self._queue("waitlisted", registration, registration.event)

    def registration_promoted(self, registration: Registration) -> None:
        self._queue("promoted", registration, registration.event, ics_method="REQUEST")

    def registration_cancelled(self, registration: Registration) -> None:
        self._queue("cancelled", registration, registration.event, ics_method="CANCEL")

    def event_changed(self, registration: Registration, event: Event) -> None:
        method: Literal["REQUEST"] | None = (
            "REQUEST" if registration.status == "confirmed" else None
        )
        self._queue("event_changed", registration, event, ics_method=method)

    def event_cancelled(self, registration: Registration, event: Event) -> None:
        self._queue("event_cancelled", registration, event, ics_method="CANCEL")

    def links_resent(self, registration: Registration) -> None:
        self._queue("links_resent", registration, registration.event)

    def reminder(self, registration: Registration, event: Event) -> None:
        self._queue("reminder", registration, event, ics_method="REQUEST")
