"""Job leases, two scheduler processes on one database, and the data jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from events_app.db import Database, utcnow
from events_app.feeds import add_feed
from events_app.models import Event, Feed, ImportRun, JobLock, OutboxMessage, Registration
from events_app.notifications import Notifier
from events_app.registrations import Person, register
from events_app.scheduler import (
    claim,
    close_registrations,
    erase_personal_data,
    import_due_feeds,
    run_job,
)
from events_app.settings import Settings
from tests.factories import in_days, make_agency, make_event

FEED = json.dumps(
    {
        "totalElements": 1,
        "content": [
            {
                "id": 1,
                "titre": "Job dating logistique",
                "dateEvenement": "2030-12-10T08:30:00.000+00:00",
                "heureDebut": "08:30:00",
                "heureFin": "11:30:00",
                "type": "Job dating",
                "modalites": "en physique",
                "ville": "Lyon",
                "codePostal": "69003",
                "latitude": 45.76,
                "longitude": 4.85,
                "codesRome": ["N"],
                "nombrePlaceTotalPresentiel": 20,
            }
        ],
    }
).encode()


class CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CountingHandler)
        self.hits = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/feed.json"


class CountingHandler(BaseHTTPRequestHandler):
    server: CountingServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.hits += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(FEED)))
        self.end_headers()
        self.wfile.write(FEED)


@pytest.fixture
def feed_server() -> Iterator[CountingServer]:
    httpd = CountingServer()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# --- leases ----------------------------------------------------------------------------------


def test_a_lease_is_refused_until_it_expires(db: Session) -> None:
    now = utcnow()
    assert claim(db, "job:test", until=now + timedelta(minutes=1), owner="a")
    assert not claim(db, "job:test", until=now + timedelta(minutes=1), owner="b")
    assert not claim(db, "job:test", until=now + timedelta(minutes=1), owner="a")
    lock = db.get(JobLock, "job:test")
    assert lock is not None and lock.owner == "a"

    db.execute(
        update(JobLock)
        .where(JobLock.name == "job:test")
        .values(locked_until=now - timedelta(seconds=1))
    )
    assert claim(db, "job:test", until=now + timedelta(minutes=1), owner="b")
    db.expire_all()
    lock = db.get(JobLock, "job:test")
    assert lock is not None and lock.owner == "b"
    # Another job has its own lease.
    assert claim(db, "job:other", until=now + timedelta(minutes=1), owner="a")


def test_simultaneous_claims_give_one_lease(committed: Database) -> None:
    until = utcnow() + timedelta(minutes=1)
    barrier = threading.Barrier(6)
    results: list[bool] = []
    errors: list[BaseException] = []

    def contender(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            with committed.transaction(lock=True) as db:
                results.append(claim(db, "job:race", until=until, owner=f"w{n}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(results) == [False] * 5 + [True]


def test_a_job_runs_once_per_lease(committed: Database, settings: Settings) -> None:
    assert run_job(committed, settings, "close_registrations", interval=3600) is not None
    assert run_job(committed, settings, "close_registrations", interval=3600) is None


# --- two scheduler processes -------------------------------------------------------------------


def _queue_mails(database: Database, settings: Settings, count: int) -> int:
    with database.transaction(lock=True) as db:
        agency, _ = make_agency(db)
        event = make_event(db, agency, capacity=50)
        notifier = Notifier(db, settings)
        for n in range(count):
            person = Person(first_name="Prénom", last_name=f"N{n}", email=f"p{n}@example.org")
            register(db, event_id=event.id, person=person, notifier=notifier)
        return agency.id


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_two_schedulers_run_each_job_once(
    committed: Database,
    settings: Settings,
    database_url: str,
    feed_server: CountingServer,
    tmp_path: Path,
) -> None:
    agency_id = _queue_mails(committed, settings, 3)
    with committed.transaction() as db:
        feed_id = add_feed(
            db, agency_id=agency_id, url=feed_server.url, format="ft-json", interval_minutes=5
        ).id
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "FEED_ALLOW_PRIVATE": "1",
        "LOG_LEVEL": "INFO",
        "MAIL_DIR": str(tmp_path / "mails"),
    }
    logs = [tmp_path / f"scheduler-{n}.log" for n in (1, 2)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for log in logs:
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "events_app.cli", "scheduler", "--tick", "1"],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with committed.transaction() as db:
                finished = db.scalar(
                    select(func.count(ImportRun.id)).where(
                        ImportRun.feed_id == feed_id, ImportRun.finished_at.is_not(None)
                    )
                )
                pending = db.scalar(
                    select(func.count(OutboxMessage.id)).where(OutboxMessage.sent_at.is_(None))
                )
            if finished and not pending:
                break
            time.sleep(0.2)
        # Both keep ticking for a few more seconds: nothing may run a second time.
        time.sleep(4)
        alive = [process.poll() is None for process in processes]
    finally:
        for process in processes:
            _stop(process)
    output = "\n".join(log.read_text(errors="replace") for log in logs)
    assert alive == [True, True], output

    with committed.transaction() as db:
        runs = db.scalars(select(ImportRun).where(ImportRun.feed_id == feed_id)).all()
        imported = db.scalar(select(func.count(Event.id)).where(Event.feed_id == feed_id))
        messages = db.scalars(select(OutboxMessage)).all()
    assert [run.status for run in runs] == ["succeeded"], output
    assert imported == 1
    assert feed_server.hits == 1
    assert len(messages) == 3
    assert all(m.sent_at is not None and m.attempts == 1 for m in messages), output
    assert len(list((tmp_path / "mails").glob("*.eml"))) == 3  # one file per mail, once


# --- the jobs themselves -----------------------------------------------------------------------


def test_due_feeds_are_imported_once_per_interval(
    committed: Database, settings: Settings, feed_server: CountingServer
) -> None:
    local = Settings(
        database_url=settings.database_url, base_url=settings.base_url, feed_allow_private=True
    )
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        due = add_feed(
            db, agency_id=agency.id, url=feed_server.url, format="ft-json", interval_minutes=5
        ).id
        disabled = add_feed(
            db,
            agency_id=agency.id,
            url=feed_server.url + "?disabled",
            format="ft-json",
            interval_minutes=5,
        )
        disabled.enabled = False
        add_feed(
            db,
            agency_id=agency.id,
            url=feed_server.url + "?by-hand",
            format="ft-json",
            interval_minutes=None,
        )

    assert import_due_feeds(committed, local) == f"flux {due} : succeeded"
    assert import_due_feeds(committed, local) == "aucun flux à importer"
    assert feed_server.hits == 1
    with committed.transaction() as db:
        feed = db.get(Feed, due)
        assert feed is not None and feed.last_run_at is not None
        # Once the interval has passed (and the lease expired) the feed is due again.
        feed.last_run_at = utcnow() - timedelta(minutes=6)
        db.execute(update(JobLock).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert import_due_feeds(committed, local) == f"flux {due} : succeeded"
    assert feed_server.hits == 2


def _registrations(database: Database, settings: Settings, event_id: int, count: int) -> None:
    with database.transaction(lock=True) as db:
        notifier = Notifier(db, settings)
        for n in range(count):
            person = Person(
                first_name=f"Prénom{n}",
                last_name=f"Nom{n}",
                email=f"personne{n}.{event_id}@example.org",
                phone="06 12 34 56 78",
            )
            register(db, event_id=event_id, person=person, notifier=notifier)


def _move(database: Database, event_id: int, days: int) -> None:
    starts = in_days(days)
    with database.transaction() as db:
        db.execute(
            update(Event)
            .where(Event.id == event_id)
            .values(starts_at=starts, ends_at=starts + timedelta(hours=3))
        )


def test_personal_data_is_erased_after_the_retention_period(
    committed: Database, settings: Settings
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        old = make_event(db, agency, capacity=2).id
        recent = make_event(db, agency).id
    _registrations(committed, settings, old, 3)  # two confirmed, one waitlisted
    _registrations(committed, settings, recent, 1)
    _move(committed, old, -(settings.retention_days + 2))
    _move(committed, recent, -(settings.retention_days - 2))

    assert erase_personal_data(committed, settings) == (
        "3 inscription(s) anonymisée(s), 0 ancien(s) mail(s) supprimé(s), "
        "0 alerte(s) non confirmée(s) effacée(s)"
    )

    with committed.transaction() as db:
        erased = db.scalars(
            select(Registration).where(Registration.event_id == old).order_by(Registration.id)
        ).all()
        kept = db.scalars(select(Registration).where(Registration.event_id == recent)).one()
        mails_left = db.scalars(select(OutboxMessage.to_address)).all()
        event = db.get(Event, old)
    assert [r.status for r in erased] == ["confirmed", "confirmed", "waitlisted"]
    for registration in erased:
        assert (registration.first_name, registration.last_name, registration.phone) == (
            "",
            "",
            None,
        )
        assert registration.email == f"efface-{registration.id}@anonyme.invalid"
        assert registration.anonymised_at is not None
    assert event is not None and event.seats_taken == 2
    assert kept.first_name == "Prénom0" and kept.anonymised_at is None
    assert not any(f".{old}@" in address for address in mails_left)
    assert any(f".{recent}@" in address for address in mails_left)

    assert erase_personal_data(committed, settings) == (
        "0 inscription(s) anonymisée(s), 0 ancien(s) mail(s) supprimé(s), "
        "0 alerte(s) non confirmée(s) effacée(s)"
    )


def test_registrations_close_at_their_deadline(committed: Database, settings: Settings) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        past_deadline = make_event(db, agency).id
        future_deadline = make_event(db, agency).id
        no_deadline = make_event(db, agency).id
        db.execute(
            update(Event)
            .where(Event.id == past_deadline)
            .values(registration_closes_at=utcnow() - timedelta(minutes=1))
        )
        db.execute(
            update(Event)
            .where(Event.id == future_deadline)
            .values(registration_closes_at=utcnow() + timedelta(days=1))
        )

    assert close_registrations(committed, settings) == "1 événement(s) fermé(s) aux inscriptions"
    assert close_registrations(committed, settings) == "0 événement(s) fermé(s) aux inscriptions"

    with committed.transaction() as db:
        closed = dict(
            db.execute(
                select(Event.id, Event.registration_closed).where(
                    Event.id.in_([past_deadline, future_deadline, no_deadline])
                )
            ).all()
        )
    assert closed == {past_deadline: True, future_deadline: False, no_deadline: False}
