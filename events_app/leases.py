"""Leases in the job_locks table: which process runs a scheduled job, or imports a feed, now.

With several scheduler processes (or a scheduler started by mistake next to another), a lease
makes each job run once per due time: the first process to claim it wins, the others skip.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from events_app.db import utcnow
from events_app.models import JobLock

OWNER = f"{socket.gethostname()}:{os.getpid()}"


def claim(db: Session, name: str, *, until: datetime, owner: str = OWNER) -> bool:
    """Take the lease `name` until `until`; False when another process holds it."""
    now = utcnow()
    taken = db.execute(
        update(JobLock)
        .where(JobLock.name == name, JobLock.locked_until <= now)
        .values(locked_until=until, owner=owner)
    )
    if taken.rowcount:  # type: ignore[attr-defined]
        return True
    if db.get(JobLock, name) is not None:
        return False
    try:
        with db.begin_nested():
            db.add(JobLock(name=name, locked_until=until, owner=owner))
    except IntegrityError:
        return False
    return True
