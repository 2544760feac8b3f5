"""The pages of the public search that each worker keeps, in front of the shared cache."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.applications import Starlette

from events_app.web.params import CanonicalQueries
from events_app.web.shared_cache import SharedAnswers

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


async def close_search_pages(app: Starlette) -> None:
    """Forget the app's SearchPages and close its Redis connections (at shutdown)."""
    pages: SearchPages | None = getattr(app.state, "search_pages", None)
    if pages is None:
        return
    del app.state.search_pages
    if pages.shared is not None:
        await pages.shared.close()
