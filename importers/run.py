"""One import run: fetch, parse and validate outside any write, then one short write.

The run is recorded in import_runs whatever happens: a source that cannot be read at all
leaves the events as they were and records a failed run with the reason.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from events_app.db import Database, utcnow
from events_app.feeds import get_feed
from events_app.models import Feed, ImportRun
from events_app.notifications import Notifier
from events_app.settings import Settings
from importers import PARSERS
from importers.base import ImportedEvent, Notice, RowError
from importers.fetch import Fetched, FetchError, fetch_source
from importers.sync import Collected, Geocoder, SyncReport, apply, collect, known_rows

log = logging.getLogger("importers")
MAX_REPORTED_ROWS = 1000


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
    items: Iterator[ImportedEvent | RowError | Notice], progress: Callable[[int], None] | None
) -> Iterator[ImportedEvent | RowError | Notice]:
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
        run = ImportRun(feed_id=feed.id, status="running", rejected_rows=[], warnings=[])
        db.add(run)
        db.flush()
        run_id = run.id

    try:
        fetched: Fetched = fetch_source(
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
            collected = collect(
                _counted(parser(content), progress), Geocoder(db), known_rows(db, feed_id)
            )
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
        return _write(database, settings, run_id, feed_id, fetched, collected)
    finally:
        collected.close()


def _write(
    database: Database,
    settings: Settings,
    run_id: int,
    feed_id: int,
    fetched: Fetched,
    collected: Collected,
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
    try:
        # lock=True: on SQLite the write lock is taken up front (seat counts are read and
        # written, and a deferred transaction upgraded late fails when another wrote meanwhile).
        with database.transaction(lock=True) as db:
            feed = get_feed(db, feed_id)
            report: SyncReport = apply(
                db, feed=feed, collected=collected, notifier=Notifier(db, settings)
            )
            if report.refused is None:
                _remember_fetch(feed, fetched)
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
            rejected=len(errors),
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
        rejected=len(errors),
        rejected_rows=rejected_rows,
        warnings=(report.conflicts + report.warnings + collected.warnings)[:MAX_REPORTED_ROWS],
        fetch_outcome=fetched.outcome,
    )


def _remember_fetch(feed: Feed, fetched: Fetched) -> None:
    feed.etag = fetched.etag
    feed.last_modified = fetched.last_modified
    feed.last_run_at = utcnow()


def _touch_feed(database: Database, feed_id: int, fetched: Fetched) -> None:
    with database.transaction(lock=True) as db:
        feed = get_feed(db, feed_id)
        feed.last_run_at = utcnow()
