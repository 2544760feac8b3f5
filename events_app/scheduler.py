"""The scheduled jobs and how they run, in the `events-app scheduler` process (APScheduler).

JOBS is the job table: the scheduler, `events-app jobs list` and `events-app jobs run NAME`
all read it, so a job registered there is scheduled and can be run by hand. Each job opens one
transaction and calls one domain function, then returns a short French outcome for the log
and the command line. The feed job is the one loop: it claims due feeds one at a time (one
transaction each) and hands each to the importer, which owns its own transactions.

Every job takes a lease in the job_locks table before running (events_app.leases). With
several scheduler processes (or a scheduler started by mistake next to another), the lease
makes each job run once per due time: the first process to claim it wins, the others skip
that tick. `jobs run` skips the lease: each domain function is safe to run twice at once.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from datetime import timedelta

from events_app.alerts import erase_unconfirmed as erase_unconfirmed_alerts
from events_app.alerts import send_alerts as send_due_alerts
from events_app.db import Database, utcnow
from events_app.feeds import claim_due_feed
from events_app.leases import OWNER, claim
from events_app.mail import backend_from_settings, deliver_outbox
from events_app.notifications import Notifier, mail_environment, purge_old_mails
from events_app.registrations import (
    close_due_registrations,
    erase_old_personal_data,
    send_reminders,
)
from events_app.settings import Settings

__all__ = ["JOBS", "OWNER", "claim", "run_job", "run_now", "run_scheduler"]

log = logging.getLogger("events_app.scheduler")


# --- the jobs: each returns a short description for the log -------------------------------


def import_due_feeds(database: Database, settings: Settings) -> str:
    """Import the feeds whose interval has passed."""
    from importers.run import run_import  # the importers sit above the domain

    now = utcnow()
    done: list[str] = []
    tried: set[int] = set()
    while True:
        with database.transaction(lock=True) as db:
            feed_id = claim_due_feed(db, now=now, skip=tried)
        if feed_id is None:
            break
        tried.add(feed_id)
        summary = run_import(database, settings, feed_id=feed_id)
        done.append(f"flux {feed_id} : {summary.status}")
    return ", ".join(done) or "aucun flux à importer"


def deliver_mail(database: Database, settings: Settings) -> str:
    """Send the queued mails (also written to MAIL_DIR without SMTP_HOST)."""
    # Not one transaction: deliver_outbox claims, sends and records in short steps of its own.
    done = deliver_outbox(database, backend_from_settings(settings))
    return f"{done.sent} envoyé(s), {done.retried} à réessayer, {done.failed} abandonné(s)"


def remind(database: Database, settings: Settings) -> str:
    """Queue the day-before reminders."""
    with database.transaction(lock=True) as db:
        count = send_reminders(db, notifier=Notifier(db, settings))
    return f"{count} rappel(s) préparé(s)"


def close_registrations(database: Database, settings: Settings) -> str:
    """Close registrations of the events whose deadline has passed."""
    with database.transaction(lock=True) as db:
        count = close_due_registrations(db)
    return f"{count} événement(s) fermé(s) aux inscriptions"


def erase_personal_data(database: Database, settings: Settings) -> str:
    """Erase registrants' names, emails and phones a set time after their event.

    The rows stay, with their status, so that counts of registrations and attendance remain.
    The link to the person's account goes, and so do the mails written to them (the outbox
    keeps their address and their name in the body).
    """
    with database.transaction(lock=True) as db:
        count = erase_old_personal_data(db, retention_days=settings.retention_days)
        mails = purge_old_mails(db, retention_days=settings.retention_days)
        alerts = erase_unconfirmed_alerts(db)
    return (
        f"{count} inscription(s) anonymisée(s), {mails} ancien(s) mail(s) supprimé(s), "
        f"{alerts} alerte(s) non confirmée(s) effacée(s)"
    )


def send_alerts(database: Database, settings: Settings) -> str:
    """Mail each confirmed, due alert the new events that match it."""
    with database.transaction() as db:
        count = send_due_alerts(db, settings, mail_environment(), now=utcnow())
    return f"{count} alerte(s) envoyée(s)"


Job = Callable[[Database, Settings], str]
JOBS: dict[str, tuple[Job, int]] = {
    # name: (function, interval in seconds)
    "import_feeds": (import_due_feeds, 60),
    "deliver_mail": (deliver_mail, 60),
    "reminders": (remind, 15 * 60),
    "close_registrations": (close_registrations, 5 * 60),
    "erase_personal_data": (erase_personal_data, 24 * 3600),
    "send_alerts": (send_alerts, 10 * 60),
}


# What `events-app jobs list` shows (French: it is read by the people running the service).
LABELS: dict[str, str] = {
    "import_feeds": "importe les flux dont l'intervalle est écoulé",
    "deliver_mail": "envoie les mails en attente (fichiers .eml dans MAIL_DIR sans SMTP_HOST)",
    "reminders": "prépare les rappels de la veille",
    "close_registrations": "ferme les inscriptions dont la date limite est passée",
    "erase_personal_data": "efface les données personnelles passé RETENTION_DAYS",
    "send_alerts": "envoie les alertes dues (nouveaux événements correspondant à une recherche)",
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


def run_now(settings: Settings, name: str) -> str:
    """Run one job once, now, without its lease (`events-app jobs run NAME`)."""
    job, _ = JOBS[name]
    database = Database(settings.database_url)
    try:
        outcome = job(database, settings)
    finally:
        database.dispose()
    return outcome


def describe(name: str) -> str:
    """What `events-app jobs list` says of a job: its label, else its docstring's first line."""
    doc = (JOBS[name][0].__doc__ or "").strip()
    return LABELS.get(name) or (doc.splitlines()[0] if doc else "")


def run_scheduler(settings: Settings, *, tick_seconds: int | None = None) -> None:
    """Run every job at its interval until interrupted (`events-app scheduler`)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    # APScheduler logs every run at INFO; our own line per job says what it did.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    database = Database(settings.database_url)
    from importers.run import interrupt_dead_runs_at_start

    interrupt_dead_runs_at_start(database)
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
    # SIGTERM (systemd, honcho when its other process stops) ends it as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: scheduler.shutdown(wait=False))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        database.dispose()
