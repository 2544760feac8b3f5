"""Mail delivery from the outbox, through a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.orm import Session

from events_app.db import Database, utcnow
from events_app.mail import (
    Delivery,
    LogBackend,
    SMTPBackend,
    backend_from_settings,
    build_email,
    deliver_outbox,
)
from events_app.models import OutboxMessage
from events_app.notifications import Notifier
from events_app.registrations import Person, register
from events_app.settings import Settings
from tests.factories import make_agency, make_event
from tests.server import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []
        self.refuse = False

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refuse:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

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


def _queue_confirmation(database: Database, settings: Settings, title: str = "Forum") -> int:
    with database.transaction(lock=True) as db:
        agency, _ = make_agency(db)
        event = make_event(db, agency, title=title)
        register(
            db,
            event_id=event.id,
            person=Person(first_name="Zoé", last_name="Lefèvre", email="zoe@example.org"),
            notifier=Notifier(db, settings),
        )
        message = db.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
        assert message is not None
        return message.id


def _outbox(database: Database, message_id: int) -> OutboxMessage:
    with database.transaction() as db:
        message = db.get(OutboxMessage, message_id)
        assert message is not None
        db.expunge(message)
        return message


def _counts(done: Delivery) -> tuple[int, int, int]:
    return done.sent, done.retried, done.failed


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def test_smtp_backend_sends_text_html_and_invite(
    committed: Database, settings: Settings, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    smtp_settings = replace(settings, smtp_host="127.0.0.1", smtp_port=port)
    queued = _queue_confirmation(committed, smtp_settings, "Forum « Santé ; social », Lyon")
    assert _counts(deliver_outbox(committed, SMTPBackend(smtp_settings))) == (1, 0, 0)
    assert _outbox(committed, queued).sent_at is not None
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
    assert _counts(deliver_outbox(committed, SMTPBackend(smtp_settings))) == (0, 0, 0)


def test_an_absent_server_keeps_the_mail_and_retries_it_later(
    committed: Database, settings: Settings
) -> None:
    port = free_port()  # nothing listens there
    smtp_settings = replace(settings, smtp_host="127.0.0.1", smtp_port=port)
    queued = _queue_confirmation(committed, smtp_settings)
    clock = Clock()
    backend = SMTPBackend(smtp_settings, timeout=2)
    assert _counts(deliver_outbox(committed, backend, clock=clock)) == (0, 1, 0)
    kept = _outbox(committed, queued)
    assert kept.sent_at is None and kept.attempts == 1 and kept.last_error
    assert kept.status == "pending" and kept.next_attempt_at == clock.now + timedelta(minutes=1)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        # Not before its next attempt.
        assert _counts(deliver_outbox(committed, SMTPBackend(smtp_settings), clock=clock)) == (
            0,
            0,
            0,
        )
        clock.advance(minutes=1)
        assert _counts(deliver_outbox(committed, SMTPBackend(smtp_settings), clock=clock)) == (
            1,
            0,
            0,
        )
    finally:
        controller.stop()
    assert _outbox(committed, queued).status == "sent" and len(inbox.messages) == 1


def test_a_poisoned_mail_fails_alone_and_nothing_is_sent_twice(
    committed: Database, settings: Settings, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    smtp_settings = replace(settings, smtp_host="127.0.0.1", smtp_port=port)
    good = [_queue_confirmation(committed, smtp_settings, f"Forum {n}") for n in range(3)]
    # A row written before subjects were made safe: a line break in a header.
    with committed.transaction() as db:
        poisoned = OutboxMessage(
            to_address="x@example.org", subject="Salon\nBcc: victim@example.org", body_text="x"
        )
        db.add(poisoned)
        db.flush()
        poisoned_id = poisoned.id
    good += [_queue_confirmation(committed, smtp_settings, f"Atelier {n}") for n in range(3)]
    clock = Clock()
    backend = SMTPBackend(smtp_settings)
    assert _counts(deliver_outbox(committed, backend, clock=clock)) == (6, 0, 1)
    assert _outbox(committed, poisoned_id).status == "failed"
    assert "ValueError" in (_outbox(committed, poisoned_id).last_error or "")
    for _ in range(3):
        clock.advance(hours=2)
        assert _counts(deliver_outbox(committed, backend, clock=clock)) == (0, 0, 0)
    assert len(inbox.messages) == 6
    assert sorted(rcpt for _, [rcpt], _ in inbox.messages) == ["zoe@example.org"] * 6
    assert all(_outbox(committed, message_id).status == "sent" for message_id in good)


def test_a_transient_failure_is_retried_with_growing_delays_then_given_up(
    committed: Database, settings: Settings
) -> None:
    smtp_settings = replace(settings, smtp_host="127.0.0.1", smtp_port=free_port())
    queued = _queue_confirmation(committed, smtp_settings)
    clock = Clock()
    backend = SMTPBackend(smtp_settings, timeout=2)
    delays = []
    while (kept := _outbox(committed, queued)).status == "pending":
        deliver_outbox(committed, backend, clock=clock)
        kept = _outbox(committed, queued)
        if kept.next_attempt_at is not None:
            delays.append(kept.next_attempt_at - clock.now)
            clock.now = kept.next_attempt_at
    assert kept.status == "failed" and kept.sent_at is None
    assert delays[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert max(delays) == timedelta(hours=1)
    assert clock.now - kept.created_at >= timedelta(days=1)


def test_a_refused_recipient_is_given_up_at_once(
    committed: Database, settings: Settings, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    inbox.refuse = True
    smtp_settings = replace(settings, smtp_host="127.0.0.1", smtp_port=port)
    queued = _queue_confirmation(committed, smtp_settings)
    assert _counts(deliver_outbox(committed, SMTPBackend(smtp_settings))) == (0, 0, 1)
    assert _outbox(committed, queued).status == "failed"


def test_log_backend_keeps_mails_in_the_outbox(committed: Database, settings: Settings) -> None:
    queued = _queue_confirmation(committed, settings)
    assert _counts(deliver_outbox(committed, LogBackend())) == (1, 0, 0)
    assert _outbox(committed, queued).sent_at is not None


def test_subjects_are_one_line_whatever_the_title(db: Session, settings: Settings) -> None:
    agency, _ = make_agency(db)
    event = make_event(db, agency)
    # A title stored before titles were one line (the input now makes it one).
    event.title = "Salon\nemploi\u2028Lyon\r\x85fin"
    register(
        db,
        event_id=event.id,
        person=Person(first_name="Zoé", last_name="Lefèvre", email="zoe@example.org"),
        notifier=Notifier(db, settings),
    )
    message = db.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
    assert message is not None
    assert message.subject == "Inscription confirmée : Salon emploi Lyon fin"
    build_email(message, settings.mail_from)  # the email library accepts it


def test_without_smtp_each_mail_is_also_an_eml_file(
    committed: Database, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queued_id = _queue_confirmation(committed, settings)
    backend = backend_from_settings(replace(settings, smtp_host=None, mail_dir=tmp_path / "mails"))
    with caplog.at_level(logging.INFO, logger="events_app.mail"):
        assert _counts(deliver_outbox(committed, backend)) == (1, 0, 0)
    queued = _outbox(committed, queued_id)
    assert queued.sent_at is not None
    files = list((tmp_path / "mails").iterdir())
    assert [f.suffix for f in files] == [".eml"]
    assert str(files[0]) in caplog.text
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed["To"] == "zoe@example.org"
    assert parsed["Subject"] == queued.subject
    assert parsed["From"] == settings.mail_from
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None and "Zoé" in body.get_content()
    parts = [part.get_content_type() for part in parsed.walk()]
    assert "text/html" in parts and "text/calendar" in parts
