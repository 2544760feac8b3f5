"""What every handler shares: the transaction runner, JSON responses, ids from paths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from events_app.db import Database
from events_app.errors import InvalidInput, NotFound, UnsupportedMediaType
from events_app.mail import LogBackend, MailBackend, deliver_outbox
from events_app.notifications import Notifier
from events_app.settings import Settings
from events_app.web.security import RateLimiter

T = TypeVar("T")
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

    def run() -> T:
        with database.transaction(lock=lock) as session:
            return work(session)

    return await run_in_threadpool(run)


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


def deliver_mail_soon(request: Request) -> BackgroundTask | None:
    """With a real mail server, send the outbox right after the response.

    With the default log backend mails simply stay in the outbox; the scheduler's delivery job
    is the safety net either way (it retries what fails here).
    """
    backend: MailBackend = request.state.mail_backend
    if isinstance(backend, LogBackend):
        return None
    database: Database = request.state.db

    def deliver() -> None:
        deliver_outbox(database, backend)

    return BackgroundTask(deliver)


def check_rate(request: Request, bucket: str, rule: str, *keys: str) -> None:
    limiter: RateLimiter = request.state.rate_limiter
    limiter.check(request, bucket, rule, *keys)


def current_seeker_id(request: Request) -> int | None:
    """The signed-in job seeker, if any (set in the signed session cookie at sign-in)."""
    value = request.session.get("seeker_id")
    return value if isinstance(value, int) else None
