"""Agency spreadsheet export ("csv").

The first non-empty line holds the headers. They are matched whatever their case, accents,
spaces and punctuation ("Date de début", "DATE DEBUT" and "date_debut" are the same column);
unknown columns are ignored. Columns:

============================  ==================================================================
column (and accepted names)   content
============================  ==================================================================
titre*                        intitulé, nom de l'événement, titre de l'événement
date de début*                début, date début, date, date de l'événement: ``dd/mm/yyyy HH:MM``,
                              ``dd/mm/yyyy HHhMM``, ``dd/mm/yyyy`` or ISO 8601
heure de début                heure début, heure: ``HH:MM``, ``HHhMM``, ``HHh`` (with a date
                              that has no time)
date de fin                   fin, date fin (a date without time ends at the end of that day)
heure de fin                  heure fin (on the start's date when there is no date de fin)
description                   descriptif, présentation, détails (text or HTML)
type                          type d'événement, catégorie: a label (« Job dating », « Atelier »…)
                              or a France Travail number (13 to 32)
secteurs                      secteur, secteur(s) d'activité, domaine(s), codes ROME: letters A
                              to N or French labels, separated by , ; / or |
format                        modalité(s), mode: présentiel, sur place, distanciel, en ligne,
                              à distance, hybride…
lieu                          nom du lieu, établissement, salle
adresse                       adresse postale, rue
code postal                   cp
ville                         commune, localité
latitude, longitude           lat, lon, lng; decimal point or comma
lien en ligne                 lien, url, url en ligne, lien de connexion, lien visio
capacité                      places, nombre de places, places sur place, jauge
places à distance             places en ligne, capacité à distance
inscriptions ouvertes le      début des inscriptions, ouverture des inscriptions
clôture des inscriptions      fin des inscriptions, date limite d'inscription
nombre d'offres               offres, nb offres
identifiant                   id, référence, ref (else a hash of title and start, see
                              importers.base.derived_id)
statut                        état: « annulé » cancels, « reporté » postpones
organisateur                  organisme, structure
page de l'événement           lien de l'événement, url de l'événement, source
fuseau horaire                an IANA name; Europe/Paris when absent
============================  ==================================================================

(* required: a missing required column gives one RowError on the header line, and no row is
read.)

Separator: ``;``, ``,`` or tab, whichever the header line uses most (Excel's ``sep=;`` first
line is understood). Encoding: UTF-8 with or without BOM, UTF-16 with BOM, else Windows-1252.

`ImportedEvent.line` and `RowError.line` are physical 1-based line numbers in the file (the
header is line 1 unless blank lines precede it); a row whose quoted cells span several lines is
numbered by its first line.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, tzinfo
from typing import Final, TypeVar
from zoneinfo import ZoneInfo

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
    as_html,
    clean_text,
    clip,
    decode_bytes,
    derived_id,
    end_of_day,
    get_zone,
    http_url,
    infer_format,
    localise,
    lookup_type,
    map_format,
    map_sectors,
    normalise,
    normalise_postal_code,
    parse_coordinates,
    parse_datetime_text,
    parse_int,
    parse_time_text,
    seal,
    split_capacities,
    stable_id,
)

T = TypeVar("T")

# Canonical column -> accepted headers, after normalise().
_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "title": (
        "titre",
        "intitule",
        "title",
        "nom de l evenement",
        "titre de l evenement",
        "intitule de l evenement",
        "evenement",
    ),
    "description": ("description", "descriptif", "presentation", "details", "detail"),
    "type": ("type", "type d evenement", "type evenement", "categorie", "type de l evenement"),
    "sectors": (
        "secteur",
        "secteurs",
        "secteur s",
        "secteur d activite",
        "secteurs d activite",
        "secteur s d activite",
        "domaine",
        "domaines",
        "domaine s",
        "code rome",
        "codes rome",
        "sectors",
    ),
    "format": ("format", "modalite", "modalites", "modalite s", "mode", "mode de participation"),
    "start": (
        "debut",
        "date de debut",
        "date debut",
        "date",
        "date de l evenement",
        "date et heure de debut",
        "date heure debut",
        "starts at",
    ),
    "start_time": ("heure de debut", "heure debut", "heure", "horaire de debut"),
    "end": ("fin", "date de fin", "date fin", "date et heure de fin", "date heure fin", "ends at"),
    "end_time": ("heure de fin", "heure fin", "horaire de fin"),
    "venue_name": ("lieu", "nom du lieu", "etablissement", "salle", "nom du lieu de l evenement"),
    "address": ("adresse", "adresse postale", "rue", "adresse du lieu"),
    "postal_code": ("code postal", "cp", "codepostal"),
    "city": ("ville", "commune", "localite"),
    "lat": ("latitude", "lat"),
    "lon": ("longitude", "lon", "lng", "long"),
    "online_url": (
        "lien en ligne",
        "lien",
        "url",
        "url en ligne",
        "lien de connexion",
        "lien visio",
        "lien de la visio",
        "lien webinaire",
        "online url",
    ),
    "capacity": (
        "capacite",
        "places",
        "nombre de places",
        "nb places",
        "nb de places",
        "jauge",
        "places sur place",
        "places en presentiel",
        "capacite sur place",
    ),
    "remote_capacity": (
        "places a distance",
        "places en ligne",
        "capacite a distance",
        "places en distanciel",
        "capacite en ligne",
    ),
    "registration_opens_at": (
        "inscriptions ouvertes le",
        "debut des inscriptions",
        "ouverture des inscriptions",
        "date d ouverture des inscriptions",
    ),
    "registration_closes_at": (
        "cloture des inscriptions",
        "fin des inscriptions",
        "date limite d inscription",
        "date limite inscription",
        "date limite des inscriptions",
        "inscriptions closes le",
    ),
    "job_offers": ("nombre d offres", "offres", "nb offres", "nombre offres", "nb d offres"),
    "external_id": ("identifiant", "id", "reference", "ref", "ref evenement"),
    "status": ("statut", "etat"),
    "organiser": ("organisateur", "organisme", "structure", "organisme organisateur"),
    "source_url": (
        "page de l evenement",
        "lien de l evenement",
        "url de l evenement",
        "source",
    ),
    "timezone": ("fuseau horaire", "fuseau", "timezone"),
}
_HEADER_LOOKUP: Final[dict[str, str]] = {
    alias: column for column, aliases in _COLUMNS.items() for alias in aliases
}
_REQUIRED: Final = (("title", "title", "titre"), ("start", "starts_at", "date de début"))
_SEP_LINE = re.compile(r"^\s*sep=(.)\s*$", re.IGNORECASE)


# The template agencies download from the feeds page: one header per column as they would
# type it, and an example row. Each header reads back as its column (tested), so the template
# cannot drift from the parser.
TEMPLATE: Final[tuple[tuple[str, str], ...]] = (
    ("Identifiant", "ML-2027-001"),
    ("Titre", "Job dating : métiers de la logistique"),
    ("Type", "Job dating"),
    ("Secteurs", "N ; H"),
    ("Format", "Sur place"),
    ("Date de début", "{day} 09:30"),
    ("Date de fin", "{day} 12:00"),
    ("Lieu", "Mission locale de Villeurbanne"),
    ("Adresse", "12 rue Francis-de-Pressensé"),
    ("Code postal", "69100"),
    ("Ville", "Villeurbanne"),
    ("Latitude", ""),
    ("Longitude", ""),
    ("Lien en ligne", ""),
    ("Places", "30"),
    ("Places à distance", ""),
    ("Inscriptions ouvertes le", ""),
    ("Clôture des inscriptions", "{closing} 18:00"),
    ("Nombre d'offres", "12"),
    ("Description", "Rencontrez cinq entreprises qui recrutent. Apportez votre CV."),
    ("Organisateur", "Mission locale de Villeurbanne"),
    ("Page de l'événement", ""),
    ("Statut", ""),
    ("Fuseau horaire", "Europe/Paris"),
)


def template(first_day: datetime) -> bytes:
    """The CSV template, for French Excel (`;`, UTF-8 with BOM), its example on first_day."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([header for header, _ in TEMPLATE])
    day = first_day.strftime("%d/%m/%Y")
    closing = (first_day - timedelta(days=1)).strftime("%d/%m/%Y")
    writer.writerow([example.format(day=day, closing=closing) for _, example in TEMPLATE])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _decode(data: bytes) -> str:
    return decode_bytes(data)


def _delimiter(text: str) -> str:
    """The separator used most on the first non-empty line outside quotes; ';' on a tie."""
    for line in text.splitlines():
        if not line.strip():
            continue
        declared = _SEP_LINE.match(line)
        if declared:
            return declared.group(1)
        unquoted = re.sub(r'"[^"]*"', "", line)
        counts = {d: unquoted.count(d) for d in (";", ",", "\t")}
        best = max(counts, key=lambda d: (counts[d], d == ";"))
        return best if counts[best] else ";"
    return ";"


def _column(header: str) -> str | None:
    key = normalise(header)
    if key in _HEADER_LOOKUP:
        return _HEADER_LOOKUP[key]
    # "Capacité (places)", "Titre *": drop what is in brackets and try again.
    shorter = normalise(re.sub(r"\(.*?\)|\[.*?\]", " ", header))
    return _HEADER_LOOKUP.get(shorter)


def parse(data: bytes) -> Iterator[ImportedEvent | RowError]:
    """Events and rejected rows of an agency spreadsheet export; never raises."""
    try:
        text = _decode(data)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    except Exception as exc:  # a parser never raises: an unreadable file is one error
        yield RowError(0, None, f"fichier CSV illisible : {exc}")
        return
    # An odd number of quotes: the row that swallows the end of the file gets the blame.
    unbalanced = text.count('"') % 2 == 1
    last_line = sum(1 for _ in io.StringIO(text, newline=""))
    columns: dict[str, int] | None = None
    width = 0
    seen: dict[str, int] = {}
    previous_line = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line = previous_line + 1
            if reader.line_num <= previous_line:  # no progress: stop rather than loop
                yield RowError(line, None, f"fin du fichier illisible : {exc}")
                break
            previous_line = reader.line_num
            yield RowError(line, None, f"ligne illisible : {exc}")
            continue
        line, previous_line = previous_line + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if unbalanced and previous_line == last_line and previous_line > line:
            yield RowError(
                line,
                None,
                "guillemet ouvert jamais refermé : la suite du fichier a été lue comme une "
                "seule cellule",
            )
            break
        if columns is None:
            if cells[0].strip().lower().startswith("sep=") and len(cells) <= 2:
                continue
            columns = {}
            for index, header in enumerate(cells):
                column = _column(header)
                if column is not None and column not in columns:
                    columns[column] = index
            width = len(cells)
            missing = [(f, label) for column, f, label in _REQUIRED if column not in columns]
            for field_name, label in missing:
                yield RowError(
                    line,
                    field_name,
                    f"colonne obligatoire « {label} » absente de l'en-tête",
                )
            if missing:
                return
            continue
        values = {
            column: cells[index].strip()
            for column, index in columns.items()
            if index < len(cells) and cells[index].strip()
        }
        try:
            result = _row(line, values, extra=len(cells) - width)
        except Exception as exc:  # an unforeseen problem rejects one row, not the file
            yield RowError(line, None, f"ligne illisible : {exc!r}")
            continue
        if isinstance(result, list):
            yield from result
        elif result.external_id in seen:
            yield RowError(
                line,
                "external_id",
                f"identifiant « {result.external_id} » en double (déjà vu ligne "
                f"{seen[result.external_id]})",
                result.external_id,
            )
        else:
            seen[result.external_id] = line
            yield result
    if columns is None:
        yield RowError(0, None, "fichier CSV vide : aucune ligne d'en-tête")


def _date(
    values: dict[str, str], column: str, zone: tzinfo, field_name: str, label: str
) -> tuple[datetime, bool] | None:
    raw = values.get(column)
    if raw is None:
        return None
    try:
        return parse_datetime_text(raw, zone)
    except (ValueError, OverflowError):
        raise FieldError(field_name, f"{label} illisible : « {raw} »") from None


def _with_time(
    values: dict[str, str],
    column: str,
    day: tuple[datetime, bool],
    zone: tzinfo,
    field_name: str,
    label: str,
) -> tuple[datetime, bool]:
    """The date of `day` at the clock time of `column`, when the date had no time of its own."""
    raw = values.get(column)
    moment, has_time = day
    if raw is None or has_time:
        return day
    clock = parse_time_text(raw)
    if clock is None:
        raise FieldError(field_name, f"{label} illisible : « {raw} »")
    return localise(datetime.combine(moment.astimezone(zone).date(), clock), zone), True


def _times(values: dict[str, str], zone: tzinfo) -> tuple[datetime, datetime]:
    """Start and end of the row's event; raises FieldError."""
    start = _date(values, "start", zone, "starts_at", "date de début")
    if start is None:
        raise FieldError("starts_at", "date de début absente")
    start = _with_time(values, "start_time", start, zone, "starts_at", "heure de début")
    begin, begin_has_time = start
    end = _date(values, "end", zone, "ends_at", "date de fin")
    if end is None and "end_time" in values:
        day = (begin, False)
        finish, _ = _with_time(values, "end_time", day, zone, "ends_at", "heure de fin")
        if finish < begin:  # 20:00 to 02:00 ends the next day
            next_day = finish.astimezone(zone).date() + timedelta(days=1)
            finish = localise(datetime.combine(next_day, finish.astimezone(zone).time()), zone)
    elif end is not None:
        finish, end_has_time = _with_time(values, "end_time", end, zone, "ends_at", "heure de fin")
        if not end_has_time:
            finish = end_of_day(finish, zone)
    elif begin_has_time:
        finish = begin + DEFAULT_DURATION
    else:
        finish = end_of_day(begin, zone)
    if finish < begin:
        raise FieldError(
            "ends_at",
            f"la fin ({finish.strftime('%d/%m/%Y %H:%M')}) précède le début "
            f"({begin.astimezone(zone).strftime('%d/%m/%Y %H:%M')})",
        )
    return begin, finish


_STATUSES: Final = {"annule": "cancelled", "annulee": "cancelled", "reporte": "postponed"}
_SCHEDULED: Final = frozenset(
    {"programme", "prevu", "confirme", "ouvert", "complet", "publie", "maintenu", "a venir"}
)


def _row(line: int, values: dict[str, str], *, extra: int) -> ImportedEvent | list[RowError]:
    errors: list[FieldError] = []
    warnings: list[str] = []

    def attempt(read: Callable[[], T]) -> T | None:
        try:
            return read()
        except FieldError as exc:
            errors.append(exc)
            return None

    if extra > 0:
        warnings.append(f"{extra} cellule(s) au-delà des colonnes de l'en-tête ignorée(s)")

    title = clean_text(values.get("title"))
    if title is None:
        errors.append(FieldError("title", "titre absent ou vide"))
    else:
        title = clip(title, MAX_TITLE, "titre", warnings)

    zone_name = values.get("timezone", DEFAULT_TIMEZONE)
    zone = get_zone(zone_name)
    if zone is None:
        errors.append(FieldError("timezone", f"fuseau horaire inconnu : « {zone_name} »"))
        zone = ZoneInfo(DEFAULT_TIMEZONE)
    times = attempt(lambda: _times(values, zone))

    opens = attempt(
        lambda: _date(
            values,
            "registration_opens_at",
            zone,
            "registration_opens_at",
            "date d'ouverture des inscriptions",
        )
    )
    closes = attempt(
        lambda: _date(
            values,
            "registration_closes_at",
            zone,
            "registration_closes_at",
            "date de clôture des inscriptions",
        )
    )
    opens_at = opens[0] if opens else None
    closes_at = None
    if closes:
        # A closing date without time keeps registrations open all that day.
        closes_at = closes[0] if closes[1] else end_of_day(closes[0], zone) - timedelta(minutes=1)
    if opens_at and closes_at and closes_at < opens_at:
        errors.append(
            FieldError(
                "registration_closes_at",
                "la clôture des inscriptions précède leur ouverture",
            )
        )

    raw_type = values.get("type")
    event_type = lookup_type(raw_type) if raw_type else "other"
    if event_type is None:
        warnings.append(f"type « {raw_type} » inconnu, classé « Autre »")
        event_type = "other"
    sectors = map_sectors([values["sectors"]] if "sectors" in values else [], warnings)

    coordinates = attempt(lambda: parse_coordinates(values.get("lat"), values.get("lon"), warnings))
    lat, lon = coordinates or (None, None)
    venue = ImportedVenue(
        name=clip(clean_text(values.get("venue_name")), MAX_VENUE_TEXT, "lieu", warnings),
        address=clip(clean_text(values.get("address")), MAX_ADDRESS, "adresse", warnings),
        postal_code=normalise_postal_code(values.get("postal_code")),
        city=clip(clean_text(values.get("city")), MAX_VENUE_TEXT, "ville", warnings),
        lat=lat,
        lon=lon,
    )
    online_url = None
    if "online_url" in values:
        online_url = http_url(values["online_url"])
        if online_url is None:
            errors.append(
                FieldError(
                    "online_url",
                    f"lien en ligne invalide : « {values['online_url']} » (https://… attendu)",
                )
            )
    fmt = map_format(values.get("format"))
    if fmt is None:
        if "format" in values:
            warnings.append(f"format « {values['format']} » inconnu, déduit du lieu et du lien")
        fmt = infer_format(venue, online_url)

    onsite = attempt(lambda: parse_int(values.get("capacity"), "capacity", "capacité"))
    remote = attempt(
        lambda: parse_int(values.get("remote_capacity"), "remote_capacity", "places à distance")
    )
    capacity, remote_capacity = split_capacities(fmt, onsite, remote, warnings)
    job_offers = attempt(
        lambda: parse_int(values.get("job_offers"), "job_offers", "nombre d'offres")
    )

    status = "scheduled"
    if "status" in values:
        key = normalise(values["status"])
        if key in _STATUSES:
            status = _STATUSES[key]
        elif key not in _SCHEDULED:
            warnings.append(f"statut « {values['status']} » inconnu, événement programmé")

    source_url = None
    if "source_url" in values:
        source_url = http_url(values["source_url"])
        if source_url is None:
            warnings.append(f"page de l'événement « {values['source_url']} » invalide, ignorée")

    raw_id = clean_text(values.get("external_id"))
    if errors or title is None or times is None:
        known_id = stable_id(raw_id) if raw_id else None
        return [RowError(line, e.field, e.reason, known_id) for e in errors]
    starts_at, ends_at = times
    return seal(
        ImportedEvent(
            line=line,
            external_id=stable_id(raw_id) if raw_id else derived_id(title, starts_at),
            title=title,
            description_html=as_html(values.get("description")),
            type=event_type,
            sectors=sectors,
            format=fmt,
            starts_at=starts_at,
            ends_at=ends_at,
            timezone=getattr(zone, "key", DEFAULT_TIMEZONE),
            venue=venue,
            online_url=online_url,
            capacity=capacity,
            remote_capacity=remote_capacity,
            registration_opens_at=opens_at,
            registration_closes_at=closes_at,
            job_offers=job_offers,
            status=status,
            source_url=source_url,
            organiser=clean_text(values.get("organiser")),
            warnings=tuple(warnings),
        )
    )
