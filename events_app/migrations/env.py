"""Alembic environment: the URL comes from the caller's Config (see events_app.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from events_app import models  # noqa: F401 - registers every table on Base.metadata
from events_app.db import Base, create_db_engine

config = context.config
target_metadata = Base.metadata


# Full-text search lives outside the models: SQLite's FTS5 table (and its shadow tables),
# PostgreSQL's generated tsvector column and its index are created by their migration (0002)
# and kept by the database itself, so `alembic check` must not see them as drift.
FULL_TEXT_NAMES = ("events_fts", "ix_events_fulltext", "search_vector")


def _include_name(name: str | None, type_: str, _parents: object) -> bool:
    return not (name and name.startswith(FULL_TEXT_NAMES))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=_include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_db_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()
