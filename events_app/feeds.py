"""Feeds of agencies and the history of their import runs."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, joinedload

from events_app.errors import Conflict, InvalidInput, NotFound
from events_app.leases import claim
from events_app.models import Agency, Event, Feed, ImportRun
from events_app.vocab import FEED_FORMATS


def get_agency_by_slug(db: Session, slug: str) -> Agency:
    agency = db.scalar(select(Agency).where(Agency.slug == slug))
    if agency is None:
        raise NotFound(f"Organisme inconnu : « {slug} ».", field="agency")
    return agency


def add_feed(
    db: Session, *, agency_id: int, url: str, format: str, interval_minutes: int | None
) -> Feed:
    """Register a feed polled every interval_minutes (None: imported by hand only)."""
    if format not in FEED_FORMATS:
        raise InvalidInput("format", f"Format inconnu : « {format} » (ft-json, ics ou csv).")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput("url", "L'adresse du flux doit commencer par http:// ou https://.")
    if len(url) > 2000:  # the column's size: PostgreSQL would refuse it with a bare error
        raise InvalidInput("url", "L'adresse du flux dépasse 2000 caractères.")
    if interval_minutes is not None and not 5 <= interval_minutes <= 7 * 24 * 60:
        raise InvalidInput("interval_minutes", "L'intervalle va de 5 minutes à 7 jours.")
    duplicate = db.scalar(
        select(Feed.id).where(Feed.agency_id == agency_id, Feed.url == url, Feed.format == format)
    )
    if duplicate is not None:
        raise Conflict("Ce flux est déjà enregistré pour cet organisme.", field="url")
    feed = Feed(agency_id=agency_id, url=url, format=format, interval_minutes=interval_minutes)
    db.add(feed)
    db.flush()
    return feed


def source_feed(db: Session, *, agency_id: int, source: str, format: str) -> Feed:
    """The feed behind a one-off import (a file or URL given on the command line).

    Imports are keyed by (feed, external id), so importing the same source again updates the
    same events instead of duplicating them; a file, whatever its name, goes to the agency's
    file feed of that format.
    """
    if format not in FEED_FORMATS:
        raise InvalidInput("format", f"Format inconnu : « {format} » (ft-json, ics ou csv).")
    feed = db.scalar(
        select(Feed).where(Feed.agency_id == agency_id, Feed.url == source, Feed.format == format)
    )
    if feed is None and not source.startswith(("http://", "https://")):
        # Agencies save each export under a new name (`ml-export-2026-12-05.csv`): every file
        # of one agency and format goes to the same file feed, so a renamed export updates the
        # events it already imported (and cancels those it no longer lists). The feed's url
        # becomes the last file read once a run has read it (importers.run).
        feed = db.scalar(
            select(Feed)
            .where(
                Feed.agency_id == agency_id,
                Feed.format == format,
                Feed.interval_minutes.is_(None),
                Feed.enabled.is_(False),
                ~Feed.url.startswith("http://"),
                ~Feed.url.startswith("https://"),
            )
            .order_by(Feed.last_run_at.desc().nulls_last(), Feed.id.desc())
            .limit(1)
        )
    if feed is None:
        feed = Feed(
            agency_id=agency_id, url=source, format=format, interval_minutes=None, enabled=False
        )
        db.add(feed)
        db.flush()
    return feed


def forget_unread_feed(db: Session, feed_id: int) -> None:
    """Delete a one-off feed whose first run could not read its source (runs go with it).

    A feed that has events, or that a run has ever read, is kept."""
    feed = db.get(Feed, feed_id)
    if feed is None or feed.last_run_at is not None or feed.enabled:
        return
    if db.scalar(select(Event.id).where(Event.feed_id == feed_id).limit(1)) is not None:
        return
    db.execute(delete(ImportRun).where(ImportRun.feed_id == feed_id))
    db.delete(feed)
    db.flush()


def list_feeds(db: Session, *, agency_id: int | None = None) -> list[Feed]:
    statement = select(Feed).options(joinedload(Feed.agency)).order_by(Feed.id)
    if agency_id is not None:
        statement = statement.where(Feed.agency_id == agency_id)
    return list(db.scalars(statement))


def get_feed(db: Session, feed_id: int, *, agency_id: int | None = None) -> Feed:
    statement = select(Feed).where(Feed.id == feed_id).options(joinedload(Feed.agency))
    if agency_id is not None:
        statement = statement.where(Feed.agency_id == agency_id)
    feed = db.scalar(statement)
    if feed is None:
        raise NotFound("Flux introuvable.", field="feed")
    return feed


def feed_runs(db: Session, feed_id: int, *, limit: int = 20) -> list[ImportRun]:
    return list(
        db.scalars(
            select(ImportRun)
            .where(ImportRun.feed_id == feed_id)
            .order_by(ImportRun.id.desc())
            .limit(limit)
        )
    )


def claim_due_feed(db: Session, *, now: datetime, skip: Collection[int] = ()) -> int | None:
    """Take the next scheduled feed due at `now` and mark it run; None when none is left.

    A feed is due when its interval has passed since its last run. Its lease (held until the
    next due time) keeps another scheduler process from importing it too; feeds another
    process holds, and those in `skip`, are passed over.
    """
    feeds = db.execute(
        select(Feed.id, Feed.interval_minutes, Feed.last_run_at)
        .where(Feed.enabled.is_(True), Feed.interval_minutes.is_not(None))
        .order_by(Feed.id)
    ).all()
    for feed_id, interval, last_run in feeds:
        every = timedelta(minutes=interval or 5)
        if feed_id in skip or (last_run is not None and last_run + every > now):
            continue
        if claim(db, f"feed:{feed_id}", until=now + every):
            db.execute(update(Feed).where(Feed.id == feed_id).values(last_run_at=now))
            return int(feed_id)
    return None
