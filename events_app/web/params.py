"""Search filters read from a query string, shared by the API, the pages and the feeds."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from events_app.search import DEFAULT_RADIUS_KM, SearchQuery
from events_app.web.schemas import search_query


def parse_search_query(params: QueryParams, *, default_limit: int = 20) -> SearchQuery:
    """Read every filter of GET /api/v1/events (web/schemas.SearchParams). Raises InvalidInput
    naming the parameter."""
    return search_query(params, default_limit=default_limit)


DEFAULT_SORT = SearchQuery().sort


def canonical_query(query: SearchQuery) -> SearchQuery:
    """The same search with its repeatable filters in one order: what caches are keyed by."""
    return dataclasses.replace(
        query,
        sectors=tuple(sorted(query.sectors)),
        types=tuple(sorted(query.types)),
        formats=tuple(sorted(query.formats)),
    )


def canonical_params(query: SearchQuery, *, paging: bool = True) -> list[tuple[str, str]]:
    """A parsed search as query parameters, in a fixed order, with normalised values and the
    defaults left out. Two URLs that mean the same search (unknown parameters, another order,
    `radius_km=30.0` or none, `available=oui` or `1`) give the same list, so caches keyed by it
    cannot be made to miss by whoever adds `?x=N`."""
    query = canonical_query(query)
    pairs: list[tuple[str, str]] = []
    if query.q:
        pairs.append(("q", query.q))
    if query.near:
        pairs.append(("near", query.near))
    if query.radius_km != DEFAULT_RADIUS_KM:
        pairs.append(("radius_km", repr(query.radius_km)))
    pairs.extend(("sector", value) for value in query.sectors)
    pairs.extend(("type", value) for value in query.types)
    pairs.extend(("format", value) for value in query.formats)
    if query.date_from:
        pairs.append(("from", query.date_from.isoformat()))
    if query.date_to:
        pairs.append(("to", query.date_to.isoformat()))
    if query.available:
        pairs.append(("available", "true"))
    if query.agency:
        pairs.append(("agency", query.agency))
    if query.sort != DEFAULT_SORT:
        pairs.append(("sort", query.sort))
    if paging:
        pairs.append(("limit", str(query.limit)))
        if query.cursor:
            pairs.append(("cursor", query.cursor))
    return pairs


def canonical_key(query: SearchQuery, *, paging: bool = True) -> str:
    return urlencode(canonical_params(query, paging=paging))


class CanonicalQueries:
    """The canonical key and parsed query of the last `size` raw query strings seen (per
    worker), so that a cached answer costs a dictionary lookup, not a parse. Strings that differ
    only by unknown parameters get the same key; invalid ones raise and are not kept."""

    def __init__(self, *, paging: bool, size: int = 4096) -> None:
        self.paging = paging
        self.size = size
        self._seen: OrderedDict[bytes, tuple[str, SearchQuery]] = OrderedDict()

    def get(self, raw: bytes) -> tuple[str, SearchQuery]:
        """For a raw query string (the ASGI scope's `query_string`)."""
        entry = self._seen.get(raw)
        if entry is not None:
            self._seen.move_to_end(raw)
            return entry
        # Parsed as Starlette parses request.query_params.
        query = canonical_query(parse_search_query(QueryParams(raw)))
        entry = (canonical_key(query, paging=self.paging), query)
        self._seen[raw] = entry
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return entry
