"""Calendar feed of about 1,000 events, fetched from the cache as calendar apps fetch it
(Accept-Encoding: gzip), under load (spec §9: at least 25 % of the hello-world rate)."""

from __future__ import annotations

import gzip
import time
from urllib.parse import urlencode

import httpx
from sqlalchemy import func, select

from bench.common import Context, Row, demo_database, serve_app
from events_app.calendar_feeds import feed_window
from events_app.db import Database, utcnow
from events_app.models import Agency, Event
from events_app.search import paris_day_start

FEED_EVENTS = 1_000
# With the demo's seed, its busiest agency then has about 1,000 events.
DEMO_EVENTS = 13_000
MIN_RATIO = 0.25
GZIP = {"Accept-Encoding": "gzip"}


def _agency_nearest(database_url: str, wanted: int) -> tuple[str, int]:
    """The agency whose feed (every event of its feed window) is closest to `wanted` events."""
    start, end = feed_window(utcnow())
    database = Database(database_url)
    try:
        with database.transaction() as db:
            counts = db.execute(
                select(Agency.slug, func.count(Event.id))
                .join(Event, Event.agency_id == Agency.id)
                .where(
                    Event.starts_at >= paris_day_start(start),
                    Event.starts_at < paris_day_start(end),
                )
                .group_by(Agency.slug)
            ).all()
    finally:
        database.dispose()
    slug, count = min(counts, key=lambda row: abs(row[1] - wanted))
    return slug, count


def run(ctx: Context) -> list[Row]:
    url = ctx.database("sqlite", "calendar")
    print(f"calendar: loading {DEMO_EVENTS:,} demo events…", flush=True)
    demo_database(url, DEMO_EVENTS)
    slug, _ = _agency_nearest(url, FEED_EVENTS)
    path = "/calendar.ics?" + urlencode({"agency": slug})
    with serve_app(url, ctx.options.workers, ctx.workdir) as base_url:
        started = time.perf_counter()
        first = httpx.get(base_url + path, headers=GZIP, timeout=60)
        render_ms = (time.perf_counter() - started) * 1000
        if first.status_code != 200 or first.headers.get("content-encoding") != "gzip":
            raise SystemExit(f"calendar: GET {path}: {first.status_code} {first.headers}")
        body = first.read()  # httpx has already inflated it
        events = body.count(b"BEGIN:VEVENT")
        sent_kb = len(gzip.compress(body, mtime=0)) / 1000
        print(
            f"calendar: {path} has {events} events ({len(body) / 1000:,.0f} kB, about "
            f"{sent_kb:,.0f} kB gzipped); first fetch (render) {render_ms:,.0f} ms",
            flush=True,
        )
        result = ctx.compare_with_hello(base_url, [path], headers=["Accept-Encoding: gzip"])
    print(f"  cached, gzipped: {result.describe()}", flush=True)
    return [
        Row(
            "calendar feed",
            "feed size, first (uncached) fetch",
            f"{events} events, {render_ms:,.0f} ms",
            f"~{FEED_EVENTS:,} events",
            abs(events - FEED_EVENTS) <= FEED_EVENTS // 5,
        ),
        Row(
            "calendar feed",
            "cached gzip rate",
            "",
            rate=result.rate,
            hello=result.hello_rate,
            min_ratio=MIN_RATIO,
        ),
    ]
