"""Mail delivery from the outbox, through a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from email.message import Message
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from events_app.db import Database, utcnow
from events_app.mail import Delivery, LogBackend, OutgoingMail, SMTPBackend, deliver_outbox
from events_app.models import OutboxMessage
from events_app.notifications import Notifier, safe_subject
from events_app.registrations import Person, register
from events_app.settings import Settings
from tests.factories import make_agency, make_event
from tests.server import free_port, running_server


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


def _queue_confirmation(database: Database, settings: Settings, **event: Any) -> int:
    with database.transaction(lock=True) as db:
        agency, _ = make_agency(db)
        event_id = make_event(db, agency, title="Forum « Santé ; social », Lyon", **event).id
        register(
            db,
            event_id=event_id,
            person=Person(first_name="Zoé", last_name="Lefèvre", email="zoe@example.org"),
            notifier=Notifier(db, settings),
        )
        message = db.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
        assert message is not None
        return message.id


def _mail(database: Database, mail_id: int) -> OutboxMessage:
    with database.transaction() as db:
        return db.get_one(OutboxMessage, mail_id)


def test_smtp_backend_sends_text_html_and_invite(
    committed: Database, settings: Settings, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    smtp_settings = replace(settings, smtp_host="127.0.0.1", smtp_port=port)
    queued = _queue_confirmation(committed, smtp_settings)
    assert deliver_outbox(committed, SMTPBackend(smtp_settings)) == Delivery(sent=1)
    mail = _mail(committed, queued)
    assert mail.sent_at is not None and mail.status == "sent" and mail.attempts == 1
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
    assert deliver_outbox(committed, SMTPBackend(smtp_settings)) == Delivery()
    assert len(inbox.messages) == 1


def test_a_refused_or_absent_server_keeps_the_mail_for_later(
    committed: Database, settings: Settings
) -> None:
    port = free_port()  # nothing listens there
    smtp_settings = replace(settings, smtp_host="127.0.0.1", smtp_port=port)
    queued = _queue_confirmation(committed, smtp_settings)
    now = utcnow()
    assert deliver_outbox(committed, SMTPBackend(smtp_settings, timeout=2), now=now) == Delivery(
        retrying=1
    )
    mail = _mail(committed, queued)
    assert mail.sent_at is None and mail.attempts == 1 and mail.last_error
    assert mail.status == "pending" and mail.next_attempt_at == now + timedelta(minutes=1)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        # Not due yet: nothing is tried before the delay.
        assert deliver_outbox(committed, SMTPBackend(smtp_settings), now=now) == Delivery()
        later = now + timedelta(minutes=1)
        assert deliver_outbox(committed, SMTPBackend(smtp_settings), now=later) == Delivery(sent=1)
    finally:
        controller.stop()
    assert _mail(committed, queued).sent_at is not None and len(inbox.messages) == 1


def test_log_backend_keeps_mails_in_the_outbox(committed: Database, settings: Settings) -> None:
    queued = _queue_confirmation(committed, settings)
    assert deliver_outbox(committed, LogBackend()) == Delivery(sent=1)
    assert _mail(committed, queued).sent_at is not None


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


# --- Poisoned mails, backoff, two senders --------------------------------------------------------


class PickyInbox(Inbox):
    """A real SMTP server that refuses one recipient for good (550), as servers do."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address == self.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def _stored_mail(database: Database, *, to: str, subject: str) -> int:
    """A mail written straight into the outbox, as a row queued before today's rules would be."""
    with database.transaction() as db:
        message = OutboxMessage(to_address=to, subject=subject, body_text="Bonjour", kind="other")
        db.add(message)
        db.flush()
        return message.id


def test_poisoned_mails_beside_good_ones(committed: Database, settings: Settings) -> None:
    inbox = PickyInbox(refused="absent@example.org")
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    smtp_settings = replace(settings, smtp_host="127.0.0.1", smtp_port=port)
    try:
        good = [
            _stored_mail(committed, to=f"bon{n}@example.org", subject=f"Bon {n}") for n in (1, 2)
        ]
        # A line break in the subject: folded on the way out, delivered.
        folded = _stored_mail(committed, to="titre@example.org", subject="Salon\nemploi\u2028Lyon")
        # A header the email library refuses, and an address the server refuses.
        bad_header = _stored_mail(committed, to="x@example.org\nBcc: y@example.org", subject="X")
        refused = _stored_mail(committed, to="absent@example.org", subject="Absent")
        good.append(_stored_mail(committed, to="bon3@example.org", subject="Bon 3"))
        good.append(_queue_confirmation(committed, smtp_settings))

        backend = SMTPBackend(smtp_settings, timeout=5)
        now = utcnow()
        first = deliver_outbox(committed, backend, now=now)
        assert first == Delivery(sent=5, retrying=2)
        runs = 1
        # Move the clock to each next attempt, never sleeping, until both are given up.
        while True:
            with committed.transaction() as db:
                due = db.scalar(
                    select(func.min(OutboxMessage.next_attempt_at)).where(
                        OutboxMessage.status == "pending"
                    )
                )
            if due is None:
                break
            now = due
            outcome = deliver_outbox(committed, backend, now=now)
            assert outcome.sent == 0 and outcome.retrying + outcome.failed == 2
            runs += 1
            assert runs < 30
        for mail_id in (bad_header, refused):
            mail = _mail(committed, mail_id)
            assert mail.status == "failed" and mail.sent_at is None
            assert mail.attempts == runs and mail.attempts > 5
            assert mail.last_error
            assert now - mail.created_at <= timedelta(days=1, hours=6)
        assert "550" in (_mail(committed, refused).last_error or "")
        for mail_id in [*good, folded]:
            assert _mail(committed, mail_id).status == "sent"
            assert _mail(committed, mail_id).attempts == 1

        # A later run sends nothing again, however late.
        assert deliver_outbox(committed, backend, now=now + timedelta(days=30)) == Delivery()
    finally:
        controller.stop()
    recipients = sorted(r for _, rcpts, _ in inbox.messages for r in rcpts)
    expected = ["bon1@example.org", "bon2@example.org", "bon3@example.org", "titre@example.org"]
    assert recipients == sorted([*expected, "zoe@example.org"])
    [titled] = [m for _, rcpts, m in inbox.messages if rcpts == ["titre@example.org"]]
    assert str(email.header.make_header(email.header.decode_header(titled["Subject"]))) == (
        "Salon emploi Lyon"
    )


def test_two_senders_at_once_send_each_mail_once(committed: Database, settings: Settings) -> None:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    smtp_settings = replace(settings, smtp_host="127.0.0.1", smtp_port=port)
    ids = [_stored_mail(committed, to=f"p{n}@example.org", subject=f"M{n}") for n in range(30)]
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            runs = list(
                pool.map(lambda _: deliver_outbox(committed, SMTPBackend(smtp_settings)), range(3))
            )
    finally:
        controller.stop()
    assert sum(run.sent for run in runs) == 30
    assert sorted(r for _, rcpts, _ in inbox.messages for r in rcpts) == sorted(
        f"p{n}@example.org" for n in range(30)
    )
    assert all(_mail(committed, mail_id).attempts == 1 for mail_id in ids)


class GatedBackend:
    """The real SMTP backend, held at the gate until the test opens it."""

    def __init__(self, inner: SMTPBackend) -> None:
        self.inner = inner
        self.sending = threading.Event()
        self.gate = threading.Event()

    def send(self, message: OutgoingMail) -> None:
        self.sending.set()
        assert self.gate.wait(30)
        self.inner.send(message)


def test_no_write_lock_is_held_while_a_mail_is_sent(
    committed: Database, settings: Settings, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    smtp_settings = replace(settings, smtp_host="127.0.0.1", smtp_port=port)
    _queue_confirmation(committed, smtp_settings)
    backend = GatedBackend(SMTPBackend(smtp_settings))
    quick = Database(settings.database_url, busy_timeout_ms=2000)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            delivery = pool.submit(deliver_outbox, committed, backend)
            assert backend.sending.wait(30)
            # While the server is "answering", a registration (which takes the write lock on
            # SQLite, the event's row lock on PostgreSQL) goes through at once.
            _queue_confirmation(quick, smtp_settings, capacity=5)
            backend.gate.set()
            assert delivery.result(timeout=60) == Delivery(sent=2)
    finally:
        backend.gate.set()
        quick.dispose()
    assert len(inbox.messages) == 2


# --- The request path only queues ---------------------------------------------------------------


@contextmanager
def silent_smtp_server() -> Iterator[int]:
    """A server that accepts connections and never says a word (a hung mail relay)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        listener.close()


def test_registrations_are_answered_while_the_mail_server_hangs(
    committed: Database, settings: Settings
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        event_ids = [make_event(db, agency, capacity=50).id for _ in range(3)]
    # A mail the email library refuses, waiting in the outbox.
    _stored_mail(committed, to="x@example.org\nBcc: y@example.org", subject="Salon\nemploi")
    with (
        silent_smtp_server() as port,
        running_server(
            settings.database_url,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(port),
            DB_BUSY_TIMEOUT_MS="5000",
        ) as base_url,
    ):

        def sign_up(n: int) -> int:
            response = httpx.post(
                f"{base_url}/api/v1/events/{event_ids[n % 3]}/registrations",
                json={"first_name": "Léa", "last_name": f"N{n}", "email": f"lea{n}@example.org"},
                timeout=60,
            )
            return response.status_code

        with ThreadPoolExecutor(max_workers=6) as pool:
            first = list(pool.map(sign_up, range(6)))
            second = list(pool.map(sign_up, range(6, 24)))
    assert first + second == [201] * 24
    with committed.transaction() as db:
        confirmations = db.scalar(
            select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "confirmed")
        )
    assert confirmations == 24
