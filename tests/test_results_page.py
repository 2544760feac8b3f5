"""The results page of the search (issue 16): both-way pages, the bounded count, the sort
control, the place candidates as links, and the map's data. Both engines."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import literal, select
from sqlalchemy.orm import Session

from events_app.models import Event, EventSector
from events_app.search import COUNT_CAP, SearchQuery, search_events
from tests.factories import in_days, make_agency, make_event


def _venue(
    lat: float, lon: float, city: str = "Montreuil", postal_code: str = "93100"
) -> dict[str, Any]:
    return {
        "name": "Salle",
        "address": "1 rue",
        "postal_code": postal_code,
        "city": city,
        "lat": lat,
        "lon": lon,
    }


def _mixed_events(db: Session) -> list[int]:
    """Eleven on-site events at growing distances from Montreuil, some at one venue, and
    four online ones."""
    agency, _ = make_agency(db)
    ids = []
    for n in range(11):
        # Three at the same venue (equal distances), the rest further and further east.
        offset = 0.0 if n < 3 else 0.01 * n
        ids.append(
            make_event(
                db,
                agency,
                title=f"Sur place {n}",
                venue=_venue(48.8615, 2.4432 + offset),
                starts_at=in_days(3 + (n * 7) % 11, 9, 0),
            ).id
        )
    for n in range(4):
        ids.append(
            make_event(
                db,
                agency,
                title=f"En ligne {n}",
                format="online",
                venue=None,
                online_url="https://visio.example/salle",
                starts_at=in_days(2 + n, 14, 0),
            ).id
        )
    return ids


def _walk(db: Session, query: SearchQuery) -> list[list[int]]:
    pages = []
    cursor = None
    while True:
        result = search_events(db, dataclasses.replace(query, cursor=cursor))
        pages.append([hit.event.id for hit in result.hits])
        if cursor is None:
            assert result.prev_cursor is None
        else:
            assert result.prev_cursor is not None
        if result.next_cursor is None:
            return pages
        cursor = result.next_cursor


def _walk_back(db: Session, query: SearchQuery, last_cursor: str | None) -> list[list[int]]:
    """From the last page, the previous links back to the first page."""
    result = search_events(db, dataclasses.replace(query, cursor=last_cursor))
    pages = [[hit.event.id for hit in result.hits]]
    while result.prev_cursor is not None:
        previous = search_events(db, dataclasses.replace(query, cursor=result.prev_cursor))
        # The way back comes forward again to the same page.
        assert previous.next_cursor is not None
        again = search_events(db, dataclasses.replace(query, cursor=previous.next_cursor))
        assert [h.event.id for h in again.hits] == pages[0]
        result = previous
        pages.insert(0, [hit.event.id for hit in result.hits])
    return pages


def _last_cursor(db: Session, query: SearchQuery) -> str | None:
    cursor = None
    while True:
        result = search_events(db, dataclasses.replace(query, cursor=cursor))
        if result.next_cursor is None:
            return cursor
        cursor = result.next_cursor


@pytest.mark.parametrize(
    "query",
    [
        SearchQuery(limit=4),
        SearchQuery(near="Montreuil", limit=4),
        SearchQuery(near="Montreuil", limit=4, sort="date"),
        SearchQuery(near="Montreuil", limit=5),
        SearchQuery(near="Montreuil", limit=3),
        SearchQuery(near="Montreuil", limit=1),
    ],
    ids=["date", "distance-4", "near-date", "distance-5", "distance-3", "distance-1"],
)
def test_previous_pages_are_the_pages_walked_forward(db: Session, query: SearchQuery) -> None:
    _mixed_events(db)
    forward = _walk(db, query)
    assert len(forward) > 2
    backward = _walk_back(db, query, _last_cursor(db, query))
    assert backward == forward


def test_count_is_exact_then_bounded(db: Session, backend: str) -> None:
    ids = _mixed_events(db)
    result = search_events(db, SearchQuery(near="Montreuil", radius_km=5, limit=2), count=True)
    on_site_within_5_km = 11 - sum(1 for n in range(3, 11) if 0.01 * n * 73.2 > 5)
    assert result.count == on_site_within_5_km + 4
    assert search_events(db, SearchQuery(limit=2), count=True).count == len(ids)
    # Counting is only done when asked: the API's search does not pay for it.
    assert search_events(db, SearchQuery(limit=2)).count is None


@pytest.mark.parametrize("near", [None, "Montreuil"])
def test_count_stops_after_the_cap(db: Session, near: str | None) -> None:
    """COUNT_CAP + 1 matches and more read at most COUNT_CAP + 1 rows: the count says
    « more than », not the real number."""
    agency, _ = make_agency(db)
    base = make_event(db, agency, title="Modèle", starts_at=in_days(5))
    # Copies written in bulk (the domain's create_event would take minutes for 1,200).
    columns = {c.key: getattr(base, c.key) for c in Event.__table__.columns if c.key not in ("id",)}
    rows = []
    for n in range(COUNT_CAP + 200):
        row = dict(columns)
        row["title"] = f"Copie {n}"
        row["starts_at"] = base.starts_at + timedelta(minutes=n)
        row["ends_at"] = base.ends_at + timedelta(minutes=n)
        rows.append(row)
    db.execute(Event.__table__.insert(), rows)
    db.execute(
        EventSector.__table__.insert().from_select(
            ["event_id", "sector"],
            select(Event.id, literal("N")).where(Event.id != base.id),
        )
    )
    statements: list[str] = []

    def capture(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = db.get_bind().engine  # type: ignore[union-attr]
    sa_event.listen(engine, "before_cursor_execute", capture)
    try:
        result = search_events(db, SearchQuery(near=near, limit=20), count=True)
    finally:
        sa_event.remove(engine, "before_cursor_execute", capture)
    assert result.count == COUNT_CAP + 1
    assert len(result.hits) == 20
    # A bounded number of statements, whatever the number of results.
    assert len(statements) <= 12, statements
