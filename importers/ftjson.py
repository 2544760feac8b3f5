"""France Travail event JSON ("ft-json"), in both of its published shapes.

- Mes Evénements Emploi: ``{"totalElements": N, "content": [ {event}, ... ]}`` with ``id``,
  ``titre``, ``description``, ``dateEvenement`` (start instant), ``heureDebut``/``heureFin``
  (clock times in UTC), ``timezone``, ``type`` (French label), ``modalites``, ``ville``,
  ``codePostal``, ``latitude``, ``longitude``, ``nombrePlaceTotalPresentiel``,
  ``nombrePlaceTotalDistance``, ``codesRome``, ``multisectoriel``, ``urlDetailEvenement``,
  ``libelleOrganisateurPrincipal``, ``libelleEtablissement``, ``objectifs``, ``publics``.
- job fairs ("salons"): ``titre``, ``dateDebut``, ``dateFin``, ``dateDebutCandidature``,
  ``dateFinCandidature``, ``description``, ``localisation`` (free text), ``typeEvenement`` (a
  number such as "18" or a label), ``organismeOrganisateur``, ``nombreOffres``,
  ``urlSalonEnLigne``, ``salonEnCours``.

The list of events may be the document itself, or sit under ``content``, ``results``,
``salons``, ``evenements`` (or any other key holding a list of objects); a lone event object is
read as a list of one. Unknown fields are ignored.

`ImportedEvent.line` and `RowError.line` are the 1-based position of the event in that list
(element ``content[0]`` is line 1). Line 0 means the document as a whole could not be read.

The document is never loaded whole: one pass with a C regex finds where each element of the
list starts and ends (and checks the brackets balance, so that a truncated download is refused
before anything is yielded), then each element is decoded on its own with orjson.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

import orjson

from importers.base import (
    DEFAULT_DURATION,
    DEFAULT_TIMEZONE,
    MAX_ADDRESS,
    MAX_TITLE,
    MAX_VENUE_TEXT,
    FieldError,
    ImportedEvent,
    ImportedVenue,
    RowError,
    Unchanged,
    as_html,
    clean_text,
    clip,
    derived_id,
    end_of_day,
    get_zone,
    http_url,
    infer_format,
    map_format,
    map_sectors,
    map_type,
    normalise,
    normalise_postal_code,
    parse_coordinates,
    parse_datetime_text,
    parse_int,
    parse_place_text,
    parse_time_text,
    seal,
    split_capacities,
    stable_id,
)

T = TypeVar("T")

# Salt of raw_hash(): bump it whenever _map reads an element differently.
RAW_HASH_VERSION: Final = b"ft-json/1\n"

# Keys that usually hold the list, best first (compared after normalise()).
_LIST_KEYS: Final = ("content", "results", "resultats", "salons", "evenements", "events", "items")
_ONLINE_PLACES: Final = frozenset(
    {"en ligne", "a distance", "distanciel", "100 en ligne", "online", "internet", "virtuel"}
)

# A JSON string (kept whole, escapes included), an opening bracket, a closing bracket, or a
# quote that opens a string never closed.
_TOKEN = re.compile(rb'(")[^"\\]*+(?:\\.[^"\\]*+)*+"|([\[{])|([\]}])|(")', re.DOTALL)
# Everything up to the next bracket, strings skipped whole: an element's inside is read in C,
# bracket to bracket, rather than token by token in Python.
_STRING = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_TO_BRACKET = re.compile(rb'(?:[^"\[\]{}]++|' + _STRING + rb")*+", re.DOTALL)


def _nested(depth: int) -> bytes:
    """A regex for an object or list holding at most `depth` levels of others, strings whole."""
    string = _STRING
    inside = rb'(?:[^"\[\]{}]++|' + string + rb")*+"
    for _ in range(depth):
        bracketed = rb"(?:\{" + inside + rb"\}|\[" + inside + rb"\])"
        inside = rb'(?:[^"\[\]{}]++|' + string + rb"|" + bracketed + rb")*+"
    return rb"\{" + inside + rb"\}"


# A whole element in one C match when its nesting is shallow, as France Travail's are.
_SHALLOW_ELEMENT = re.compile(_nested(3), re.DOTALL)
_COLON = re.compile(rb"\s*:")
_COLON_INT = re.compile(rb"\s*:\s*(\d{1,12})\b")
_WS = re.compile(rb"\s*")
_SEP = re.compile(rb"\s*,\s*")
_OPEN_BRACE, _OPEN_BRACKET = ord("{"), ord("[")
_PAIRS: Final = {ord("}"): _OPEN_BRACE, ord("]"): _OPEN_BRACKET}


class _Unreadable(Exception):
    pass


@dataclass
class _Array:
    key: str | None
    start: int
    end: int = -1
    elements: list[tuple[int, int]] = field(default_factory=list)
    # Strings, nested lists or anything else than objects among the elements.
    irregular: bool = False


@dataclass
class _Layout:
    root_is_object: bool
    root: tuple[int, int]
    arrays: list[_Array]
    keys: set[str]
    total: int | None


def _key(data: bytes, start: int, end: int) -> str:
    try:
        value = json.loads(data[start:end])
    except ValueError:
        return ""
    return value if isinstance(value, str) else ""


def _element_end(data: bytes, start: int) -> int:
    """The end of the object or list opening at `start` (past its closing bracket)."""
    whole = _SHALLOW_ELEMENT.match(data, start)
    if whole is not None:
        return whole.end()
    stack = [data[start]]
    position = start + 1
    size = len(data)
    while stack:
        position = _TO_BRACKET.match(data, position).end()  # type: ignore[union-attr]
        if position >= size:
            raise _Unreadable("document JSON tronqué (crochets ou accolades non refermés)")
        char = data[position]
        if char in _PAIRS:
            if stack.pop() != _PAIRS[char]:
                raise _Unreadable(f"crochet ou accolade inattendu à l'octet {position}")
        elif char in (_OPEN_BRACE, _OPEN_BRACKET):
            stack.append(char)
        else:  # a quote the skip could not take: a string never closed
            raise _Unreadable(f"chaîne de caractères non terminée à l'octet {position}")
        position += 1
    return position


def _scan(data: bytes) -> _Layout:
    """Find the root, its top-level lists and their elements' spans; raise _Unreadable."""
    begin = _WS.match(data, 3 if data.startswith(b"\xef\xbb\xbf") else 0)
    position = begin.end() if begin else 0
    if position >= len(data):
        raise _Unreadable("document vide")
    first = data[position]
    if first not in (_OPEN_BRACE, _OPEN_BRACKET):
        preview = data[position : position + 30].decode("utf-8", "replace")
        raise _Unreadable(f"ce n'est pas un document JSON (il commence par « {preview} »)")
    root_is_object = first == _OPEN_BRACE
    root_start = position
    stack: list[int] = []
    arrays: list[_Array] = []
    keys: set[str] = set()
    current: _Array | None = None
    level = -1  # the depth at which `current`'s elements open
    last_key: str | None = None
    total: int | None = None
    root_end = -1
    while (match := _TOKEN.search(data, position)) is not None:
        position = match.end()
        kind = match.lastindex
        if root_end >= 0:
            raise _Unreadable("contenu inattendu après la fin du document JSON")
        depth = len(stack)
        if kind == 1:
            if depth == 1 and root_is_object and _COLON.match(data, match.end()):
                last_key = _key(data, match.start(), match.end())
                keys.add(last_key)
                if last_key == "totalElements":
                    number = _COLON_INT.match(data, match.end())
                    total = int(number.group(1)) if number else None
            elif current is not None and depth == level:
                current.irregular = True
        elif kind == 2:
            opener = data[match.start()]
            if current is not None and depth == level:
                if opener == _OPEN_BRACE:  # an element: read to its end at once
                    position = _element_end(data, match.start())
                    current.elements.append((match.start(), position))
                    continue
                current.irregular = True
            elif opener == _OPEN_BRACKET and current is None:
                if depth == 0 and not root_is_object:
                    current, level = _Array(key=None, start=match.start()), 1
                elif depth == 1 and root_is_object:
                    current, level = _Array(key=last_key, start=match.start()), 2
            stack.append(opener)
        elif kind == 3:
            closer = data[match.start()]
            if not stack or stack[-1] != _PAIRS[closer]:
                raise _Unreadable(f"crochet ou accolade inattendu à l'octet {match.start()}")
            stack.pop()
            depth = len(stack)
            if current is not None and depth == level - 1:
                current.end = match.end()
                arrays.append(current)
                current = None
            if depth == 0:
                root_end = match.end()
        else:
            raise _Unreadable(f"chaîne de caractères non terminée à l'octet {match.start()}")
    if root_end < 0:
        raise _Unreadable("document JSON tronqué (crochets ou accolades non refermés)")
    tail = _WS.match(data, root_end)
    if tail is None or tail.end() != len(data):
        raise _Unreadable("contenu inattendu après la fin du document JSON")
    return _Layout(root_is_object, (root_start, root_end), arrays, keys, total)


def _regular(data: bytes, array: _Array) -> bool:
    """True when the list holds only objects, separated by commas (scalars are invisible)."""
    if array.irregular:
        return False
    inner_start, inner_end = array.start + 1, array.end - 1
    if not array.elements:
        return _WS.fullmatch(data, inner_start, inner_end) is not None
    if _WS.fullmatch(data, inner_start, array.elements[0][0]) is None:
        return False
    if _WS.fullmatch(data, array.elements[-1][1], inner_end) is None:
        return False
    return all(
        _SEP.fullmatch(data, previous[1], following[0]) is not None
        for previous, following in zip(array.elements, array.elements[1:], strict=False)
    )


def _choose(layout: _Layout) -> _Array | None:
    if not layout.root_is_object:
        return layout.arrays[0] if layout.arrays else None
    by_key = {normalise(a.key or ""): a for a in reversed(layout.arrays)}
    for key in _LIST_KEYS:
        if key in by_key:
            return by_key[key]
    return next((a for a in layout.arrays if a.elements and not a.irregular), None)


def _load(raw: bytes | memoryview) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = bytes(raw)
        try:
            text.decode("utf-8")
        except UnicodeDecodeError:
            # Not UTF-8 as JSON must be: a Windows export, most likely.
            return json.loads(text.decode("cp1252", errors="replace"))
        raise


def _elements(
    data: bytes, layout: _Layout, array: _Array | None
) -> Iterator[tuple[int, bytes | None, Any]]:
    """(1-based position, raw text when known, decoded element or the exception that stopped
    its decoding)."""
    view = memoryview(data)
    if array is None:
        raw = bytes(view[layout.root[0] : layout.root[1]])
        yield 1, raw, _load(raw)
        return
    if _regular(data, array):
        for index, (start, end) in enumerate(array.elements, start=1):
            raw = bytes(view[start:end])
            try:
                yield index, raw, _load(raw)
            except ValueError as exc:
                yield index, raw, exc
        return
    items = _load(view[array.start : array.end])
    for index, item in enumerate(items, start=1):
        yield index, None, item


def raw_hash(raw: bytes) -> str:
    """Hash of an element's raw JSON text, salted with the mapping's version: a change of
    _map must bump RAW_HASH_VERSION so that every stored row is mapped again."""
    return hashlib.sha256(RAW_HASH_VERSION + raw).hexdigest()


def parse(
    data: bytes, known: Mapping[str, str | None] | None = None
) -> Iterator[ImportedEvent | RowError | Unchanged]:
    """Events and rejected rows of a France Travail JSON document; never raises.

    `known` maps the external ids of the feed's stored events to their source_hash: an element
    whose raw text hashes as stored is yielded as Unchanged, without being mapped again (this
    is what makes an unchanged re-import of 100,000 events fast).
    """
    try:
        layout = _scan(data)
        array = _choose(layout)
        if array is None and not (layout.root_is_object and "titre" in layout.keys):
            yield RowError(
                0,
                None,
                "aucune liste d'événements dans le document (clé « content », « results », "
                "« salons »… attendue)",
            )
            return
        elements = _elements(data, layout, array)
    except (_Unreadable, ValueError, RecursionError) as exc:
        yield RowError(0, None, f"document JSON illisible : {exc}")
        return
    seen: dict[str, int] = {}
    count = 0
    try:
        for index, raw, item in elements:
            count = index
            yield from _row(index, raw, item, seen, known)
    except (ValueError, RecursionError) as exc:  # only the irregular-list fallback gets here
        yield RowError(0, None, f"document JSON illisible : {exc}")
        return
    if layout.total is not None and layout.total > count:
        yield RowError(
            0,
            None,
            f"le document annonce {layout.total} événements mais n'en contient que {count} : "
            "flux paginé ou incomplet",
        )


def _row(
    index: int,
    raw: bytes | None,
    item: Any,
    seen: dict[str, int],
    known: Mapping[str, str | None] | None,
) -> Iterator[ImportedEvent | RowError | Unchanged]:
    if isinstance(item, Exception):
        yield RowError(index, None, f"élément JSON invalide : {item}")
        return
    if not isinstance(item, dict):
        yield RowError(index, None, "l'élément n'est pas un objet JSON")
        return
    digest = raw_hash(raw) if raw is not None else None
    if known and digest is not None:
        try:
            raw_id = _text(item, "id", "identifiant", "idEvenement")
        except Exception:  # an odd id shape: _map below says why
            raw_id = None
        if raw_id:
            external_id = stable_id(raw_id)
            if known.get(external_id) == digest and external_id not in seen:
                seen[external_id] = index
                yield Unchanged(index, external_id)
                return
    try:
        result = _map(index, item, digest)
    except Exception as exc:  # a parser never raises: an unforeseen shape rejects one row
        yield RowError(index, None, f"élément illisible : {exc!r}")
        return
    if isinstance(result, list):
        yield from result
        return
    if result.external_id in seen:
        yield RowError(
            index,
            "external_id",
            f"identifiant « {result.external_id} » en double (déjà vu à l'élément "
            f"{seen[result.external_id]})",
            result.external_id,
        )
        return
    seen[result.external_id] = index
    yield result


def _text(row: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = row.get(key)
        if isinstance(value, dict):
            value = value.get("libelle") or value.get("label") or value.get("code")
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = clean_text(str(value))
            if text is not None:
                return text
    return None


def _labels(value: Any) -> list[str]:
    """Texts of a value that may be a text, a number, a {"code"/"libelle"} object or a list."""
    items = value if isinstance(value, list) else [value]
    texts: list[str] = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("libelle") or item.get("label") or item.get("code")
        if isinstance(item, str | int) and not isinstance(item, bool):
            text = clean_text(str(item))
            if text:
                texts.append(text)
    return texts


def _when(value: Any, zone: tzinfo, field_name: str, label: str) -> tuple[datetime, bool]:
    """(aware datetime, has a time of day) from ISO or French text, or epoch (milli)seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if abs(value) > 10**11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC), True
        except (OverflowError, OSError, ValueError):
            raise FieldError(field_name, f"{label} illisible : « {value} »") from None
    text = clean_text(value) if isinstance(value, str) else None
    if text is None:
        raise FieldError(field_name, f"{label} illisible : « {value} »")
    try:
        return parse_datetime_text(text, zone)
    except (ValueError, OverflowError):
        raise FieldError(field_name, f"{label} illisible : « {text} »") from None


def _section(label: str, value: Any) -> str:
    items = value if isinstance(value, list) else [value]
    texts = [str(v) for v in items if isinstance(v, str | int | float) and str(v).strip()]
    body = "".join(as_html(text) for text in texts)
    return f"<p><strong>{label} :</strong></p>{body}" if body else ""


def _map(index: int, row: dict[str, Any], digest: str | None) -> ImportedEvent | list[RowError]:
    errors: list[FieldError] = []
    warnings: list[str] = []

    def attempt(read: Callable[[], T]) -> T | None:
        try:
            return read()
        except FieldError as exc:
            errors.append(exc)
            return None

    title = _text(row, "titre", "title", "intitule")
    if title is None:
        errors.append(FieldError("title", "titre absent ou vide"))
    else:
        title = clip(title, MAX_TITLE, "titre", warnings)

    zone_name = _text(row, "timezone") or DEFAULT_TIMEZONE
    zone = get_zone(zone_name)
    if zone is None:
        warnings.append(f"fuseau horaire « {zone_name} » inconnu, {DEFAULT_TIMEZONE} utilisé")
        zone_name = DEFAULT_TIMEZONE
        zone = ZoneInfo(DEFAULT_TIMEZONE)

    start = end = None
    raw_start = next((row[k] for k in ("dateEvenement", "dateDebut") if row.get(k)), None)
    if raw_start is None:
        errors.append(FieldError("starts_at", "date de début absente (dateEvenement, dateDebut)"))
    else:
        parsed = attempt(lambda: _when(raw_start, zone, "starts_at", "date de début"))
        if parsed is not None:
            start, end = attempt(lambda: _times(row, parsed, zone)) or (None, None)

    opens = closes = None
    if row.get("dateDebutCandidature"):
        read = attempt(
            lambda: _when(
                row["dateDebutCandidature"],
                zone,
                "registration_opens_at",
                "date d'ouverture des candidatures",
            )
        )
        opens = read[0] if read else None
    if row.get("dateFinCandidature"):
        read = attempt(
            lambda: _when(
                row["dateFinCandidature"],
                zone,
                "registration_closes_at",
                "date de clôture des candidatures",
            )
        )
        if read:
            closes = read[0] if read[1] else end_of_day(read[0], zone) - timedelta(minutes=1)
    if opens and closes and closes < opens:
        errors.append(
            FieldError(
                "registration_closes_at",
                "la clôture des candidatures précède leur ouverture",
            )
        )

    event_type = map_type(_text(row, "type", "typeEvenement", "libelleTypeEvenement"), warnings)

    place = parse_place_text(_text(row, "localisation", "lieu"))
    online_place = normalise(_text(row, "localisation") or "") in _ONLINE_PLACES
    if online_place:
        place = parse_place_text(None)
    coordinates = attempt(
        lambda: parse_coordinates(row.get("latitude"), row.get("longitude"), warnings)
    )
    lat, lon = coordinates or (None, None)
    venue = ImportedVenue(
        name=clip(
            _text(row, "libelleEtablissement") or place.name, MAX_VENUE_TEXT, "lieu", warnings
        ),
        address=clip(_text(row, "adresse") or place.address, MAX_ADDRESS, "adresse", warnings),
        postal_code=normalise_postal_code(_text(row, "codePostal")) or place.postal_code,
        city=clip(_text(row, "ville") or place.city, MAX_VENUE_TEXT, "ville", warnings),
        lat=lat,
        lon=lon,
    )

    online_raw = _text(row, "urlSalonEnLigne")
    online_url = http_url(online_raw)
    if online_raw and online_url is None:
        warnings.append(f"lien en ligne « {online_raw} » invalide, ignoré")

    modalites = " et ".join(_labels(row.get("modalites", row.get("modalite"))))
    declared = map_format(modalites)
    if declared is None and modalites:
        warnings.append(f"modalité « {modalites} » inconnue, format déduit du lieu")
    if declared is not None:
        fmt = declared
    elif event_type == "online_fair" and (online_url or venue.is_empty()):
        fmt = "online"
    else:
        fmt = infer_format(venue, online_url)

    if row.get("multisectoriel") is True:
        sectors: tuple[str, ...] = ("all",)
    else:
        values = _labels(row.get("codesRome") or row.get("secteurs"))
        sectors = map_sectors(values, warnings)

    onsite = attempt(
        lambda: parse_int(row.get("nombrePlaceTotalPresentiel"), "capacity", "places sur place")
    )
    remote = attempt(
        lambda: parse_int(
            row.get("nombrePlaceTotalDistance"), "remote_capacity", "places à distance"
        )
    )
    # France Travail sends 0 for the mode an event does not offer: 0 means "no number", not
    # "full"; an unknown capacity is unlimited in our model.
    capacity, remote_capacity = split_capacities(fmt, onsite or None, remote or None, warnings)
    job_offers = attempt(
        lambda: parse_int(row.get("nombreOffres"), "job_offers", "nombre d'offres")
    )

    status = "scheduled"
    state = normalise(_text(row, "statut", "etat") or "")
    if row.get("annule") is True or state.startswith("annul"):
        status = "cancelled"

    source_raw = _text(row, "urlDetailEvenement")
    source_url = http_url(source_raw)
    if source_raw and source_url is None:
        warnings.append(f"lien de l'événement « {source_raw} » invalide, ignoré")

    raw_id = _text(row, "id", "identifiant", "idEvenement")
    if errors or title is None or start is None or end is None:
        known_id = stable_id(raw_id) if raw_id else None
        return [RowError(index, e.field, e.reason, known_id) for e in errors]

    description = as_html(row["description"] if isinstance(row.get("description"), str) else None)
    description += _section("Objectifs", row.get("objectifs"))
    description += _section("Public", row.get("publics"))

    external_id = stable_id(raw_id) if raw_id else derived_id(title, start)
    return seal(
        ImportedEvent(
            line=index,
            external_id=external_id,
            title=title,
            description_html=description,
            type=event_type,
            sectors=sectors,
            format=fmt,
            starts_at=start.astimezone(zone),
            ends_at=end.astimezone(zone),
            timezone=zone_name,
            venue=venue,
            online_url=online_url,
            capacity=capacity,
            remote_capacity=remote_capacity,
            registration_opens_at=opens.astimezone(zone) if opens else None,
            registration_closes_at=closes.astimezone(zone) if closes else None,
            job_offers=job_offers,
            status=status,
            source_url=source_url,
            organiser=_text(row, "libelleOrganisateurPrincipal", "organismeOrganisateur"),
            warnings=tuple(warnings),
            raw_hash=digest,
        )
    )


def _times(
    row: dict[str, Any], start: tuple[datetime, bool], zone: tzinfo
) -> tuple[datetime, datetime]:
    """Start and end of the event; raises FieldError.

    `heureDebut`/`heureFin` are UTC clock times, as the public consumers of the API read them:
    they are set on the UTC date of `dateEvenement`, and an end earlier than the start is on the
    next day.
    """
    instant, has_time = start
    day: date = instant.astimezone(UTC).date()
    local = instant.astimezone(zone)
    if local.time() == time() and instant.astimezone(UTC).time() != time():
        # A day sent as local midnight ("2026-12-09T23:00:00Z" for 10 December in Paris): its
        # UTC date would be the day before.
        day = local.date()
    begin = row.get("heureDebut")
    if isinstance(begin, str) and begin.strip():
        clock = parse_time_text(begin)
        if clock is None:
            raise FieldError("starts_at", f"heure de début illisible : « {begin.strip()} »")
        instant, has_time = datetime.combine(day, clock, UTC), True
    finish = row.get("heureFin")
    if isinstance(finish, str) and finish.strip():
        clock = parse_time_text(finish)
        if clock is None:
            raise FieldError("ends_at", f"heure de fin illisible : « {finish.strip()} »")
        end = datetime.combine(instant.astimezone(UTC).date(), clock, UTC)
        if end < instant:
            end += timedelta(days=1)
        return instant, end
    raw_end = row.get("dateFin")
    if raw_end:
        end, end_has_time = _when(raw_end, zone, "ends_at", "date de fin")
        if not end_has_time:
            end = end_of_day(end, zone)
        if end < instant:
            raise FieldError(
                "ends_at",
                f"la fin ({end.isoformat()}) précède le début ({instant.isoformat()})",
            )
        return instant, end
    if has_time:
        return instant, instant + DEFAULT_DURATION
    return instant, end_of_day(instant, zone)
