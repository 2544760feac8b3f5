"""Database.run: a race lost on a unique key is run again; other integrity errors are a 409."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from events_app.agencies import create_agency
from events_app.db import UNIQUE_RACE_RETRIES, Database
from events_app.errors import Conflict
from events_app.models import Agency, Event
from tests.factories import make_agency, make_event


def _insert_twice(database: Database, db: Session, slug: str) -> None:
    """Another request commits an agency, then this one inserts the same row (it checked
    before the other committed): the unique key refuses it."""
    with database.transaction(lock=True) as other:
        winner, _ = create_agency(other, slug=slug, name="Agence gagnante")
        columns = {c.key: getattr(winner, c.key) for c in Agency.__table__.columns}
    db.add(Agency(**{key: value for key, value in columns.items() if key != "id"}))
    db.flush()


def test_a_race_lost_on_a_unique_key_is_run_again(committed: Database) -> None:
    attempts: list[int] = []

    def work(db: Session) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            _insert_twice(committed, db, "course")
        found = db.scalars(select(Agency).where(Agency.slug == "course")).one()
        return found.name

    assert committed.run(work, lock=True) == "Agence gagnante"
    assert len(attempts) == 2


def test_a_race_lost_every_time_is_a_conflict(committed: Database) -> None:
    attempts: list[int] = []

    def work(db: Session) -> None:
        attempts.append(1)
        _insert_twice(committed, db, f"course-{len(attempts)}")

    with pytest.raises(Conflict) as error:
        committed.run(work, lock=True)
    assert len(attempts) == UNIQUE_RACE_RETRIES + 1
    assert error.value.status_code == 409 and "Rechargez" in error.value.message


def test_a_broken_rule_is_a_conflict_at_once(committed: Database) -> None:
    with committed.transaction(lock=True) as db:
        agency, _ = make_agency(db)
        event_id = make_event(db, agency, capacity=2).id
    attempts: list[int] = []

    def work(db: Session) -> None:
        attempts.append(1)
        # seats_taken <= capacity is a check constraint: running again cannot cure it.
        db.execute(update(Event).where(Event.id == event_id).values(seats_taken=5))

    with pytest.raises(Conflict):
        committed.run(work, lock=True)
    assert len(attempts) == 1
