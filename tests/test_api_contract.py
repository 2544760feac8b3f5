"""The search's fast path writes exactly what the models write, for every kind of event."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from sqlalchemy.orm import Session

from events_app.db import utcnow
from events_app.events import get_event
from events_app.models import Event
from events_app.search import SearchQuery, search_event_summaries
from events_app.settings import Settings
from events_app.web.answers import EventOut, SearchPage
from events_app.web.schemas import dump
from tests.factories import in_days, make_agency, make_event

SETTINGS = Settings(database_url="sqlite:///unused", base_url="http://testserver")
ONLINE = {"format": "online", "venue": None, "online_url": "https://visio.example.org/salle"}


def _events(db: Session) -> list[Event]:
    agency, _ = make_agency(db, name="Agence « Test » & Cie")
    events = [
        make_event(db, agency, capacity=2),
        make_event(db, agency, capacity=None, type="workshop", sectors=["all", "A"], **ONLINE),
        make_event(
            db,
            agency,
            format="hybrid",
            capacity=1,
            remote_capacity=3,
            online_url="https://visio.example.org/hybride",
            registration_opens_at=in_days(-1),
            registration_closes_at=in_days(6),
            job_offers=12,
        ),
        make_event(db, agency, starts_at=in_days(2, 23, 59), title="Forum de nuit"),
        # Written by orjson on the fast path and by isoformat() in the model: seconds and
        # their fraction too.
        make_event(
            db, agency, starts_at=in_days(3).replace(second=7, microsecond=250), title="Précis"
        ),
    ]
    cancelled = events[0]
    cancelled.status = "cancelled"
    cancelled.timezone = "America/Guadeloupe"
    cancelled.duplicate_copies = [{"id": events[1].id, "agency": {"id": agency.id, "name": "A"}}]
    db.flush()
    return [get_event(db, event.id) for event in events]


@pytest.mark.parametrize("distance", [None, 0.0, 12.34])
def test_fast_items_are_the_model_items(db: Session, distance: float | None) -> None:
    for event in _events(db):
        fast = orjson.dumps(EventOut.fast(event, SETTINGS, utcnow(), distance_km=distance))
        model = dump(EventOut.of(event, SETTINGS, distance_km=distance))
        assert orjson.loads(fast) == orjson.loads(model)
        without = orjson.loads(orjson.dumps(EventOut.fast(event, SETTINGS, utcnow())))
        assert "distance_km" not in without
        assert without == orjson.loads(dump(EventOut.of(event, SETTINGS)))


def test_a_search_page_from_summaries_validates_as_a_search_page(db: Session) -> None:
    _events(db)
    result = search_event_summaries(db, SearchQuery(date_from=(in_days(-1) - timedelta(1)).date()))
    assert result.hits
    body = orjson.dumps(
        {
            "items": [EventOut.fast(e, SETTINGS, utcnow()) for e, _ in result.hits],
            "next_cursor": result.next_cursor,
        }
    )
    page = SearchPage.model_validate_json(body)
    assert orjson.loads(dump(page)) == orjson.loads(body)
