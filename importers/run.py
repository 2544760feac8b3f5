"""One import run: fetch, parse and validate outside any write, then one short write.

The run is recorded in import_runs whatever happens: a source that cannot be read at all
leaves the events as they were and records a failed run with the reason.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from events_app.db import Database, utcnow
from events_app.duplicates import refresh_duplicates, written_since
from events_app.feeds import get_feed
from events_app.leases import OWNER
from events_app.models import Feed, ImportRun
from events_app.notifications import Notifier
from events_app.settings import Settings
from importers import PARSERS, ftjson
from importers.base import ImportedEvent, Notice, RowError, Unchanged
from importers.fetch import Fetched, FetchError, fetch_source, is_url
from importers.ftapi import fetch_ft_api
from importers.sync import (
    Collected,
    Geocoder,
    SyncReport,
    apply,
    collect,
    known_rows,
    raw_known,
)

log = logging.getLogger("importers")
MAX_REPORTED_ROWS = 1000
# A run of another host (whose process cannot be looked up from here), or of a version that did
# not record its process, still "running" after this long is taken as dead: imports finish in
# about a minute (SPEC §9).
RUN_EXPIRY = timedelta(hours=2)
INTERRUPTED = "Import interrompu : le processus qui l'exécutait s'est arrêté avant la fin."


def _alive(owner: str | None, started_at: datetime, now: datetime) -> bool:
    """Whether the process that started a run may still be running it."""
    host, _, pid = (owner or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # it exists, under another user
        return True
    return started_at > now - RUN_EXPIRY


def interrupt_dead_runs_at_start(database: Database) -> int:
    """interrupt_dead_runs over every feed, in its own transaction (scheduler, server start)."""
    with database.transaction(lock=True) as db:
        count = interrupt_dead_runs(db)
    if count:
        log.warning("%s import(s) left running by a stopped process marked interrupted", count)
    return count


def interrupt_dead_runs(db: Session, feed_id: int | None = None) -> int:
    """Mark "interrupted" the runs left "running" by a process that died (killed, machine
    restarted); at scheduler and server start, and before each import of their feed."""
    now = utcnow()
    query = select(ImportRun).where(ImportRun.status == "running")
    if feed_id is not None:
        query = query.where(ImportRun.feed_id == feed_id)
    count = 0
    for run in db.scalars(query):
        if not _alive(run.owner, run.started_at, now):
            run.status, run.finished_at, run.error = "interrupted", now, INTERRUPTED
            count += 1
    return count


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    status: str
    created: int
    updated: int
    unchanged: int
    cancelled: int
    rejected: int
    error: str | None
    rejected_rows: list[dict[str, object]]
    warnings: list[str]


def _summary(run: ImportRun) -> RunSummary:
    return RunSummary(
        run.id,
        run.status,
        run.created,
        run.updated,
        run.unchanged,
        run.cancelled,
        run.rejected,
        run.error,
        list(run.rejected_rows),
        list(run.warnings),
    )


def _finish(database: Database, run_id: int, **values: object) -> RunSummary:
    with database.transaction(lock=True) as db:
        run = db.get(ImportRun, run_id)
        assert run is not None  # noqa: S101 - created by this module above
        for name, value in values.items():
            setattr(run, name, value)
        run.finished_at = utcnow()
        return _summary(run)


def _counted(
    items: Iterator[ImportedEvent | RowError | Unchanged | Notice],
    progress: Callable[[int], None] | None,
) -> Iterator[ImportedEvent | RowError | Unchanged | Notice]:
    for count, item in enumerate(items, start=1):
        if progress is not None and count % 500 == 0:
            progress(count)
        yield item


def run_import(
    database: Database,
    settings: Settings,
    *,
    feed_id: int,
    source: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> RunSummary:
    """Import a feed now. `source` overrides the feed's URL (a file given on the CLI)."""
    with database.transaction(lock=True) as db:
        feed = get_feed(db, feed_id)
        location, fmt = source or feed.url, feed.format
        etag, last_modified = feed.etag, feed.last_modified
        interrupt_dead_runs(db, feed.id)
        run = ImportRun(
            feed_id=feed.id, status="running", rejected_rows=[], warnings=[], owner=OWNER
        )
        db.add(run)
        db.flush()
        run_id = run.id

    try:
        fetched: Fetched
        if fmt == "ft-api":  # an API read page by page, not one document
            fetched = fetch_ft_api(location, settings)
        else:
            fetched = fetch_source(
                location,
                etag=etag,
                last_modified=last_modified,
                allow_private=settings.feed_allow_private,
            )
    except FetchError as exc:
        return _finish(database, run_id, status="failed", error=str(exc), fetch_outcome=str(exc))
    except Exception as exc:  # a bug must not leave the run "running" forever
        log.exception("import run %s failed while fetching", run_id)
        return _finish(
            database, run_id, status="failed", error=f"Flux illisible : {type(exc).__name__}."
        )
    if fetched.content is None:
        _touch_feed(database, feed_id, fetched)
        return _finish(database, run_id, status="not_modified", fetch_outcome=fetched.outcome)

    parser = PARSERS[fmt]
    content = fetched.content
    # The document is needed only while it is parsed: not during the write.
    fetched = dataclasses.replace(fetched, content=None)
    try:
        with database.transaction() as db:
            known = known_rows(db, feed_id)
            items: Iterator[ImportedEvent | RowError | Unchanged | Notice]
            if parser is ftjson.parse:
                # Unchanged elements are recognised by their raw text, before any mapping.
                items = ftjson.parse(content, raw_known(known))
            else:
                items = parser(content)
            collected = collect(_counted(items, progress), Geocoder(db), known)
    except Exception as exc:  # parsers never raise; if one does, record it
        log.exception("import run %s failed while reading", run_id)
        return _finish(
            database,
            run_id,
            status="failed",
            error=f"Flux illisible : {type(exc).__name__}.",
            fetch_outcome=fetched.outcome,
        )
    del content
    try:
        return _write(database, settings, run_id, feed_id, fetched, collected, source)
    finally:
        collected.close()


def _write(
    database: Database,
    settings: Settings,
    run_id: int,
    feed_id: int,
    fetched: Fetched,
    collected: Collected,
    source: str | None = None,
) -> RunSummary:
    errors = collected.errors
    fatal = [error for error in errors if error.line == 0]
    if fatal and not collected.lines:
        return _finish(
            database,
            run_id,
            status="failed",
            error=fatal[0].reason,
            fetch_outcome=fetched.outcome,
        )
    rejected_rows = [
        {"line": e.line, "field": e.field, "reason": e.reason} for e in errors[:MAX_REPORTED_ROWS]
    ]
    rejected = rejected_count(errors)
    try:
        # lock=True: on SQLite the write lock is taken up front (seat counts are read and
        # written, and a deferred transaction upgraded late fails when another wrote meanwhile).
        with database.transaction(lock=True) as db:
            feed = get_feed(db, feed_id)
            since = utcnow()
            report: SyncReport = apply(
                db, feed=feed, collected=collected, notifier=Notifier(db, settings)
            )
            if report.refused is None:
                _remember_fetch(feed, fetched)
                if source is not None and not is_url(source) and "://" not in source:
                    feed.url = source  # the last file read by this file feed
                if report.created or report.updated or report.cancelled:
                    refresh_duplicates(db, written_since(db, feed_id, since))
    except Exception as exc:  # the write was rolled back as a whole; record why
        log.exception("import run %s failed while writing", run_id)
        return _finish(
            database,
            run_id,
            status="failed",
            error=f"Erreur à l'écriture, rien n'a été modifié : {type(exc).__name__}.",
            fetch_outcome=fetched.outcome,
        )
    if report.refused is not None:
        return _finish(
            database,
            run_id,
            status="refused",
            error=report.refused,
            rejected=rejected,
            rejected_rows=rejected_rows,
            fetch_outcome=fetched.outcome,
        )
    return _finish(
        database,
        run_id,
        status="succeeded",
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        cancelled=report.cancelled,
        rejected=rejected,
        rejected_rows=rejected_rows,
        warnings=(report.conflicts + report.warnings + collected.warnings)[:MAX_REPORTED_ROWS],
        fetch_outcome=fetched.outcome,
    )


def rejected_count(errors: list[RowError]) -> int:
    """Rows rejected: a row with several field errors is one row (line 0 is not a row)."""
    return len({error.line for error in errors if error.line > 0})


def _remember_fetch(feed: Feed, fetched: Fetched) -> None:
    feed.etag = fetched.etag
    feed.last_modified = fetched.last_modified
    feed.last_run_at = utcnow()


def _touch_feed(database: Database, feed_id: int, fetched: Fetched) -> None:
    with database.transaction(lock=True) as db:
        feed = get_feed(db, feed_id)
        feed.last_run_at = utcnow()
