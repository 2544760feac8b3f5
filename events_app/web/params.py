"""Search filters read from a query string, shared by the API, the pages and the feeds."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from datetime import date
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from events_app.errors import InvalidInput
from events_app.search import DEFAULT_RADIUS_KM, SORTS, SearchQuery, check_radius
from events_app.vocab import EVENT_TYPES, FORMATS, SECTORS

TRUE = {"1", "true", "yes", "on", "oui"}
FALSE = {"0", "false", "no", "off", "non", ""}
MIN_YEAR, MAX_YEAR = 1900, 2999


def _multi(params: QueryParams, name: str, allowed: dict[str, str], label: str) -> tuple[str, ...]:
    values: list[str] = []
    for raw in params.getlist(name):
        for item in raw.split(","):
            item = item.strip()
            if not item:
                continue
            if item not in allowed:
                raise InvalidInput(name, f"{label} inconnu : « {item[:50]} ».")
            if item not in values:
                values.append(item)
    return tuple(values)


def _date(params: QueryParams, name: str) -> date | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidInput(name, f"Date invalide pour « {name} » : attendu AAAA-MM-JJ.") from exc
    # Year 1 or 9999 would overflow once turned into an instant in Paris (then UTC).
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise InvalidInput(name, f"Date hors limites pour « {name} » : de {MIN_YEAR} à {MAX_YEAR}.")
    return day


def _text(params: QueryParams, name: str, max_len: int = 200) -> str | None:
    raw = (params.get(name) or "").strip()
    if len(raw) > max_len:
        raise InvalidInput(name, f"Le paramètre « {name} » dépasse {max_len} caractères.")
    if "\x00" in raw:
        raise InvalidInput(name, f"Le paramètre « {name} » contient un caractère interdit.")
    return raw or None


def parse_search_query(params: QueryParams, *, default_limit: int = 20) -> SearchQuery:
    """Read every filter of GET /api/v1/events. Raises InvalidInput naming the parameter."""
    radius_raw = (params.get("radius_km") or "").strip()
    radius = float(DEFAULT_RADIUS_KM)
    if radius_raw:
        try:
            radius = float(radius_raw.replace(",", "."))
        except ValueError as exc:
            raise InvalidInput("radius_km", "Le rayon doit être un nombre de kilomètres.") from exc
        check_radius(radius)

    sort = (params.get("sort") or "").strip() or "distance"
    if sort not in SORTS:
        raise InvalidInput("sort", "Le tri vaut « distance » ou « date ».")

    limit_raw = (params.get("limit") or "").strip()
    limit = default_limit
    if limit_raw:
        # isdigit() alone lets "²" and other Unicode digits through to int(), which refuses them.
        if not (limit_raw.isascii() and limit_raw.isdigit() and len(limit_raw) <= 3) or not (
            1 <= int(limit_raw) <= 100
        ):
            raise InvalidInput("limit", "Le paramètre « limit » doit être un entier de 1 à 100.")
        limit = int(limit_raw)

    available_raw = (params.get("available") or "").strip().lower()
    if available_raw not in TRUE | FALSE:
        raise InvalidInput("available", "Le paramètre « available » vaut true ou false.")

    date_from, date_to = _date(params, "from"), _date(params, "to")
    if date_from and date_to and date_from > date_to:
        raise InvalidInput("from", "La date de début doit précéder la date de fin.")

    agency = _text(params, "agency", 80)
    return SearchQuery(
        q=_text(params, "q"),
        near=_text(params, "near"),
        radius_km=radius,
        sectors=_multi(params, "sector", SECTORS, "Secteur"),
        types=_multi(params, "type", EVENT_TYPES, "Type d'événement"),
        formats=_multi(params, "format", FORMATS, "Format"),
        date_from=date_from,
        date_to=date_to,
        available=available_raw in TRUE - {""},
        agency=agency,
        limit=limit,
        cursor=_text(params, "cursor", 500),
        sort=sort,
    )


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
