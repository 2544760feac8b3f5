"""Server-side sessions: the cookie carries a random token, the data stays on the server.

A copied cookie dies with its session: sign-out deletes it, and a new password or a deleted
account ends every session of that person (end_sessions). Without REDIS_URL sessions live in
the `web_sessions` table; with it, in Redis, shared by every worker and machine.

Handlers use `request.session` as before (a dict). The middleware loads it when the request
comes in and, if a handler changed it, stores it under a NEW token (sign-in never keeps an id
someone else may know) and deletes the old one; an emptied session is deleted and its cookie
cleared.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from events_app import sessions
from events_app.db import Database, utcnow

SESSION_MAX_AGE = 14 * 24 * 3600
SESSIONLESS_PREFIXES = ("/api/", "/static/", "/agenda/", "/healthz")
# The session keys that name who is signed in (web/accounts.py and web/agency.py).
OWNER_KEYS = (("staff_id", "staff"), ("seeker_id", "seeker"))


def owner_of(data: dict[str, Any]) -> str | None:
    for key, kind in OWNER_KEYS:
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{kind}:{value}"
    return None


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore(Protocol):
    async def load(self, session_id: str) -> dict[str, Any] | None: ...

    async def save(
        self, session_id: str, owner: str | None, data: dict[str, Any], max_age: int
    ) -> None: ...

    async def delete(self, session_id: str) -> None: ...

    async def end_all(self, owner: str) -> None: ...

    async def close(self) -> None: ...


class DatabaseSessionStore:
    """Sessions in the web_sessions table (events_app.sessions), one short transaction each."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def load(self, session_id: str) -> dict[str, Any] | None:
        def work() -> dict[str, Any] | None:
            with self.database.transaction() as db:
                return sessions.load_session(db, session_id, now=utcnow())

        return await run_in_threadpool(work)

    async def save(
        self, session_id: str, owner: str | None, data: dict[str, Any], max_age: int
    ) -> None:
        def work() -> None:
            now: datetime = utcnow()
            with self.database.transaction() as db:
                sessions.save_session(
                    db,
                    session_id,
                    owner=owner,
                    data=data,
                    expires_at=now + timedelta(seconds=max_age),
                    now=now,
                )

        await run_in_threadpool(work)

    async def delete(self, session_id: str) -> None:
        def work() -> None:
            with self.database.transaction() as db:
                sessions.delete_session(db, session_id)

        await run_in_threadpool(work)

    async def end_all(self, owner: str) -> None:
        def work() -> None:
            with self.database.transaction() as db:
                sessions.end_sessions_of(db, owner)

        await run_in_threadpool(work)

    async def close(self) -> None:
        return None


class RedisSessionStore:
    """Sessions in Redis: `session:<id>` holds the data (with its expiry), and the set
    `session-owner:<owner>` the ids of a person's sessions, so that all can be ended."""

    def __init__(self, url: str) -> None:
        self.redis: Redis = Redis.from_url(url)

    async def load(self, session_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(f"session:{session_id}")
        if raw is None:
            return None
        data = orjson.loads(raw)
        return data if isinstance(data, dict) else None

    async def save(
        self, session_id: str, owner: str | None, data: dict[str, Any], max_age: int
    ) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(f"session:{session_id}", orjson.dumps(data), ex=max_age)
            if owner is not None:
                pipe.sadd(f"session-owner:{owner}", session_id)
                pipe.expire(f"session-owner:{owner}", max_age)
            await pipe.execute()

    async def delete(self, session_id: str) -> None:
        await self.redis.delete(f"session:{session_id}")

    async def end_all(self, owner: str) -> None:
        ids = await self.redis.smembers(f"session-owner:{owner}")
        keys = [f"session:{raw.decode() if isinstance(raw, bytes) else raw}" for raw in ids]
        await self.redis.delete(*keys, f"session-owner:{owner}")

    async def close(self) -> None:
        await self.redis.aclose()


def session_store_of(scope: Scope) -> SessionStore:
    store: SessionStore = scope["state"]["session_store"]
    return store


async def end_sessions(request: Request, owner: str) -> None:
    """End every session of owner ("seeker:12", "staff:3"), on every worker, at once."""
    await session_store_of(request.scope).end_all(owner)


class ServerSessionMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        cookie_name: str = "session",
        max_age: int = SESSION_MAX_AGE,
        https_only: bool = False,
    ) -> None:
        self.app = app
        self.cookie_name = cookie_name
        self.max_age = max_age
        self.flags = "; path=/; httponly; samesite=lax" + ("; secure" if https_only else "")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        if path.startswith(SESSIONLESS_PREFIXES) or path.endswith(".ics"):
            # The API, calendar feeds and static files never use a session: browsers send the
            # cookie with each of them, and it must not cost a lookup.
            scope["session"] = {}
            await self.app(scope, receive, send)
            return
        store = session_store_of(scope)
        token = HTTPConnection(scope).cookies.get(self.cookie_name)
        # A token is URL-safe base64 of 32 bytes: anything else is not worth a lookup.
        old_id = _session_id(token) if token and len(token) <= 64 else None
        try:
            loaded = await store.load(old_id) if old_id else None
        except RedisError:
            # Who is signed in cannot be known: neither signed in nor signed out, but "not now".
            await PlainTextResponse(
                "Service momentanément indisponible. Réessayez dans un instant.",
                status_code=503,
                headers={"Retry-After": "5"},
            )(scope, receive, send)
            return
        initial = dict(loaded or {})
        scope["session"] = dict(initial)

        async def send_with_session(message: Message) -> None:
            if message["type"] == "http.response.start":
                current: dict[str, Any] = scope["session"]
                headers = MutableHeaders(scope=message)
                if current != initial:
                    if loaded is not None and old_id is not None:
                        await store.delete(old_id)
                    if current:
                        new_token = secrets.token_urlsafe(32)
                        await store.save(
                            _session_id(new_token), owner_of(current), current, self.max_age
                        )
                        headers.append("Set-Cookie", self._cookie(new_token, self.max_age))
                    else:
                        headers.append("Set-Cookie", self._cookie("", 0))
                elif token is not None and loaded is None:
                    # An ended or unknown session: drop the cookie rather than send it forever.
                    headers.append("Set-Cookie", self._cookie("", 0))
            await send(message)

        await self.app(scope, receive, send_with_session)

    def _cookie(self, value: str, max_age: int) -> str:
        if max_age <= 0:
            return f"{self.cookie_name}=null; expires=Thu, 01 Jan 1970 00:00:00 GMT{self.flags}"
        return f"{self.cookie_name}={value}; max-age={max_age}{self.flags}"
