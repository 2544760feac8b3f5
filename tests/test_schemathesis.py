"""Schemathesis against /api/v1/openapi.json: no server error, and every answer as documented.

The app runs in-process (ASGI) on the test database of each backend, with seeded agencies,
events and registrations: generated path ids and tokens are swapped for seeded ones three calls
in four, so the fuzzer reaches real events (its own agency's and another's, full, hybrid,
online, cancelled, past) and real registrations instead of a 404 on every call. Agency
operations carry a valid bearer token (schemathesis still tries them without one).

Schemathesis generates what the document allows and near misses of it; two more tests send
what it does not generate (any text, NUL and Unicode digits in every parameter, any JSON in
every body field, and values found by reading the code), checked against the same document.
"""

from __future__ import annotations

import base64
import itertools
import json
import string
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.schemas import APIOperation, BaseSchema
from starlette.applications import Starlette
from starlette.routing import Route

from events_app.app import create_app
from events_app.db import Database
from events_app.models import Event
from events_app.notifications import Notifier
from events_app.registrations import Person, register
from events_app.settings import Settings
from events_app.web import api
from tests.factories import in_days, make_agency, make_event

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
ONLINE = {"format": "online", "venue": None, "online_url": "https://visio.example.org/salle"}


def _load_schema() -> BaseSchema:
    """The document as the app serves it at /api/v1/openapi.json.

    It does not depend on the database: it is read once, at collection, from an app that never
    connects; each test then calls an app of its own on its own backend.
    """
    unused = Path(tempfile.gettempdir()) / "events-openapi-never-opened.db"
    app = create_app(Settings(database_url=f"sqlite:///{unused}", base_url="http://testserver"))
    try:
        return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    finally:
        shutdown_lifespans()


schema = _load_schema()
OPERATIONS: list[APIOperation] = [result.ok() for result in schema.get_all_operations()]


@dataclass
class Seeded:
    app: Starlette
    token: str
    event_ids: list[int]
    registration_tokens: list[str]
    # Cycles deciding, call after call, whether and by what a generated id or token is swapped.
    picks: Iterator[int] = field(default_factory=lambda: itertools.cycle(range(4)))
    ids: Iterator[int] = field(default_factory=lambda: iter(()))
    tokens: Iterator[str] = field(default_factory=lambda: iter(()))

    def __post_init__(self) -> None:
        self.ids = itertools.cycle(self.event_ids)
        self.tokens = itertools.cycle(self.registration_tokens)

    def headers_for(self, operation: APIOperation) -> dict[str, str]:
        if operation.path.startswith("/api/v1/agency/"):
            return {"Authorization": f"Bearer {self.token}"}
        return {}


def _seed(database: Database, settings: Settings) -> tuple[str, list[int], list[str]]:
    with database.transaction(lock=True) as db:
        agency, token = make_agency(db, slug="fuzz-agence", name="Agence <b>Fuzz</b> & Cie")
        other, _ = make_agency(db, slug="fuzz-autre")
        events = [
            make_event(db, agency, capacity=2),
            make_event(db, agency, capacity=1, waitlist=False, sectors=["all"]),
            make_event(db, agency, capacity=None, type="workshop", **ONLINE),
            make_event(
                db,
                agency,
                format="hybrid",
                capacity=1,
                remote_capacity=1,
                online_url="https://visio.example.org/hybride",
            ),
            make_event(db, agency, starts_at=in_days(-3), title="Forum passé"),
            make_event(db, agency, title="Atelier annulé", type="workshop"),
            make_event(db, other, title="Forum d'un autre organisme"),
        ]
        cancelled = db.get(Event, events[5].id)
        assert cancelled is not None
        cancelled.status = "cancelled"
        cancelled.registration_closes_at = cancelled.starts_at - timedelta(hours=1)
        notifier = Notifier(db, settings)
        tokens = [
            register(
                db,
                event_id=events[0].id,
                person=Person(f"Prénom{n}", f"Nom{n}", f"seeded{n}@example.org", "06 12 34 56 78"),
                notifier=notifier,
            ).registration.token
            for n in range(3)
        ]
        return token, [event.id for event in events], tokens


@pytest.fixture
def seeded(committed: Database, settings: Settings) -> Iterator[Seeded]:
    token, event_ids, registration_tokens = _seed(committed, settings)
    # The fuzzer registers far more often than a person could: the limit is not under test here.
    app = create_app(replace(settings, rate_limit_registration="1000000/minute"))
    try:
        yield Seeded(app, token, event_ids, registration_tokens)
    finally:
        # The ASGI transport keeps each app's lifespan (and its database pool) running until
        # told otherwise: end it before the fixtures delete the rows and the database goes.
        shutdown_lifespans()


def _aim(case: Case, seeded: Seeded) -> None:
    """Three calls in four reach a seeded event or registration instead of a random one."""
    params = case.path_parameters
    if not params or next(seeded.picks) == 0:
        return
    if "id" in params:
        params["id"] = next(seeded.ids)
    if "token" in params:
        params["token"] = next(seeded.tokens)


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_as_documented(case: Case, seeded: Seeded) -> None:
    _aim(case, seeded)
    case.call_and_validate(
        headers=seeded.headers_for(case.operation), checks=CHECKS, app=seeded.app
    )


def test_the_document_lists_every_route_of_the_api() -> None:
    routes = {
        (f"/api/v1{route.path}", method.lower())
        for route in api.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {
        (path, method) for path, item in schema.raw_schema["paths"].items() for method in item
    }
    assert routes <= documented
    assert documented - routes == {("/healthz", "get")}


# --- what schemathesis does not generate --------------------------------------------------


def _cursor(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _path_segment(value: str) -> str:
    # As schemathesis does: "." and ".." would be dot segments, not values.
    return {".": "%2E", "..": "%2E%2E"}.get(value, quote(value, safe=""))


NO_BODY = object()


def _call(
    seeded: Seeded,
    operation: APIOperation,
    *,
    path: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: Any = NO_BODY,
) -> int:
    """Send one request built by hand, and check its answer against the document."""
    path_parameters = dict(path or {})
    for name, param in (("id", "EVENT"), ("token", "TOKEN")):
        if path_parameters.get(name) == param:
            path_parameters[name] = str(
                seeded.event_ids[0] if name == "id" else seeded.registration_tokens[0]
            )
    path_parameters = {k: _path_segment(v) for k, v in path_parameters.items()}
    if operation.path.count("{") > len(path_parameters):
        # An operation on one event or registration: a seeded one unless the test names it.
        path_parameters.setdefault("id", str(seeded.event_ids[0]))
        path_parameters.setdefault("token", seeded.registration_tokens[0])
        path_parameters = {
            k: v for k, v in path_parameters.items() if "{" + k + "}" in operation.path
        }
    kwargs: dict[str, Any] = {"path_parameters": path_parameters, "query": query or {}}
    if operation.body:
        kwargs["body"] = {} if body is NO_BODY else body
        kwargs["media_type"] = "application/json"
    case = operation.Case(**kwargs)
    response = case.call_and_validate(
        headers=seeded.headers_for(operation), checks=CHECKS, app=seeded.app
    )
    return response.status_code


def _operation(label: str) -> APIOperation:
    found = schema.find_operation_by_label(label)
    assert found is not None, label
    return found


SEARCH = "GET /api/v1/events"
AGENCY_LIST = "GET /api/v1/agency/events"
REGISTRANTS = "GET /api/v1/agency/events/{id}/registrations"
HUGE = 10**30
NOW = "2026-01-01T00:00:00+00:00"
# Each of these answered a 500 (or, on PostgreSQL, a misleading 503) before it was fixed.
REGRESSIONS: list[tuple[str, dict[str, Any], int]] = [
    # int() refuses Unicode digits that str.isdigit() accepts, and over 4300 digits.
    (SEARCH, {"query": {"limit": "²"}}, 400),
    (SEARCH, {"query": {"limit": "1" * 5000}}, 400),
    ("GET /api/v1/events/{id}", {"path": {"id": "²"}}, 404),
    ("GET /api/v1/events/{id}", {"path": {"id": "9" * 5000}}, 404),
    ("GET /api/v1/agency/events/{id}", {"path": {"id": "١٢"}}, 404),
    # Days that overflow once made instants in Paris.
    (SEARCH, {"query": {"from": "0001-01-01"}}, 400),
    (SEARCH, {"query": {"to": "9999-12-31"}}, 400),
    # Cursors are client input: numbers too large for a column, instants out of range.
    (SEARCH, {"query": {"cursor": _cursor({"s": NOW, "i": HUGE})}}, 400),
    (SEARCH, {"query": {"cursor": _cursor({"s": "0001-01-01T00:00:00+14:00", "i": 1})}}, 400),
    (SEARCH, {"query": {"cursor": _cursor({"s": "9999-12-31T23:59:59-14:00", "i": 1})}}, 400),
    (SEARCH, {"query": {"near": "Lyon", "cursor": _cursor({"p": "o", "s": NOW, "i": HUGE})}}, 400),
    (SEARCH, {"query": {"near": "Lyon", "cursor": _cursor({"p": "d", "d": 10**400, "i": 1})}}, 400),
    (AGENCY_LIST, {"query": {"cursor": _cursor({"s": NOW, "i": HUGE})}}, 400),
    (REGISTRANTS, {"path": {"id": "EVENT"}, "query": {"cursor": _cursor({"r": HUGE})}}, 400),
    # NUL reached PostgreSQL, which refuses it in text.
    ("GET /api/v1/registrations/{token}", {"path": {"token": "abc\x00def"}}, 404),
    ("POST /api/v1/registrations/{token}/cancel", {"path": {"token": "\x00"}}, 404),
    ("DELETE /api/v1/agency/events/{id}", {"query": {"message": "a\x00b"}}, 400),
]


@pytest.mark.parametrize(
    ("label", "request_parts", "status"),
    REGRESSIONS,
    ids=[f"{label} {parts}"[:80] for label, parts, _ in REGRESSIONS],
)
def test_hostile_values_get_documented_errors(
    seeded: Seeded, label: str, request_parts: dict[str, Any], status: int
) -> None:
    assert _call(seeded, _operation(label), **request_parts) == status


def test_registrants_as_csv_are_documented(seeded: Seeded) -> None:
    case = _operation(REGISTRANTS).Case(path_parameters={"id": str(seeded.event_ids[0])})
    response = case.call_and_validate(
        headers={**seeded.headers_for(case.operation), "Accept": "text/csv"},
        checks=CHECKS,
        app=seeded.app,
    )
    assert response.headers["content-type"][0].startswith("text/csv")
    assert response.content.startswith("\ufeffPrénom;Nom;".encode())


def test_too_many_registrations_get_a_documented_429(seeded: Seeded, settings: Settings) -> None:
    app = create_app(replace(settings, rate_limit_registration="2/minute"))
    operation = _operation("POST /api/v1/events/{id}/registrations")
    statuses = []
    try:
        for n in range(3):
            case = operation.Case(
                path_parameters={"id": str(seeded.event_ids[0])},
                body={"first_name": "Ana", "last_name": "Lima", "email": f"ana{n}@example.org"},
                media_type="application/json",
            )
            response = case.call_and_validate(checks=CHECKS, app=app)
            statuses.append(response.status_code)
    finally:
        shutdown_lifespans()
    assert statuses[-1] == 429
    assert response.headers["retry-after"] == ["60"]


# Text as a person (or a script) may send it: any character but lone surrogates, which UTF-8
# cannot carry, with a bias towards the ones that have broken parsers here before.
TRICKY = st.sampled_from(
    ["\x00", "²", "٣", "-1", "1e309", "nan", "0", " ", "%", "'", "ǅ", "9" * 30]
)
TEXT = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    st.lists(TRICKY, min_size=1, max_size=3).map("".join),
    st.text(string.digits + "-,.; ", max_size=12),
)
# A path segment cannot hold "/" (it would be another path), nor be empty.
SEGMENT = TEXT.map(lambda text: text.replace("/", "")).filter(bool)
JSON = st.recursive(
    # JSON has neither NaN nor infinities.
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def _body_strategy(operation: APIOperation) -> st.SearchStrategy[Any]:
    media = operation.definition.raw["requestBody"]["content"]["application/json"]
    name = media["schema"]["$ref"].rsplit("/", 1)[-1]
    properties = schema.raw_schema["components"]["schemas"][name]["properties"]
    example = next(iter(media["examples"].values()))["value"]
    # Mostly a valid example with a few fields replaced by anything, sometimes anything at all.
    fields = st.fixed_dictionaries({}, optional=dict.fromkeys(properties, JSON))
    return st.one_of(fields.map(lambda changed: {**example, **changed}), fields, JSON)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_any_text_in_any_parameter_gets_a_documented_answer(
    seeded: Seeded, data: st.DataObject
) -> None:
    operation = _operation(data.draw(st.sampled_from([op.label for op in OPERATIONS])))
    path: dict[str, str] = {}
    query: dict[str, str] = {}
    for parameter in operation.path_parameters:
        path[parameter.name] = data.draw(
            st.one_of(TRICKY, SEGMENT, st.just("EVENT" if parameter.name == "id" else "TOKEN")),
            label=parameter.name,
        )
    for parameter in operation.query:
        if data.draw(st.booleans(), label=f"send {parameter.name}"):
            query[parameter.name] = data.draw(TRICKY | TEXT, label=parameter.name)
    body = data.draw(_body_strategy(operation), label="body") if operation.body else NO_BODY
    assert _call(seeded, operation, path=path, query=query, body=body) < 500
