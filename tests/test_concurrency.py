"""A burst of simultaneous registrations against a real server with two workers."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from events_app.db import Database
from events_app.models import Event, Registration
from tests.factories import make_agency, make_event
from tests.server import running_server

SEATS = 50
PEOPLE = 200


async def _burst(base_url: str, event_id: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=PEOPLE)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/events/{event_id}/registrations",
                    json={
                        "first_name": "Personne",
                        "last_name": f"N{i}",
                        "email": f"burst{i}@example.org",
                    },
                )
                for i in range(PEOPLE)
            )
        )


def test_burst_never_oversells(committed: Database, database_url: str) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        event_id = make_event(db, agency, capacity=SEATS).id
    with running_server(database_url, workers=2, RATE_LIMIT_REGISTRATION="100000/minute") as url:
        responses = asyncio.run(_burst(url, event_id))
    assert sorted({r.status_code for r in responses}) == [201], [
        r.text for r in responses if r.status_code != 201
    ][:3]
    statuses = [r.json()["status"] for r in responses]
    assert statuses.count("confirmed") == SEATS
    assert statuses.count("waitlisted") == PEOPLE - SEATS
    with committed.transaction() as db:
        event = db.get(Event, event_id)
        assert event is not None and event.seats_taken == SEATS
        positions = sorted(
            p
            for p in db.scalars(
                select(Registration.waitlist_position).where(
                    Registration.event_id == event_id, Registration.status == "waitlisted"
                )
            )
            if p is not None
        )
    assert positions == list(range(1, PEOPLE - SEATS + 1))
