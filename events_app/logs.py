"""Logging that keeps secrets out: manage, feed and reset tokens travel in URLs, and access
logs would otherwise write them down for anyone who reads the logs."""

from __future__ import annotations

import logging
import re

SECRET_IN_URL = re.compile(
    r"(/inscriptions/|/api/v1/registrations/|/agenda/)[A-Za-z0-9_\-]{8,}|([?&]token=)[^&\s\"]+"
)


def redact(text: str) -> str:
    return SECRET_IN_URL.sub(lambda m: (m.group(1) or m.group(2)) + "[masqué]", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_redaction() -> None:
    """Redact the access log of uvicorn and our own loggers (idempotent)."""
    for name in ("uvicorn.access", "uvicorn.error", "events_app"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
