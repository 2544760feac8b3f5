"""Search: a place, 30 km, one sector and a 4-week window, first page of 20 (spec §9).

For each backend and size: a fresh database with `events-app demo --events N` (spread over
France by population), the query plan of the place search as the app sends it, then a real
server for the sequential latency (p50, p95) and the rate under load.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import event
from sqlalchemy.engine import Connection

from bench.common import (
    Context,
    Row,
    count_label,
    demo_database,
    load,
    sequential_latency,
    serve_app,
)
from events_app.db import PARIS, Database
from events_app.search import SearchQuery, search_events

TARGET_P50_MS = 15.0
TARGET_P50_AT = 100_000
TARGET_SCALING = 2.0
MIN_RATIO = 0.25
RADIUS_KM = 30
# Twenty places from the biggest cities to middle-sized towns, each with its own sector.
PLACES = (
    ("Paris", "D"),
    ("Marseille", "F"),
    ("Lyon", "G"),
    ("Toulouse", "H"),
    ("Nice", "J"),
    ("Nantes", "K"),
    ("Montpellier", "N"),
    ("Strasbourg", "M"),
    ("Bordeaux", "A"),
    ("Lille", "I"),
    ("Rennes", "D"),
    ("Reims", "F"),
    ("Dijon", "G"),
    ("Grenoble", "H"),
    ("Angers", "J"),
    ("Clermont-Ferrand", "K"),
    ("Limoges", "N"),
    ("Tours", "M"),
    ("Amiens", "C"),
    ("Perpignan", "E"),
)


SECTORS = ("A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N")
# The app keeps each search page for a few seconds (events_app.web.api): the figures of a
# computed search come from searches that are each asked once, with their own 4-week window.
WINDOW_OFFSETS = 28  # first days from tomorrow; the demo's events span the next 8 weeks


def window(offset: int = 7) -> tuple[date, date]:
    """A 4-week window starting `offset` days from today (in Paris), both days included."""
    start = datetime.now(PARIS).date() + timedelta(days=offset)
    return start, start + timedelta(days=27)


def _path(place: str, sector: str, offset: int) -> str:
    start, end = window(offset)
    parameters = {
        "near": place,
        "radius_km": RADIUS_KM,
        "sector": sector,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "limit": 20,
    }
    return "/api/v1/events?" + urlencode(parameters)


def search_paths() -> list[str]:
    """The twenty searches that are asked again and again (served from the page cache)."""
    return [_path(place, sector, 7) for place, sector in PLACES]


def distinct_paths() -> list[str]:
    """Every place with every window and every sector, each once: 7,840 different searches."""
    paths = []
    for round_ in range(len(SECTORS)):
        for offset in range(1, WINDOW_OFFSETS + 1):
            for n, (place, _) in enumerate(PLACES):
                paths.append(_path(place, SECTORS[(round_ + n) % len(SECTORS)], offset))
    return paths


def explain(database_url: str) -> tuple[list[str], int]:
    """The plan of the place search's candidate query, and the number of statements one
    search sends. The SQL is the app's own: search_events runs here, in process, and its
    statements are captured on their way to the driver."""
    start, end = window()
    query = SearchQuery(
        near=PLACES[0][0],
        radius_km=RADIUS_KM,
        sectors=(PLACES[0][1],),
        date_from=start,
        date_to=end,
        limit=20,
    )
    database = Database(database_url)
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    try:
        event.listen(database.engine, "before_cursor_execute", capture)
        with database.transaction() as db:
            search_events(db, query)
        event.remove(database.engine, "before_cursor_execute", capture)
        statements = [s for s in captured if not s[0].lstrip().upper().startswith("BEGIN")]
        # The candidate queries filter on the cells (the page's own load only reads them);
        # the last one is the widest circle the search needed.
        geo = [s for s in statements if "geo_cell IN" in s[0]]
        if not geo:
            return ["(no statement filters on geo_cell)"], len(statements)
        statement, parameters = geo[-1]
        with database.engine.connect() as conn:
            if database.is_sqlite:
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
                depth: dict[int, int] = {0: 0}
                plan = []
                for node, parent, _unused, detail in rows:
                    depth[node] = depth.get(parent, 0) + 1
                    plan.append("  " * (depth[node] - 1) + str(detail))
            else:
                rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
                plan = [_shorten(str(row[0])) for row in rows]
    finally:
        database.dispose()
    return plan, len(statements)


def _shorten(line: str) -> str:
    """A plan line with its long lists of cells cut to their first values and their count."""

    def cut(match: re.Match[str]) -> str:
        values = match.group(1).split(",")
        return "{" + ",".join(values[:3]) + f",… {len(values)} values}}"

    return re.sub(r"\{([0-9,]{40,})\}", cut, line)


def run(ctx: Context, backends: list[str], sizes: list[int]) -> list[Row]:
    options = ctx.options
    cached = search_paths()
    distinct = distinct_paths()
    measured, warm_up, computed = (
        distinct[: options.latency_requests],
        distinct[-len(PLACES) :],
        distinct[options.latency_requests : -len(PLACES)],
    )
    rows: list[Row] = []
    for backend in backends:
        p50_by_size: dict[int, float] = {}
        for size in sizes:
            label = f"{backend} {count_label(size)}"
            url = ctx.database(backend, f"search_{size}")
            print(f"search {label}: loading {size:,} demo events…", flush=True)
            seconds = demo_database(url, size)
            print(f"search {label}: loaded in {seconds:.0f} s", flush=True)
            plan, statements = explain(url)
            print(f"search {label}: {statements} SQL statements per search; plan of the")
            print("  candidate query (place + radius + sector + dates):")
            for line in plan:
                print(f"    {line}")
            with serve_app(url, options.workers, ctx.workdir) as base_url:
                latency = sequential_latency(base_url, measured, warm_up=warm_up)
                print(
                    f"search {label}: p50 {latency.p50_ms:.1f} ms, p95 {latency.p95_ms:.1f} ms "
                    f"({latency.count} different searches one after another)",
                    flush=True,
                )
                uncached = load(base_url, computed, options)
                uncached.check(f"search {label}, computed")
                print(
                    f"  under load, every search computed: {uncached.rate:,.0f} req/s "
                    f"({uncached.describe()})",
                    flush=True,
                )
                result = ctx.compare_with_hello(base_url, cached)
            print(
                f"  under load, {len(cached)} searches asked again and again: {result.describe()}",
                flush=True,
            )
            hello = result.hello_rate
            p50_by_size[size] = latency.p50_ms
            at_target = size == TARGET_P50_AT
            rows.append(
                Row(
                    f"search {label}",
                    "latency p50 / p95 (computed)",
                    f"{latency.p50_ms:.1f} / {latency.p95_ms:.1f} ms",
                    f"p50 ≤ {TARGET_P50_MS:g} ms" if at_target else "",
                    latency.p50_ms <= TARGET_P50_MS if at_target else None,
                )
            )
            rows.append(
                Row(
                    f"search {label}",
                    "rate, each search computed",
                    "",
                    rate=uncached.rate,
                    hello=hello,
                )
            )
            rows.append(
                Row(
                    f"search {label}",
                    f"rate, {len(cached)} searches (cached)",
                    "",
                    rate=result.rate,
                    hello=hello,
                    min_ratio=MIN_RATIO,
                )
            )
        if len(p50_by_size) > 1:
            small, large = min(p50_by_size), max(p50_by_size)
            scaling = p50_by_size[large] / p50_by_size[small]
            rows.append(
                Row(
                    f"search {backend}",
                    f"p50 at {count_label(large)} ÷ p50 at {count_label(small)}",
                    f"{scaling:.2f}×",
                    f"≤ {TARGET_SCALING:g}×",
                    scaling <= TARGET_SCALING,
                )
            )
    return rows
