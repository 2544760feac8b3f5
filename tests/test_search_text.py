"""Text search (`q`): French stems over an FTS5 (SQLite) or GIN (PostgreSQL) index."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, text
from sqlalchemy.orm import Session

from events_app import search_statements as statements
from events_app.db import PARIS
from events_app.events import update_event
from events_app.fulltext import text_terms
from events_app.models import Event
from events_app.search import SearchQuery, paris_day_start, search_events
from events_app.web.schemas import event_fields
from tests.factories import make_agency, make_event


def _titles(db: Session, q: str) -> list[str]:
    return [hit.event.title for hit in search_events(db, SearchQuery(q=q, limit=50)).hits]


def test_terms_are_folded_french_stems() -> None:
    assert text_terms("Recrutement") == ["recrut"]
    assert text_terms("SALONS de l'Emploi") == sorted({"salon", "de", "l", "emploi"})
    assert text_terms("«  !! »") == []


def test_stems_find_other_forms_of_a_word(db: Session) -> None:
    agency, _ = make_agency(db)
    make_event(db, agency, title="Rencontre avec des recruteurs")
    make_event(db, agency, title="Journée de recrutement")
    make_event(db, agency, title="Atelier CV")
    found = _titles(db, "recrutement")
    assert sorted(found) == ["Journée de recrutement", "Rencontre avec des recruteurs"]
    assert _titles(db, "RECRUTEURS") == ["Rencontre avec des recruteurs"]


def test_every_word_must_match_and_accents_do_not_matter(db: Session) -> None:
    agency, _ = make_agency(db)
    make_event(db, agency, title="Forum santé et social")
    make_event(db, agency, title="Forum numérique")
    assert _titles(db, "forum sante") == ["Forum santé et social"]
    assert _titles(db, "numerique") == ["Forum numérique"]
    assert _titles(db, "?!") == []


def test_the_index_follows_edits_and_deletions(db: Session) -> None:
    agency, _ = make_agency(db)
    event = make_event(db, agency, title="Atelier logistique")
    assert _titles(db, "logistique") == ["Atelier logistique"]
    update_event(db, event, event_fields({"title": "Atelier soudure"}, partial=True))
    db.flush()
    assert _titles(db, "logistique") == []
    assert _titles(db, "soudeur") == []  # « soudeur » stems to « soudeur », not a prefix
    assert _titles(db, "soudure") == ["Atelier soudure"]
    db.execute(delete(Event).where(Event.id == event.id))
    assert _titles(db, "soudure") == []


def test_venue_and_city_are_searched_too(db: Session) -> None:
    agency, _ = make_agency(db)
    make_event(db, agency, title="Job dating")
    assert _titles(db, "montreuil") == ["Job dating"]


def test_postgresql_plans_each_text_search_for_its_own_weeks(db: Session, backend: str) -> None:
    """The same words asked for week after week must not become one prepared statement planned
    for any dates at all (a generic plan): PostgreSQL would guess the weeks hold a handful of
    the word's matches and read every match through the full-text index (140 ms for a common
    word at a million events) instead of walking the dates to the page's 20."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's prepared statements")
    agency, _ = make_agency(db)
    make_event(db, agency, title="Forum de la logistique")
    start = datetime.now(PARIS).date()
    for week in range(10):  # past psycopg's prepare threshold (5 runs of one statement)
        first = start + timedelta(weeks=week)
        query = SearchQuery(q="logistique", date_from=first, date_to=first + timedelta(days=27))
        search_events(db, query)
    prepared = db.execute(
        text(
            "SELECT statement, parameter_types::text FROM pg_prepared_statements "
            "WHERE statement LIKE '%@@%'"
        )
    ).all()
    date_parameters = [
        statement for statement, types in prepared if "timestamp with time zone" in types
    ]
    assert date_parameters == []
    # The searches still found the event in the weeks that hold it.
    assert _titles(db, "logistique") == ["Forum de la logistique"]


def test_sqlite_walks_the_dates_of_a_common_word_in_one_index(db: Session, backend: str) -> None:
    """A common word's search walks the events by date and tests each one's words: on SQLite
    it reads them from ix_events_fulltext_dates alone, never the table (a lookup per event
    read, 6.6 ms for « logistique » at a million events against 1.6 ms)."""
    if backend != "sqlite":
        pytest.skip("SQLite's index of the words by date (PostgreSQL tests its tsvector)")
    agency, _ = make_agency(db)
    wanted = make_event(db, agency, title="Forum de la logistique")
    make_event(db, agency, title="Atelier CV")
    shape = ("from", "to", ("q", "like", 1), "one_per_group")
    first = datetime.now(PARIS).date()
    params = {
        "date_from": paris_day_start(first),
        "date_to": paris_day_start(first + timedelta(days=60)),
        "q_like_0": "% logist%",
        "page_limit": 21,
    }
    statement = statements.date_page(shape, False, False, False)
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        sent.append((sql, parameters))

    connection = db.connection()
    event.listen(connection, "before_cursor_execute", record)
    try:
        found = [row[0] for row in connection.execute(statement, params)]
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert found == [wanted.id]
    sql, parameters = sent[-1]
    plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters).all()
    details = " | ".join(str(row[-1]) for row in plan)
    assert "USING COVERING INDEX ix_events_fulltext_dates" in details, details
