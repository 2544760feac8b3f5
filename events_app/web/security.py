"""Security headers, CSRF protection and rate limits for the web layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from asgi_csrf import asgi_csrf
from limits import parse
from limits.storage import MemoryStorage, RedisStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from events_app.errors import RateLimited


def content_security_policy(*image_origins: str) -> str:
    """The CSP of every page; a page with a map adds its tile server's origin to img-src
    (Settings.map_tiles_origin), and only that page."""
    images = " ".join(("'self'", "data:", *image_origins))
    return (
        f"default-src 'self'; script-src 'self'; style-src 'self'; img-src {images}; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


SECURITY_HEADERS = [
    (b"content-security-policy", content_security_policy().encode()),
    (b"x-content-type-options", b"nosniff"),
    # Manage and feed URLs carry secrets: never send them to other sites as a referrer.
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"geolocation=(), camera=(), microphone=()"),
]


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


MAX_BODY_BYTES = 1_000_000
TOO_LARGE_MESSAGE = "Corps de requête trop volumineux (1 Mo au plus)."


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuses request bodies over max_bytes with 413, on every route, before anything reads them.

    It sits outside the CSRF middleware (which buffers form bodies) and every handler: a declared
    Content-Length over the limit is refused without reading a byte, and a body without one
    (chunked) is counted as it streams in and cut at the limit.
    """

    def __init__(
        self, app: ASGIApp, render_page: Callable[[], bytes], max_bytes: int = MAX_BODY_BYTES
    ) -> None:
        self.app = app
        self.render_page = render_page
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await self._refuse(scope, send)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except _BodyTooLarge:
            if started:  # too late for a 413: drop the connection
                raise
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        path = str(scope.get("path", ""))
        if path.startswith("/api/"):
            error = {"code": "too_large", "message": TOO_LARGE_MESSAGE, "field": "body"}
            body = orjson.dumps({"error": error})
            content_type = b"application/json"
        else:
            body = self.render_page()
            content_type = b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    # The rest of the body is not read: the connection cannot be reused.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


UNSUBSCRIBE_PREFIX = "/alertes/desabonner/"


class ProtectedPaths:
    """Every form path is CSRF-checked, even for a visitor without cookies (login CSRF).

    The JSON API is exempt: it takes bearer tokens or no credentials, and its bodies must be
    application/json, which a cross-site form cannot send.

    The one-click unsubscribe of alert mails (RFC 8058) is exempt too: a mail client posts
    it without cookies, and it only ever ends the alert named by its secret token.
    """

    def __contains__(self, path: object) -> bool:
        return (
            isinstance(path, str)
            and not path.startswith("/api/")
            and not path.startswith(UNSUBSCRIBE_PREFIX)
        )


def skip_csrf(scope: Scope) -> bool:
    # No form is served or read there: the JSON API (415 to anything but JSON) and the
    # calendar feeds. A Set-Cookie on a feed would also defeat shared caches.
    path = str(scope.get("path", ""))
    return path.startswith("/api/") or path.endswith(".ics")


class CsrfMiddleware:
    """asgi-csrf for the pages, and nothing at all where skip_csrf says no form is served or
    read. asgi-csrf signs a new token (or checks the cookie's signature) for every request
    before it looks at its own skip_if_scope: about half the time of a cached API answer."""

    def __init__(self, app: ASGIApp, /, **options: Any) -> None:
        self.app = app
        self.protected = asgi_csrf(app, skip_if_scope=skip_csrf, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and skip_csrf(scope):
            await self.app(scope, receive, send)
        else:
            await self.protected(scope, receive, send)


def csrf_failed_sender(render: Callable[[], bytes]) -> Callable[..., Any]:
    async def send_csrf_failed(scope: Scope, send: Send, message_id: Any = None) -> None:
        body = render()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [(b"content-type", b"text/html; charset=utf-8"), *SECURITY_HEADERS],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return send_csrf_failed


class RateLimiter:
    """Per-client moving-window limits: in memory (each worker counts its own requests), or in
    Redis with REDIS_URL (one count for every worker and machine).

    The client is the peer of the connection, or the address a trusted proxy put in
    X-Forwarded-For (FORWARDED_ALLOW_IPS, applied by the app's ProxyHeadersMiddleware).
    """

    def __init__(self, storage_uri: str | None = None) -> None:
        self.storage = storage_from_string(storage_uri) if storage_uri else MemoryStorage()
        self.limiter = MovingWindowRateLimiter(self.storage)

    def close(self) -> None:
        """Close the Redis connections (at the app's shutdown); memory needs nothing."""
        if isinstance(self.storage, RedisStorage):
            self.storage.storage.close()

    def check(self, request: Request, bucket: str, rule: str, *keys: str) -> None:
        client = request.client.host if request.client else "unknown"
        if not self.limiter.hit(parse(rule), bucket, client, *keys):
            raise RateLimited(
                "Trop de tentatives en peu de temps. Patientez une minute avant de réessayer."
            )
