"""Security headers, CSRF protection and rate limits for the web layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from events_app.errors import RateLimited

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    ),
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


class ProtectedPaths:
    """Every form path is CSRF-checked, even for a visitor without cookies (login CSRF).

    The JSON API is exempt: it takes bearer tokens or no credentials, and its bodies must be
    application/json, which a cross-site form cannot send.
    """

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and not path.startswith("/api/")


def skip_csrf(scope: dict[str, Any]) -> bool:
    # No form is served or read there: the JSON API (415 to anything but JSON) and the
    # calendar feeds. Signing a CSRF cookie for each of those answers cost about two thirds
    # of a cached answer's time, and a Set-Cookie on a feed defeats shared caches.
    path = str(scope.get("path", ""))
    return path.startswith("/api/") or path.endswith(".ics")


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
    """Per-client moving-window limits (in memory: each worker counts its own requests)."""

    def __init__(self) -> None:
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, request: Request, bucket: str, rule: str, *keys: str) -> None:
        client = request.client.host if request.client else "unknown"
        if not self.limiter.hit(parse(rule), bucket, client, *keys):
            raise RateLimited(
                "Trop de tentatives en peu de temps. Patientez une minute avant de réessayer."
            )
