"""The send_alerts job: 10,000 confirmed alerts, 1,000 new events (SPEC §10).

    python -m bench.alerts                       # SQLite, 10,000 alerts, 1,000 events
    python -m bench.alerts --alerts 2000 --database-url postgresql+psycopg://…

The database gets the demo's events (`events-app demo`), then alerts with the filters people
use: a place and a radius with a sector (most), a place alone, a sector alone, a word. Every
alert is confirmed and due, and every event is new to it. The job runs in this process, timed,
with its SQL statements counted; then it runs again, when nothing is new. The figures: the
job's time, its statements, the mails queued and events mailed, and the same for a second
population of a fifth of the alerts, so that the cost per alert can be compared.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, event, func, insert, select
from sqlalchemy.engine import Engine

from bench.common import demo_database
from events_app.alerts import send_alerts
from events_app.db import Database, utcnow
from events_app.models import Alert, AlertSentEvent, Event, OutboxMessage
from events_app.notifications import mail_environment
from events_app.settings import load_settings
from events_app.vocab import SECTORS


@contextmanager
def counted(engine: Engine) -> Iterator[list[int]]:
    """Counts the SQL statements run on the engine inside the block."""
    count = [0]

    def one(*_: Any) -> None:
        count[0] += 1

    event.listen(engine, "before_cursor_execute", one)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", one)


def _filters(rng: random.Random, cities: list[str], words: list[str]) -> list[list[str]]:
    draw = rng.random()
    sector = rng.choice(list(SECTORS))
    if draw < 0.6:
        return [
            ["near", rng.choice(cities)],
            ["radius_km", str(rng.choice((10, 20, 30, 50)))],
            [
                "sector",
                sector,
            ],
        ]
    if draw < 0.8:
        return [["near", rng.choice(cities)], ["radius_km", "30"]]
    if draw < 0.9:
        return [["sector", sector]]
    return [["q", rng.choice(words)]]


def add_alerts(database: Database, count: int, *, seed: int = 2026) -> None:
    """`count` confirmed, due alerts to which every stored event is new."""
    rng = random.Random(seed)
    with database.transaction() as db:
        db.execute(delete(AlertSentEvent))
        db.execute(delete(Alert))
        db.execute(delete(OutboxMessage))
        # Postal codes: a commune's name may be shared (« Geay ») and an alert never holds
        # an ambiguous place (it is refused when the alert is made).
        cities = sorted(
            {c for c in db.scalars(select(Event.venue_postal_code).distinct()) if c is not None}
        )
        words = sorted(
            {w for title in db.scalars(select(Event.title).limit(200)) for w in title.split()}
            - {"de", "la", "le", "les", "des", "et", "du", "à", ":", "–", "-"}
        )
        oldest = db.scalar(select(func.min(Event.created_at)))
        since = (oldest or utcnow()) - timedelta(minutes=1)
        rows = [
            {
                "email": f"personne{n}@exemple.fr",
                "filters": _filters(rng, cities, words),
                "frequency": rng.choice(("immediate", "daily", "weekly")),
                "token": secrets.token_urlsafe(32),
                "confirmed_at": since,
                "last_sent_at": None,
                "since": since,
                "created_at": since,
            }
            for n in range(count)
        ]
        for start in range(0, len(rows), 1000):
            db.execute(insert(Alert), rows[start : start + 1000])


def run_job(database: Database) -> dict[str, float | int]:
    settings = replace(load_settings(), database_url=str(database.engine.url))
    env = mail_environment()
    with counted(database.engine) as statements:
        started = time.perf_counter()
        with database.transaction() as db:
            mails = send_alerts(db, settings, env, now=utcnow())
        seconds = time.perf_counter() - started
    with database.transaction() as db:
        mailed = db.scalar(select(func.count()).select_from(AlertSentEvent)) or 0
    return {
        "seconds": round(seconds, 2),
        "statements": statements[0],
        "mails": mails,
        "mailed": mailed,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.alerts", description=__doc__)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000)
    parser.add_argument("--database-url", default=None, help="default: a new temporary SQLite")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'alerts.db'}"
        demo_database(url, args.events)
        database = Database(url)
        try:
            with database.transaction() as db:
                events = db.scalar(select(func.count()).select_from(Event)) or 0
            figures: dict[str, Any] = {"events": events}
            for population in (max(1, args.alerts // 5), args.alerts):
                add_alerts(database, population)
                first = run_job(database)
                again = run_job(database)
                figures[str(population)] = {"first": first, "again": again}
        finally:
            database.dispose()
    populations = (max(1, args.alerts // 5), args.alerts)
    small, large = (figures[str(p)] for p in populations)
    per_alert = [
        (part["first"]["seconds"] * 1000 / population, part["first"]["statements"] / population)
        for part, population in zip((small, large), populations, strict=True)
    ]
    figures["ms_per_alert"] = [round(ms, 2) for ms, _ in per_alert]
    figures["statements_per_alert"] = [round(n, 2) for _, n in per_alert]
    figures["checks"] = {
        "a second run queues nothing": large["again"]["mails"] == 0,
        # Five times the alerts, about five times the statements: the cost follows the alerts
        # (each reads only the new events), not the events stored.
        "statements per alert stay flat": per_alert[1][1] <= 1.2 * per_alert[0][1],
    }
    return figures


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
