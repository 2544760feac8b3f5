"""Fixtures: every database test runs on SQLite and on a real PostgreSQL cluster.

Each backend's database is built once per session with `alembic upgrade head` (never
create_all), checked with `alembic check`, and loaded with the communes. Domain tests get a
session inside a transaction that is rolled back; HTTP tests get an app on the same database,
whose rows (except the communes) are deleted after each test.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from events_app import migrate
from events_app.app import create_app
from events_app.db import Base, Database
from events_app.places import load_communes
from events_app.settings import Settings
from tests import pg
from tests.helpers import (
    JS_DIR,
    ParsedEvent,
    node_missing,
    read_icalendar,
    read_icaljs,
    read_vobject,
)
from tests.redis_server import running_redis

# Hypothesis profiles. "ci" (chosen when CI is set) runs the same derandomized examples on every
# run, so a red build is reproducible and never flaky; "dev" (the default elsewhere) draws new
# examples each run and replays the failures it found from .hypothesis/. HYPOTHESIS_PROFILE
# picks one by name.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
hypothesis_settings.register_profile("dev", derandomize=False)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE")
    or ("ci" if os.environ.get("CI", "").lower() not in ("", "0", "false") else "dev")
)

KEEP_TABLES = {"communes", "commune_postal_codes", "alembic_version"}


def pytest_report_header() -> list[str]:
    if pg.available():
        return [f"PostgreSQL: throwaway cluster from {pg.PG_BIN}"]
    return [f"!!! PostgreSQL binaries missing at {pg.PG_BIN}: PostgreSQL cases are SKIPPED !!!"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    if not pg.available():
        pytest.skip(f"PostgreSQL binaries missing at {pg.PG_BIN}")
    with pg.cluster() as url:
        yield url


def _build(url: str) -> str:
    migrate.upgrade(url)
    migrate.check(url)
    database = Database(url)
    try:
        with database.transaction() as db:
            load_communes(db)
    finally:
        database.dispose()
    return url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("sqlite") / "test.db"
    return _build(f"sqlite:///{path}")


@pytest.fixture(scope="session")
def postgresql_url(pg_server: str) -> str:
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute("CREATE DATABASE events_test")
    return _build(pg_server.rsplit("/", 1)[0] + "/events_test")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def db(database: Database) -> Iterator[Session]:
    """A session whose work is rolled back at the end of the test."""
    # BEGIN IMMEDIATE on SQLite, as the app's write transactions do (see events_app.db).
    with database.engine.execution_options(sqlite_immediate=True).connect() as connection:
        transaction = connection.begin()
        session = Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            session.close()
            transaction.rollback()


def _clean(database: Database) -> None:
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name not in KEEP_TABLES]
    with database.transaction() as session:
        for table in tables:
            session.execute(table.delete())


@pytest.fixture
def committed(database: Database) -> Iterator[Database]:
    """The database for tests that commit (HTTP, CLI); emptied after the test."""
    try:
        yield database
    finally:
        _clean(database)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, base_url="http://testserver")


@pytest.fixture
def client(committed: Database, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def backend(database: Database) -> str:
    return database.engine.dialect.name


# --- calendar parsers and SQL statements (test_calendars, test_personal_feed) ------------


@pytest.fixture(scope="session")
def icaljs() -> Callable[[list[bytes]], list[dict[str, Any]]]:
    """Runs tests/js/read_ics.mjs (ical.js) over calendars; installs ical.js with npm ci."""
    if node_missing():
        pytest.skip(
            "!!! node is not installed: the ical.js (Thunderbird) checks of the calendars are "
            "SKIPPED. Install Node.js to run them. !!!"
        )
    # The test processes (pytest-xdist workers) install ical.js once: the first takes the
    # lock and runs npm ci, the others wait for it and find node_modules there.
    with open(JS_DIR / ".npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (JS_DIR / "node_modules" / "ical.js").is_dir():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, timeout=300
            )

    def run(bodies: list[bytes]) -> list[dict[str, Any]]:
        with tempfile.TemporaryDirectory() as folder:
            paths = []
            for index, body in enumerate(bodies):
                path = Path(folder) / f"{index}.ics"
                path.write_bytes(body)
                paths.append(str(path))
            out = subprocess.run(
                ["node", "read_ics.mjs", *paths],
                cwd=JS_DIR,
                check=True,
                capture_output=True,
                timeout=60,
            )
        result: list[dict[str, Any]] = json.loads(out.stdout)
        return result

    return run


@pytest.fixture
def read_all(
    icaljs: Callable[[list[bytes]], list[dict[str, Any]]],
) -> Callable[[bytes], dict[str, list[ParsedEvent]]]:
    """Parse a calendar with the three parsers: {"icalendar": [...], "vobject": [...], ...}."""

    def read(body: bytes) -> dict[str, list[ParsedEvent]]:
        return {
            "icalendar": read_icalendar(body),
            "vobject": read_vobject(body),
            "ical.js": read_icaljs(icaljs([body])[0]),
        }

    return read


@pytest.fixture
def queries() -> Iterator[list[str]]:
    """Every SQL statement run by any engine while the test runs."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", record)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway Debian redis-server for the tests of REDIS_URL (tests/redis_server.py)."""
    with running_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url
