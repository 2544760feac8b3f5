"""Mail delivery from the outbox: a log backend (the default) and an SMTP backend.

Mails are queued in the outbox by events_app.notifications inside the transaction that caused
them. deliver_outbox sends them one at a time, each in three steps, so that no database lock
is held while a mail server answers (or does not):

1. claim: a short write transaction moves the mail's next_attempt_at forward, with a
   conditional UPDATE that only one process can win (two schedulers never send the same mail);
2. send, with no transaction open;
3. record: another short transaction marks the mail sent, or schedules its next attempt with
   a growing delay, or marks it failed once it has been retried for a day.

A failing mail (a server that refuses it, a header the email library refuses) never blocks the
others, and a sent mail is never sent again. A process that dies between the claim and the
record leaves the mail claimed; it is tried again once the claim runs out (CLAIM_TIME).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from events_app.db import Database, utcnow
from events_app.formatting import one_line
from events_app.models import OutboxMessage
from events_app.settings import Settings

log = logging.getLogger("events_app.mail")

# 1, 2, 4 … minutes between attempts, at most 6 hours; given up a day after the mail was queued
# (12 attempts).
FIRST_RETRY_DELAY = timedelta(minutes=1)
MAX_RETRY_DELAY = timedelta(hours=6)
GIVE_UP_AFTER = timedelta(days=1)
# How long a claimed mail stays with the process that claimed it; beyond it, the sender is
# taken for dead and the mail is due again. Longer than any send (the SMTP timeout is 10 s).
CLAIM_TIME = timedelta(minutes=10)


@dataclass(frozen=True)
class OutgoingMail:
    """A claimed mail, detached from the database while it is sent."""

    id: int
    kind: str
    to_address: str
    subject: str
    body_text: str
    body_html: str | None
    ics: str | None
    ics_method: str | None


class MailBackend(Protocol):
    def send(self, message: OutgoingMail) -> None:
        """Send one message or raise."""


class LogBackend:
    """Leaves the mail in the outbox table and writes a line to the log (no personal data)."""

    def send(self, message: OutgoingMail) -> None:
        log.info("mail %s (%s) kept in the outbox", message.id, message.kind)


def build_email(message: OutgoingMail, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to_address
    # Subjects are built on one line when queued; a mail queued before that rule is folded here.
    email["Subject"] = one_line(message.subject)
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip(">") or None)
    email.set_content(message.body_text)
    if message.body_html:
        email.add_alternative(message.body_html, subtype="html")
    if message.ics:
        # Mail clients update the calendar from a text/calendar part carrying the method.
        email.add_attachment(
            message.ics.encode(),
            maintype="text",
            subtype="calendar",
            filename="invitation.ics",
            params={"method": message.ics_method or "PUBLISH"},
        )
    return email


class SMTPBackend:
    def __init__(self, settings: Settings, *, timeout: float = 10.0) -> None:
        self.settings = settings
        self.timeout = timeout

    def send(self, message: OutgoingMail) -> None:
        settings = self.settings
        assert settings.smtp_host is not None  # noqa: S101 - chosen only when configured
        # Built before connecting: a mail the email library refuses costs no connection.
        email = build_email(message, settings.mail_from)
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=self.timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user and settings.smtp_password:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(email)


def backend_from_settings(settings: Settings) -> MailBackend:
    return SMTPBackend(settings) if settings.smtp_host else LogBackend()


# --- The three steps, each a function of a Session (the caller owns the transaction) ---------


def retry_delay(attempts: int) -> timedelta:
    """The wait after the attempts-th failed attempt: 1, 2, 4 … minutes, at most 6 hours."""
    delay: timedelta = FIRST_RETRY_DELAY * 2 ** min(max(attempts - 1, 0), 20)
    return min(delay, MAX_RETRY_DELAY)


def claim_mail(db: Session, *, now: datetime, candidates: int = 20) -> OutgoingMail | None:
    """Claim the oldest due mail for this process, or None when none is due.

    The claim is a conditional UPDATE: of two processes reading the same due mail, only the
    first moves its next_attempt_at forward (PostgreSQL re-checks the condition after the
    row lock; SQLite runs one write transaction at a time), the other gets no row and tries
    the next candidate.
    """
    due = db.scalars(
        select(OutboxMessage.id)
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(candidates)
    ).all()
    for mail_id in due:
        claimed = db.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == mail_id,
                OutboxMessage.status == "pending",
                OutboxMessage.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + CLAIM_TIME, attempts=OutboxMessage.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            row = db.get_one(OutboxMessage, mail_id, populate_existing=True)
            return OutgoingMail(
                id=row.id,
                kind=row.kind,
                to_address=row.to_address,
                subject=row.subject,
                body_text=row.body_text,
                body_html=row.body_html,
                ics=row.ics,
                ics_method=row.ics_method,
            )
    return None


def record_sent(db: Session, mail_id: int, *, now: datetime) -> None:
    db.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == mail_id)
        .values(status="sent", sent_at=now, last_error=None)
        .execution_options(synchronize_session=False)
    )


def record_failure(db: Session, mail_id: int, error: str, *, now: datetime) -> str:
    """Schedule the next attempt, or give the mail up a day after it was queued.

    Returns the mail's new status: "pending" or "failed". A mail deleted meanwhile (its
    person's data erased) is "gone".
    """
    row = db.get(OutboxMessage, mail_id, populate_existing=True)
    if row is None:
        return "gone"
    row.last_error = error[:1000]
    next_attempt = now + retry_delay(row.attempts)
    if next_attempt - row.created_at > GIVE_UP_AFTER:
        row.status = "failed"
    else:
        row.next_attempt_at = next_attempt
    db.flush()
    return row.status


def delete_mails_to(db: Session, address: str) -> int:
    """Delete every mail addressed to this address, sent or not (the person's data goes).

    A mail being sent at this moment may still arrive; it is not recorded afterwards."""
    result = db.execute(
        delete(OutboxMessage)
        .where(func.lower(OutboxMessage.to_address) == address.strip().lower())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def purge_old_mails(db: Session, *, retention_days: int, now: datetime | None = None) -> int:
    """Delete the sent and given-up mails queued more than retention_days ago (they hold
    names, addresses and links). Pending mails stay until they are sent or given up."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    result = db.execute(
        delete(OutboxMessage)
        .where(OutboxMessage.status.in_(("sent", "failed")), OutboxMessage.created_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Delivery:
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return f"{self.sent} sent, {self.retrying + self.failed} failed"


def deliver_outbox(
    database: Database, backend: MailBackend, *, now: datetime | None = None, limit: int = 200
) -> Delivery:
    """Send up to `limit` due mails, one at a time, each outside any transaction.

    `now` is the delivery's clock (the current time by default; tests move it forward).
    """
    sent = retrying = failed = 0
    while sent + retrying + failed < limit:
        moment = now or utcnow()
        with database.transaction(lock=True) as db:
            mail = claim_mail(db, now=moment)
        if mail is None:
            break
        try:
            backend.send(mail)
        except Exception as exc:  # whatever one mail raises must not stop the others
            error = f"{type(exc).__name__}: {exc}"
            with database.transaction(lock=True) as db:
                status = record_failure(db, mail.id, error, now=now or utcnow())
            if status == "failed":
                failed += 1
                log.error("mail %s (%s) given up: %s", mail.id, mail.kind, type(exc).__name__)
            else:
                retrying += 1
                log.warning("mail %s not sent (%s), will retry", mail.id, type(exc).__name__)
            continue
        with database.transaction(lock=True) as db:
            record_sent(db, mail.id, now=now or utcnow())
        sent += 1
    return Delivery(sent, retrying, failed)
