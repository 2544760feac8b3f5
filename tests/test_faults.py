"""Faults: the importer killed mid-write, the database locked or restarting, SMTP down.

Each waits for a condition it can observe (a row, a lock, a process state) with a bounded
deadline, never for a fixed time, and asserts no duration.
"""

from __future__ import annotations

import email
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from events_app.app import create_app
from events_app.db import Database
from events_app.feeds import source_feed
from events_app.models import Event, Feed, ImportRun, OutboxMessage, Registration
from events_app.scheduler import run_job
from events_app.settings import Settings
from importers.run import run_import
from tests import pg
from tests.factories import make_agency, make_event
from tests.server import free_port

SLUG = "agence-pannes"
FEED_EVENTS = 20_000
BEFORE = 300
# The importer's database sessions carry this name, so that its transactions can be told apart.
IMPORTER = "events-fault-import"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# --- (a) the importer killed with SIGKILL in the middle of its write --------------------

PLACES = [
    ("Lille", "59000", 50.6292, 3.0573),
    ("Lyon", "69003", 45.7597, 4.8422),
    ("Montreuil", "93100", 48.8638, 2.4485),
    ("Nantes", "44000", 47.2184, -1.5536),
    ("Toulouse", "31000", 43.6047, 1.4442),
    ("Strasbourg", "67000", 48.5734, 7.7521),
]


def write_feed(path: Path, count: int) -> None:
    """A France Travail (Mes Evénements Emploi) feed of count events, written as a stream."""
    first = datetime.now(UTC).date() + timedelta(days=2)
    with path.open("w", encoding="utf-8") as out:
        out.write(f'{{"totalElements": {count}, "content": [\n')
        for n in range(count):
            city, postal_code, lat, lon = PLACES[n % len(PLACES)]
            day = first + timedelta(days=n % 200)
            hour = 7 + n % 8
            row = {
                "id": 7_000_000 + n,
                "titre": f"Job dating n° {n} à {city}",
                "description": f"<p>Rencontrez des recruteurs près de {city}. Réf. {n}.</p>",
                "dateEvenement": f"{day.isoformat()}T{hour:02d}:00:00.000+00:00",
                "heureDebut": f"{hour:02d}:00:00",
                "heureFin": f"{hour + 2:02d}:30:00",
                "timezone": "Europe/Paris",
                "type": "Job dating",
                "modalites": "en physique",
                "ville": city,
                "codePostal": postal_code,
                "latitude": lat + (n % 100) / 10_000,
                "longitude": lon - (n % 50) / 10_000,
                "nombrePlaceTotalPresentiel": 10 + n % 40,
                "codesRome": ["N", "J"][: 1 + n % 2],
            }
            out.write(("," if n else "") + json.dumps(row, ensure_ascii=False) + "\n")
        out.write("]}\n")


def _count(database: Database, feed_id: int) -> int:
    with database.transaction() as db:
        return db.scalar(select(func.count()).where(Event.feed_id == feed_id)) or 0


def _running_runs(database: Database, feed_id: int) -> int:
    with database.transaction() as db:
        return (
            db.scalar(
                select(func.count()).where(
                    ImportRun.feed_id == feed_id, ImportRun.status == "running"
                )
            )
            or 0
        )


def _writing(database: Database) -> Callable[[], bool]:
    """Whether the importer holds an open write transaction."""
    if database.is_sqlite:
        path = make_url(database.engine.url).database
        assert path

        def sqlite_locked() -> bool:
            # The import's write takes SQLite's write lock for its whole transaction: a writer
            # that may not wait is refused while it is held.
            probe = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
                return False
            except sqlite3.OperationalError as exc:
                assert "locked" in str(exc)
                return True
            finally:
                probe.close()

        return sqlite_locked

    def pg_writing() -> bool:
        # A PostgreSQL transaction gets an id (backend_xid) at its first write.
        with database.engine.connect() as connection:
            return bool(
                connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE application_name = :name AND backend_xid IS NOT NULL"
                    ),
                    {"name": IMPORTER},
                )
            )

    return pg_writing


def _import_command(database_url: str, source: Path) -> tuple[list[str], dict[str, str]]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "PGAPPNAME": IMPORTER,
    }
    command = [sys.executable, "-m", "events_app.cli", "import", "--format", "ft-json"]
    return [*command, "--agency", SLUG, str(source)], env


def test_an_import_killed_mid_write_leaves_the_data_as_before_and_the_next_run_completes(
    committed: Database, database_url: str, settings: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "evenements.json"
    # The state before: the first BEFORE events of the feed, imported from the same file.
    write_feed(source, BEFORE)
    with committed.transaction() as db:
        agency, _ = make_agency(db, slug=SLUG)
        feed_id = source_feed(
            db, agency_id=agency.id, source=str(source.resolve()), format="ft-json"
        ).id
    assert run_import(committed, settings, feed_id=feed_id).status == "succeeded"
    assert _count(committed, feed_id) == BEFORE

    write_feed(source, FEED_EVENTS)
    command, env = _import_command(database_url, source)
    importer = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _running_runs(committed, feed_id) == 1, "the import run to start")
        wait_for(_writing(committed), "the import to start writing")
        importer.send_signal(signal.SIGKILL)
        importer.wait(timeout=30)
    finally:
        if importer.poll() is None:
            importer.kill()
            importer.wait()
        assert importer.stderr is not None
        stderr = importer.stderr.read().decode()
        importer.stderr.close()
    assert importer.returncode == -signal.SIGKILL, f"the import ended before the kill: {stderr}"

    # One transaction: either nothing of the run (as here) or all of it, never a part.
    assert _count(committed, feed_id) in (BEFORE, FEED_EVENTS)

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert _count(committed, feed_id) == FEED_EVENTS
    with committed.transaction() as db:
        last = db.scalars(
            select(ImportRun).where(ImportRun.feed_id == feed_id).order_by(ImportRun.id.desc())
        ).first()
        assert last is not None and last.status == "succeeded"
        assert last.created + last.unchanged == FEED_EVENTS
        # Every event once: the run cut short left no duplicate behind.
        distinct = db.scalar(
            select(func.count(func.distinct(Event.external_id))).where(Event.feed_id == feed_id)
        )
        assert distinct == FEED_EVENTS
        assert db.scalar(select(func.count()).select_from(Feed)) == 1


# --- (b) the database locked, or PostgreSQL restarting, during requests -----------------


def _register(client: TestClient, event_id: int, n: int) -> Any:
    return client.post(
        f"/api/v1/events/{event_id}/registrations",
        json={"first_name": "Léa", "last_name": f"Martin{n}", "email": f"lea{n}@example.org"},
    )


def _assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == "unavailable"
    assert "Traceback" not in response.text and "sqlalchemy" not in response.text.lower()


@pytest.fixture
def event_id(committed: Database) -> int:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        return make_event(db, agency, capacity=50).id


def test_a_locked_sqlite_database_answers_503_then_recovers(
    committed: Database, settings: Settings, event_id: int
) -> None:
    if not committed.is_sqlite:
        pytest.skip("SQLite's database lock")
    path = make_url(committed.engine.url).database
    assert path
    app = create_app(replace(settings, db_busy_timeout_ms=200))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert _register(client, event_id, 1).status_code == 201
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # another process writing, for longer than 200 ms
            _assert_unavailable(_register(client, event_id, 2))
            # Readers are not blocked by a writer (WAL): the event and the search still answer.
            assert client.get(f"/api/v1/events/{event_id}").status_code == 200
            assert client.get("/healthz").status_code == 200
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        # The same app, without a restart.
        assert _register(client, event_id, 2).status_code == 201
    with committed.transaction() as db:
        emails = db.scalars(select(Registration.email).order_by(Registration.id)).all()
    assert emails == ["lea1@example.org", "lea2@example.org"]


def test_postgresql_restarting_answers_503_then_recovers(
    committed: Database, settings: Settings, event_id: int, pg_server: str
) -> None:
    if committed.is_sqlite:
        pytest.skip("a PostgreSQL server restart")
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get(f"/api/v1/events/{event_id}").status_code == 200  # pool warmed up
        pg.stop(pg_server)
        try:
            _assert_unavailable(client.get(f"/api/v1/events/{event_id}"))
            _assert_unavailable(_register(client, event_id, 1))
            _assert_unavailable(client.get("/healthz"))
        finally:
            pg.start(pg_server)
        # Stale pooled connections are detected (pool_pre_ping) and replaced: no app restart.
        assert client.get(f"/api/v1/events/{event_id}").status_code == 200
        assert _register(client, event_id, 1).status_code == 201

        # Requests while pg_ctl restart runs: a 503 or an answer, never a 500.
        statuses: list[int] = []
        bodies: list[str] = []
        stop = threading.Event()

        def hammer() -> None:
            for n in range(2000):
                if stop.is_set():
                    return
                response = (
                    _register(client, event_id, 100 + n)
                    if n % 2
                    else client.get(f"/api/v1/events/{event_id}")
                )
                statuses.append(response.status_code)
                if response.status_code >= 500:
                    bodies.append(response.text)

        worker = threading.Thread(target=hammer)
        worker.start()
        try:
            wait_for(lambda: len(statuses) >= 5, "requests before the restart", timeout=60)
            pg.restart(pg_server)
            seen = len(statuses)
            wait_for(lambda: len(statuses) >= seen + 5, "requests after the restart", timeout=60)
        finally:
            stop.set()
            worker.join(timeout=60)
        assert set(statuses) <= {200, 201, 503}, statuses
        assert not any("Traceback" in body for body in bodies)
        assert client.get(f"/api/v1/events/{event_id}").status_code == 200
        assert client.get("/healthz").status_code == 200


# --- (c) the mail server down or refusing -----------------------------------------------


class Inbox:
    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return "554 5.7.1 Message refused"
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server(port: int, inbox: Inbox) -> Iterator[None]:
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield
    finally:
        controller.stop()


def _make_due(database: Database) -> None:
    """As if the retry delay had passed."""
    with database.transaction() as db:
        db.execute(update(OutboxMessage).values(next_attempt_at=None))


def _outbox(database: Database) -> list[OutboxMessage]:
    with database.transaction() as db:
        return list(db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_mail_outlives_a_down_or_refusing_server_and_the_scheduler_sends_it(
    committed: Database, settings: Settings, event_id: int
) -> None:
    port = free_port()  # nothing listens there yet
    mail_settings = replace(settings, smtp_host="127.0.0.1", smtp_port=port)
    with TestClient(create_app(mail_settings), raise_server_exceptions=False) as client:
        # The registration does not depend on the mail: it is kept in the outbox.
        assert _register(client, event_id, 1).status_code == 201
    [queued] = _outbox(committed)
    assert queued.sent_at is None and queued.attempts == 1
    assert "ConnectionRefused" in (queued.last_error or "")

    _make_due(committed)
    with smtp_server(port, Inbox(refuse=True)):
        assert run_job(committed, mail_settings, "deliver_mail", interval=1) == (
            "0 envoyé(s), 1 à réessayer, 0 abandonné(s)"
        )
    [queued] = _outbox(committed)
    _make_due(committed)
    assert queued.sent_at is None and queued.attempts == 2 and "554" in (queued.last_error or "")

    inbox = Inbox()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "events_app.cli", "scheduler", "--tick", "1"]
    with smtp_server(port, inbox):
        scheduler = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for(
                lambda: _outbox(committed)[0].sent_at is not None,
                "the scheduler to deliver the mail",
                timeout=60,
            )
        finally:
            scheduler.terminate()
            scheduler.wait(timeout=30)
    [message] = inbox.messages
    assert message["To"] == "lea1@example.org"
    [sent] = _outbox(committed)
    assert sent.attempts == 3 and sent.last_error is None
