"""The OpenAPI 3.1 document of /api/v1, written out so that it is exactly the contract."""

from __future__ import annotations

from typing import Any

from events_app.settings import Settings
from events_app.vocab import EVENT_TYPES, FORMATS, REGISTRATION_STATUSES, SECTORS

_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_NUM = {"type": ["number", "null"]}
_DATETIME = {"type": "string", "format": "date-time"}
_NULLABLE_DATETIME = {"type": ["string", "null"], "format": "date-time"}

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": _NULLABLE_STR,
            },
        }
    },
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


_VENUE = {
    "type": "object",
    "properties": {
        "name": _NULLABLE_STR,
        "address": _NULLABLE_STR,
        "postal_code": _NULLABLE_STR,
        "city": _NULLABLE_STR,
        "lat": _NULLABLE_NUM,
        "lon": _NULLABLE_NUM,
    },
}

_EVENT = {
    "type": "object",
    "required": [
        "id",
        "title",
        "type",
        "sectors",
        "format",
        "starts_at",
        "ends_at",
        "venue",
        "online_url",
        "agency",
        "capacity",
        "seats_left",
        "registration_open",
        "status",
        "url",
        "ics_url",
    ],
    "properties": {
        "id": {"type": "integer"},
        "title": {"type": "string"},
        "type": {"type": "string", "enum": list(EVENT_TYPES)},
        "sectors": {"type": "array", "items": {"type": "string", "enum": list(SECTORS)}},
        "format": {"type": "string", "enum": list(FORMATS)},
        "starts_at": _DATETIME,
        "ends_at": _DATETIME,
        "timezone": {"type": "string"},
        "venue": _VENUE,
        "online_url": _NULLABLE_STR,
        "agency": {
            "type": "object",
            "required": ["id", "name"],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "slug": {"type": "string"},
            },
        },
        "capacity": _NULLABLE_INT,
        "remote_capacity": _NULLABLE_INT,
        "seats_left": _NULLABLE_INT,
        "remote_seats_left": _NULLABLE_INT,
        "waitlist": {"type": "boolean"},
        "registration_open": {"type": "boolean"},
        "registration_closed_reason": _NULLABLE_STR,
        "registration_opens_at": _NULLABLE_DATETIME,
        "registration_closes_at": _NULLABLE_DATETIME,
        "job_offers": _NULLABLE_INT,
        "status": {"type": "string", "enum": ["scheduled", "cancelled", "postponed"]},
        "revision": {"type": "integer"},
        "distance_km": _NULLABLE_NUM,
        "url": {"type": "string"},
        "ics_url": {"type": "string"},
        "description": {"type": "string"},
        "accessibility_notes": _NULLABLE_STR,
    },
}

_EVENT_INPUT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": ["string", "null"], "maxLength": 50000},
        "type": {"type": "string", "enum": list(EVENT_TYPES)},
        "sectors": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "enum": list(SECTORS)},
        },
        "format": {"type": "string", "enum": list(FORMATS)},
        "starts_at": _DATETIME,
        "ends_at": _DATETIME,
        "venue": {**_VENUE, "type": ["object", "null"], "additionalProperties": False},
        "online_url": {"type": ["string", "null"], "format": "uri"},
        "capacity": {"type": ["integer", "null"], "minimum": 0},
        "remote_capacity": {"type": ["integer", "null"], "minimum": 0},
        "waitlist": {"type": "boolean"},
        "registration_opens_at": _NULLABLE_DATETIME,
        "registration_closes_at": _NULLABLE_DATETIME,
        "job_offers": {"type": ["integer", "null"], "minimum": 0},
        "accessibility_notes": {"type": ["string", "null"], "maxLength": 2000},
    },
}


def _multi(name: str, values: list[str], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "style": "form",
        "explode": True,
        "schema": {"type": "array", "items": {"type": "string", "enum": values}},
    }


_SEARCH_PARAMS: list[dict[str, Any]] = [
    {
        "name": "q",
        "in": "query",
        "schema": {"type": "string", "maxLength": 200},
        "description": "Texte libre (titre, lieu, commune).",
    },
    {
        "name": "near",
        "in": "query",
        "schema": {"type": "string", "maxLength": 200},
        "description": "Commune, code postal, département ou « lat,lon ».",
    },
    {
        "name": "radius_km",
        "in": "query",
        "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000, "default": 30},
    },
    _multi("sector", list(SECTORS), "Secteur (répétable)."),
    _multi("type", list(EVENT_TYPES), "Type d'événement (répétable)."),
    _multi("format", list(FORMATS), "Format (répétable)."),
    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "available", "in": "query", "schema": {"type": "boolean"}},
    {"name": "agency", "in": "query", "schema": {"type": "string"}},
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
    },
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
]
_PAGE_PARAMS = [p for p in _SEARCH_PARAMS if p["name"] in ("limit", "cursor")]
_ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}


def openapi_document(settings: Settings) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Événements emploi", "version": "1.0.0"},
        "servers": [{"url": settings.base_url}],
        "paths": {
            "/api/v1/events": {
                "get": {
                    "operationId": "searchEvents",
                    "summary": "Rechercher des événements",
                    "parameters": _SEARCH_PARAMS,
                    "responses": {
                        "200": _json("EventPage", "Une page de résultats"),
                        "400": _error("Paramètre invalide"),
                    },
                }
            },
            "/api/v1/events/{id}": {
                "get": {
                    "operationId": "getEvent",
                    "parameters": [_ID_PARAM],
                    "responses": {
                        "200": _json("Event", "L'événement"),
                        "404": _error("Événement inconnu"),
                    },
                }
            },
            "/api/v1/agency/events": {
                "get": {
                    "operationId": "listAgencyEvents",
                    "security": [{"bearer": []}],
                    "parameters": _PAGE_PARAMS,
                    "responses": {
                        "200": _json("EventPage", "Les événements de l'organisme"),
                        "400": _error("Paramètre invalide"),
                        "401": _error("Jeton absent ou invalide"),
                    },
                },
                "post": {
                    "operationId": "createAgencyEvent",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/EventInput"}
                            }
                        },
                    },
                    "responses": {
                        "201": _json("Event", "L'événement créé"),
                        "400": _error("Champ invalide"),
                        "401": _error("Jeton absent ou invalide"),
                    },
                },
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "responses": {
                        "200": {"description": "La base répond"},
                        "503": _error("La base ne répond pas"),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _ERROR,
                "Venue": _VENUE,
                "Event": _EVENT,
                "EventInput": _EVENT_INPUT,
                "EventPage": {
                    "type": "object",
                    "required": ["items", "next_cursor"],
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                        "next_cursor": _NULLABLE_STR,
                    },
                },
                "RegistrationStatus": {"type": "string", "enum": list(REGISTRATION_STATUSES)},
            },
        },
    }
