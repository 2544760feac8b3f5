"""The scheduled jobs and how they run: thin functions that open a transaction and call one
domain function, run by APScheduler in the `events-app scheduler` process.

Every job takes a lease in the job_locks table before running. With several scheduler
processes (or a scheduler started by mistake next to another), the lease makes each job run
once per due time: the first process to claim it wins, the others skip that tick.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from events_app.db import Database, utcnow
from events_app.mail import backend_from_settings, deliver_outbox, purge_old_mails
from events_app.models import Event, Feed, JobLock
from events_app.notifications import Notifier
from events_app.registrations import erase_old_personal_data, send_reminders
from events_app.settings import Settings

log = logging.getLogger("events_app.scheduler")
OWNER = f"{socket.gethostname()}:{os.getpid()}"


def claim(db: Session, name: str, *, until: datetime, owner: str = OWNER) -> bool:
    """Take the lease of a job until `until`; False when another process holds it."""
    now = utcnow()
    taken = db.execute(
        update(JobLock)
        .where(JobLock.name == name, JobLock.locked_until <= now)
        .values(locked_until=until, owner=owner)
    )
    if taken.rowcount:  # type: ignore[attr-defined]
        return True
    if db.get(JobLock, name) is not None:
        return False
    try:
        with db.begin_nested():
            db.add(JobLock(name=name, locked_until=until, owner=owner))
    except IntegrityError:
        return False
    return True


# --- the jobs: each returns a short description for the log -------------------------------


def import_due_feeds(database: Database, settings: Settings) -> str:
    from importers.run import run_import  # the importers sit above the domain

    now = utcnow()
    with database.transaction() as db:
        feeds = db.execute(
            select(Feed.id, Feed.interval_minutes, Feed.last_run_at).where(
                Feed.enabled.is_(True), Feed.interval_minutes.is_not(None)
            )
        ).all()
    done = []
    for feed_id, interval, last_run in feeds:
        if last_run is not None and last_run + timedelta(minutes=interval or 0) > now:
            continue
        with database.transaction(lock=True) as db:
            # One lease per feed and due time, so two schedulers never import the same feed twice.
            if not claim(db, f"feed:{feed_id}", until=now + timedelta(minutes=interval or 5)):
                continue
            db.execute(update(Feed).where(Feed.id == feed_id).values(last_run_at=now))
        summary = run_import(database, settings, feed_id=feed_id)
        done.append(f"feed {feed_id}: {summary.status}")
    return ", ".join(done) or "no feed due"


def deliver_mail(database: Database, settings: Settings) -> str:
    # Not in a transaction: deliver_outbox opens a short one per step, and none while sending.
    return str(deliver_outbox(database, backend_from_settings(settings)))


def remind(database: Database, settings: Settings) -> str:
    with database.transaction(lock=True) as db:
        count = send_reminders(db, notifier=Notifier(db, settings))
    return f"{count} reminders queued"


def close_registrations(database: Database, settings: Settings) -> str:
    now = utcnow()
    with database.transaction(lock=True) as db:
        result = db.execute(
            update(Event)
            .where(
                Event.registration_closed.is_(False),
                Event.registration_closes_at.is_not(None),
                Event.registration_closes_at <= now,
            )
            .values(registration_closed=True)
        )
    return f"{result.rowcount} events closed"  # type: ignore[attr-defined]


def erase_personal_data(database: Database, settings: Settings) -> str:
    """Erase registrants' names, emails and phones a set time after their event.

    The rows stay, with their status, so that counts of registrations and attendance remain.
    The link to the person's account goes, and so do the mails written to them (the outbox
    keeps their address and their name in the body).
    """
    with database.transaction(lock=True) as db:
        count = erase_old_personal_data(db, retention_days=settings.retention_days)
    return f"{count} registrations anonymised"


def purge_mails(database: Database, settings: Settings) -> str:
    """Delete sent and given-up mails MAIL_RETENTION_DAYS after they were queued."""
    with database.transaction(lock=True) as db:
        count = purge_old_mails(db, retention_days=settings.mail_retention_days)
    return f"{count} old mails deleted"


Job = Callable[[Database, Settings], str]
JOBS: dict[str, tuple[Job, int]] = {
    # name: (function, interval in seconds)
    "import_feeds": (import_due_feeds, 60),
    "deliver_mail": (deliver_mail, 60),
    "reminders": (remind, 15 * 60),
    "close_registrations": (close_registrations, 5 * 60),
    "erase_personal_data": (erase_personal_data, 24 * 3600),
    "purge_mails": (purge_mails, 24 * 3600),
}


def run_job(database: Database, settings: Settings, name: str, *, interval: int) -> str | None:
    """Run a job once for this due time, unless another process already claimed it."""
    job, _ = JOBS[name]
    # The lease ends a little before the next tick, so the next due time is claimable.
    until = utcnow() + timedelta(seconds=max(interval * 0.8, 1))
    with database.transaction(lock=True) as db:
        if not claim(db, f"job:{name}", until=until):
            return None
    try:
        outcome = job(database, settings)
    except Exception:
        log.exception("job %s failed", name)
        return "failed"
    log.info("job %s: %s", name, outcome)
    return outcome


def run_scheduler(settings: Settings, *, tick_seconds: int | None = None) -> None:
    """Run every job at its interval until interrupted (`events-app scheduler`)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    database = Database(settings.database_url)
    scheduler = BlockingScheduler(timezone="Europe/Paris")
    for name, (_, interval) in JOBS.items():
        every = tick_seconds or interval
        scheduler.add_job(
            run_job,
            "interval",
            seconds=every,
            args=[database, settings, name],
            kwargs={"interval": every},
            id=name,
            coalesce=True,
            max_instances=1,
            next_run_time=utcnow(),
        )
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        database.dispose()
