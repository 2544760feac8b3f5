"""The migrations themselves, on a fresh SQLite file: what `events-app migrate` builds."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from events_app import migrate
from events_app.db import Database
from events_app.models import sector_mask, sectors_of_mask
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


def test_sector_masks_are_filled_from_the_rows_on_upgrade(tmp_path: Path) -> None:
    # Events stored before 0010 get the bits of their event_sectors rows.
    url = f"sqlite:///{tmp_path / 'masks.db'}"
    migrate.upgrade(url)
    config = migrate.alembic_config(url)
    database = Database(url)
    try:
        with database.transaction() as db:
            agency, _ = make_agency(db)
            mixed = make_event(db, agency, sectors=["N", "D"]).id
            everyone = make_event(db, agency, sectors=["all"]).id
        command.downgrade(config, "0009")
        command.upgrade(config, "head")
        with database.transaction() as db:
            masks = {i: m for i, m in db.execute(text("SELECT id, sector_mask FROM events"))}
        assert masks == {mixed: sector_mask(["D", "N"]), everyone: 1 << 14}
        assert sectors_of_mask(masks[mixed]) == ["D", "N"]
    finally:
        database.dispose()
