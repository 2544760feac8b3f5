"""Database plumbing: declarative base, engines, sessions, and the SQLite pragmas."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Final, TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    MetaData,
    Table,
    create_engine,
    event,
    insert,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from events_app.errors import Conflict

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored in UTC, read back aware on every engine.

    SQLite has no time zone type, so values are normalised to UTC on the way in and tagged
    UTC on the way out; naive values are refused, because they are always a bug here.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def normalise_url(url: str) -> URL:
    """Accept the plain URLs of the spec and pick our drivers (psycopg 3 for PostgreSQL)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


DEFAULT_BUSY_TIMEOUT_MS = 30_000


def create_db_engine(
    url: str, *, pool_size: int = 10, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
) -> Engine:
    """An engine; on SQLite a write waits up to busy_timeout_ms for the lock, then fails with
    "database is locked" (an OperationalError, which the app answers with a 503)."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed,
            # We issue BEGIN ourselves (see _sqlite_begin) so that writes can take the lock
            # up front; pysqlite's own transaction handling would defer it.
            connect_args={
                "check_same_thread": False,
                "timeout": busy_timeout_ms / 1000,
                "isolation_level": None,
            },
            pool_size=pool_size,
            max_overflow=20,
        )
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_ms))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=20,
        pool_pre_ping=True,
        # libpq waits forever for a host that drops packets; fail in 10 s with a clear error.
        connect_args={"connect_timeout": 10},
    )


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[[Any, ConnectionPoolEntry], None]:
    def on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


def _sqlite_begin(conn: Any) -> None:
    # A write transaction that reads then writes (a registration) must hold the write lock
    # from its first statement, or two of them read the same seat count.
    if conn.get_execution_options().get("sqlite_immediate"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


# A search run in the event loop (Database.search_now) that keeps the database busy longer
# than this is stopped, to be run again in a worker thread.
INLINE_SEARCH_BUDGET_S = 0.02
# SQLite calls the budget's check every this many virtual-machine steps (tens of microseconds).
_BUDGET_CHECK_STEPS = 10_000
# PostgreSQL's error for a statement that ran past statement_timeout.
_QUERY_CANCELED = "57014"
# PostgreSQL searches that kept the event loop longer than the budget SLOW_SEARCHES times in
# a row (a slow network: the server's statement_timeout counts only its own work) send the
# worker's searches to threads for SLOW_SEARCH_BACKOFF_S; then the loop is tried again. In a
# row, so that a worker descheduled once by a busy machine stays in the loop.
SLOW_SEARCHES = 3
SLOW_SEARCH_BACKOFF_S = 60.0
# The key of Session.info naming the engine whose snapshots (events_app.gazetteer) a session
# of another engine on the same database shares.
SNAPSHOT_ENGINE = "snapshot_engine"


class SearchDeferred(Exception):
    """A search that cannot run in the event loop, or ran past its budget there: run it again
    in a worker thread (Database.search_later)."""


def create_search_engine(url: str) -> Engine:
    """PostgreSQL's engine for the searches run in the event loop (Database.search_now).

    Everything that would block the loop is bounded or gone. Each statement is cancelled by
    the server past INLINE_SEARCH_BUDGET_S (statement_timeout). Reads run in autocommit: no
    BEGIN and COMMIT round trips, and no ping before each use (a connection the server
    dropped fails at once and the search goes to a worker thread, whose engine pings). A host
    that vanishes mid-search is noticed by TCP within seconds (keepalives, tcp_user_timeout).
    The session is read-only. Connections are opened only in worker threads (search_now does
    not run without an idle one): connecting can take up to connect_timeout.
    """
    budget_ms = max(1, round(INLINE_SEARCH_BUDGET_S * 1000))
    return create_engine(
        normalise_url(url),
        pool_size=1,
        max_overflow=2,
        pool_timeout=1,
        isolation_level="AUTOCOMMIT",
        connect_args={
            "connect_timeout": 10,
            "options": f"-c statement_timeout={budget_ms} -c default_transaction_read_only=on",
            "keepalives": 1,
            "keepalives_idle": 2,
            "keepalives_interval": 1,
            "keepalives_count": 2,
            "tcp_user_timeout": 3000,
        },
    )


class Database:
    """The engine and its two session factories: plain, and write-locking for SQLite; on
    PostgreSQL, a second engine for the searches run in the event loop."""

    def __init__(
        self, url: str, *, pool_size: int = 10, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
    ) -> None:
        self.engine = create_db_engine(url, pool_size=pool_size, busy_timeout_ms=busy_timeout_ms)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.write_sessions = sessionmaker(
            self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False
        )
        self.search_engine = None if self.is_sqlite else create_search_engine(url)
        self._searches_in_threads_until = 0.0
        self._slow_searches = 0
        self.search_sessions = sessionmaker(
            self.search_engine, expire_on_commit=False, info={SNAPSHOT_ENGINE: self.engine}
        )

    @contextlib.contextmanager
    def transaction(self, *, lock: bool = False) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error."""
        factory = self.write_sessions if lock else self.sessions
        with factory() as session, session.begin():
            yield session

    def run(self, work: Callable[[Session], T], *, lock: bool = False) -> T:
        """work(session) in one transaction, run again (up to UNIQUE_RACE_RETRIES times) when
        it loses a race on a unique key: the next run sees the row the winner committed and
        takes the path for an existing row. Any other integrity error, or a race lost again
        and again, is a Conflict with a French message: never a 503 "retry later"."""
        for attempt in range(UNIQUE_RACE_RETRIES + 1):
            try:
                with self.transaction(lock=lock) as session:
                    return work(session)
            except IntegrityError as exc:
                if not is_unique_violation(exc) or attempt == UNIQUE_RACE_RETRIES:
                    raise Conflict(CONFLICT_MESSAGE) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def search_now(self, work: Callable[[Session], T]) -> T:
        """A search (read-only work) run right here, in the event loop, while it stays short:
        SearchDeferred when it cannot start here or ran past INLINE_SEARCH_BUDGET_S.

        A search is Python work that holds the GIL most of its time, so a worker thread blocks
        the event loop about as much and adds the hand-over of the GIL between two threads at
        every switch: under load that cost a third of the computed searches' throughput
        (README, Performance). SQLite reads wait neither for the network nor for a lock (WAL);
        its progress handler interrupts a long scan. PostgreSQL's server cancels a statement
        past the budget, and the search engine bounds the rest (create_search_engine); searches
        that keep the loop past the budget all the same (round trips over a slow network) send
        the next ones to threads for a while (SLOW_SEARCHES).
        """
        if self.search_engine is None:
            return self._search_sqlite_now(work)
        started = time.monotonic()
        if started < self._searches_in_threads_until:
            raise SearchDeferred("recent searches kept the event loop too long")
        if not self.search_engine.pool.checkedin():  # type: ignore[attr-defined]
            raise SearchDeferred("no idle connection for a search in the event loop")
        try:
            with self.search_sessions() as session:
                result = work(session)
        except DBAPIError as exc:
            canceled = getattr(exc.orig, "sqlstate", None) == _QUERY_CANCELED
            if canceled or exc.connection_invalidated:
                raise SearchDeferred(str(exc.orig)) from exc
            raise
        ended = time.monotonic()
        self._slow_searches = (
            self._slow_searches + 1 if ended - started > INLINE_SEARCH_BUDGET_S else 0
        )
        if self._slow_searches >= SLOW_SEARCHES:
            self._slow_searches = 0
            self._searches_in_threads_until = ended + SLOW_SEARCH_BACKOFF_S
        return result

    def _search_sqlite_now(self, work: Callable[[Session], T]) -> T:
        deadline = time.monotonic() + INLINE_SEARCH_BUDGET_S

        def bounded(db: Session) -> T:
            raw = db.connection().connection.dbapi_connection
            assert raw is not None  # noqa: S101 (a checked-out connection)
            raw.set_progress_handler(lambda: time.monotonic() > deadline, _BUDGET_CHECK_STEPS)
            try:
                return work(db)
            finally:
                raw.set_progress_handler(None, 0)

        try:
            return self.run(bounded)
        except OperationalError as exc:
            if "interrupted" not in str(exc.orig):
                raise
            raise SearchDeferred(str(exc.orig)) from exc

    def search_later(self, work: Callable[[Session], T]) -> T:
        """A search in a worker thread, in a transaction of the main engine (see search_now).
        On PostgreSQL, it first opens the search engine's connection if it has none idle, for
        the next searches to run in the event loop."""
        engine = self.search_engine
        if engine is not None and not engine.pool.checkedin():  # type: ignore[attr-defined]
            try:
                with engine.connect():
                    pass
            except (DBAPIError, SQLAlchemyTimeoutError):
                pass  # the search below says what is wrong, through the main engine
        return self.run(work)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.search_engine is not None:
            self.search_engine.dispose()


# Two requests inserting the same unique key at once (the same address signing up twice in
# the same instant, two imports of the same row): one wins, the other is run again.
UNIQUE_RACE_RETRIES = 2
CONFLICT_MESSAGE = (
    "Cette demande contredit les données enregistrées (peut-être une modification "
    "simultanée). Rechargez et vérifiez avant de recommencer."
)


def insert_many(
    connection: Connection, table: Table, records: list[dict[str, Any]], *, ids_by: str
) -> dict[Any, int]:
    """Insert many rows (every record names the same columns) and return their new ids, by
    the value of their column `ids_by` (unique among the records).

    On PostgreSQL through COPY, with the ids drawn from the table's sequence first: SQLAlchemy's
    multi-row INSERT ... RETURNING sends a statement of tens of thousands of placeholders per
    thousand rows, which psycopg parses again each time (it caches only short statements), and
    which the server plans each time. COPY took a seventh of its time for a batch of events
    (README, Performance). Values go through the columns' bind processors, as in an INSERT.
    On SQLite, whose driver has no such cost, the multi-row INSERT ... RETURNING.
    """
    if not records:
        return {}
    columns = list(records[0])
    missing = [c.name for c in table.columns if c.default is not None and c.name not in columns]
    if missing:  # COPY would leave out the Python-side defaults an INSERT applies
        raise ValueError(f"insert_many: no value for {', '.join(missing)}")
    if connection.dialect.name != "postgresql":
        inserted = connection.execute(
            insert(table).returning(table.c[ids_by], *table.primary_key.columns), records
        )
        return {key: new_id for key, new_id in inserted}
    (id_column,) = table.primary_key.columns
    new_ids = (
        connection.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence(:table, :column)) "
                "FROM generate_series(1, :n)"
            ),
            {"table": table.name, "column": id_column.name, "n": len(records)},
        )
        .scalars()
        .all()
    )
    processors = [(name, table.c[name].type.bind_processor(connection.dialect)) for name in columns]
    import psycopg  # the PostgreSQL driver, imported only where it is used
    from psycopg import sql

    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name),
        sql.SQL(", ").join(sql.Identifier(name) for name in (id_column.name, *columns)),
    )
    raw = cast("psycopg.Connection[Any]", connection.connection.dbapi_connection)
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for new_id, record in zip(new_ids, records, strict=True):
            values = [
                record[name] if convert is None else convert(record[name])
                for name, convert in processors
            ]
            copy.write_row((new_id, *values))
    return {record[ids_by]: new_id for new_id, record in zip(new_ids, records, strict=True)}


def is_unique_violation(exc: IntegrityError) -> bool:
    """A duplicate key (PostgreSQL's SQLSTATE 23505, SQLite's UNIQUE failure), as opposed to a
    check, foreign-key or not-null failure, which running again would not cure."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if code is not None:
        return bool(code == "23505")
    return "UNIQUE constraint failed" in str(exc.orig)


def utcnow() -> datetime:
    return datetime.now(UTC)


# The service's local time: events are shown, entered and bounded by day in Paris hours.
PARIS: Final = ZoneInfo("Europe/Paris")
