"""Mail delivery from the outbox: a log backend (the default) and an SMTP backend.

Mails are queued in the outbox by events_app.notifications inside the transaction that
caused them; deliver_outbox sends what is due, each mail in its own step, and retries what
fails with growing delays.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from events_app.db import Database, utcnow
from events_app.models import OutboxMessage
from events_app.settings import Settings

log = logging.getLogger("events_app.mail")


class MailBackend(Protocol):
    def send(self, message: OutboxMessage) -> None:
        """Send one message or raise."""


class LogBackend:
    """Leaves the mail in the outbox table and writes a line to the log (no personal data).

    With a `mail_dir` (MAIL_DIR, when no SMTP_HOST is set), each mail is also written there as
    one .eml file, which any mail client opens, and the log line names the file.
    """

    def __init__(self, mail_dir: Path | None = None, sender: str = "") -> None:
        self.mail_dir = mail_dir
        self.sender = sender

    def send(self, message: OutboxMessage) -> None:
        if self.mail_dir is None:
            log.info("mail %s (%s) kept in the outbox", message.id, message.kind)
            return
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        stamp = utcnow().strftime("%Y%m%d-%H%M%S")
        path = self.mail_dir / f"{stamp}-{message.id}-{message.kind}.eml"
        # Written aside, then renamed: a mail client never opens half a file.
        partial = path.with_suffix(".eml.part")
        partial.write_bytes(build_email(message, self.sender).as_bytes())
        partial.replace(path)
        log.info("mail %s (%s) written to %s", message.id, message.kind, path)


def build_email(message: OutboxMessage, sender: str) -> EmailMessage:
    # List-Unsubscribe carries a long URL with no folding point: under the default 78-column
    # policy it would be turned into an encoded word, which mail clients do not read as a URL.
    email = (
        EmailMessage(policy=policy.default.clone(max_line_length=998))
        if message.headers
        else EmailMessage()
    )
    email["From"] = sender
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip(">") or None)
    for name, value in (message.headers or {}).items():
        email[name] = value
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

    def send(self, message: OutboxMessage) -> None:
        settings = self.settings
        assert settings.smtp_host is not None  # noqa: S101 - chosen only when configured
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=self.timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user and settings.smtp_password:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(build_email(message, settings.mail_from))


def backend_from_settings(settings: Settings) -> MailBackend:
    if settings.smtp_host:
        return SMTPBackend(settings)
    return LogBackend(settings.mail_dir, settings.mail_from)


# Delivery in steps, so that no database lock is held while a mail server is talked to and
# one mail that fails never holds back the others:
#   1. claim: one short write transaction marks up to `limit` due mails "sending" until
#      now + CLAIM_SECONDS (a sender that dies mid-way leaves them to be claimed again then);
#   2. send each, with no transaction open;
#   3. record: one short transaction per mail marks it sent, or failed for good, or pending
#      again with a later next_attempt_at.
CLAIM_SECONDS = 300
FIRST_RETRY_SECONDS = 60
MAX_RETRY_SECONDS = 3600
# A mail still failing this long after it was queued is given up (status "failed").
GIVE_UP_AFTER = timedelta(days=1)


class PermanentFailure(Exception):
    """A mail that no retry can send: the email library refuses it, or the server answers 5xx."""


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, … minutes after the nth failed attempt, at most an hour apart."""
    return timedelta(
        seconds=min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)
    )


def claim_mails(db: Session, *, now: datetime, limit: int) -> list[int]:
    """Mark up to `limit` due mails as being sent (until now + CLAIM_SECONDS); their ids.

    Due: pending and past its next attempt, or claimed by a sender whose claim ran out. Rows
    are locked with SKIP LOCKED on PostgreSQL (SQLite's write transaction does the same), so
    two senders never claim one mail.
    """
    due = or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now)
    messages = db.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.status.in_(("pending", "sending")), due)
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for message in messages:
        message.status = "sending"
        message.attempts += 1
        message.next_attempt_at = now + timedelta(seconds=CLAIM_SECONDS)
    db.flush()
    return [message.id for message in messages]


def record_sent(db: Session, message_id: int, *, now: datetime) -> None:
    message = db.get(OutboxMessage, message_id)
    if message is not None:
        message.status, message.sent_at = "sent", now
        message.next_attempt_at, message.last_error = None, None


def record_failure(
    db: Session, message_id: int, error: str, *, now: datetime, permanent: bool
) -> str:
    """Mark a failed attempt: "failed" for good, or "pending" until the next try."""
    message = db.get(OutboxMessage, message_id)
    if message is None:
        return "gone"
    message.last_error = error[:1000]
    if permanent or now - message.created_at >= GIVE_UP_AFTER:
        message.status, message.next_attempt_at = "failed", None
    else:
        message.status = "pending"
        message.next_attempt_at = now + retry_delay(message.attempts)
    return message.status


@dataclass
class Delivery:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def deliver_outbox(
    database: Database,
    backend: MailBackend,
    *,
    limit: int = 200,
    clock: Callable[[], datetime] = utcnow,
) -> Delivery:
    """Send what is due, one mail at a time, outside any write lock (see above)."""
    with database.transaction(lock=True) as db:
        ids = claim_mails(db, now=clock(), limit=limit)
    done = Delivery()
    for message_id in ids:
        with database.transaction() as db:
            message = db.get(OutboxMessage, message_id)
            if message is not None:
                db.expunge(message)
        if message is None:
            continue
        try:
            send_one(backend, message)
        except PermanentFailure as exc:
            error, permanent = str(exc), True
        except (OSError, smtplib.SMTPException) as exc:
            error, permanent = f"{type(exc).__name__}: {exc}", False
        else:
            with database.transaction(lock=True) as db:
                record_sent(db, message_id, now=clock())
            done.sent += 1
            continue
        with database.transaction(lock=True) as db:
            status = record_failure(db, message_id, error, now=clock(), permanent=permanent)
        if status == "failed":
            done.failed += 1
            log.error("mail %s (%s) given up: %s", message_id, message.kind, error[:200])
        else:
            done.retried += 1
            log.warning(
                "mail %s (%s) not sent, will retry: %s", message_id, message.kind, error[:200]
            )
    return done


def send_one(backend: MailBackend, message: OutboxMessage) -> None:
    """Hand one mail to the backend; PermanentFailure when no retry can help: the server
    refuses this recipient, or the email library refuses to build the mail. Any other refusal
    (a relay answering 5xx to everything while it is misconfigured, say) is retried until
    GIVE_UP_AFTER, so that fixing the server loses no mail."""
    try:
        backend.send(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentFailure(f"{type(exc).__name__}: {exc}") from exc
    except (ValueError, TypeError, UnicodeError) as exc:
        # The email library refuses to build it (a header with a line break, …).
        raise PermanentFailure(f"{type(exc).__name__}: {exc}") from exc
