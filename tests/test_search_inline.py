"""The API's search runs in the event loop while it stays short, and again in a worker thread
when it cannot start there or runs past its budget (events_app.db.Database.search_now, used by
events_app.web.common.in_search_transaction), on both engines."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from events_app import db as db_module
from events_app.db import Database, SearchDeferred
from events_app.gazetteer import gazetteer
from events_app.models import Event
from events_app.web import api
from tests.factories import in_days, make_agency, make_event


def _in_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _slow(database: Database) -> Callable[[Session], int]:
    """A read that keeps the database busy for about 0.2 s, well past the budget."""
    if database.is_sqlite:
        statement = text(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
            "SELECT count(*) FROM n"
        )
    else:
        statement = text("SELECT 1 FROM pg_sleep(0.2)")
    return lambda session: int(session.execute(statement).scalar_one())


def test_a_search_runs_in_the_loop_and_a_long_one_in_a_thread(
    client: TestClient, committed: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        made = [make_event(db, agency, starts_at=in_days(1 + n)).id for n in range(3)]
    runs: list[bool] = []
    original = api.search_event_summaries  # type: ignore[attr-defined]

    def watched(db: Session, query: Any) -> Any:
        runs.append(_in_loop())
        return original(db, query)

    monkeypatch.setattr(api, "search_event_summaries", watched)
    for limit in (2, 3):
        body = client.get("/api/v1/events", params={"limit": limit}).json()
        assert [item["id"] for item in body["items"]] == made[:limit]
    # SQLite: in the event loop. PostgreSQL: the first search of a worker in a thread, which
    # opens the connection that the next searches use in the loop.
    assert runs == ([True, True] if committed.is_sqlite else [False, True])
    if not committed.is_sqlite:
        return  # PostgreSQL's budget is the server's statement_timeout: see the next test
    runs.clear()
    # A budget every search exceeds: SQLite stops it, and a thread runs it again.
    monkeypatch.setattr(db_module, "INLINE_SEARCH_BUDGET_S", -1.0)
    monkeypatch.setattr(db_module, "_BUDGET_CHECK_STEPS", 1)
    body = client.get("/api/v1/events", params={"limit": 2, "from": "2000-01-01"}).json()
    assert [item["id"] for item in body["items"]] == made[:2]
    assert runs == [True, False]


def test_a_search_past_its_budget_is_deferred_and_then_runs_whole(committed: Database) -> None:
    database = Database(str(committed.engine.url.render_as_string(hide_password=False)))
    try:
        if not database.is_sqlite:
            # No connection yet: never opened in the event loop.
            with pytest.raises(SearchDeferred):
                database.search_now(lambda session: 1)
            assert database.search_later(lambda session: 1) == 1
        assert database.search_now(lambda session: session.execute(text("SELECT 1")).scalar())
        with pytest.raises(SearchDeferred):
            database.search_now(_slow(database))
        assert database.search_later(_slow(database)) in (1, 3_000_000)
        # The budget left with the stopped search: the next one runs whole.
        assert database.search_now(lambda session: session.execute(text("SELECT 2")).scalar())
    finally:
        database.dispose()


def test_a_search_in_the_loop_shares_the_workers_snapshots_and_cannot_write(
    committed: Database,
) -> None:
    if committed.is_sqlite:
        pytest.skip("SQLite's searches use the main engine itself")
    database = Database(str(committed.engine.url.render_as_string(hide_password=False)))
    try:
        # Reading the communes takes longer than the budget: in a thread, through the main
        # engine, and the search connection opens. A search in the loop then finds them read.
        in_thread = database.search_later(gazetteer)
        assert database.search_now(gazetteer) is in_thread
        with pytest.raises(DBAPIError, match="read-only"):
            database.search_now(lambda session: session.execute(update(Event).values(title="x")))
    finally:
        database.dispose()


def test_a_connection_the_server_dropped_sends_the_search_to_a_thread_once(
    committed: Database,
) -> None:
    if committed.is_sqlite:
        pytest.skip("a PostgreSQL server's connections")
    database = Database(str(committed.engine.url.render_as_string(hide_password=False)))
    try:
        pid = database.search_later(lambda session: None) or database.search_now(
            lambda session: session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        )
        with committed.transaction() as session:
            session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(SearchDeferred):
            database.search_now(lambda session: session.execute(text("SELECT 1")).scalar())
        assert database.search_later(lambda session: session.execute(text("SELECT 3")).scalar())
        assert database.search_now(lambda session: session.execute(text("SELECT 4")).scalar())
    finally:
        database.dispose()


def test_searches_slowed_by_the_network_go_to_threads_for_a_while(
    committed: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if committed.is_sqlite:
        pytest.skip("SQLite's reads have no network to wait for")
    database = Database(str(committed.engine.url.render_as_string(hide_password=False)))

    def one(session: Session) -> int:
        return int(session.execute(text("SELECT 1")).scalar_one())

    def searches(slow: bool, count: int) -> None:
        # A budget of 0 makes every search slow (as over a slow network: each round trip is
        # long, and none runs long on the server); one of 10 s makes none.
        monkeypatch.setattr(db_module, "INLINE_SEARCH_BUDGET_S", 0.0 if slow else 10.0)
        for _ in range(count):
            assert database.search_now(one) == 1

    try:
        database.search_later(one)  # opens the search connection
        # Slow searches, but not enough in a row: a worker descheduled once stays in the loop.
        searches(slow=True, count=db_module.SLOW_SEARCHES - 1)
        searches(slow=False, count=1)
        searches(slow=True, count=db_module.SLOW_SEARCHES)
        with pytest.raises(SearchDeferred, match="kept the event loop"):
            database.search_now(one)
        assert database.search_later(one) == 1
        # The while has passed: the loop is tried again.
        monkeypatch.setattr(database, "_searches_in_threads_until", 0.0)
        searches(slow=False, count=2)
    finally:
        database.dispose()
