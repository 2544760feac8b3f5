"""The JSON API under /api/v1 (spec section 7)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from events_app.agencies import authenticate_agency
from events_app.errors import InvalidInput
from events_app.events import clean_event_fields, create_event, get_event
from events_app.models import Registration
from events_app.places import suggest_places
from events_app.registrations import (
    ALREADY_REGISTERED,
    cancel_agency_event,
    cancel_registration,
    clean_person,
    edit_event,
    get_registration,
    list_registrants,
    register,
    registrants_csv,
)
from events_app.search import (
    SearchResult,
    SummaryResult,
    decode_cursor,
    encode_cursor,
    list_agency_events,
    search_event_summaries,
)
from events_app.web.alerts import create_alert_api
from events_app.web.common import (
    MAX_DB_ID,
    JSONResponse,
    check_rate,
    deliver_mail_soon,
    in_transaction,
    json_body,
    notifier,
    path_id,
    settings_of,
)
from events_app.web.openapi import openapi_document
from events_app.web.params import CanonicalQueries, parse_search_query
from events_app.web.serializers import (
    event_detail,
    event_item,
    registrant_item,
    registration_item,
)
from events_app.web.shared_cache import SharedAnswers

MAX_PLACE_QUERY = 100


def _page(
    result: SearchResult | SummaryResult, request: Request, *, with_distance: bool
) -> dict[str, Any]:
    settings = settings_of(request)
    hits = (
        [(hit.event, hit.distance_km) for hit in result.hits]
        if isinstance(result, SearchResult)
        else result.hits
    )
    body: dict[str, Any] = {
        "items": [
            event_item(event, settings, distance_km=distance, with_distance=with_distance)
            for event, distance in hits
        ],
        "next_cursor": result.next_cursor,
    }
    if result.place is not None:
        body["place"] = {
            "label": result.place.label,
            "kind": result.place.kind,
            "lat": result.place.lat,
            "lon": result.place.lon,
            "insee": result.place.insee,
        }
    return body


# The public search is the same for everyone, and the same few searches (a big city, a sector,
# the coming weeks) come back again and again. Each worker keeps the pages it served for
# SEARCH_CACHE_SECONDS, by query string: a change to an event (or a seat count) shows up in
# the search within that time, and on the event's own page at once. Registration never reads
# this: it checks seats under the event's lock.
SEARCH_CACHE_SECONDS = 10.0
SEARCH_CACHE_ENTRIES = 1024
# A search is Python work (ORM rows, distances) in a worker thread. Past two at once in one
# process, the threads only take turns at the GIL and each gets slower: under 32 connections,
# letting every request run gave 236 searches/s on SQLite, two at a time 360.
SEARCHES_AT_ONCE = 2


@dataclass
class SearchPages:
    """What the search endpoint keeps in each worker: the JSON pages it served in the last
    `ttl` seconds, by query string (least recently used first out), the searches running now
    (a page that expires under load is computed once, not once per waiting request), and the
    gate that lets SEARCHES_AT_ONCE searches run at a time."""

    ttl: float = SEARCH_CACHE_SECONDS
    max_entries: int = SEARCH_CACHE_ENTRIES
    clock: Callable[[], float] = time.monotonic
    _entries: OrderedDict[str, tuple[float, bytes]] = field(default_factory=OrderedDict)
    _inflight: dict[str, asyncio.Future[bytes]] = field(default_factory=dict)
    queries: CanonicalQueries = field(default_factory=lambda: CanonicalQueries(paging=True))
    # With REDIS_URL: the pages every worker and machine computed, for the same ttl.
    shared: SharedAnswers | None = None
    # Created here, in the worker's event loop, on the first request.
    running: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(SEARCHES_AT_ONCE))

    async def page(self, key: str, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        """The page for key: from memory while fresh, else from compute(), shared by every
        request that asks for the same key meanwhile. Errors reach each of them."""
        body = self.get(key)
        if body is not None:
            return body
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._compute(key, compute))
            self._inflight[key] = pending
            pending.add_done_callback(lambda _: self._inflight.pop(key, None))
        # Shielded: a client hanging up must not cancel the search the others wait for.
        return await asyncio.shield(pending)

    async def _compute(self, key: str, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        if self.shared is not None:
            found = await self.shared.get(key)
            if found is not None:
                body, left = found
                # Kept here no longer than it has left there: a page is never older than ttl.
                self.store(key, body, age=self.ttl - left)
                return body
        async with self.running:
            body = await compute()
        self.store(key, body)
        if self.shared is not None:
            await self.shared.put(key, body, self.ttl)
        return body

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, body = entry
        if self.clock() - stored_at > self.ttl:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return body

    def store(self, key: str, body: bytes, *, age: float = 0.0) -> None:
        self._entries[key] = (self.clock() - age, body)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def search_pages_of(app: Starlette, redis_url: str | None = None) -> SearchPages:
    """The application's SearchPages, created on first use (each app, each test, has its own);
    shared through Redis when redis_url is given."""
    pages: SearchPages | None = getattr(app.state, "search_pages", None)
    if pages is None:
        shared = SharedAnswers(redis_url, "search:") if redis_url else None
        pages = SearchPages(shared=shared)
        app.state.search_pages = pages
    return pages


async def list_events(request: Request) -> Response:
    pages = search_pages_of(request.app, settings_of(request).redis_url)
    # Keyed by the parsed query, never the raw string: unknown parameters are ignored and
    # cannot make every request miss the cache (SPEC §7).
    key, query = pages.queries.get(request.scope["query_string"])

    async def compute() -> bytes:
        result = await in_transaction(request, lambda db: search_event_summaries(db, query))
        return orjson.dumps(_page(result, request, with_distance=query.near is not None))

    body = await pages.page(key, compute)
    return Response(
        body,
        media_type="application/json",
        headers={"Cache-Control": f"public, max-age={SEARCH_CACHE_SECONDS:.0f}"},
    )


async def show_event(request: Request) -> Response:
    event_id = path_id(request)

    event = await in_transaction(request, lambda db: get_event(db, event_id))
    return JSONResponse(event_detail(event, settings_of(request)))


async def list_places(request: Request) -> Response:
    """Autocomplete of the place field: communes, postal codes and départements."""
    text = (request.query_params.get("q") or "")[:MAX_PLACE_QUERY].replace("\x00", "")
    places = await in_transaction(request, lambda db: suggest_places(db, text))
    body = {"items": [{"label": p.label, "kind": p.kind, "value": p.value} for p in places]}
    # The gazetteer changes only with a new release of it: browsers may keep answers a day.
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=86400"})


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def agency_list_events(request: Request) -> Response:
    token = bearer_token(request)
    query = parse_search_query(request.query_params)

    def work(db: Session) -> SearchResult:
        agency = authenticate_agency(db, token)
        return list_agency_events(db, agency_id=agency.id, limit=query.limit, cursor=query.cursor)

    result = await in_transaction(request, work)
    return JSONResponse(_page(result, request, with_distance=False))


async def agency_create_event(request: Request) -> Response:
    token = bearer_token(request)
    # Authenticate before reading the body, so that a stranger learns nothing from validation.
    await in_transaction(request, lambda db: authenticate_agency(db, token))
    fields = clean_event_fields(await json_body(request), partial=False)

    def work(db: Session) -> dict[str, Any]:
        agency = authenticate_agency(db, token)
        event = create_event(db, agency_id=agency.id, fields=fields)
        return event_detail(get_event(db, event.id), settings_of(request))

    body = await in_transaction(request, work)
    return JSONResponse(body, status_code=201, headers={"Location": body["url"]})


async def register_for_event(request: Request) -> Response:
    event_id = path_id(request)
    settings = settings_of(request)
    check_rate(request, "registration", settings.rate_limit_registration)
    person = clean_person(await json_body(request))

    def work(db: Session) -> tuple[dict[str, Any], bool]:
        outcome = register(db, event_id=event_id, person=person, notifier=notifier(request, db))
        if not outcome.created:
            # The same address again: whoever typed it learns nothing of that person (name,
            # phone, position, links); the links go to the address itself.
            already = {"id": outcome.registration.id, "status": "already_registered"}
            return {**already, "message": ALREADY_REGISTERED}, False
        return registration_item(outcome.registration, settings), True

    body, created = await in_transaction(request, work, lock=True)
    return JSONResponse(
        body, status_code=201 if created else 200, background=deliver_mail_soon(request)
    )


async def show_registration(request: Request) -> Response:
    token = str(request.path_params["token"])
    registration = await in_transaction(request, lambda db: get_registration(db, token))
    return JSONResponse(registration_item(registration, settings_of(request)))


async def cancel_registration_api(request: Request) -> Response:
    token = str(request.path_params["token"])

    def work(db: Session) -> dict[str, Any]:
        registration = cancel_registration(db, token=token, notifier=notifier(request, db))
        return registration_item(registration, settings_of(request))

    body = await in_transaction(request, work, lock=True)
    return JSONResponse(body, background=deliver_mail_soon(request))


async def agency_show_event(request: Request) -> Response:
    token = bearer_token(request)
    event_id = path_id(request)

    def work(db: Session) -> dict[str, Any]:
        agency = authenticate_agency(db, token)
        return event_detail(get_event(db, event_id, agency_id=agency.id), settings_of(request))

    return JSONResponse(await in_transaction(request, work))


async def agency_update_event(request: Request) -> Response:
    token = bearer_token(request)
    event_id = path_id(request)
    await in_transaction(request, lambda db: authenticate_agency(db, token))
    fields = clean_event_fields(await json_body(request), partial=True)

    def work(db: Session) -> dict[str, Any]:
        agency = authenticate_agency(db, token)
        edit_event(
            db,
            event_id=event_id,
            agency_id=agency.id,
            fields=fields,
            notifier=notifier(request, db),
        )
        return event_detail(get_event(db, event_id), settings_of(request))

    body = await in_transaction(request, work, lock=True)
    return JSONResponse(body, background=deliver_mail_soon(request))


async def agency_cancel_event(request: Request) -> Response:
    token = bearer_token(request)
    event_id = path_id(request)
    message = request.query_params.get("message")
    if message is not None and len(message) > 2000:
        raise InvalidInput("message", "Le message d'annulation dépasse 2000 caractères.")
    if message is not None and "\x00" in message:
        # PostgreSQL refuses NUL in text; no honest message contains one.
        raise InvalidInput("message", "Le message d'annulation contient un caractère interdit.")

    def work(db: Session) -> dict[str, Any]:
        agency = authenticate_agency(db, token)
        cancel_agency_event(
            db,
            event_id=event_id,
            agency_id=agency.id,
            notifier=notifier(request, db),
            message=message,
        )
        return event_detail(get_event(db, event_id), settings_of(request))

    body = await in_transaction(request, work, lock=True)
    return JSONResponse(body, background=deliver_mail_soon(request))


def _registrant_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    data = decode_cursor(cursor)
    after = data.get("r")
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_DB_ID:
        raise InvalidInput("cursor", "Curseur de pagination invalide.")
    return after


async def agency_registrants(request: Request) -> Response:
    token = bearer_token(request)
    event_id = path_id(request)
    wants_csv = "text/csv" in request.headers.get("accept", "")
    query = parse_search_query(request.query_params)
    after = _registrant_cursor(query.cursor)

    def work(db: Session) -> list[Registration]:
        agency = authenticate_agency(db, token)
        limit = None if wants_csv else query.limit + 1
        return list_registrants(
            db, event_id=event_id, agency_id=agency.id, limit=limit, after_id=after
        )

    registrations = await in_transaction(request, work)
    if wants_csv:
        return Response(
            registrants_csv(registrations),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="inscrits-{event_id}.csv"',
                "Cache-Control": "no-store",
            },
        )
    page = registrations[: query.limit]
    more = len(registrations) > query.limit
    return JSONResponse(
        {
            "items": [registrant_item(r) for r in page],
            "next_cursor": encode_cursor({"r": page[-1].id}) if more and page else None,
        },
        headers={"Cache-Control": "no-store"},
    )


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(settings_of(request)))


routes: list[BaseRoute] = [
    Route("/events", list_events, methods=["GET"], name="api:events"),
    Route("/events/{id}", show_event, methods=["GET"], name="api:event"),
    Route("/places", list_places, methods=["GET"], name="api:places"),
    Route("/agency/events", agency_list_events, methods=["GET"], name="api:agency_events"),
    Route("/agency/events", agency_create_event, methods=["POST"], name="api:agency_create"),
    Route("/agency/events/{id}", agency_show_event, methods=["GET"], name="api:agency_event"),
    Route("/agency/events/{id}", agency_update_event, methods=["PATCH"], name="api:agency_update"),
    Route("/agency/events/{id}", agency_cancel_event, methods=["DELETE"], name="api:agency_cancel"),
    Route(
        "/agency/events/{id}/registrations",
        agency_registrants,
        methods=["GET"],
        name="api:agency_registrants",
    ),
    Route(
        "/events/{id}/registrations",
        register_for_event,
        methods=["POST"],
        name="api:register",
    ),
    Route("/registrations/{token}", show_registration, methods=["GET"], name="api:registration"),
    Route(
        "/registrations/{token}/cancel",
        cancel_registration_api,
        methods=["POST"],
        name="api:cancel_registration",
    ),
    Route("/alerts", create_alert_api, methods=["POST"], name="api:alerts"),
    Route("/openapi.json", openapi, methods=["GET"], name="api:openapi"),
]
