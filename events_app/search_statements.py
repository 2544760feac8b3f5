"""The statements of a search, built once for each shape of search and kept.

A search's conditions depend on which filters it has, and in which form (its shape, see
events_app.search.Filters); their values are named parameters, given when the statement runs.
Building a statement with SQLAlchemy, and matching a new statement's columns against its cached
compilation, cost more than running it: at 100,000 events on SQLite about 3 ms of a 4 ms place
search, against well under 1 ms for the SQL itself (issue 19). A statement kept and run again
with new values skips both. No statement here holds a value: a parameter left out is an error
("A value is required for bind parameter"), never the value of an earlier search.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    CompoundSelect,
    Double,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy.types import NullType

from events_app.fulltext import text_clause
from events_app.models import GEO_CELL_DEG, Agency, Event, geo_cell
from events_app.places import EARTH_RADIUS_KM
from events_app.summaries import summary_columns

Shape = tuple[Hashable, ...]

# Above this many cells (a radius of about 100 km) the IN list stops paying; a plain bounding
# box takes over, read through the date index (only very large radii get there).
MAX_CELLS = 1600
KM_PER_DEG_LAT = 111.2
# Shapes are few (which filters a search has); text searches add one per number of words.
KEPT = 512


def _in(name: str) -> Any:
    return bindparam(name, expanding=True)


def _condition(part: Hashable, *, dates_written: bool = False) -> ColumnElement[bool]:
    match part:
        case "only_ids":
            return Event.id.in_(_in("only_ids"))
        case "not_ended":
            return Event.ends_at >= bindparam("now", literal_execute=dates_written)
        case "from":
            return Event.starts_at >= bindparam("date_from", literal_execute=dates_written)
        case "to":
            return Event.starts_at < bindparam("date_to", literal_execute=dates_written)
        case "sectors":
            # The bits of the sectors asked for and of "all" (events_app.models.SECTOR_BITS),
            # read from the covering index: no lookup of event_sectors per candidate.
            return Event.sector_mask.bitwise_and(bindparam("sector_bits")) != 0
        case "types":
            return Event.type.in_(_in("types"))
        case "formats":
            return Event.format.in_(_in("formats"))
        case "available":
            return and_(
                Event.status == "scheduled",
                or_(
                    Event.capacity.is_(None),
                    Event.seats_taken < Event.capacity,
                    and_(
                        Event.remote_capacity.is_not(None),
                        Event.remote_seats_taken < Event.remote_capacity,
                    ),
                ),
            )
        case "agency":
            return Event.agency_id == bindparam("agency_id")
        case "one_per_group":
            # One result per event: the copies published by other agencies stay out (stored
            # groups, see events_app.duplicates); an agency's own list shows all of its events.
            return or_(Event.duplicate_group_id.is_(None), Event.duplicate_group_id == Event.id)
        case ("q", *_):
            return text_clause(part)
    raise ValueError(f"unknown search condition: {part!r}")


@lru_cache(maxsize=KEPT)
def conditions(shape: Shape) -> tuple[ColumnElement[bool], ...]:
    """The conditions of a shape, their values left as named parameters.

    A PostgreSQL text search also has its dates written into the statement, as its words are
    (events_app.fulltext.text_clause). With the dates as parameters, the same words asked for
    other weeks are one statement, which psycopg prepares at its fifth run; PostgreSQL then
    plans it for any dates at all (a generic plan), guesses the weeks hold a few of the word's
    matches, and reads every one of them through the full-text index: 140 to 275 ms for a
    common word at a million events, where walking the dates stops at the page's 20 (1 ms).
    """
    dates_written = ("q", "tsquery") in shape
    return tuple(_condition(part, dates_written=dates_written) for part in shape)


# How a circle is read: by the cells it touches, given as one parameter (an array on
# PostgreSQL, a JSON list read by json_each on SQLite: the same statement whatever the number
# of cells, where a list of parameters is written out again at every search, with a cast for
# each cell on PostgreSQL), or by its bounding box alone.
GeoRead = Literal["cell_json", "cell_array", "box"]


def geo_params(
    lat: float, lon: float, radius_km: float, *, dialect: str, by_cells: bool = True
) -> tuple[GeoRead, dict[str, Any]]:
    """How the circle is read on this dialect, and the parameters of geo_clause: the box of
    the circle, and the cells it touches."""
    dlat = radius_km / KM_PER_DEG_LAT
    # Near the poles the longitude span explodes; France never gets there, but stay total.
    cos_lat = max(math.cos(math.radians(lat)), 0.01)
    dlon = min(radius_km / (KM_PER_DEG_LAT * cos_lat), 180.0)
    params: dict[str, Any] = {
        "lat_min": lat - dlat,
        "lat_max": lat + dlat,
        "lon_min": lon - dlon,
        "lon_max": lon + dlon,
    }
    rows = range(
        math.floor((lat - dlat + 90) / GEO_CELL_DEG),
        math.floor((lat + dlat + 90) / GEO_CELL_DEG) + 1,
    )
    cols = range(
        math.floor((lon - dlon + 180) / GEO_CELL_DEG),
        math.floor((lon + dlon + 180) / GEO_CELL_DEG) + 1,
    )
    if not by_cells or len(rows) * len(cols) > MAX_CELLS:
        return "box", params
    base = geo_cell(-90.0, -180.0)
    cells = [base + r * 10_000 + c for r in rows for c in cols]
    if dialect == "postgresql":
        # An array's text, cast by the server: psycopg dumps a list of ints element by element
        # in Python, which cost as much as the rest of the parameters for a wide circle.
        params["cells"] = "{" + ",".join(map(str, cells)) + "}"
        return "cell_array", params
    params["cells"] = json.dumps(cells)
    return "cell_json", params


@lru_cache(maxsize=3)
def geo_clause(read: GeoRead) -> ColumnElement[bool]:
    box = and_(
        Event.venue_lat.between(bindparam("lat_min"), bindparam("lat_max")),
        Event.venue_lon.between(bindparam("lon_min"), bindparam("lon_max")),
    )
    if read == "box":
        return box
    if read == "cell_array":
        cells = cast(bindparam("cells", type_=String()), ARRAY(Integer))
        return and_(Event.geo_cell == any_(cells), box)
    listed: Select[Any] = select(literal_column("value")).select_from(
        func.json_each(bindparam("cells"))
    )
    return and_(Event.geo_cell.in_(listed), box)


def position_params(position: tuple[datetime, int]) -> dict[str, Any]:
    """The parameters of beyond: a (start, id) position in the date order."""
    starts, event_id = position
    return {"pos_starts": starts, "pos_id": event_id}


@lru_cache(maxsize=2)
def beyond(backward: bool) -> ColumnElement[bool]:
    """Events after (or, backward, before) the position in the date order."""
    starts = bindparam("pos_starts", type_=Event.starts_at.type)
    last_id = bindparam("pos_id", type_=Event.id.type)
    if backward:
        return or_(Event.starts_at < starts, and_(Event.starts_at == starts, Event.id < last_id))
    return or_(Event.starts_at > starts, and_(Event.starts_at == starts, Event.id > last_id))


def _order(backward: bool) -> tuple[Any, ...]:
    return (Event.starts_at.desc(), Event.id.desc()) if backward else (Event.starts_at, Event.id)


@lru_cache(maxsize=KEPT)
def candidates(shape: Shape, read: GeoRead) -> Select[int, float | None, float | None, Any]:
    """(id, lat, lon, start) of the on-site and hybrid matches in the geo parameters' box: the
    columns read and filtered are in the covering index ix_events_geo_search, so the scan of
    the candidates need not visit the table."""
    # The start as the driver gives it (see events_app.search._moments).
    starts = type_coerce(Event.starts_at, NullType())
    return select(Event.id, Event.venue_lat, Event.venue_lon, starts).where(
        *conditions(shape), Event.format != "online", geo_clause(read)
    )


@lru_cache(maxsize=KEPT)
def date_page(
    shape: Shape, online: bool, after: bool, backward: bool, summaries: bool = False
) -> Select[*tuple[Any, ...]]:
    """(id, start) of `page_limit` matches by date (only online ones with `online`), from the
    position with `after`; backward, the ones before it, nearest first. With `summaries`,
    each row goes on with the event's summary columns (see with_summaries)."""
    where = [*conditions(shape)]
    if online:
        where.append(Event.format == "online")
    if after:
        where.append(beyond(backward))
    page = (
        select(Event.id, Event.starts_at)
        .where(*where)
        .order_by(*_order(backward))
        .limit(bindparam("page_limit"))
    )
    return with_summaries(page, backward) if summaries else page


@lru_cache(maxsize=KEPT)
def near_by_date(
    shape: Shape, read: GeoRead, after: bool, backward: bool
) -> Select[int, datetime, str, float | None, float | None]:
    """(id, start, format, lat, lon) of the online matches and of the on-site ones in the geo
    parameters' box, by date, `page_limit` at a time from the position with `after`."""
    near = and_(Event.format != "online", geo_clause(read))
    where = [*conditions(shape), or_(Event.format == "online", near)]
    if after:
        where.append(beyond(backward))
    return (
        select(Event.id, Event.starts_at, Event.format, Event.venue_lat, Event.venue_lon)
        .where(*where)
        .order_by(*_order(backward))
        .limit(bindparam("page_limit"))
    )


@lru_cache(maxsize=KEPT)
def count_upto(shape: Shape, online: bool) -> Select[int]:
    """How many matches (only online ones with `online`), counted up to `cap` and no further."""
    where = [*conditions(shape)]
    if online:
        where.append(Event.format == "online")
    first = select(Event.id).where(*where).limit(bindparam("cap")).subquery()
    return select(func.count()).select_from(first)


# math.radians multiplies by this constant (pi / 180 in floats).
_RADIANS_PER_DEGREE = math.pi / 180


def _float(value: float) -> ColumnElement[float]:
    # repr gives back the same float when read (PostgreSQL parses it as a double too).
    return literal_column(f"CAST({value!r} AS DOUBLE PRECISION)", Double())


def distance_params(lat: float, lon: float) -> dict[str, float]:
    """The parameters of distance_clause: the place, its latitude in radians and its cosine
    computed once here."""
    phi = math.radians(lat)
    return {"place_phi": phi, "place_cos_phi": math.cos(phi), "place_lon": lon}


@lru_cache(maxsize=1)
def distance_clause() -> ColumnElement[float]:
    """The distance in km from the place of distance_params to the event's venue:
    events_app.places.distance_km written in SQL, the same operations in the same order on
    doubles (tests/test_search_statements.py checks they give the same number)."""
    per_degree, two = _float(_RADIANS_PER_DEGREE), _float(2.0)
    phi = Event.venue_lat * per_degree
    half_dphi = (phi - bindparam("place_phi", type_=Double())) / two
    half_dlambda = (Event.venue_lon - bindparam("place_lon", type_=Double())) * per_degree / two
    cos_phi: ColumnElement[float] = bindparam("place_cos_phi", type_=Double())
    a = func.power(func.sin(half_dphi), two) + cos_phi * func.cos(phi) * func.power(
        func.sin(half_dlambda), two
    )
    return two * _float(EARTH_RADIUS_KM) * func.asin(func.least(_float(1.0), func.sqrt(a)))


@lru_cache(maxsize=KEPT)
def nearest(
    shape: Shape, read: GeoRead, bounded: bool, backward: bool, online: bool = False
) -> Select[*tuple[Any, ...]]:
    """PostgreSQL: (distance, start, then the summary columns) of the `page_limit` nearest
    on-site and hybrid matches in the geo parameters' box within `within` km of the place,
    nearest first, then soonest, then by id; with `bounded`, only the ones after the position
    (pos_distance, pos_starts, pos_id) in that order. Backward: the ones before it, farthest
    first. With `online`, the first online matches by date follow (their distance null), as
    many as the nearby ones leave of `page_limit`: the online events that come after them on
    a page, in the same round trip.

    The distances are computed, compared and ranked by the database, so that a page and the
    cursor of the next one agree whatever the machines; the candidates come from the covering
    index (as in `candidates`) and only the page's events are read whole."""
    distance = distance_clause().label("distance")
    where = [
        *conditions(shape),
        Event.format != "online",
        geo_clause(read),
        distance_clause() <= bindparam("within", type_=Double()),
    ]
    if bounded:
        key = tuple_(distance_clause(), Event.starts_at, Event.id)
        position = tuple_(
            bindparam("pos_distance", type_=Double()),
            bindparam("pos_starts", type_=Event.starts_at.type),
            bindparam("pos_id", type_=Event.id.type),
        )
        where.append(key < position if backward else key > position)
    ranked = (
        select(Event.id, distance, Event.starts_at)
        .where(*where)
        .order_by(*_ranked_order(distance, Event.starts_at, Event.id, backward=backward))
        .limit(bindparam("page_limit"))
    )
    if not online:
        return with_summaries(ranked, backward)
    near = ranked.cte("near")
    left: ColumnElement[int] = (
        bindparam("page_limit") - select(func.count()).select_from(near).scalar_subquery()
    )
    first_online: Select[*tuple[Any, ...]] = (
        select(Event.id, null().cast(Double()).label("distance"), Event.starts_at)
        .where(*conditions(shape), Event.format == "online")
        .order_by(*_order(False))
        .limit(left)
    )
    return with_summaries(union_all(select(*near.c), first_online))


def with_summaries(
    page: Select[*tuple[Any, ...]] | CompoundSelect[*tuple[Any, ...]], backward: bool = False
) -> Select[*tuple[Any, ...]]:
    """PostgreSQL: the rows of a page (its first column the event's id, its order the columns
    it reads after the id, then the id; nulls last) followed by the event's summary columns
    (events_app.summaries.summary_columns), in the same order: the page and what it shows in
    one round trip. Only the page's events are read whole, after its LIMIT."""
    ranked = page.subquery("ranked")
    first, *keys = ranked.c
    return (
        select(*keys, *summary_columns("postgresql"))
        .select_from(ranked)
        .join(Event, Event.id == first)
        .join(Agency, Agency.id == Event.agency_id)
        .order_by(*_ranked_order(*keys, first, backward=backward))
    )


def _ranked_order(*columns: Any, backward: bool) -> list[Any]:
    return [column.desc() for column in columns] if backward else list(columns)
