"""Search filters read from a query string, shared by the API, the pages and the feeds."""

from __future__ import annotations

from datetime import date

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
