"""Mail delivery from the outbox: a log backend (the default) and an SMTP backend.

Mails are queued in the outbox by events_app.notifications inside the transaction that
caused them; deliver_outbox sends what is pending and keeps what fails for the next run.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from events_app.db import utcnow
from events_app.models import OutboxMessage
from events_app.settings import Settings

log = logging.getLogger("events_app.mail")
MAX_ATTEMPTS = 20


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
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to_address
    email["Subject"] = message.subject
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


def deliver_outbox(db: Session, backend: MailBackend, *, limit: int = 200) -> tuple[int, int]:
    """Send pending mails; return (sent, failed). Failures stay queued for the next run.

    Rows are claimed with SKIP LOCKED on PostgreSQL, so two workers never send the same mail.
    """
    pending = db.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.attempts < MAX_ATTEMPTS)
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    sent = failed = 0
    for message in pending:
        message.attempts += 1
        try:
            backend.send(message)
        except (OSError, smtplib.SMTPException) as exc:
            message.last_error = f"{type(exc).__name__}: {exc}"[:1000]
            failed += 1
            log.warning("mail %s not sent (%s), will retry", message.id, type(exc).__name__)
            continue
        message.sent_at = utcnow()
        message.last_error = None
        sent += 1
    db.flush()
    return sent, failed
