"""What every handler shares: the transaction runner, JSON responses, ids from paths."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from events_app.db import Database, SearchDeferred
from events_app.errors import InvalidInput, NotFound, UnsupportedMediaType
from events_app.mail import LogBackend, MailBackend, deliver_outbox
from events_app.notifications import Notifier
from events_app.settings import Settings
from events_app.web.security import RateLimiter

T = TypeVar("T")
log = logging.getLogger("events_app.mail")
MAX_DB_ID = 2**31 - 1
MAX_JSON_BODY = 1_000_000


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def settings_of(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


async def in_transaction(
    request: Request, work: Callable[[Session], T], *, lock: bool = False
) -> T:
    """Run work(session) in one transaction, in a worker thread (SQLAlchemy here is sync).

    The transaction commits when work returns and rolls back when it raises: handlers and
    domain functions never commit.
    """
    database: Database = request.state.db
    return await run_in_threadpool(database.run, work, lock=lock)


async def in_search_transaction(request: Request, work: Callable[[Session], T]) -> T:
    """Run a search (a read-only unit of work) in the event loop itself while it stays short,
    else in a worker thread (Database.search_now says why and how it is bounded)."""
    database: Database = request.state.db
    try:
        return database.search_now(work)
    except SearchDeferred:
        return await run_in_threadpool(database.search_later, work)


def path_id(request: Request, name: str = "id") -> int:
    raw = request.path_params[name]
    text = str(raw)
    # Only ASCII digits, and few: int() refuses "²" and more than 4300 digits.
    value = int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else -1
    if not 0 < value <= MAX_DB_ID:
        raise NotFound("Événement introuvable.", field=name)
    return value


def is_json_media_type(content_type: str | None) -> bool:
    """application/json, with or without parameters (charset=utf-8), in any case."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


async def json_body(request: Request) -> Any:
    """The JSON body of an API request: the one place where the API reads bodies.

    Only application/json is read (415 otherwise), so that a cross-site HTML form, which can
    send text/plain but not JSON, can never act through the API. Bodies over 1 MB never get
    here (BodyLimitMiddleware).
    """
    if not is_json_media_type(request.headers.get("content-type")):
        raise UnsupportedMediaType(
            "Type de contenu non pris en charge : envoyez du JSON "
            "(Content-Type: application/json).",
            field="content-type",
        )
    body = await request.body()
    if len(body) > MAX_JSON_BODY:
        raise InvalidInput("body", "Corps de requête trop volumineux.")
    if not body:
        raise InvalidInput("body", "Corps de requête vide : un objet JSON est attendu.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("body", "Corps de requête invalide : JSON attendu.") from exc


def notifier(request: Request, db: Session) -> Notifier:
    return Notifier(db, settings_of(request), request.state.mail_env)


_delivering = threading.Lock()


def deliver_mail_soon(request: Request) -> BackgroundTask | None:
    """With a real mail server, send the outbox right after the response.

    The request itself only queued its mails. This nudge runs after the answer is sent, holds
    no database lock while a server answers, and runs at most once at a time per worker: with
    a server that hangs (ten seconds per mail), one nudge per request would take up the whole
    thread pool, and every later request, which needs it for its transaction, would wait. It
    never raises; the scheduler's delivery job is the safety net either way (it retries what
    fails here). With the default log backend mails simply stay in the outbox.
    """
    backend: MailBackend = request.state.mail_backend
    if isinstance(backend, LogBackend):
        return None
    database: Database = request.state.db

    def deliver() -> None:
        if not _delivering.acquire(blocking=False):
            return  # another request's nudge is sending; it or the scheduler takes ours
        try:
            deliver_outbox(database, backend, limit=20)
        except Exception:
            log.exception("mail delivery after a request failed; the scheduler will retry")
        finally:
            _delivering.release()

    return BackgroundTask(deliver)


def check_rate(request: Request, bucket: str, rule: str, *keys: str) -> None:
    limiter: RateLimiter = request.state.rate_limiter
    limiter.check(request, bucket, rule, *keys)


def current_seeker_id(request: Request) -> int | None:
    """The signed-in job seeker, if any (set in the signed session cookie at sign-in)."""
    value = request.session.get("seeker_id")
    return value if isinstance(value, int) else None
