"""On SQLite the API's search runs in the event loop while it stays short, and again in a
worker thread when SQLite has to scan long (events_app.web.common.in_search_transaction)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from events_app.db import Database
from events_app.web import common
from tests.factories import in_days, make_agency, make_event


def _in_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_a_search_runs_in_the_loop_and_a_long_one_in_a_thread(
    client: TestClient, committed: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        made = [make_event(db, agency, starts_at=in_days(1 + n)).id for n in range(3)]
    runs: list[bool] = []
    original = Database.run

    def watched(self: Database, work: Callable[..., Any], **options: Any) -> Any:
        runs.append(_in_loop())
        return original(self, work, **options)

    monkeypatch.setattr(Database, "run", watched)
    body = client.get("/api/v1/events", params={"limit": 2}).json()
    assert [item["id"] for item in body["items"]] == made[:2]
    # SQLite: in the event loop. PostgreSQL: in a worker thread, always.
    assert runs == [committed.is_sqlite]
    if not committed.is_sqlite:
        return
    runs.clear()
    # A budget every search exceeds: SQLite interrupts it, and a thread runs it again.
    monkeypatch.setattr(common, "INLINE_SEARCH_BUDGET_S", -1.0)
    monkeypatch.setattr(common, "_BUDGET_CHECK_STEPS", 1)
    body = client.get("/api/v1/events", params={"limit": 2, "from": "2000-01-01"}).json()
    assert [item["id"] for item in body["items"]] == made[:2]
    assert runs == [True, False]
    # The budget leaves with the interrupted search: the next search in the loop is whole.
    monkeypatch.undo()
    monkeypatch.setattr(Database, "run", watched)
    runs.clear()
    body = client.get("/api/v1/events", params={"limit": 3, "from": "2000-01-02"}).json()
    assert [item["id"] for item in body["items"]] == made
    assert runs == [True]
