"""The JSON API contract (spec section 7), declared once.

Every request and response shape of /api/v1 is a pydantic model here. The same models
validate what clients send (with French messages naming the field, see `french_error`),
serialise what the API answers, and give their JSON schemas to the OpenAPI document
(web/openapi.py). To add a field to an event's API output, add it to `EventOut` (its type and,
in `EventOut.of`, its value): the answer and the document follow.

Models stay at the edge: handlers turn them into plain values (`event_fields`, `person_of`,
`search_query`) before calling the domain.
"""

from __future__ import annotations

import functools
import math
import zoneinfo
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self, TypeVar
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError
from starlette.datastructures import QueryParams

from events_app.errors import InvalidInput
from events_app.events import (
    MAX_CAPACITY,
    MAX_DESCRIPTION,
    MAX_TITLE,
    parse_datetime,
)
from events_app.registrations import Person, normalise_email
from events_app.search import (
    DEFAULT_RADIUS_KM,
    MAX_RADIUS_KM,
    MIN_RADIUS_KM,
    RADIUS_RULE,
    SORTS,
    SearchQuery,
)
from events_app.vocab import (
    ATTENDANCE_MODES,
    EVENT_STATUSES,
    EVENT_TYPES,
    FORMATS,
    REGISTRATION_STATUSES,
    SECTORS,
)

ModelT = TypeVar("ModelT", bound=BaseModel)

# --- French messages ---------------------------------------------------------------------


def _fail(message: str) -> PydanticCustomError:
    """An error whose message is already the French one the client will read."""
    # Passed as context, never as the template: a value quoted in it may hold "{".
    return PydanticCustomError("fr", "{message}", {"message": message})


# Messages for pydantic's own error types; {field} is the field's path (venue.lat).
_MESSAGES: dict[str, str] = {
    "missing": "Le champ « {field} » est obligatoire.",
    "extra_forbidden": "Champ inconnu : « {field} ».",
    "string_type": "Le champ « {field} » doit être un texte.",
    "string_too_long": "Le champ « {field} » dépasse {max_length} caractères.",
    "string_pattern_mismatch": "Le champ « {field} » est vide.",
    "int_type": "Le champ « {field} » doit être un nombre entier.",
    "int_from_float": "Le champ « {field} » doit être un nombre entier.",
    "float_type": "Le champ « {field} » doit être un nombre.",
    "finite_number": "Le champ « {field} » doit être un nombre.",
    "bool_type": "Le champ « {field} » doit valoir true ou false.",
    "greater_than_equal": "Le champ « {field} » doit être supérieur ou égal à {ge}.",
    "less_than_equal": "Le champ « {field} » doit être inférieur ou égal à {le}.",
    "greater_than": "Le champ « {field} » doit être supérieur à {gt}.",
    "model_type": "Le champ « {field} » doit être un objet.",
    "model_attributes_type": "Le champ « {field} » doit être un objet.",
    "dict_type": "Le champ « {field} » doit être un objet.",
    "list_type": "Le champ « {field} » doit être une liste.",
    "too_short": "Le champ « {field} » ne peut pas être vide.",
    "too_long": "Le champ « {field} » contient trop de valeurs.",
}
# Where a field deserves better than the generic message (a person's own words).
_FIELD_MESSAGES: dict[tuple[str, str], str] = {
    ("sectors", "too_short"): "Indiquez au moins un secteur (liste de codes A à N, ou « all »).",
    ("sectors", "list_type"): "Indiquez au moins un secteur (liste de codes A à N, ou « all »).",
    ("sectors", "missing"): "Indiquez au moins un secteur (liste de codes A à N, ou « all »).",
    ("title", "string_pattern_mismatch"): "Le titre est obligatoire.",
    ("first_name", "missing"): "Indiquez votre prénom.",
    ("last_name", "missing"): "Indiquez votre nom.",
    ("email", "missing"): "Indiquez votre adresse e-mail.",
    ("frequency", "literal_error"): "La fréquence vaut immediate, daily ou weekly.",
}


def french_error(error: ValidationError, *, body: bool = True) -> InvalidInput:
    """The first error of a validation, as the InvalidInput the API answers (400, French)."""
    first = error.errors(include_url=False)[0]
    loc = [str(part) for part in first["loc"] if not isinstance(part, int)]
    kind = first["type"]
    if first.get("input", ...) is None and kind.endswith("_type"):
        kind = "missing"  # null, or a blank the model read as not given
    if kind.startswith("fr_"):
        # A rule across fields (model validator): it names the field it blames.
        loc, kind = [*loc, kind.removeprefix("fr_")], "fr"
    if not loc:
        return InvalidInput(
            "body" if body else "query", "Le corps de la requête doit être un objet JSON."
        )
    # A field's own validator ("fr") already wrote the person's message.
    field = ".".join(loc)
    ctx = first.get("ctx") or {}
    if kind == "fr":
        return InvalidInput(field, str(ctx["message"]))
    template = _FIELD_MESSAGES.get((field, kind)) or _MESSAGES.get(
        kind, "Valeur invalide pour « {field} »."
    )
    try:
        message = template.format(field=field, **ctx)
    except (KeyError, IndexError):
        message = f"Valeur invalide pour « {field} »."
    return InvalidInput(field, message)


def validate(model: type[ModelT], payload: Any) -> ModelT:
    """payload (already decoded JSON, or a form's values) checked against model."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise french_error(exc) from None


# --- reusable field types ----------------------------------------------------------------


def _no_nul(value: str) -> str:
    # PostgreSQL refuses NUL in text; no honest input contains one.
    if "\x00" in value:
        raise _fail("Ce texte contient un caractère interdit.")
    return value


def _one_of(vocab: Mapping[str, str], label: str) -> AfterValidator:
    """A string among the keys of a vocabulary (vocab.py stays the one list of values)."""

    def check(value: str) -> str:
        if value not in vocab:
            choices = ", ".join(vocab)
            raise _fail(f"{label} inconnu : « {value[:50]} ». Valeurs possibles : {choices}.")
        return value

    return AfterValidator(check)


def _enum(vocab: Mapping[str, str]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": list(vocab)})


def _parse_moment(value: Any, info: Any) -> datetime:
    try:
        # Without an offset it stays naive: the domain reads it in the event's time zone.
        return parse_datetime(value, info.field_name, tz=None)
    except InvalidInput as exc:
        raise _fail(exc.message) from None


def _web_address(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _fail("Ce champ doit être une adresse web (https://…).")
    return value.strip()


def _iso(value: datetime) -> str:
    return value.isoformat()


NoNul = AfterValidator(_no_nul)
EventType = Annotated[str, _one_of(EVENT_TYPES, "Type d'événement"), _enum(EVENT_TYPES)]
Format = Annotated[str, _one_of(FORMATS, "Format"), _enum(FORMATS)]
Sector = Annotated[str, _one_of(SECTORS, "Secteur"), _enum(SECTORS)]
Attendance = Annotated[
    str, _one_of(ATTENDANCE_MODES, "Mode de participation"), _enum(ATTENDANCE_MODES)
]
EventStatus = Annotated[str, _enum(EVENT_STATUSES)]
RegistrationStatus = Annotated[str, _enum(REGISTRATION_STATUSES)]
Title = Annotated[str, Field(max_length=MAX_TITLE, pattern=r"\S"), NoNul]
Sectors = Annotated[list[Sector], Field(min_length=1, max_length=len(SECTORS))]
InputMoment = Annotated[
    datetime,
    BeforeValidator(_parse_moment),
    Field(
        description="ISO 8601 ; sans décalage, l'heure du fuseau de l'événement (`timezone`). "
        "Années 2000 à 2100."
    ),
]


def _zone(value: str) -> str:
    if value not in _zone_names():
        raise _fail(
            f"Fuseau horaire inconnu : « {value[:64]} ». Indiquez un nom IANA, par exemple "
            "Europe/Paris ou America/Guadeloupe."
        )
    return value


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


TimeZone = Annotated[
    str,
    Field(max_length=64, json_schema_extra={"examples": ["Europe/Paris", "America/Guadeloupe"]}),
    AfterValidator(_zone),
]
Count = Annotated[int, Field(ge=0, le=MAX_CAPACITY, strict=True)]
# Answers write instants with their offset, as datetime.isoformat() does (+00:00, never Z).
Moment = Annotated[
    datetime,
    PlainSerializer(_iso, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def _no_null_defaults(schema: dict[str, Any]) -> None:
    # Optional fields default to "not sent": a null default would read as "null is sent".
    for prop in schema.get("properties", {}).values():
        if prop.get("default", ...) is None:
            del prop["default"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_no_null_defaults)


class _Output(BaseModel):
    # Answers are closed: a key the document does not list is a bug schemathesis finds.
    model_config = ConfigDict(extra="forbid")


# --- agency events (POST and PATCH /api/v1/agency/events) --------------------------------


class VenueIn(_Input):
    """Without coordinates, the commune or postal code give them."""

    name: Annotated[str, Field(max_length=300), NoNul] | None = None
    address: Annotated[str, Field(max_length=300), NoNul] | None = None
    postal_code: Annotated[str, Field(max_length=10), NoNul] | None = None
    city: Annotated[str, Field(max_length=300), NoNul] | None = None
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def both_coordinates(self) -> Self:
        if (self.lat is None) != (self.lon is None):
            raise PydanticCustomError(
                "fr_lat",
                "{message}",
                {"message": "Indiquez la latitude et la longitude, ou aucune des deux."},
            )
        return self


class EventPatch(_Input):
    """The fields to change, as at creation. Those sent may not be null unless they may be
    empty (a PATCH leaves a field out to keep it)."""

    title: Title = None  # type: ignore[assignment]
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION), NoNul] | None = Field(
        None, description="HTML : seules quelques balises sont gardées."
    )
    type: EventType = None  # type: ignore[assignment]
    sectors: Sectors = None  # type: ignore[assignment]
    format: Format = None  # type: ignore[assignment]
    starts_at: InputMoment = None  # type: ignore[assignment]
    ends_at: InputMoment = None  # type: ignore[assignment]
    venue: VenueIn | None = None
    online_url: (
        Annotated[
            str,
            Field(max_length=2000, json_schema_extra={"format": "uri"}),
            NoNul,
            AfterValidator(_web_address),
        ]
        | None
    ) = None
    capacity: Count | None = Field(
        None, description="Places (sur place pour un hybride) ; null : illimité."
    )
    remote_capacity: Count | None = Field(None, description="Places à distance (hybride).")
    waitlist: bool = True
    registration_opens_at: InputMoment | None = None
    registration_closes_at: InputMoment | None = None
    job_offers: Count | None = None
    accessibility_notes: Annotated[str, Field(max_length=2000), NoNul] | None = None
    timezone: TimeZone | None = Field(
        None,
        description="Fuseau horaire IANA de l'événement. Par défaut (ou null), celui du "
        "département d'outre-mer du lieu (971 America/Guadeloupe, 972 America/Martinique, "
        "973 America/Cayenne, 974 Indian/Reunion, 976 Indian/Mayotte…), sinon Europe/Paris.",
    )


class EventIn(EventPatch):
    title: Title
    type: EventType
    sectors: Sectors
    format: Format
    starts_at: InputMoment
    ends_at: InputMoment


def event_fields(payload: Any, *, partial: bool) -> dict[str, Any]:
    """An agency's event (JSON body or back-office form) as the plain values the domain takes:
    only the fields sent, with `venue` as a dict of its six keys. Raises InvalidInput."""
    try:
        model = (EventPatch if partial else EventIn).model_validate(payload)
    except ValidationError as exc:
        raise french_error(exc) from None
    fields = {name: getattr(model, name) for name in model.model_fields_set}
    if "venue" in fields:
        venue = fields["venue"]
        fields["venue"] = (
            dict.fromkeys(VenueIn.model_fields) if venue is None else dict(venue.__dict__)
        )
    if "sectors" in fields:
        fields["sectors"] = list(dict.fromkeys(fields["sectors"]))
    return fields


# --- registrations (POST /api/v1/events/{id}/registrations) ------------------------------


def _person_text(value: Any) -> Any:
    """Blanks collapsed; an empty text counts as missing."""
    if isinstance(value, str):
        value = " ".join(value.split())
        return value or None
    return value


def _email(value: str) -> str:
    try:
        email = validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise _fail("Adresse e-mail invalide (exemple : prenom.nom@exemple.fr).") from None
    return normalise_email(email)


def _phone(value: str) -> str:
    if not all(c.isdigit() or c in " +.-()" for c in value):
        raise _fail("Numéro de téléphone invalide (exemple : 06 12 34 56 78).")
    return value


PersonText = Annotated[
    str, BeforeValidator(_person_text), Field(max_length=100), AfterValidator(_no_nul)
]


class RegistrationIn(_Input):
    first_name: PersonText
    last_name: PersonText
    email: Annotated[
        str,
        BeforeValidator(_person_text),
        Field(max_length=254, json_schema_extra={"format": "email"}),
        AfterValidator(_no_nul),
        AfterValidator(_email),
    ]
    phone: (
        Annotated[
            str,
            BeforeValidator(_person_text),
            Field(max_length=30, pattern=r"^[0-9 +.()-]*$"),
            AfterValidator(_no_nul),
            AfterValidator(_phone),
        ]
        | None
    ) = None
    attendance: Attendance | None = Field(
        None, description="Obligatoire pour un événement hybride."
    )
    consent: Any = Field(None, description="Accepté et ignoré (le formulaire web l'exige).")


CONSENT_YES = (True, "on", "true", "1", "oui")


def person_of(payload: Any, *, require_consent: bool = False) -> Person:
    """A registrant (JSON body or the page's form) as the domain's Person. Raises InvalidInput."""
    model = validate(RegistrationIn, payload)
    if require_consent and model.consent not in CONSENT_YES:
        raise InvalidInput(
            "consent", "Vous devez accepter le traitement de vos données pour vous inscrire."
        )
    return Person(
        first_name=model.first_name,
        last_name=model.last_name,
        email=model.email,
        phone=model.phone,
        attendance=model.attendance,
    )


# --- search query (GET /api/v1/events, the pages and the feeds) --------------------------

TRUE = {"1", "true", "yes", "on", "oui"}
FALSE = {"0", "false", "no", "off", "non", ""}
MIN_YEAR, MAX_YEAR = 1900, 2999


def _blank_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _split(value: Any) -> Any:
    """Repeated parameters, each perhaps comma-separated, without blanks or repeats."""
    if not isinstance(value, list):
        return value
    items = [item.strip() for raw in value for item in str(raw).split(",")]
    return list(dict.fromkeys(item for item in items if item))


def _radius(value: Any) -> Any:
    if value is None:
        return float(DEFAULT_RADIUS_KM)
    try:
        radius = float(str(value).replace(",", "."))
    except ValueError:
        raise _fail("Le rayon doit être un nombre de kilomètres.") from None
    if not math.isfinite(radius) or not MIN_RADIUS_KM <= radius <= MAX_RADIUS_KM:
        raise _fail(RADIUS_RULE)
    return radius


def _sort(value: Any) -> Any:
    if value is None:
        return "distance"
    if value not in SORTS:
        raise _fail("Le tri vaut « distance » ou « date ».")
    return value


def _limit(value: Any) -> Any:
    if value is None:
        return None
    text = str(value)
    # isdigit() alone lets "²" and other Unicode digits through to int(), which refuses them.
    if not (text.isascii() and text.isdigit() and len(text) <= 3) or not 1 <= int(text) <= 100:
        raise _fail("Le paramètre « limit » doit être un entier de 1 à 100.")
    return int(text)


def _available(value: Any) -> Any:
    text = (value or "").lower()
    if text not in TRUE | FALSE:
        raise _fail("Le paramètre « available » vaut true ou false.")
    return text in TRUE


def _day(value: Any, info: Any) -> Any:
    if value is None:
        return None
    name = info.field_name.rstrip("_")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise _fail(f"Date invalide pour « {name} » : attendu AAAA-MM-JJ.") from None
    # Year 1 or 9999 would overflow once turned into an instant in Paris (then UTC).
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise _fail(f"Date hors limites pour « {name} » : de {MIN_YEAR} à {MAX_YEAR}.")
    return day


def _query_text(max_length: int) -> BeforeValidator:
    def check(value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) > max_length:
            raise _fail(f"Ce paramètre dépasse {max_length} caractères.")
        if "\x00" in value:
            raise _fail("Ce paramètre contient un caractère interdit.")
        return value

    return BeforeValidator(check)


# Validators listed last run first: blanks become "not sent", then the checks.
Blank = BeforeValidator(_blank_none)
Split = BeforeValidator(_split)
QueryText200 = Annotated[str | None, Field(max_length=200), _query_text(200), Blank]
Day = Annotated[date | None, BeforeValidator(_day), Blank]
Limit = Annotated[
    int,
    Field(ge=1, le=100, description="Taille de la page (1 à 100 ; sinon 400)."),
    BeforeValidator(_limit),
    Blank,
]
Cursor = Annotated[
    str | None,
    Field(max_length=500, description="Le `next_cursor` de la page précédente."),
    _query_text(500),
    Blank,
]
REPEATABLE = " Répétable, ou valeurs séparées par des virgules."


class PageParams(BaseModel):
    """Paging of every list (`limit`, `cursor`)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    limit: Limit = 20
    cursor: Cursor = None


class SearchParams(PageParams):
    """The filters of GET /api/v1/events (also read by the pages and /calendar.ics).
    Unknown parameters are ignored."""

    q: QueryText200 = Field(
        None, description="Texte libre (titre, lieu, commune) ; tous les mots doivent y être."
    )
    near: QueryText200 = Field(
        None, description="Commune, code postal, département ou « lat,lon » ; inconnu : 400."
    )
    radius_km: Annotated[
        float, Field(ge=MIN_RADIUS_KM, le=MAX_RADIUS_KM), BeforeValidator(_radius), Blank
    ] = float(DEFAULT_RADIUS_KM)
    sort: Annotated[
        Literal["distance", "date"],
        WithJsonSchema({"type": "string", "enum": list(SORTS)}),
        BeforeValidator(_sort),
        Blank,
    ] = Field("distance", description="Avec « near » : « distance » (par défaut) ou « date ».")
    sector: Annotated[list[Sector], Split] = Field(
        default_factory=list, description="Secteur (codes ROME A à N)." + REPEATABLE
    )
    type: Annotated[list[EventType], Split] = Field(
        default_factory=list, description="Type d'événement." + REPEATABLE
    )
    format: Annotated[list[Format], Split] = Field(
        default_factory=list, description="Format." + REPEATABLE
    )
    from_: Day = Field(
        None,
        alias="from",
        description="Premier jour (Europe/Paris). Sans lui : ce qui n'est pas fini.",
    )
    to: Day = Field(None, description="Dernier jour, inclus (Europe/Paris).")
    available: Annotated[bool, BeforeValidator(_available)] = Field(
        False, description="Seulement les événements où il reste des places."
    )
    agency: Annotated[str | None, Field(max_length=80), _query_text(80), Blank] = Field(
        None, description="L'identifiant (slug) d'un organisme ; inconnu : 400."
    )

    @model_validator(mode="after")
    def ordered_days(self) -> Self:
        if self.from_ and self.to and self.from_ > self.to:
            message = "La date de début doit précéder la date de fin."
            raise PydanticCustomError("fr_from", "{message}", {"message": message})
        return self


def _query_values(model: type[BaseModel], params: QueryParams) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in params:
            many = name in ("sector", "type", "format")
            values[key] = params.getlist(key) if many else params[key]
    return values


def search_query(params: QueryParams, *, default_limit: int = 20) -> SearchQuery:
    """Every filter of GET /api/v1/events as the domain's SearchQuery. Raises InvalidInput
    naming the parameter."""
    try:
        model = SearchParams.model_validate(_query_values(SearchParams, params))
    except ValidationError as exc:
        raise french_error(exc, body=False) from None
    return SearchQuery(
        q=model.q,
        near=model.near,
        radius_km=model.radius_km,
        sectors=tuple(model.sector),
        types=tuple(model.type),
        formats=tuple(model.format),
        date_from=model.from_,
        date_to=model.to,
        available=model.available,
        agency=model.agency,
        limit=model.limit if "limit" in model.model_fields_set else default_limit,
        cursor=model.cursor,
        sort=model.sort,
    )


class CancelParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message: Annotated[str | None, Field(max_length=2000), _query_text(2000)] = Field(
        None, description="Un mot pour les inscrits."
    )


def cancel_message(params: QueryParams) -> str | None:
    try:
        return CancelParams.model_validate(_query_values(CancelParams, params)).message
    except ValidationError as exc:
        raise french_error(exc, body=False) from None


# --- the day of the event (SPEC §12): check-in and the agency's figures -------------------


class CheckinIn(_Input):
    code: Annotated[str, Field(min_length=1, max_length=64), NoNul] = Field(
        description="Le code d'entrée lu sur le QR code ou tapé (espaces, tirets et casse "
        "indifférents)."
    )


class CheckinOut(_Output):
    registration_id: int
    first_name: str
    last_name: str
    attended: Literal[True]
    already: bool = Field(description="true : la personne était déjà pointée.")
    checked_in_at: Moment = Field(description="Le premier pointage.")
    checked_in_by: str | None = Field(description="Qui l'a pointée.")


class StatsParams(BaseModel):
    """GET /api/v1/agency/stats: the events starting within these Paris days."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    from_: Day = Field(None, alias="from", description="Premier jour (Europe/Paris).")
    to: Day = Field(None, description="Dernier jour, inclus (Europe/Paris).")

    @model_validator(mode="after")
    def ordered_days(self) -> Self:
        if self.from_ and self.to and self.from_ > self.to:
            message = "La date de début doit précéder la date de fin."
            raise PydanticCustomError("fr_from", "{message}", {"message": message})
        return self


def stats_days(params: QueryParams) -> tuple[date | None, date | None]:
    try:
        model = StatsParams.model_validate(_query_values(StatsParams, params))
    except ValidationError as exc:
        raise french_error(exc, body=False) from None
    return model.from_, model.to


class StatsFiguresOut(_Output):
    events: int = Field(description="Événements non annulés.")
    seats: int = Field(description="Places offertes (sur place et à distance ; sans limite : 0).")
    registrations: int = Field(description="Personnes ayant une place (ni attente, ni annulées).")
    attended: int = Field(description="Personnes pointées présentes.")
    no_shows: int = Field(description="Personnes ayant une place, non présentes, événement fini.")
    fill_rate: float | None = Field(
        ge=0, description="Places prises / places offertes (0 à 1) ; null sans places limitées."
    )

    @classmethod
    def of(cls, figures: Any, **extra: Any) -> Self:
        return cls.model_construct(
            **extra,
            events=figures.events,
            seats=figures.seats,
            registrations=figures.registrations,
            attended=figures.attended,
            no_shows=figures.no_shows,
            fill_rate=figures.fill_rate,
        )


class StatsTypeOut(StatsFiguresOut):
    type: EventType
    label: str


class StatsMonthOut(StatsFiguresOut):
    month: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}$", description="AAAA-MM, à Paris.")


class StatsOut(_Output):
    totals: StatsFiguresOut
    by_type: list[StatsTypeOut]
    by_month: list[StatsMonthOut] = Field(description="Chaque mois du premier au dernier.")


# --- alerts (POST /api/v1/alerts): the shape here; the rules (a known place…) in alerts.py -----

AlertList = Annotated[list[str], Field(max_length=20)]


class AlertIn(_Input):
    email: Annotated[str, Field(max_length=254, json_schema_extra={"format": "email"}), NoNul]
    q: Annotated[str, Field(max_length=200), NoNul] | None = None
    near: Annotated[str, Field(max_length=200), NoNul] | None = None
    radius_km: (
        Annotated[float, Field(ge=MIN_RADIUS_KM, le=MAX_RADIUS_KM, allow_inf_nan=False)] | None
    ) = None
    sector: Annotated[list[Sector], Field(max_length=20)] = Field(default_factory=list)
    type: Annotated[list[EventType], Field(max_length=20)] = Field(default_factory=list)
    format: Annotated[list[Format], Field(max_length=20)] = Field(default_factory=list)
    frequency: Literal["immediate", "daily", "weekly"] = "daily"


class AlertCreatedOut(_Output):
    id: int
    status: Literal["pending_confirmation", "active"]


class PlacesParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # Read leniently (cut, NUL dropped) by the handler: an autocomplete never refuses a key.
    q: str | None = Field(
        None,
        max_length=100,
        description="Le début d'un nom, d'un code postal ou d'un numéro de département.",
    )


class PlaceSuggestionOut(_Output):
    label: str
    kind: Literal["commune", "postal_code", "department"]
    value: str


class PlacesOut(_Output):
    items: list[PlaceSuggestionOut]


class ErrorDetail(_Output):
    code: str = Field(
        description="invalid, unauthorized, not_found, conflict, full, registration_closed, "
        "rate_limited, unavailable, unsupported_media_type, too_large…"
    )
    message: str = Field(description="Message en français.")
    field: str | None = Field(description="Le paramètre ou le champ en cause (venue.lat…).")


class ErrorOut(_Output):
    error: ErrorDetail


class HealthOut(_Output):
    status: Literal["ok"]


def dump(model: BaseModel) -> bytes:
    """JSON bytes of an answer. Fields never given (distance_km without `near`, place) are
    left out; every other field is always there, null or not."""
    return model.model_dump_json(exclude_unset=True).encode()
