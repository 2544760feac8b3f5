"""Types and helpers shared by the feed parsers.

Every parser turns bytes into `ImportedEvent`s and `RowError`s and nothing else: no database, no
network. Messages meant for people (`RowError.reason`, `ImportedEvent.warnings`) are French.
Error fields use the names of the event API (`title`, `starts_at`, `venue.lat`, ...).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from events_app.models import fold_text
from events_app.vocab import EVENT_TYPES, FORMATS, FT_TYPE_CODES, SECTORS

DEFAULT_TIMEZONE: Final = "Europe/Paris"
DEFAULT_DURATION: Final = timedelta(hours=2)
MAX_TITLE: Final = 200
MAX_VENUE_TEXT: Final = 200
MAX_ADDRESS: Final = 300
MAX_URL: Final = 2000
# events.external_id is a String(300); longer ids (long UIDs plus an occurrence suffix) are hashed.
MAX_EXTERNAL_ID: Final = 250


@dataclass(frozen=True)
class ImportedVenue:
    name: str | None = None
    address: str | None = None
    postal_code: str | None = None
    city: str | None = None
    lat: float | None = None
    lon: float | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))


@dataclass(frozen=True)
class ImportedEvent:
    # csv: physical line of the row's first line (header = 1); ft-json: 1-based position in the
    # event list; ics: physical line of the VEVENT's BEGIN line (or its ordinal, see importers.ics).
    line: int
    # Stable across re-imports of the same feed. Expanded recurrences: f"{uid}/{start UTC iso}".
    external_id: str
    title: str
    description_html: str
    type: str
    sectors: tuple[str, ...]
    format: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    venue: ImportedVenue
    online_url: str | None
    capacity: int | None
    remote_capacity: int | None
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    job_offers: int | None
    status: str
    source_url: str | None
    organiser: str | None
    warnings: tuple[str, ...] = ()
    # ft-json: hash of the element's raw JSON text (see importers.ftjson.raw_hash), stored as
    # the event's source_hash so that an unchanged element is recognised before it is mapped.
    raw_hash: str | None = None
    # A day (or days) with no time of day: starts_at is local midnight, ends_at the midnight
    # after the last day.
    all_day: bool = False


@dataclass(frozen=True)
class Unchanged:
    """An element whose raw text hashes as stored: the parser did not map it again."""

    line: int
    external_id: str


@dataclass(frozen=True)
class RowError:
    """A row the parser rejected. line 0 means the whole document could not be read."""

    line: int
    field: str | None
    reason: str
    # The row's external id when the parser could read it: the import then knows which event
    # the row is, keeps that event as it is, and can still cancel the events that vanished.
    external_id: str | None = None


@dataclass(frozen=True)
class Notice:
    """Something a parser says about the whole document, not about a row (shown as a warning).

    For instance why a calendar with events imported none of them.
    """

    reason: str


class FieldError(Exception):
    """A field-level problem found while reading one row; becomes a RowError."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def decode_bytes(data: bytes) -> str:
    """Text of a document: a BOM (UTF-8, UTF-16, UTF-32) decides, else UTF-8, else Windows-1252."""
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),  # before UTF-16: it starts with the same bytes
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


# --- hashing -------------------------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        # The instant, not its wall clock: the timezone is a field of its own.
        return value.astimezone(UTC).isoformat()
    if isinstance(value, ImportedVenue):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_canonical(item) for item in value]
    if isinstance(value, float):
        return repr(value)
    return value


def content_hash(ev: ImportedEvent) -> str:
    """sha256 hex of every field but `line` and `warnings`, to skip unchanged rows on re-import."""
    payload = {
        f.name: _canonical(getattr(ev, f.name))
        for f in dataclasses.fields(ev)
        if f.name not in ("line", "warnings", "raw_hash")
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_id(raw: str) -> str:
    """An external id that fits the database column: long ones become their hash."""
    if len(raw) <= MAX_EXTERNAL_ID:
        return raw
    return "sha256-" + hashlib.sha256(raw.encode("utf-8")).hexdigest()


def derived_id(title: str, starts_at: datetime) -> str:
    """External id for a row that has none: a hash of title and start instant.

    Editing the title or the start of such a row therefore looks like a new event (and the old
    one vanishes from the feed), which is the best a source without ids allows.
    """
    key = f"{normalise(title)}|{starts_at.astimezone(UTC).isoformat()}"
    return "h-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


# --- text ----------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_HTML_TAG = re.compile(
    r"<\s*/?\s*(?:p|br|b|i|u|a|ul|ol|li|strong|em|div|span|h[1-6]|table|tr|td|font)\b[^>]*>",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=4096)
def normalise(text: str) -> str:
    """Lowercase, accents removed, punctuation as single spaces: for matching labels.

    Cached: feeds repeat the same few labels (types, formats, sectors) on every row."""
    return _NON_WORD.sub(" ", fold_text(text)).strip()


def clean_text(value: str | None, *, multiline: bool = False) -> str | None:
    """Strip control characters (PostgreSQL refuses NUL) and blanks; None when empty."""
    if value is None:
        return None
    if value.isprintable() and "  " not in value:
        # The common case, without regular expressions: no control character (isprintable is
        # False for all of them, and for tabs and newlines), no run of spaces to collapse.
        return value.strip() or None
    text = _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
    text = text.strip() if multiline else _SPACES.sub(" ", text).strip()
    return text or None


def clip(value: str | None, max_len: int, label: str, warnings: list[str]) -> str | None:
    if value is None or len(value) <= max_len:
        return value
    warnings.append(f"{label} tronqué à {max_len} caractères")
    return value[: max_len - 1].rstrip() + "…"


def text_to_html(text: str) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)


def as_html(text: str | None) -> str:
    """HTML kept as found (it is sanitised later); plain text escaped into paragraphs."""
    cleaned = clean_text(text, multiline=True)
    if cleaned is None:
        return ""
    return cleaned if _HTML_TAG.search(cleaned) else text_to_html(cleaned)


def http_url(value: str | None) -> str | None:
    """The value when it is an absolute http(s) URL (a bare `www.` gets https), else None."""
    text = clean_text(value)
    if text is None:
        return None
    if text.lower().startswith("www."):
        text = "https://" + text
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or " " in text:
        return None
    return text if len(text) <= MAX_URL else None


# --- vocabularies --------------------------------------------------------------------------------

_TYPE_ALIASES: Final[dict[str, str]] = {
    "salon": "forum",
    "forum": "forum",
    "salon forum": "forum",
    "forum salon": "forum",
    "salon de l emploi": "forum",
    "forum emploi": "forum",
    "forum de l emploi": "forum",
    "salon en ligne": "online_fair",
    "salon virtuel": "online_fair",
    "salon digital": "online_fair",
    "salon numerique": "online_fair",
    "forum en ligne": "online_fair",
    "reunion d information": "info_session",
    "reunion information": "info_session",
    "reunion d info": "info_session",
    "information collective": "info_session",
    "info collective": "info_session",
    "atelier": "workshop",
    "conference": "conference",
    "visite d entreprise": "company_visit",
    "visite entreprise": "company_visit",
    "visite": "company_visit",
    "portes ouvertes": "open_day",
    "porte ouverte": "open_day",
    "journee portes ouvertes": "open_day",
    "session de recrutement": "recruitment",
    "session recrutement": "recruitment",
    "recrutement": "recruitment",
    "job dating": "job_dating",
    "jobdating": "job_dating",
    "autre": "other",
}


def _type_table() -> dict[str, str]:
    table = dict(_TYPE_ALIASES)
    for code, label in EVENT_TYPES.items():
        table[normalise(code)] = code
        table[normalise(label)] = code
    for number, code in FT_TYPE_CODES.items():
        table[number] = code
    return table


TYPE_LOOKUP: Final[dict[str, str]] = _type_table()


def lookup_type(value: str) -> str | None:
    """The type code for a label, code or France Travail number; None when unknown."""
    return TYPE_LOOKUP.get(normalise(value))


def map_type(value: str | None, warnings: list[str]) -> str:
    """The type for a label; unknown and missing labels give "other" with a warning."""
    text = clean_text(value)
    if text is None:
        warnings.append("type absent, classé « Autre »")
        return "other"
    code = lookup_type(text)
    if code is None:
        warnings.append(f"type « {text} » inconnu, classé « Autre »")
        return "other"
    return code


_SECTOR_ALIASES: Final[dict[str, str]] = {
    "all": "all",
    "tous": "all",
    "tous secteurs": "all",
    "tout secteur": "all",
    "tous les secteurs": "all",
    "multisectoriel": "all",
    "multi secteurs": "all",
    "multisecteurs": "all",
    "agriculture": "A",
    "agriculture et peche": "A",
    "espaces naturels et espaces verts": "A",
    "espaces verts": "A",
    "soins aux animaux": "A",
    "arts": "B",
    "arts et faconnage d ouvrages d art": "B",
    "artisanat d art": "B",
    "banque": "C",
    "assurance": "C",
    "immobilier": "C",
    "commerce": "D",
    "vente": "D",
    "grande distribution": "D",
    "commerce vente": "D",
    "communication": "E",
    "media": "E",
    "multimedia": "E",
    "media et multimedia": "E",
    "construction": "F",
    "batiment": "F",
    "btp": "F",
    "travaux publics": "F",
    "batiment et travaux publics": "F",
    "hotellerie": "G",
    "restauration": "G",
    "hotellerie restauration": "G",
    "tourisme": "G",
    "loisirs": "G",
    "animation": "G",
    "loisirs et animation": "G",
    "industrie": "H",
    "installation": "I",
    "maintenance": "I",
    "installation et maintenance": "I",
    "sante": "J",
    "services a la personne": "K",
    "services a la collectivite": "K",
    "aide a la personne": "K",
    "spectacle": "L",
    "support a l entreprise": "M",
    "support entreprise": "M",
    "transport": "N",
    "logistique": "N",
    "transport et logistique": "N",
}
_ROME_CODE = re.compile(r"^([a-n])\s?\d{4}$")


def _sector_table() -> dict[str, str]:
    table = dict(_SECTOR_ALIASES)
    for code, label in SECTORS.items():
        table[normalise(code)] = code
        table[normalise(label)] = code
    return table


SECTOR_LOOKUP: Final[dict[str, str]] = _sector_table()
_SPLIT = re.compile(r"[,;/|\n]+")


def lookup_sector(value: str) -> str | None:
    """A sector code for a letter, a ROME code ("M1607"), a label or a usual short name."""
    key = normalise(value)
    if key in SECTOR_LOOKUP:
        return SECTOR_LOOKUP[key]
    rome = _ROME_CODE.match(key)
    return rome.group(1).upper() if rome else None


def split_values(text: str) -> list[str]:
    return [part.strip() for part in _SPLIT.split(text) if part.strip()]


def map_sectors(values: Iterable[str], warnings: list[str]) -> tuple[str, ...]:
    """Sector codes, sorted; ("all",) when none is known or one of them means every sector.

    A value that is a whole label containing separators ("Banque, assurance, immobilier") is
    matched before being split.
    """
    found: set[str] = set()
    for value in values:
        text = clean_text(value)
        if text is None:
            continue
        whole = lookup_sector(text)
        parts = [text] if whole is not None else split_values(text)
        for part in parts:
            code = lookup_sector(part)
            if code is None:
                warnings.append(f"secteur « {part} » inconnu, ignoré")
            else:
                found.add(code)
    if not found or "all" in found:
        return ("all",)
    return tuple(sorted(found))


_ONSITE_WORDS = (
    "en physique",
    "physique",
    "presentiel",
    "en presentiel",
    "sur place",
    "onsite",
    "on site",
    "in person",
)
_ONLINE_WORDS = (
    "a distance",
    "distance",
    "distanciel",
    "en distanciel",
    "en ligne",
    "online",
    "visio",
    "visioconference",
    "remote",
)
_HYBRID_WORDS = ("hybride", "hybrid", "mixte", "sur place et en ligne")


def map_format(value: str | None) -> str | None:
    """onsite / online / hybrid for a label (or a list of labels joined); None when unknown."""
    text = clean_text(value)
    if text is None:
        return None
    key = normalise(text)
    if key in FORMATS:
        return key
    if any(f" {word} " in f" {key} " for word in _HYBRID_WORDS):
        return "hybrid"
    onsite = any(f" {word} " in f" {key} " for word in _ONSITE_WORDS)
    online = any(f" {word} " in f" {key} " for word in _ONLINE_WORDS)
    if onsite and online:
        return "hybrid"
    if onsite:
        return "onsite"
    if online:
        return "online"
    return None


def infer_format(venue: ImportedVenue, online_url: str | None) -> str:
    physical = bool(venue.name or venue.address or venue.postal_code or venue.city)
    physical = physical or venue.lat is not None
    if physical and online_url:
        return "hybrid"
    if online_url:
        return "online"
    return "onsite"


def split_capacities(
    fmt: str, onsite: int | None, remote: int | None, warnings: list[str]
) -> tuple[int | None, int | None]:
    """(capacity, remote_capacity) as the event model wants them.

    Only a hybrid event keeps two numbers; an online event's only capacity goes in `capacity`.
    """
    if fmt == "hybrid":
        return onsite, remote
    if fmt == "online":
        return (remote if remote is not None else onsite), None
    if remote is not None:
        warnings.append("places à distance ignorées : l'événement n'est pas hybride")
    return onsite, None


# --- numbers -------------------------------------------------------------------------------------

_INT_TEXT = re.compile(r"^[+]?\d+(?:[.,]0{1,2})?$")


def parse_int(value: Any, field: str, label: str) -> int | None:
    """A count (>= 0) from a number or text ("1 200" allowed); raises FieldError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise FieldError(field, f"{label} : nombre entier attendu, pas « {value} »")
    if isinstance(value, float):
        if not value.is_integer():
            raise FieldError(field, f"{label} : nombre entier attendu, pas « {value} »")
        value = int(value)
    if isinstance(value, int):
        if value < 0:
            raise FieldError(field, f"{label} : nombre positif attendu, pas « {value} »")
        return value
    text = clean_text(str(value))
    if text is None:
        return None
    compact = re.sub(r"[\s\u00a0\u202f]", "", text)
    if re.fullmatch(r"-\d+", compact):
        raise FieldError(field, f"{label} : nombre positif attendu, pas « {text} »")
    if not _INT_TEXT.match(compact):
        raise FieldError(field, f"{label} : nombre entier attendu, pas « {text} »")
    return int(re.split(r"[.,]", compact)[0])


def parse_float(value: Any, field: str, label: str, low: float, high: float) -> float | None:
    """A decimal from a number or text with a decimal comma or point, within [low, high]."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise FieldError(field, f"{label} : nombre attendu, pas « {value} »")
    if isinstance(value, int | float):
        number = float(value)
        shown = str(value)
    else:
        text = clean_text(str(value))
        if text is None:
            return None
        shown = text
        try:
            number = float(text.replace(",", ".").replace(" ", ""))
        except ValueError:
            raise FieldError(field, f"{label} : nombre attendu, pas « {text} »") from None
    if not low <= number <= high:  # also refuses NaN
        raise FieldError(field, f"{label} : « {shown} » hors de l'intervalle [{low:g}, {high:g}]")
    return number


def parse_coordinates(lat: Any, lon: Any, warnings: list[str]) -> tuple[float | None, float | None]:
    latitude = parse_float(lat, "venue.lat", "latitude", -90, 90)
    longitude = parse_float(lon, "venue.lon", "longitude", -180, 180)
    if (latitude is None) != (longitude is None):
        warnings.append("latitude ou longitude seule, coordonnées ignorées")
        return None, None
    if latitude == 0 and longitude == 0:
        warnings.append("coordonnées 0,0 ignorées")
        return None, None
    return latitude, longitude


# --- dates ---------------------------------------------------------------------------------------


def get_zone(name: str | None) -> ZoneInfo | None:
    text = clean_text(name)
    if text is None:
        return None
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # ZoneInfo("Europe") is a directory
        return None


def localise(value: datetime, zone: tzinfo) -> datetime:
    """Aware as is; naive read as wall time in `zone` (a time skipped by DST moves forward)."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value
    aware = value.replace(tzinfo=zone)
    # Round-trip through UTC so that a non-existent wall time (DST gap) gets a real instant.
    return aware.astimezone(UTC).astimezone(zone)


def start_of_day(day: date, zone: tzinfo) -> datetime:
    return localise(datetime.combine(day, time()), zone)


_FR_DATE = re.compile(
    r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})"
    r"(?:(?:\s+|\s*[àaT]\s*)(\d{1,2})\s*[:hH]\s*(\d{2})?(?:\s*:\s*(\d{2}))?)?$"
)
_TIME = re.compile(r"^(\d{1,2})\s*[:hH]\s*(\d{2})?(?:\s*:\s*(\d{2})(?:[.,]\d+)?)?$")


def parse_time_text(text: str) -> time | None:
    """08:30, 08:30:00, 8h30, 8h, 08H30; None when it is none of them."""
    match = _TIME.match(text.strip())
    if not match:
        return None
    hour, minute, second = (int(g) if g else 0 for g in match.groups())
    if hour == 24 and minute == 0 and second == 0:
        hour = 0  # rare "24:00"; callers treat end < start as the next day
    try:
        return time(hour, minute, second)
    except ValueError:
        return None


def parse_datetime_text(text: str, zone: tzinfo) -> tuple[datetime, bool]:
    """(aware datetime, has a time of day) from French or ISO text; raises ValueError.

    Accepts dd/mm/yyyy, dd/mm/yyyy HH:MM, dd/mm/yyyy HHhMM (also with `-` or `.`, a two-digit
    year, or "à"), and ISO 8601 with or without time, seconds, fraction and offset. Naive values
    are wall time in `zone`.
    """
    value = text.strip()
    match = _FR_DATE.match(value)
    if match:
        day, month, year, hour, minute, second = match.groups()
        full_year = int(year) + 2000 if len(year) == 2 else int(year)
        day_value = date(full_year, int(month), int(day))
        if hour is None:
            return start_of_day(day_value, zone), False
        clock = time(int(hour), int(minute or 0), int(second or 0))
        return localise(datetime.combine(day_value, clock), zone), True
    if re.match(r"^\d{4}-\d{2}-\d{2}$", value) or re.match(r"^\d{8}$", value):
        return start_of_day(date.fromisoformat(value), zone), False
    parsed = datetime.fromisoformat(value)
    return localise(parsed, zone), True


def end_of_day(day_start: datetime, zone: tzinfo) -> datetime:
    """The next local midnight after a local midnight, DST included."""
    return start_of_day(day_start.astimezone(zone).date() + timedelta(days=1), zone)


# --- places --------------------------------------------------------------------------------------

_POSTAL = re.compile(r"(?<![\d])((?:0[1-9]|[1-8]\d|9[0-8])\d{3})(?![\d])")
_DEPARTMENT = re.compile(r"^(.+?)\s*\(\s*(\d{2,3}|2[abAB])\s*\)$")
_CEDEX = re.compile(r"\s+cedex(?:\s+\d+)?$", re.IGNORECASE)
_STREET = re.compile(
    r"^\d+\s*(?:bis|ter|[a-d])?\b|\b(?:rue|avenue|av|bd|boulevard|place|chemin|allée|allee|quai|"
    r"route|impasse|cours|square|voie|passage|esplanade|rond-point|lieu-dit)\b",
    re.IGNORECASE,
)


def normalise_postal_code(value: Any) -> str | None:
    """Five digits; a spreadsheet's "1000" gets its leading zero back."""
    if value is None or isinstance(value, bool):
        return None
    text = clean_text(str(value))
    if text is None:
        return None
    text = text.replace(" ", "")
    if re.fullmatch(r"\d{4}", text):
        text = "0" + text
    if re.fullmatch(r"\d+\.0", text):
        text = text[:-2].zfill(5)
    return text[:10]


@dataclass(frozen=True)
class PlaceText:
    name: str | None = None
    address: str | None = None
    postal_code: str | None = None
    city: str | None = None


def _city(text: str) -> str | None:
    return clean_text(_CEDEX.sub("", text.strip(" ,-()")))


def parse_place_text(value: str | None) -> PlaceText:
    """Split "name, street, 75011 Paris" or "Lyon (69)" into its parts, as far as it can.

    Without a postal code or a département in brackets nothing is guessed about the city: a
    lone text is a venue name, or an address when it starts like a street.
    """
    text = clean_text((value or "").replace("\n", ", "))
    if text is None:
        return PlaceText()
    segments = [s.strip() for s in text.split(",") if s.strip()]
    while len(segments) > 1 and normalise(segments[-1]) == "france":
        segments.pop()
    postal_code = city = None
    head: list[str] = segments
    for index in range(len(segments) - 1, -1, -1):
        segment = segments[index]
        match = _POSTAL.search(segment)
        if match is None:
            continue
        postal_code = match.group(1)
        before = segment[: match.start()].strip(" ,-(")
        after = segment[match.end() :]
        city = _city(after)
        head = segments[:index]
        if city is None and before and not _STREET.search(before):
            city = _city(before)
        elif before:
            head = [*head, before]
        if city is None and index + 1 < len(segments):
            city = _city(segments[index + 1])
        break
    else:
        department = _DEPARTMENT.match(segments[-1])
        if department:
            city = _city(department.group(1))
            head = segments[:-1]
    name = address = None
    if len(head) >= 2:
        if _STREET.search(head[0]):
            address = ", ".join(head)
        else:
            name, address = head[0], ", ".join(head[1:])
    elif len(head) == 1:
        if _STREET.search(head[0]):
            address = head[0]
        else:
            name = head[0]
    return PlaceText(name=name, address=address, postal_code=postal_code, city=city)


def seal(ev: ImportedEvent) -> ImportedEvent:
    """Last checks every parser runs before yielding an event; raises FieldError."""
    if ev.starts_at.tzinfo is None or ev.ends_at.tzinfo is None:
        raise FieldError("starts_at", "date sans fuseau horaire")  # a bug, not bad input
    if ev.ends_at < ev.starts_at:
        raise FieldError("ends_at", "la fin de l'événement précède son début")
    return ev
