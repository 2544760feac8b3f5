"""create_app(settings) -> Starlette: routes, middleware, lifespan, error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypedDict

from jinja2 import Environment
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
)
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from events_app.db import CONFLICT_MESSAGE, Database
from events_app.errors import Conflict, DomainError, RateLimited
from events_app.logs import install_redaction
from events_app.mail import MailBackend, backend_from_settings
from events_app.notifications import mail_environment
from events_app.resources import STATIC_DIR
from events_app.settings import DEFAULT_SECRET_KEY, Settings, load_settings
from events_app.web import accounts, agency, alerts, api, calendars, public, search_pages
from events_app.web.common import JSONResponse, in_transaction
from events_app.web.security import (
    TOO_LARGE_MESSAGE,
    BodyLimitMiddleware,
    CsrfMiddleware,
    ProtectedPaths,
    RateLimiter,
    SecurityHeadersMiddleware,
    csrf_failed_sender,
)
from events_app.web.sessions import (
    DatabaseSessionStore,
    RedisSessionStore,
    ServerSessionMiddleware,
    SessionStore,
)
from events_app.web.templating import build_templates

log = logging.getLogger("events_app")

HTTP_MESSAGES = {
    400: "Requête invalide.",
    401: "Authentification requise.",
    403: "Accès refusé.",
    404: "Page introuvable.",
    405: "Méthode non autorisée.",
    409: "Conflit.",
    413: "Requête trop volumineuse.",
    503: "Service momentanément indisponible. Réessayez dans un instant.",
}


class State(TypedDict):
    db: Database
    settings: Settings
    templates: Jinja2Templates
    mail_backend: MailBackend
    mail_env: Environment
    rate_limiter: RateLimiter
    session_store: SessionStore


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/healthz"


def _error_response(
    request: Request, status: int, code: str, message: str, field: str | None = None
) -> Response:
    if _wants_json(request):
        body: dict[str, Any] = {"error": {"code": code, "message": message, "field": field}}
        return JSONResponse(body, status_code=status)
    templates: Jinja2Templates = request.state.templates
    return templates.TemplateResponse(
        request,
        "errors/error.html",
        {"status": status, "message": message},
        status_code=status,
    )


async def domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)  # noqa: S101 - registered for DomainError only
    response = _error_response(request, exc.status_code, exc.code, exc.message, exc.field)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = "60"
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException only
    message = HTTP_MESSAGES.get(exc.status_code, "Erreur.")
    response = _error_response(request, exc.status_code, f"http_{exc.status_code}", message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


# Database errors that say "not now" (down, restarting, locked): the request may
# succeed if retried, so they answer 503 with Retry-After. The others (a value the database
# refuses, bad SQL) are bugs: a logged 500, never a 503 that hides them behind "try again".
# An IntegrityError is none of these: Database.run retries a lost race on a unique key and
# turns the rest into a 409; one that escapes elsewhere is answered 409 below, never 503.
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError, InternalError)


async def database_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DBAPIError)  # noqa: S101 - registered for DBAPIError only
    if isinstance(exc, IntegrityError):
        return await domain_error(request, Conflict(CONFLICT_MESSAGE))
    if not isinstance(exc, TRANSIENT_DB_ERRORS) and not exc.connection_invalidated:
        return await server_error(request, exc)
    log.warning("database unavailable: %s", type(exc).__name__)
    response = _error_response(request, 503, "unavailable", HTTP_MESSAGES[503])
    response.headers["Retry-After"] = "5"
    return response


async def redis_unavailable(request: Request, exc: Exception) -> Response:
    # Redis (REDIS_URL) down or unreachable: like a database that does not answer, "not now".
    log.warning("redis unavailable: %s", type(exc).__name__)
    response = _error_response(request, 503, "unavailable", HTTP_MESSAGES[503])
    response.headers["Retry-After"] = "5"
    return response


async def server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_response(request, 500, "server_error", "Erreur interne. Réessayez plus tard.")


async def healthz(request: Request) -> Response:
    await in_transaction(request, lambda db: db.execute(text("SELECT 1")))
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    if settings.is_production and settings.secret_key == DEFAULT_SECRET_KEY:
        raise RuntimeError("SECRET_KEY must be set in production (APP_ENV=production).")
    templates = build_templates()
    install_redaction()

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[State]:
        database = Database(settings.database_url, busy_timeout_ms=settings.db_busy_timeout_ms)
        session_store: SessionStore = (
            RedisSessionStore(settings.redis_url)
            if settings.redis_url
            else DatabaseSessionStore(database)
        )
        rate_limiter = RateLimiter(settings.redis_url)
        try:
            yield {
                "db": database,
                "settings": settings,
                "templates": templates,
                "mail_backend": backend_from_settings(settings),
                "mail_env": mail_environment(),
                "rate_limiter": rate_limiter,
                "session_store": session_store,
            }
        finally:
            # Every connection is closed in the event loop that opened it; the next start
            # (another TestClient, another loop) opens its own.
            await session_store.close()
            await search_pages.close_search_pages(_app)
            rate_limiter.close()
            database.dispose()

    def render_csrf_failure() -> bytes:
        template = templates.get_template("errors/error.html")
        message = (
            "Le formulaire a expiré ou n'a pas pu être vérifié. "
            "Revenez à la page précédente, rechargez-la et réessayez."
        )
        return template.render({"status": 403, "message": message}).encode()

    def render_too_large() -> bytes:
        template = templates.get_template("errors/error.html")
        return template.render({"status": 413, "message": TOO_LARGE_MESSAGE}).encode()

    routes = [
        Route("/healthz", healthz, methods=["GET"], name="health"),
        Mount("/api/v1", routes=api.routes),
        *calendars.routes,
        *accounts.routes,
        *alerts.routes,
        *agency.routes,
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        *public.routes,
    ]
    middleware = [
        # Trusted proxies only (FORWARDED_ALLOW_IPS): the client address that rate limits count.
        # `events-app serve` leaves proxy headers to this layer, whatever serves the app.
        *(
            [Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)]
            if settings.forwarded_allow_ips.strip()
            else []
        ),
        Middleware(SecurityHeadersMiddleware),
        # Before the CSRF middleware, which reads whole form bodies into memory.
        Middleware(BodyLimitMiddleware, render_page=render_too_large),
        Middleware(
            CsrfMiddleware,
            signing_secret=settings.secret_key,
            always_protect=ProtectedPaths(),
            cookie_secure=settings.secure_cookies,
            send_csrf_failed=csrf_failed_sender(render_csrf_failure),
        ),
        Middleware(ServerSessionMiddleware, https_only=settings.secure_cookies),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            DomainError: domain_error,
            HTTPException: http_error,
            DBAPIError: database_unavailable,
            RedisError: redis_unavailable,
            Exception: server_error,
        },
    )
    # Links in pages come from route names: {{ path_for("public:event", id=event.id) }} is the
    # path (relative, as the pages always linked), checked against the routes at render time.
    templates.env.globals["path_for"] = app.url_path_for
    return app
