"""Calendar files over HTTP: one event, the subscription feed of a search, and the personal
feed of a seeker.

Calendar apps poll feeds for years, every few minutes. So a feed is rendered once per change
of its data, not once per request: the rendered body is kept in process per query string,
served without touching the database for CACHE_TTL seconds, then revalidated with one cheap
aggregate query (events_version) and re-rendered only when the data changed. Every answer
carries a strong ETag (a hash of the bytes, identical on every worker since the bytes depend
on the data only) and a Last-Modified, and conditional requests get a 304.

The personal feed (/agenda/{token}.ics) holds one person's data: it is sent `private` (no
shared cache keeps it), and kept in a cache of its own, keyed by token. Every request looks
the token up first, so a regenerated token stops working at once on every worker; the cached
body is then reused while the person's data is unchanged (calendar_feeds.PersonalVersion).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Generic, TypeVar
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from events_app.accounts import seeker_by_feed_token
from events_app.agencies import agency_name
from events_app.calendar_feeds import (
    DataVersion,
    PersonalVersion,
    events_version,
    feed_window,
    list_feed_events,
    personal_feed_events,
    personal_version,
)
from events_app.calendars import (
    DEFAULT_NAME,
    PERSONAL_NAME,
    PersonalEntry,
    event_ics,
    feed_ics,
    feed_name,
    personal_ics,
    subscribe_links,
)
from events_app.db import PARIS, utcnow
from events_app.errors import InvalidInput
from events_app.events import get_event
from events_app.models import Event
from events_app.search import SearchQuery, paris_day_start
from events_app.settings import Settings
from events_app.web.common import in_transaction, path_id, settings_of
from events_app.web.params import CanonicalQueries, canonical_params, parse_search_query

__all__ = [
    "CalendarDocument",
    "FeedCache",
    "calendar_response",
    "feed_cache_of",
    "feed_links",
    "feed_url",
    "personal_cache_of",
    "personal_feed_links",
    "personal_feed_url",
    "routes",
    "subscribe_links",
]

MEDIA_TYPE = "text/calendar; charset=utf-8"
CACHE_CONTROL = "public, max-age=300"
# Personal data: the browser or calendar app may keep it, no shared cache ever.
PRIVATE_CACHE_CONTROL = "private, max-age=300"
# Served from memory without any query for this long.
CACHE_TTL = 60.0
# After that, reused while the data is unchanged, but never longer than this (agency names and
# the like are not part of the fingerprint).
CACHE_MAX_AGE = 3600.0
CACHE_MAX_ENTRIES = 256
# Parameters that page a search; a feed has no pages.
PAGING_PARAMS = {"cursor", "limit"}


# Feeds are sent gzipped to clients that accept it (calendar apps do): ~15 times smaller.
COMPRESS_ABOVE = 4096


@dataclass(frozen=True)
class _Representation:
    body: bytes
    etag: str
    headers: Mapping[str, str]
    not_modified_headers: Mapping[str, str]


@dataclass(frozen=True)
class CalendarDocument:
    """A rendered calendar with its validators and ready-made headers, plain and gzipped."""

    last_modified: datetime | None
    plain: _Representation
    gzipped: _Representation | None = None

    @property
    def body(self) -> bytes:
        return self.plain.body

    @property
    def etag(self) -> str:
        return self.plain.etag

    @classmethod
    def build(
        cls,
        body: bytes,
        last_modified: datetime | None,
        *,
        filename: str,
        cache_control: str = CACHE_CONTROL,
    ) -> CalendarDocument:
        digest = hashlib.sha256(body).hexdigest()[:40]
        # HTTP dates have whole seconds; keep the same precision for the comparisons.
        if last_modified is not None:
            # HTTP dates are GMT (format_datetime refuses any other zone: a feed whose last
            # change predates today, dated by the start of the Paris day, would be a 500).
            last_modified = last_modified.astimezone(UTC).replace(microsecond=0)
        common = {"Cache-Control": cache_control}
        if last_modified is not None:
            common["Last-Modified"] = format_datetime(last_modified, usegmt=True)
        disposition = {"Content-Disposition": f'inline; filename="{filename}"'}

        def representation(content: bytes, etag: str, encoding: str | None) -> _Representation:
            validators = {"ETag": etag, **common}
            if len(body) >= COMPRESS_ABOVE:
                validators["Vary"] = "Accept-Encoding"
            headers = {**validators, **disposition}
            if encoding is not None:
                headers["Content-Encoding"] = encoding
            return _Representation(content, etag, headers, validators)

        plain = representation(body, f'"{digest}"', None)
        if len(body) < COMPRESS_ABOVE:
            return cls(last_modified, plain)
        # mtime=0: the same bytes on every worker, so the same ETag.
        gzipped = gzip.compress(body, compresslevel=6, mtime=0)
        # A strong ETag names one representation: the gzipped one has its own.
        return cls(last_modified, plain, representation(gzipped, f'"{digest}-gz"', "gzip"))

    def etags(self) -> set[str]:
        return {self.plain.etag} | ({self.gzipped.etag} if self.gzipped else set())


def _accepts_gzip(header: str) -> bool:
    for item in header.lower().split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip() in ("gzip", "x-gzip", "*"):
            quality = params.strip().removeprefix("q=").strip()
            return not quality or quality.rstrip("0").rstrip(".") not in ("", "0")
    return False


def _etag_matches(header: str, etags: set[str]) -> bool:
    # If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/ prefixes are ignored.
    if header.strip() == "*":
        return True
    candidates = (item.strip() for item in header.split(","))
    return any((c[2:] if c.startswith("W/") else c) in etags for c in candidates)


def _not_modified(request: Request, document: CalendarDocument) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        # When both are sent, If-None-Match decides (RFC 9110 §13.1.3). Either representation
        # held by the client is current.
        return _etag_matches(if_none_match, document.etags())
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since is None or document.last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        return False
    return document.last_modified <= since


def calendar_response(request: Request, document: CalendarDocument) -> Response:
    """200 with the calendar (gzipped when accepted), or 304 when the client's copy is
    current."""
    chosen = document.plain
    if document.gzipped is not None and _accepts_gzip(request.headers.get("accept-encoding", "")):
        chosen = document.gzipped
    if _not_modified(request, document):
        return Response(status_code=304, headers=dict(chosen.not_modified_headers))
    return Response(chosen.body, media_type=MEDIA_TYPE, headers=dict(chosen.headers))


def _plain_error(exc: InvalidInput) -> Response:
    # Calendar apps show none of an HTML page: the reason, plainly, for whoever set the URL up.
    where = f" (paramètre « {exc.field} »)" if exc.field else ""
    return PlainTextResponse(f"Requête invalide{where} : {exc.message}\n", status_code=400)


# --- GET /events/{id}.ics --------------------------------------------------------------------


async def event_calendar(request: Request) -> Response:
    event_id = path_id(request)
    settings = settings_of(request)

    def work(db: Session) -> CalendarDocument:
        event = get_event(db, event_id)
        return CalendarDocument.build(
            event_ics(event, settings), event.updated_at, filename=f"evenement-{event_id}.ics"
        )

    return calendar_response(request, await in_transaction(request, work))


# --- GET /calendar.ics -----------------------------------------------------------------------


V = TypeVar("V")


@dataclass
class _Entry(Generic[V]):
    document: CalendarDocument
    version: V
    rendered_at: float
    checked_at: float


@dataclass
class FeedCache(Generic[V]):
    """Rendered feeds by key, with the version of the data each was rendered from, least
    recently used first out."""

    ttl: float = CACHE_TTL
    max_age: float = CACHE_MAX_AGE
    max_entries: int = CACHE_MAX_ENTRIES
    clock: Callable[[], float] = time.monotonic
    _entries: OrderedDict[str, _Entry[V]] = field(default_factory=OrderedDict)
    # One render per key at a time: the others wait for it instead of rendering too.
    _inflight: dict[str, asyncio.Future[CalendarDocument]] = field(default_factory=dict)

    def fresh(self, key: str) -> CalendarDocument | None:
        entry = self._entries.get(key)
        if entry is None or self.clock() - entry.checked_at > self.ttl:
            return None
        self._entries.move_to_end(key)
        return entry.document

    def version_of(self, key: str) -> V | None:
        """The data version a cached document was rendered from, while it may be reused."""
        entry = self._entries.get(key)
        if entry is None or self.clock() - entry.rendered_at > self.max_age:
            return None
        return entry.version

    def reusable(self, key: str, version: V) -> CalendarDocument | None:
        """The cached document if the data has not changed since it was rendered."""
        entry = self._entries.get(key)
        now = self.clock()
        if entry is None or entry.version != version or now - entry.rendered_at > self.max_age:
            return None
        entry.checked_at = now
        self._entries.move_to_end(key)
        return entry.document

    def peek(self, key: str) -> CalendarDocument | None:
        """The last document stored for key, however old (nothing is refreshed)."""
        entry = self._entries.get(key)
        return entry.document if entry is not None else None

    def discard(self, key: str) -> None:
        self._entries.pop(key, None)

    def store(self, key: str, document: CalendarDocument, version: V) -> None:
        now = self.clock()
        self._entries[key] = _Entry(document, version, now, now)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    async def get(
        self, key: str, produce: Callable[[], asyncio.Future[CalendarDocument]]
    ) -> CalendarDocument:
        """The document for key: from memory while fresh, else from produce(), shared by
        every request that asks for the same key meanwhile."""
        document = self.fresh(key)
        if document is not None:
            return document
        pending = self._inflight.get(key)
        if pending is None:
            pending = produce()
            self._inflight[key] = pending
            pending.add_done_callback(lambda _: self._inflight.pop(key, None))
        # Shielded: a client hanging up must not cancel the render the others wait for.
        return await asyncio.shield(pending)


def feed_cache_of(app: Starlette) -> FeedCache[DataVersion]:
    """The application's feed cache, created on first use: each app (each test) has its own."""
    cache: FeedCache[DataVersion] | None = getattr(app.state, "calendar_feed_cache", None)
    if cache is None:
        cache = FeedCache()
        app.state.calendar_feed_cache = cache
    return cache


def feed_queries_of(app: Starlette) -> CanonicalQueries:
    """The canonical form of the feed queries seen lately, created on first use (per app)."""
    queries: CanonicalQueries | None = getattr(app.state, "calendar_feed_queries", None)
    if queries is None:
        queries = CanonicalQueries(paging=False)
        app.state.calendar_feed_queries = queries
    return queries


def feed_params(params: QueryParams) -> list[tuple[str, str]]:
    return [(k, v) for k, v in params.multi_items() if k not in PAGING_PARAMS and v != ""]


def feed_url(settings: Settings, params: QueryParams | None = None) -> str:
    """The absolute URL of the feed of a search (its paging parameters dropped)."""
    query = urlencode(feed_params(params)) if params is not None else ""
    return f"{settings.base_url}/calendar.ics" + (f"?{query}" if query else "")


def feed_links(
    settings: Settings, params: QueryParams | None = None, *, agency_name: str | None = None
) -> dict[str, str]:
    """The "S'abonner" links of a search page: subscribe_links() of its feed, named after its
    filters (or the default name when they are invalid: the page shows that error), the
    agency by its display name when given."""
    url = feed_url(settings, params)
    try:
        name = (
            feed_name(parse_search_query(params), agency_name=agency_name)
            if params is not None
            else DEFAULT_NAME
        )
    except InvalidInput:
        name = DEFAULT_NAME
    return subscribe_links(url, name=name)


def _feed_last_modified(version: DataVersion, now: datetime) -> datetime:
    """Last-Modified of a feed: the last change of any event (an event edited out of the
    filters changes none of the events that stay) and at least the start of the current
    window day, since the window itself moves every day."""
    window_day = paris_day_start(now.astimezone(PARIS).date())
    if version.last_change is None:
        return window_day
    return max(version.last_change, window_day)


async def calendar_feed(request: Request) -> Response:
    cache = feed_cache_of(request.app)
    now = utcnow()
    try:
        canonical, query = feed_queries_of(request.app).get(request.scope.get("query_string", b""))
    except InvalidInput as exc:
        return _plain_error(exc)
    # The window is part of the key: a feed rendered yesterday covers other days. The rest is
    # the parsed query, so unknown parameters change neither the key nor the bytes (SPEC §7).
    key = f"{feed_window(now)[0].isoformat()}|{canonical}"

    def produce() -> asyncio.Future[CalendarDocument]:
        return asyncio.ensure_future(_render_feed(request, cache, key, now, query))

    try:
        document = await cache.get(key, produce)
    except InvalidInput as exc:
        return _plain_error(exc)
    return calendar_response(request, document)


async def _render_feed(
    request: Request,
    cache: FeedCache[DataVersion],
    key: str,
    now: datetime,
    query: SearchQuery,
) -> CalendarDocument:
    settings = settings_of(request)

    # Read here, on the event loop, like every other use of the cache (it is not thread-safe).
    known = cache.version_of(key)

    def load(db: Session) -> tuple[DataVersion, list[Event] | None, str | None]:
        version = events_version(db)
        if version == known:
            return version, None, None
        return version, list_feed_events(db, query, now=now), agency_name(db, query.agency)

    def reload(db: Session) -> tuple[list[Event], str | None]:
        return list_feed_events(db, query, now=now), agency_name(db, query.agency)

    version, events, agency = await in_transaction(request, load)
    if events is None:
        reused = cache.reusable(key, version)
        if reused is not None:
            return reused
        fresh, agency = await in_transaction(request, reload)
        events = fresh
    feed_events: list[Event] = events

    def render() -> CalendarDocument:
        body = feed_ics(
            feed_events,
            settings,
            name=feed_name(query, agency_name=agency),
            url=feed_url(settings, QueryParams(canonical_params(query, paging=False))),
        )
        return CalendarDocument.build(
            body, _feed_last_modified(version, now), filename="evenements-emploi.ics"
        )

    # Rendering a large feed takes a while: off the event loop.
    document = await run_in_threadpool(render)
    cache.store(key, document, version)
    return document


# --- GET /agenda/{token}.ics: a seeker's personal feed ------------------------------------------


PERSONAL_FILENAME = "mes-evenements-emploi.ics"


def personal_feed_url(settings: Settings, token: str) -> str:
    """The absolute URL of a personal feed (the token is URL-safe as it is)."""
    return f"{settings.base_url}/agenda/{token}.ics"


def personal_feed_links(settings: Settings, token: str) -> dict[str, str]:
    return subscribe_links(personal_feed_url(settings, token), name=PERSONAL_NAME)


def personal_cache_of(app: Starlette) -> FeedCache[PersonalVersion]:
    """The personal feeds' own cache (never the shared one), keyed by token."""
    cache: FeedCache[PersonalVersion] | None = getattr(app.state, "personal_feed_cache", None)
    if cache is None:
        cache = FeedCache()
        app.state.personal_feed_cache = cache
    return cache


def _personal_document(
    body: bytes, previous: CalendarDocument | None, now: datetime
) -> CalendarDocument:
    """The document of a freshly rendered personal feed.

    Its Last-Modified is the time these bytes were first served here, kept while they stay the
    same: a saved preference changes the feed without any row's timestamp rising, so no date
    read from the data would do. It only ever rises, so a client's date never validates newer
    bytes (the ETag, a hash of the bytes, is the same on every worker).
    """

    def build(last_modified: datetime) -> CalendarDocument:
        return CalendarDocument.build(
            body,
            last_modified,
            filename=PERSONAL_FILENAME,
            cache_control=PRIVATE_CACHE_CONTROL,
        )

    document = build(now)
    if previous is None or previous.last_modified is None:
        return document
    if previous.etag == document.etag:
        return previous
    if document.last_modified is not None and document.last_modified <= previous.last_modified:
        return build(previous.last_modified + timedelta(seconds=1))
    return document


async def personal_feed(request: Request) -> Response:
    token = str(request.path_params["token"])
    settings = settings_of(request)
    cache = personal_cache_of(request.app)
    now = utcnow()
    # Read here, on the event loop, like every other use of the cache (it is not thread-safe).
    known = cache.version_of(token)

    def load(db: Session) -> tuple[PersonalVersion, list[PersonalEntry] | None]:
        # First, always: an unknown or replaced token is a 404 whatever is cached.
        seeker = seeker_by_feed_token(db, token)
        version = personal_version(db, seeker, now=now)
        if version == known:
            return version, None
        return version, personal_feed_events(db, seeker, now=now)

    version, entries = await in_transaction(request, load)
    if entries is None:
        reused = cache.reusable(token, version)
        if reused is not None:
            return calendar_response(request, reused)
        entries = await in_transaction(
            request,
            lambda db: personal_feed_events(db, seeker_by_feed_token(db, token), now=now),
        )
    previous = cache.peek(token)
    body = await run_in_threadpool(personal_ics, entries, settings)
    document = _personal_document(body, previous, now)
    cache.store(token, document, version)
    return calendar_response(request, document)


routes: list[BaseRoute] = [
    Route("/events/{id:int}.ics", event_calendar, methods=["GET"], name="calendars:event"),
    Route("/calendar.ics", calendar_feed, methods=["GET"], name="calendars:feed"),
    Route("/agenda/{token}.ics", personal_feed, methods=["GET"], name="calendars:personal"),
]
