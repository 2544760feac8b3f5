"""Mail delivery from the outbox, through a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
from collections.abc import Iterator
from dataclasses import replace
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.orm import Session

from events_app.mail import LogBackend, SMTPBackend, deliver_outbox
from events_app.models import OutboxMessage
from events_app.notifications import Notifier, safe_subject
from events_app.registrations import Person, register
from events_app.settings import Settings
from tests.factories import make_agency, make_event
from tests.server import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _queue_confirmation(db: Session, settings: Settings) -> OutboxMessage:
    agency, _ = make_agency(db)
    event = make_event(db, agency, title="Forum « Santé ; social », Lyon")
    register(
        db,
        event_id=event.id,
        person=Person(first_name="Zoé", last_name="Lefèvre", email="zoe@example.org"),
        notifier=Notifier(db, settings),
    )
    message = db.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
    assert message is not None
    return message


def test_smtp_backend_sends_text_html_and_invite(
    db: Session, settings: Settings, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    smtp_settings = replace(settings, smtp_host="127.0.0.1", smtp_port=port)
    queued = _queue_confirmation(db, smtp_settings)
    assert deliver_outbox(db, SMTPBackend(smtp_settings)) == (1, 0)
    assert queued.sent_at is not None
    [(sender, recipients, message)] = inbox.messages
    assert recipients == ["zoe@example.org"]
    assert "no-reply@" in sender
    assert "Inscription confirmée" in str(
        email.header.make_header(email.header.decode_header(message["Subject"]))
    )
    types = [part.get_content_type() for part in message.walk()]
    assert {"text/plain", "text/html", "text/calendar"} <= set(types)
    calendar = next(part for part in message.walk() if part.get_content_type() == "text/calendar")
    assert calendar.get_param("method") == "REQUEST"
    assert b"BEGIN:VEVENT" in calendar.get_payload(decode=True)
    # Delivered mails are not sent twice.
    assert deliver_outbox(db, SMTPBackend(smtp_settings)) == (0, 0)


def test_a_refused_or_absent_server_keeps_the_mail_for_later(
    db: Session, settings: Settings
) -> None:
    port = free_port()  # nothing listens there
    smtp_settings = replace(settings, smtp_host="127.0.0.1", smtp_port=port)
    queued = _queue_confirmation(db, smtp_settings)
    assert deliver_outbox(db, SMTPBackend(smtp_settings, timeout=2)) == (0, 1)
    assert queued.sent_at is None and queued.attempts == 1 and queued.last_error
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert deliver_outbox(db, SMTPBackend(smtp_settings)) == (1, 0)
    finally:
        controller.stop()
    assert queued.sent_at is not None and len(inbox.messages) == 1


def test_log_backend_keeps_mails_in_the_outbox(db: Session, settings: Settings) -> None:
    queued = _queue_confirmation(db, settings)
    assert deliver_outbox(db, LogBackend()) == (1, 0)
    assert queued.sent_at is not None


def test_every_mail_is_one_declaration_with_its_two_templates() -> None:
    from events_app.notifications import MAILS
    from events_app.resources import TEMPLATES_DIR

    on_disk = {
        path.stem
        for path in (TEMPLATES_DIR / "mail").glob("*.txt")
        if not path.stem.startswith("_")
    }
    assert set(MAILS) == on_disk
    for name in MAILS:
        assert (TEMPLATES_DIR / "mail" / f"{name}.html").is_file(), name


def test_a_subject_is_one_line_whatever_the_stored_title(db: Session, settings: Settings) -> None:
    agency, _ = make_agency(db)
    event = make_event(db, agency)
    # Stored by a path that skipped input cleaning (an old row, a direct SQL fix).
    event.title = "Salon\nemploi\u2028Lyon\r\x85" + "x" * 180
    db.flush()
    register(
        db,
        event_id=event.id,
        person=Person(first_name="Zoé", last_name="Lefèvre", email="zoe@example.org"),
        notifier=Notifier(db, settings),
    )
    message = db.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
    assert message is not None
    assert message.subject.startswith("Inscription confirmée : Salon emploi Lyon x")
    assert message.subject.isprintable() and len(message.subject) <= 300
    assert len(safe_subject("Inscription : " + "é" * 400)) == 300
