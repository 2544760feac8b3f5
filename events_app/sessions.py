"""Server-side web sessions in the database (the store used without REDIS_URL).

Functions take a Session and plain values and never commit; ids are the SHA-256 of the
cookie's token (see events_app.web.sessions).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from events_app.models import WebSession


def load_session(db: Session, session_id: str, *, now: datetime) -> dict[str, Any] | None:
    """The data of a live session, or None when it is unknown, ended or expired."""
    row = db.execute(
        select(WebSession.data).where(WebSession.id == session_id, WebSession.expires_at > now)
    ).scalar_one_or_none()
    return dict(row) if isinstance(row, dict) else None


def save_session(
    db: Session,
    session_id: str,
    *,
    owner: str | None,
    data: dict[str, Any],
    expires_at: datetime,
    now: datetime,
) -> None:
    # Expired rows go here, at each sign-in, rather than in a job of their own.
    db.execute(delete(WebSession).where(WebSession.expires_at <= now))
    db.add(WebSession(id=session_id, owner=owner, data=data, created_at=now, expires_at=expires_at))


def delete_session(db: Session, session_id: str) -> None:
    db.execute(delete(WebSession).where(WebSession.id == session_id))


def end_sessions_of(db: Session, owner: str) -> int:
    """End every session of a person (a new password, a deleted account); returns how many."""
    result = db.execute(delete(WebSession).where(WebSession.owner == owner))
    return int(getattr(result, "rowcount", 0) or 0)
