"""The OpenAPI 3.1 document of /api/v1, assembled from the route table and the models.

Nothing here describes a field: paths, methods and answers come from `Endpoint`s (the route
table of web/api.py), and every schema is the JSON schema of a model of web/schemas.py, with
pydantic's `$defs` lifted into `components/schemas`. A field added to a model shows up here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.routing import Route

from events_app.settings import Settings
from events_app.web.schemas import ErrorOut, HealthOut

REF = "#/components/schemas/{model}"
MAX_DB_ID = 2**31 - 1


@dataclass(frozen=True)
class Header:
    name: str
    description: str
    schema: dict[str, Any]
    required: bool = True


RETRY_AFTER = Header(
    "Retry-After",
    "Secondes à attendre avant de réessayer.",
    {"type": "string", "pattern": "^[0-9]+$"},
)


@dataclass(frozen=True)
class Answer:
    """One status of an operation: its model (JSON), or other media, and its headers."""

    description: str
    model: type[BaseModel] | None = None
    media: dict[str, dict[str, Any]] = field(default_factory=dict)
    headers: tuple[Header, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    """A route of the API and its contract. api.routes and the document are both built from
    a list of these, so a route cannot exist without its description."""

    path: str  # under /api/v1
    method: Literal["GET", "POST", "PATCH", "DELETE"]
    handler: Callable[..., Any]
    name: str
    operation_id: str
    summary: str
    answers: dict[int, Answer]
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    examples: dict[str, Any] = field(default_factory=dict)
    bearer: bool = False
    description: str | None = None

    def route(self) -> Route:
        return Route(self.path, self.handler, methods=[self.method], name=self.name)


def error(description: str, *headers: Header) -> Answer:
    return Answer(description, ErrorOut, headers=headers)


# Answers every operation may give, and those of operations with a body or a token.
COMMON: dict[int, Answer] = {
    503: error("Base de données momentanément indisponible", RETRY_AFTER),
}
WITH_BODY: dict[int, Answer] = {
    400: error("Paramètre ou champ invalide (le champ en cause est nommé)"),
    413: error("Corps de requête trop volumineux (plus de 1 Mo)"),
    415: error("Corps de requête autre que application/json"),
}
WITH_TOKEN: dict[int, Answer] = {401: error("Jeton absent ou invalide")}
WRITES: dict[int, Answer] = {409: error("En conflit avec les données enregistrées")}

_PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "id": {
        "description": "Identifiant de l'événement ; inconnu ou mal formé : 404.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DB_ID},
    },
    "token": {
        "description": "Le jeton secret de l'inscription (dans `manage_url`) ; inconnu : 404.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 64},
    },
}


def _models(endpoints: Sequence[Endpoint]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    """Every model the document names: bodies as read (validation), answers as written
    (serialisation)."""
    seen: dict[type[BaseModel], JsonSchemaMode] = {}
    for endpoint in endpoints:
        if endpoint.body is not None:
            seen[endpoint.body] = "validation"
        for answer in endpoint.answers.values():
            if answer.model is not None:
                seen[answer.model] = "serialization"
    seen[ErrorOut] = seen[HealthOut] = "serialization"
    return list(seen.items())


def _tidy(schema: Any) -> Any:
    """pydantic's schema, minus the "title" it gives every property (noise for readers)."""
    if isinstance(schema, dict):
        return {
            key: _tidy(value)
            for key, value in schema.items()
            if not (key == "title" and isinstance(value, str))
        }
    if isinstance(schema, list):
        return [_tidy(item) for item in schema]
    return schema


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is sent or not: `X | None` is documented as X."""
    options = schema.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        if len(rest) == 1:
            merged = {key: value for key, value in schema.items() if key != "anyOf"}
            return {**rest[0], **merged}
    return schema


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = _tidy(model.model_json_schema(mode="validation"))
    parameters = []
    for name, prop in schema["properties"].items():
        prop = _not_null(prop)
        description = prop.pop("description", None)
        parameter: dict[str, Any] = {"name": name, "in": "query", "schema": prop}
        if description:
            parameter["description"] = description
        if prop.get("type") == "array":
            parameter.update(style="form", explode=True)
        parameters.append(parameter)
    return parameters


def _response(answer: Answer, refs: dict[type[BaseModel], str]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": answer.description}
    content = {}
    if answer.model is not None:
        content["application/json"] = {"schema": {"$ref": refs[answer.model]}}
    content.update(answer.media)
    if content:
        response["content"] = content
    if answer.headers:
        response["headers"] = {
            header.name: {
                "description": header.description,
                "required": header.required,
                "schema": header.schema,
            }
            for header in answer.headers
        }
    return response


def _operation(endpoint: Endpoint, refs: dict[type[BaseModel], str]) -> dict[str, Any]:
    answers = dict(endpoint.answers)
    if endpoint.body is not None or endpoint.query is not None:
        answers.setdefault(400, WITH_BODY[400])
    if endpoint.body is not None:
        answers = {**WITH_BODY, **answers}
    if endpoint.bearer:
        answers = {**WITH_TOKEN, **answers}
    if endpoint.method != "GET":
        answers = {**WRITES, **answers}
    answers = {**COMMON, **answers}
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    if endpoint.bearer:
        operation["security"] = [{"bearer": []}]
    parameters = [
        {"name": name, "in": "path", "required": True, **_PATH_PARAMETERS[name]}
        for name in _PATH_PARAMETERS
        if "{" + name + "}" in endpoint.path
    ]
    if endpoint.query is not None:
        parameters += _query_parameters(endpoint.query)
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body is not None:
        media: dict[str, Any] = {"schema": {"$ref": refs[endpoint.body]}}
        if endpoint.examples:
            media["examples"] = endpoint.examples
        operation["requestBody"] = {"required": True, "content": {"application/json": media}}
    operation["responses"] = {
        str(status): _response(answers[status], refs) for status in sorted(answers)
    }
    return operation


def openapi_document(endpoints: Sequence[Endpoint], settings: Settings) -> dict[str, Any]:
    keys, definitions = models_json_schema(_models(endpoints), ref_template=REF)
    refs: dict[type[BaseModel], str] = {
        model: ref["$ref"] for (model, _mode), ref in keys.items() if issubclass(model, BaseModel)
    }
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        item = paths.setdefault(f"/api/v1{endpoint.path}", {})
        item[endpoint.method.lower()] = _operation(endpoint, refs)
    paths["/healthz"] = {
        "get": _operation(
            Endpoint(
                "/healthz",
                "GET",
                handler=lambda: None,
                name="health",
                operation_id="health",
                summary="La base répond-elle ?",
                answers={200: Answer("La base répond", HealthOut)},
            ),
            refs,
        )
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Événements emploi",
            "version": "1.0.0",
            "description": 'Erreurs : `{"error": {"code", "message", "field"}}`.',
        },
        "servers": [{"url": settings.base_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _tidy(definitions.get("$defs", {})),
        },
    }
