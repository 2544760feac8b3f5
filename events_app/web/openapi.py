"""The OpenAPI 3.1 document of /api/v1, written out so that it is exactly the contract.

Response schemas are closed (`additionalProperties: false`) and list every key the serializers
always emit as required: tests/test_schemathesis.py checks every answer of the API against this
document, so a field added, renamed or dropped in web/serializers.py must be written here too.
"""

from __future__ import annotations

from typing import Any

from events_app.events import MAX_CAPACITY, MAX_DESCRIPTION, MAX_TITLE
from events_app.search import DEFAULT_RADIUS_KM, MAX_RADIUS_KM, MIN_RADIUS_KM, SORTS
from events_app.settings import Settings
from events_app.vocab import (
    ATTENDANCE_MODES,
    EVENT_STATUSES,
    EVENT_TYPES,
    FORMATS,
    REGISTRATION_STATUSES,
    SECTORS,
)
from events_app.web.common import MAX_DB_ID

_STR = {"type": "string"}
_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_NUM = {"type": ["number", "null"]}
_DATETIME = {"type": "string", "format": "date-time"}
_NULLABLE_DATETIME = {"type": ["string", "null"], "format": "date-time"}
# Text that must hold something other than blanks (it is stripped before use).
_NOT_BLANK = r"\S"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _closed(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object with exactly these keys; all required but the optional ones."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }


_ERROR = _closed(
    {
        "error": _closed(
            {
                "code": {
                    "type": "string",
                    "description": "invalid, unauthorized, not_found, conflict, full, "
                    "registration_closed, rate_limited, unavailable…",
                },
                "message": {"type": "string", "description": "Message en français."},
                "field": {
                    "type": ["string", "null"],
                    "description": "Le paramètre ou le champ en cause (venue.lat…).",
                },
            }
        )
    }
)

_HEADERS = {
    "RetryAfter": {
        "description": "Secondes à attendre avant de réessayer.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "Location": {"description": "L'adresse de l'événement créé.", "schema": _STR},
}


def _error(description: str, *, retry: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    if retry:
        response["headers"] = {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}
    return response


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


_BAD_REQUEST = _error("Paramètre ou champ invalide (le champ en cause est nommé)")
_UNAUTHORIZED = _error("Jeton absent ou invalide")
_UNAVAILABLE = _error("Base de données momentanément indisponible", retry=True)


_VENUE = _closed(
    {
        "name": _NULLABLE_STR,
        "address": _NULLABLE_STR,
        "postal_code": _NULLABLE_STR,
        "city": _NULLABLE_STR,
        "lat": _NULLABLE_NUM,
        "lon": _NULLABLE_NUM,
    }
)

_EVENT_PROPERTIES: dict[str, Any] = {
    "id": {"type": "integer"},
    "title": _STR,
    "type": {"type": "string", "enum": list(EVENT_TYPES)},
    "sectors": {"type": "array", "items": {"type": "string", "enum": list(SECTORS)}},
    "format": {"type": "string", "enum": list(FORMATS)},
    "starts_at": _DATETIME,
    "ends_at": _DATETIME,
    "timezone": _STR,
    "venue": _ref("Venue"),
    "online_url": _NULLABLE_STR,
    "agency": _closed({"id": {"type": "integer"}, "name": _STR, "slug": _STR}),
    "capacity": {**_NULLABLE_INT, "description": "Places sur place (null : illimité)."},
    "remote_capacity": {**_NULLABLE_INT, "description": "Places à distance (hybride)."},
    "seats_left": _NULLABLE_INT,
    "remote_seats_left": _NULLABLE_INT,
    "waitlist": {"type": "boolean"},
    "registration_open": {"type": "boolean"},
    "registration_closed_reason": _NULLABLE_STR,
    "registration_opens_at": _NULLABLE_DATETIME,
    "registration_closes_at": _NULLABLE_DATETIME,
    "job_offers": _NULLABLE_INT,
    "status": {"type": "string", "enum": list(EVENT_STATUSES)},
    "revision": {"type": "integer", "minimum": 1},
    "distance_km": {**_NULLABLE_NUM, "description": "Avec `near` seulement (null : en ligne)."},
    "url": _STR,
    "ics_url": _STR,
    "duplicates": {
        "type": "array",
        "description": "Le même événement publié par d'autres organismes (une seule fois en "
        "recherche ; chaque copie garde sa page et ses inscriptions).",
        "items": _closed(
            {
                "id": {"type": "integer"},
                "agency": _closed({"id": {"type": "integer"}, "name": _STR}),
            }
        ),
    },
}
_EVENT = _closed(_EVENT_PROPERTIES, optional=("distance_km",))
_EVENT_DETAIL = _closed(
    {
        **{k: v for k, v in _EVENT_PROPERTIES.items() if k != "distance_km"},
        "description": {"type": "string", "description": "HTML nettoyé."},
        "accessibility_notes": _NULLABLE_STR,
    }
)

_PLACE = _closed(
    {
        "label": _STR,
        "kind": {"type": "string", "enum": ["commune", "postal_code", "department", "coordinates"]},
        "lat": {"type": "number"},
        "lon": {"type": "number"},
        "insee": _NULLABLE_STR,
    }
)


def _page(item: str, *, optional: dict[str, Any] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "items": {"type": "array", "items": _ref(item)},
        "next_cursor": {
            **_NULLABLE_STR,
            "description": "À passer en `cursor` pour la page suivante ; null à la fin.",
        },
        **(optional or {}),
    }
    return _closed(properties, optional=tuple(optional or ()))


_INPUT_DATETIME = {
    "type": "string",
    "format": "date-time",
    "description": "ISO 8601 ; sans décalage, l'heure de Paris. Années 2000 à 2100.",
}
_COUNT = {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_CAPACITY}
_EVENT_INPUT_PROPERTIES: dict[str, Any] = {
    "title": {"type": "string", "maxLength": MAX_TITLE, "pattern": _NOT_BLANK},
    "description": {
        "type": ["string", "null"],
        "maxLength": MAX_DESCRIPTION,
        "description": "HTML : seules quelques balises sont gardées.",
    },
    "type": {"type": "string", "enum": list(EVENT_TYPES)},
    "sectors": {
        "type": "array",
        "minItems": 1,
        "items": {"type": "string", "enum": list(SECTORS)},
    },
    "format": {"type": "string", "enum": list(FORMATS)},
    "starts_at": _INPUT_DATETIME,
    "ends_at": _INPUT_DATETIME,
    "venue": {
        "type": ["object", "null"],
        "additionalProperties": False,
        "description": "Sans coordonnées, la commune ou le code postal les donnent.",
        "properties": {
            "name": {"type": ["string", "null"], "maxLength": 300},
            "address": {"type": ["string", "null"], "maxLength": 300},
            "postal_code": {"type": ["string", "null"], "maxLength": 10},
            "city": {"type": ["string", "null"], "maxLength": 300},
            "lat": {"type": ["number", "null"], "minimum": -90, "maximum": 90},
            "lon": {"type": ["number", "null"], "minimum": -180, "maximum": 180},
        },
    },
    "online_url": {"type": ["string", "null"], "format": "uri", "maxLength": 2000},
    "capacity": {**_COUNT, "description": "Places (sur place pour un hybride) ; null : illimité."},
    "remote_capacity": {**_COUNT, "description": "Places à distance (hybride seulement)."},
    "waitlist": {"type": "boolean", "default": True},
    "registration_opens_at": {**_INPUT_DATETIME, "type": ["string", "null"]},
    "registration_closes_at": {**_INPUT_DATETIME, "type": ["string", "null"]},
    "job_offers": _COUNT,
    "accessibility_notes": {"type": ["string", "null"], "maxLength": 2000},
}
_EVENT_INPUT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "type", "sectors", "format", "starts_at", "ends_at"],
    "properties": _EVENT_INPUT_PROPERTIES,
}
_EVENT_PATCH = {
    "type": "object",
    "additionalProperties": False,
    "description": "Les champs à changer, comme à la création.",
    "properties": _EVENT_INPUT_PROPERTIES,
}

_PERSON_TEXT = {"type": "string", "maxLength": 100, "pattern": _NOT_BLANK}
_REGISTRATION_INPUT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["first_name", "last_name", "email"],
    "properties": {
        "first_name": _PERSON_TEXT,
        "last_name": _PERSON_TEXT,
        "email": {"type": "string", "format": "email", "maxLength": 254},
        "phone": {"type": ["string", "null"], "maxLength": 30, "pattern": r"^[0-9 +.()-]*$"},
        "attendance": {
            "type": ["string", "null"],
            "enum": [*ATTENDANCE_MODES, None],
            "description": "Obligatoire pour un événement hybride.",
        },
        "consent": {"description": "Accepté et ignoré (le formulaire web l'exige)."},
    },
}

_ALERT_LIST = {"type": "array", "maxItems": 20}
_ALERT_INPUT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["email"],
    "properties": {
        "email": {"type": "string", "format": "email", "maxLength": 254},
        "q": {"type": ["string", "null"], "maxLength": 200},
        "near": {"type": ["string", "null"], "maxLength": 200},
        "radius_km": {
            "type": ["number", "null"],
            "minimum": MIN_RADIUS_KM,
            "maximum": MAX_RADIUS_KM,
        },
        "sector": {**_ALERT_LIST, "items": {"type": "string", "enum": list(SECTORS)}},
        "type": {**_ALERT_LIST, "items": {"type": "string", "enum": list(EVENT_TYPES)}},
        "format": {**_ALERT_LIST, "items": {"type": "string", "enum": list(FORMATS)}},
        "frequency": {
            "type": "string",
            "enum": ["immediate", "daily", "weekly"],
            "default": "daily",
        },
    },
}

_REGISTRATION = _closed(
    {
        "id": {"type": "integer"},
        "event_id": {"type": "integer"},
        "status": {"type": "string", "enum": list(REGISTRATION_STATUSES)},
        "waitlist_position": {**_NULLABLE_INT, "minimum": 1},
        "attendance": {"type": "string", "enum": list(ATTENDANCE_MODES)},
        "first_name": _STR,
        "last_name": _STR,
        "email": _STR,
        "phone": _NULLABLE_STR,
        "created_at": _DATETIME,
        "cancelled_at": _NULLABLE_DATETIME,
        "manage_url": {
            **_NULLABLE_STR,
            "description": "La page de la personne (null quand l'inscription existait déjà).",
        },
        "cancel_url": {**_NULLABLE_STR, "description": "POST sur cette adresse : annule."},
        "event": _ref("Event"),
        "message": {"type": "string", "description": "Quand l'inscription existait déjà."},
    },
    optional=("message",),
)

_REGISTRANT = _closed(
    {
        "id": {"type": "integer"},
        "first_name": _STR,
        "last_name": _STR,
        "email": _STR,
        "phone": _NULLABLE_STR,
        "attendance": {"type": "string", "enum": list(ATTENDANCE_MODES)},
        "status": {"type": "string", "enum": list(REGISTRATION_STATUSES)},
        "waitlist_position": {**_NULLABLE_INT, "minimum": 1},
        "created_at": _DATETIME,
    }
)


def _multi(name: str, values: list[str], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description + " Répétable, ou valeurs séparées par des virgules.",
        "style": "form",
        "explode": True,
        "schema": {"type": "array", "items": {"type": "string", "enum": values}},
    }


_LIMIT = {
    "name": "limit",
    "in": "query",
    "description": "Taille de la page (1 à 100 ; sinon 400).",
    "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
}
_CURSOR = {
    "name": "cursor",
    "in": "query",
    "description": "Le `next_cursor` de la page précédente.",
    "schema": {"type": "string", "maxLength": 500},
}
_SEARCH_PARAMS: list[dict[str, Any]] = [
    {
        "name": "q",
        "in": "query",
        "schema": {"type": "string", "maxLength": 200},
        "description": "Texte libre (titre, lieu, commune) ; tous les mots doivent y être.",
    },
    {
        "name": "near",
        "in": "query",
        "schema": {"type": "string", "maxLength": 200},
        "description": "Commune, code postal, département ou « lat,lon » ; inconnu : 400.",
    },
    {
        "name": "radius_km",
        "in": "query",
        "schema": {
            "type": "number",
            "minimum": MIN_RADIUS_KM,
            "maximum": MAX_RADIUS_KM,
            "default": DEFAULT_RADIUS_KM,
        },
    },
    {
        "name": "sort",
        "in": "query",
        "description": "Avec « near » : « distance » (par défaut) ou « date ».",
        "schema": {"type": "string", "enum": list(SORTS), "default": "distance"},
    },
    _multi("sector", list(SECTORS), "Secteur (codes ROME A à N)."),
    _multi("type", list(EVENT_TYPES), "Type d'événement."),
    _multi("format", list(FORMATS), "Format."),
    {
        "name": "from",
        "in": "query",
        "description": "Premier jour (Europe/Paris). Sans lui : ce qui n'est pas fini.",
        "schema": {"type": "string", "format": "date"},
    },
    {
        "name": "to",
        "in": "query",
        "description": "Dernier jour, inclus (Europe/Paris).",
        "schema": {"type": "string", "format": "date"},
    },
    {
        "name": "available",
        "in": "query",
        "description": "Seulement les événements où il reste des places.",
        "schema": {"type": "boolean", "default": False},
    },
    {
        "name": "agency",
        "in": "query",
        "description": "L'identifiant (slug) d'un organisme ; inconnu : 400.",
        "schema": {"type": "string", "maxLength": 80},
    },
    _LIMIT,
    _CURSOR,
]
_PAGE_PARAMS = [_LIMIT, _CURSOR]
_ID_PARAM = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "Identifiant de l'événement ; inconnu ou mal formé : 404.",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DB_ID},
}
_TOKEN_PARAM = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "Le jeton secret de l'inscription (dans `manage_url`) ; inconnu : 404.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


_ONSITE_EXAMPLE = {
    "title": "Job dating logistique",
    "description": "<p>Rencontrez des recruteurs de la logistique.</p>",
    "type": "job_dating",
    "sectors": ["N"],
    "format": "onsite",
    "starts_at": "2030-12-10T09:30:00+01:00",
    "ends_at": "2030-12-10T12:30:00+01:00",
    "venue": {
        "name": "Agence France Travail",
        "address": "1 place Jean-Jaurès",
        "postal_code": "93100",
        "city": "Montreuil",
    },
    "capacity": 30,
    "waitlist": True,
    "registration_closes_at": "2030-12-09T18:00:00+01:00",
    "job_offers": 12,
}
_EXAMPLES: dict[str, dict[str, Any]] = {
    "AlertInput": {
        "near": {
            "summary": "Les job datings du commerce autour de Lyon, chaque semaine",
            "value": {
                "email": "zoe.lefevre@example.org",
                "near": "Lyon",
                "radius_km": 20,
                "sector": ["G"],
                "type": ["job_dating"],
                "frequency": "weekly",
            },
        },
    },
    "EventInput": {
        "onsite": {"summary": "Sur place", "value": _ONSITE_EXAMPLE},
        "online": {
            "summary": "En ligne",
            "value": {
                "title": "Salon en ligne de la santé",
                "type": "online_fair",
                "sectors": ["J"],
                "format": "online",
                "starts_at": "2030-11-04T14:00:00+01:00",
                "ends_at": "2030-11-04T17:00:00+01:00",
                "online_url": "https://visio.example.org/salon-sante",
                "capacity": None,
            },
        },
        "hybrid": {
            "summary": "Hybride",
            "value": {
                **_ONSITE_EXAMPLE,
                "format": "hybrid",
                "online_url": "https://visio.example.org/job-dating",
                "remote_capacity": 10,
            },
        },
    },
    "EventPatch": {
        "title": {"summary": "Le titre", "value": {"title": "Job dating transport"}},
        "capacity": {"summary": "La capacité", "value": {"capacity": 40}},
        "moved": {
            "summary": "Déplacé (les inscrits sont prévenus)",
            "value": {
                "starts_at": "2030-12-11T09:30:00+01:00",
                "ends_at": "2030-12-11T12:30:00+01:00",
                "venue": {"name": "Mairie", "postal_code": "69003", "city": "Lyon"},
            },
        },
    },
    "RegistrationInput": {
        "person": {
            "summary": "Une personne",
            "value": {
                "first_name": "Zoé",
                "last_name": "Lefèvre",
                "email": "zoe.lefevre@example.org",
                "phone": "06 12 34 56 78",
            },
        },
        "hybrid": {
            "summary": "À distance, pour un événement hybride",
            "value": {
                "first_name": "Karim",
                "last_name": "Benali",
                "email": "karim.benali@example.org",
                "attendance": "remote",
            },
        },
    },
}


def _body(schema: str) -> dict[str, Any]:
    media = {"schema": _ref(schema), "examples": _EXAMPLES[schema]}
    return {"required": True, "content": {"application/json": media}}


def _with_body_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Every operation that reads a body may answer 413 (over 1 MB) and 415 (not JSON)."""
    for operations in document["paths"].values():
        for operation in operations.values():
            if "requestBody" in operation:
                operation["responses"].setdefault("413", _error("Corps de plus de 1 Mo"))
                operation["responses"].setdefault(
                    "415", _error("Corps d'un autre type que application/json")
                )
    return document


def openapi_document(settings: Settings) -> dict[str, Any]:
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Événements emploi",
            "version": "1.0.0",
            "description": 'Erreurs : `{"error": {"code", "message", "field"}}`.',
        },
        "servers": [{"url": settings.base_url}],
        "paths": {
            "/api/v1/events": {
                "get": {
                    "operationId": "searchEvents",
                    "summary": "Rechercher des événements",
                    "description": "Par date ; avec `near`, par distance puis les événements en "
                    "ligne par date.",
                    "parameters": _SEARCH_PARAMS,
                    "responses": {
                        "200": _json("SearchPage", "Une page de résultats"),
                        "400": _BAD_REQUEST,
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/api/v1/events/{id}": {
                "get": {
                    "operationId": "getEvent",
                    "summary": "Un événement",
                    "parameters": [_ID_PARAM],
                    "responses": {
                        "200": _json("EventDetail", "L'événement"),
                        "404": _error("Événement inconnu"),
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/api/v1/events/{id}/registrations": {
                "post": {
                    "operationId": "register",
                    "summary": "S'inscrire",
                    "parameters": [_ID_PARAM],
                    "requestBody": _body("RegistrationInput"),
                    "responses": {
                        "201": _json(
                            "Registration", "Inscrit·e (confirmé·e ou en liste d'attente)"
                        ),
                        "200": _json(
                            "AlreadyRegistered",
                            "Cette adresse est déjà inscrite : rien n'est dévoilé, le lien est "
                            "renvoyé à l'adresse (au plus une fois par 10 minutes)",
                        ),
                        "400": _BAD_REQUEST,
                        "404": _error("Événement inconnu"),
                        "409": _error("Inscriptions fermées, événement annulé, passé ou complet"),
                        "429": _error("Trop de demandes", retry=True),
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/api/v1/alerts": {
                "post": {
                    "operationId": "createAlert",
                    "summary": "Créer une alerte : les nouveaux événements de cette recherche par "
                    "e-mail (un lien de confirmation est d'abord envoyé)",
                    "requestBody": _body("AlertInput"),
                    "responses": {
                        "202": _json("AlertCreated", "Alerte enregistrée"),
                        "400": _BAD_REQUEST,
                        "429": _error("Trop de demandes", retry=True),
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/api/v1/registrations/{token}": {
                "get": {
                    "operationId": "getRegistration",
                    "summary": "Une inscription, par son jeton secret",
                    "parameters": [_TOKEN_PARAM],
                    "responses": {
                        "200": _json("Registration", "L'inscription"),
                        "404": _error("Inscription inconnue"),
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/api/v1/registrations/{token}/cancel": {
                "post": {
                    "operationId": "cancelRegistration",
                    "summary": "Annuler une inscription (sans effet si elle l'est déjà)",
                    "parameters": [_TOKEN_PARAM],
                    "responses": {
                        "200": _json("Registration", "L'inscription, annulée"),
                        "404": _error("Inscription inconnue"),
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/api/v1/agency/events": {
                "get": {
                    "operationId": "listAgencyEvents",
                    "summary": "Les événements de l'organisme (passés et annulés compris)",
                    "security": _BEARER,
                    "parameters": _PAGE_PARAMS,
                    "responses": {
                        "200": _json("EventPage", "Une page, par date"),
                        "400": _BAD_REQUEST,
                        "401": _UNAUTHORIZED,
                        "503": _UNAVAILABLE,
                    },
                },
                "post": {
                    "operationId": "createAgencyEvent",
                    "summary": "Publier un événement",
                    "security": _BEARER,
                    "requestBody": _body("EventInput"),
                    "responses": {
                        "201": {
                            **_json("EventDetail", "L'événement créé"),
                            "headers": {"Location": {"$ref": "#/components/headers/Location"}},
                        },
                        "400": _BAD_REQUEST,
                        "401": _UNAUTHORIZED,
                        "503": _UNAVAILABLE,
                    },
                },
            },
            "/api/v1/agency/events/{id}": {
                "get": {
                    "operationId": "getAgencyEvent",
                    "summary": "Un événement de l'organisme",
                    "security": _BEARER,
                    "parameters": [_ID_PARAM],
                    "responses": {
                        "200": _json("EventDetail", "L'événement"),
                        "401": _UNAUTHORIZED,
                        "404": _error("Événement inconnu ou d'un autre organisme"),
                        "503": _UNAVAILABLE,
                    },
                },
                "patch": {
                    "operationId": "updateAgencyEvent",
                    "summary": "Modifier un événement (les inscrits sont prévenus d'un changement "
                    "de date ou de lieu)",
                    "security": _BEARER,
                    "parameters": [_ID_PARAM],
                    "requestBody": _body("EventPatch"),
                    "responses": {
                        "200": _json("EventDetail", "L'événement modifié"),
                        "400": _BAD_REQUEST,
                        "401": _UNAUTHORIZED,
                        "404": _error("Événement inconnu ou d'un autre organisme"),
                        "503": _UNAVAILABLE,
                    },
                },
                "delete": {
                    "operationId": "cancelAgencyEvent",
                    "summary": "Annuler un événement (il reste visible, annulé ; les inscrits "
                    "sont prévenus)",
                    "security": _BEARER,
                    "parameters": [
                        _ID_PARAM,
                        {
                            "name": "message",
                            "in": "query",
                            "description": "Un mot pour les inscrits.",
                            "schema": {"type": "string", "maxLength": 2000},
                        },
                    ],
                    "responses": {
                        "200": _json("EventDetail", "L'événement, annulé"),
                        "400": _BAD_REQUEST,
                        "401": _UNAUTHORIZED,
                        "404": _error("Événement inconnu ou d'un autre organisme"),
                        "503": _UNAVAILABLE,
                    },
                },
            },
            "/api/v1/agency/events/{id}/registrations": {
                "get": {
                    "operationId": "listRegistrants",
                    "summary": "Les inscrits, par ordre d'inscription (CSV avec Accept: text/csv)",
                    "security": _BEARER,
                    "parameters": [_ID_PARAM, *_PAGE_PARAMS],
                    "responses": {
                        "200": {
                            "description": "Une page d'inscrits, ou tous en CSV (Excel : « ; », "
                            "UTF-8 avec BOM)",
                            "content": {
                                "application/json": {"schema": _ref("RegistrantPage")},
                                "text/csv": {"schema": {"type": "string"}},
                            },
                        },
                        "400": _BAD_REQUEST,
                        "401": _UNAUTHORIZED,
                        "404": _error("Événement inconnu ou d'un autre organisme"),
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/api/v1/places": {
                "get": {
                    "operationId": "suggestPlaces",
                    "summary": "Lieux commençant par ce qui est tapé (communes, codes postaux, "
                    "départements), pour compléter le champ « near »",
                    "parameters": [
                        {
                            "name": "q",
                            "in": "query",
                            "description": "Le début d'un nom, d'un code postal ou d'un "
                            "numéro de département.",
                            "schema": {"type": "string", "maxLength": 100},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "Au plus dix lieux ; « value » se donne tel quel à "
                            "« near »",
                            "content": {
                                "application/json": {
                                    "schema": _closed(
                                        {
                                            "items": {
                                                "type": "array",
                                                "items": _closed(
                                                    {
                                                        "label": {"type": "string"},
                                                        "kind": {
                                                            "enum": [
                                                                "commune",
                                                                "postal_code",
                                                                "department",
                                                            ]
                                                        },
                                                        "value": {"type": "string"},
                                                    }
                                                ),
                                            }
                                        }
                                    )
                                }
                            },
                        },
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "Ce document",
                    "responses": {
                        "200": {
                            "description": "Le document OpenAPI",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "La base répond-elle ?",
                    "responses": {
                        "200": {
                            "description": "La base répond",
                            "content": {
                                "application/json": {"schema": _closed({"status": {"const": "ok"}})}
                            },
                        },
                        "503": _UNAVAILABLE,
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "headers": _HEADERS,
            "schemas": {
                "Error": _ERROR,
                "Venue": _VENUE,
                "Event": _EVENT,
                "EventDetail": _EVENT_DETAIL,
                "EventInput": _EVENT_INPUT,
                "EventPatch": _EVENT_PATCH,
                "Place": _PLACE,
                "SearchPage": _page("Event", optional={"place": _ref("Place")}),
                "EventPage": _page("Event"),
                "RegistrationInput": _REGISTRATION_INPUT,
                "Registration": _REGISTRATION,
                "AlreadyRegistered": _closed(
                    {
                        "id": {"type": "integer"},
                        "status": {"const": "already_registered"},
                        "message": {"type": "string"},
                    }
                ),
                "Registrant": _REGISTRANT,
                "RegistrantPage": _page("Registrant"),
                "AlertInput": _ALERT_INPUT,
                "AlertCreated": _closed(
                    {
                        "id": {"type": "integer"},
                        "status": {"enum": ["pending_confirmation", "active"]},
                    }
                ),
            },
        },
    }
    return _with_body_errors(document)
