"""Registration burst: 500 simultaneous registrations for 100 seats, over 2 workers (spec §9):
exactly 100 confirmed, 400 waitlisted in order (positions 1..400), no error."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select

from bench.common import Context, Row, serve_app
from events_app import migrate
from events_app.agencies import create_agency
from events_app.db import PARIS, Database
from events_app.events import clean_event_fields, create_event
from events_app.models import Event, Registration

PEOPLE = 500
SEATS = 100


def _make_event(database_url: str) -> int:
    migrate.upgrade(database_url)
    database = Database(database_url)
    starts = (datetime.now(PARIS) + timedelta(days=7)).replace(
        hour=9, minute=30, second=0, microsecond=0
    )
    fields = {
        "title": "Job dating logistique",
        "description": "<p>Rencontrez des recruteurs.</p>",
        "type": "job_dating",
        "sectors": ["N"],
        "format": "onsite",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=3)).isoformat(),
        "venue": {
            "name": "Agence France Travail",
            "address": "1 place Jean-Jaurès",
            "postal_code": "93100",
            "city": "Montreuil",
            "lat": 48.8615,
            "lon": 2.4432,
        },
        "capacity": SEATS,
        "waitlist": True,
    }
    try:
        with database.transaction() as db:
            agency, _token = create_agency(db, slug="banc-d-essai", name="Agence du banc d'essai")
            event_id = create_event(
                db, agency_id=agency.id, fields=clean_event_fields(fields, partial=False)
            ).id
    finally:
        database.dispose()
    return event_id


async def _burst(base_url: str, event_id: int) -> tuple[list[httpx.Response], float]:
    limits = httpx.Limits(max_connections=PEOPLE, max_keepalive_connections=PEOPLE)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        responses = await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/events/{event_id}/registrations",
                    json={
                        "first_name": "Personne",
                        "last_name": f"N{i}",
                        "email": f"rafale{i}@example.org",
                    },
                )
                for i in range(PEOPLE)
            )
        )
        return responses, time.perf_counter() - started


def _stored(database_url: str, event_id: int) -> tuple[int, list[tuple[int, str, int | None]]]:
    database = Database(database_url)
    try:
        with database.transaction() as db:
            event = db.get(Event, event_id)
            assert event is not None
            rows = db.execute(
                select(Registration.id, Registration.status, Registration.waitlist_position)
                .where(Registration.event_id == event_id)
                .order_by(Registration.id)
            ).all()
            return event.seats_taken, [(r[0], r[1], r[2]) for r in rows]
    finally:
        database.dispose()


def run(ctx: Context, backends: list[str]) -> list[Row]:
    rows: list[Row] = []
    for backend in backends:
        url = ctx.database(backend, "burst")
        event_id = _make_event(url)
        with serve_app(
            url, ctx.options.workers, ctx.workdir, RATE_LIMIT_REGISTRATION="100000/minute"
        ) as base_url:
            responses, seconds = asyncio.run(_burst(base_url, event_id))
        errors = [r for r in responses if r.status_code != 201]
        statuses = [r.json().get("status") for r in responses if r.status_code == 201]
        seats_taken, stored = _stored(url, event_id)
        confirmed = [r for r in stored if r[1] == "confirmed"]
        waitlisted = [r for r in stored if r[1] == "waitlisted"]
        # In order: positions 1..400, given in the order the registrations were made.
        positions = [position for _id, _status, position in waitlisted]
        in_order = positions == list(range(1, PEOPLE - SEATS + 1))
        ok = (
            not errors
            and statuses.count("confirmed") == len(confirmed) == seats_taken == SEATS
            and statuses.count("waitlisted") == len(waitlisted) == PEOPLE - SEATS
            and len(stored) == PEOPLE
            and in_order
        )
        rate = PEOPLE / seconds
        print(
            f"registration burst {backend}: {len(confirmed)} confirmed, {len(waitlisted)} "
            f"waitlisted (positions 1..{PEOPLE - SEATS} in order: {in_order}), {len(errors)} "
            f"errors, {seconds:.2f} s = {rate:,.0f} registrations/s",
            flush=True,
        )
        for response in errors[:3]:
            print(f"  error {response.status_code}: {response.text[:300]}")
        rows.append(
            Row(
                f"registration burst {backend}",
                f"{PEOPLE} at once for {SEATS} seats",
                f"{len(confirmed)} confirmed, {len(waitlisted)} waitlisted"
                f"{' in order' if in_order else ' OUT OF ORDER'}, {len(errors)} errors",
                f"{SEATS}, {PEOPLE - SEATS} in order, 0",
                ok,
            )
        )
        rows.append(
            Row(
                f"registration burst {backend}",
                "registrations per second",
                f"{rate:,.0f} /s ({seconds:.2f} s)",
            )
        )
    return rows
