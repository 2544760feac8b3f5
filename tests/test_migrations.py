"""The migrations themselves, on a fresh SQLite file: what `events-app migrate` builds."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from events_app import migrate
from events_app.db import Database
from tests.factories import make_agency, make_event

FTS_TRIGGERS = {"events_fts_insert", "events_fts_delete", "events_fts_update"}


def _triggers(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            found = connection.scalars(text("SELECT name FROM sqlite_master WHERE type='trigger'"))
            return set(found)
    finally:
        engine.dispose()


def test_the_full_text_triggers_survive_the_later_migrations(tmp_path: Path) -> None:
    # A migration that copies the events table (SQLite's batch mode) drops its triggers, and
    # from then on new events are missing from the full-text index: « boulangerie » finds
    # nothing. Every upgrade after 0002 must keep them, and so must the last one's downgrade.
    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    migrate.upgrade(url)
    assert _triggers(url) >= FTS_TRIGGERS
    config = migrate.alembic_config(url)
    command.downgrade(config, "-1")
    assert _triggers(url) >= FTS_TRIGGERS
    command.upgrade(config, "head")
    assert _triggers(url) >= FTS_TRIGGERS
    database = Database(url)
    try:
        with database.transaction() as db:
            agency, _ = make_agency(db)
            event_id = make_event(db, agency, title="Job dating boulangerie").id
        with database.transaction() as db:
            found = db.scalars(
                text("SELECT rowid FROM events_fts WHERE events_fts MATCH 'boulanger*'")
            )
            assert list(found) == [event_id]
    finally:
        database.dispose()
