"""The JSON API under /api/v1 (spec section 7)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from events_app.agencies import authenticate_agency
from events_app.checkins import check_in
from events_app.db import utcnow
from events_app.errors import InvalidInput
from events_app.events import create_event, get_event
from events_app.models import Registration
from events_app.places import suggest_places
from events_app.registrations import (
    ALREADY_REGISTERED,
    cancel_agency_event,
    cancel_registration,
    edit_event,
    get_registration,
    list_registrants,
    register,
    registrants_csv,
)
from events_app.search import (
    SearchResult,
    SummaryResult,
    decode_cursor,
    encode_cursor,
    list_agency_events,
    search_event_summaries,
)
from events_app.stats import AgencyStats, agency_stats
from events_app.vocab import EVENT_TYPES
from events_app.web.alerts import create_alert_api
from events_app.web.answers import (
    AlreadyRegisteredOut,
    EventDetailOut,
    EventOut,
    EventPage,
    PlaceOut,
    RegistrantOut,
    RegistrantPage,
    RegistrationOut,
    SearchPage,
)
from events_app.web.common import (
    MAX_DB_ID,
    check_rate,
    deliver_mail_soon,
    in_search_transaction,
    in_transaction,
    json_body,
    notifier,
    path_id,
    settings_of,
)
from events_app.web.openapi import (
    RETRY_AFTER,
    Answer,
    Endpoint,
    Header,
    error,
    openapi_document,
)
from events_app.web.schemas import (
    AlertCreatedOut,
    AlertIn,
    CancelParams,
    CheckinIn,
    CheckinOut,
    EventIn,
    EventPatch,
    PageParams,
    PlacesOut,
    PlacesParams,
    PlaceSuggestionOut,
    RegistrationIn,
    SearchParams,
    StatsFiguresOut,
    StatsMonthOut,
    StatsOut,
    StatsParams,
    StatsTypeOut,
    cancel_message,
    dump,
    event_fields,
    person_of,
    search_query,
    stats_days,
    validate,
)
from events_app.web.search_pages import SEARCH_CACHE_SECONDS, search_pages_of

MAX_PLACE_QUERY = 100


def _page(result: SearchResult | SummaryResult, request: Request, *, with_distance: bool) -> bytes:
    """A SearchPage (or, without a place, an EventPage), written from the items' JSON values
    (EventOut.fast): the fast path of the search, checked against the models by tests."""
    settings = settings_of(request)
    hits = (
        [(hit.event, hit.distance_km) for hit in result.hits]
        if isinstance(result, SearchResult)
        else result.hits
    )
    now = utcnow()
    body: dict[str, Any] = {
        "items": [
            EventOut.fast(
                event, settings, now, **({"distance_km": _km(distance)} if with_distance else {})
            )
            for event, distance in hits
        ],
        "next_cursor": result.next_cursor,
    }
    if result.place is not None:
        body["place"] = PlaceOut.of(result.place).model_dump()
    return orjson.dumps(body)


def _km(distance: float | None) -> float | None:
    return None if distance is None else round(distance, 2)


def _json(model: Any, *, status_code: int = 200, **kwargs: Any) -> Response:
    return Response(dump(model), status_code, media_type="application/json", **kwargs)


async def list_events(request: Request) -> Response:
    pages = search_pages_of(request.app, settings_of(request).redis_url)
    # Keyed by the parsed query, never the raw string: unknown parameters are ignored and
    # cannot make every request miss the cache (SPEC §7).
    key, query = pages.queries.get(request.scope["query_string"])

    async def compute() -> bytes:
        result = await in_search_transaction(request, lambda db: search_event_summaries(db, query))
        return _page(result, request, with_distance=query.near is not None)

    body = await pages.page(key, compute)
    return Response(
        body,
        media_type="application/json",
        headers={"Cache-Control": f"public, max-age={SEARCH_CACHE_SECONDS:.0f}"},
    )


async def show_event(request: Request) -> Response:
    event_id = path_id(request)
    event = await in_transaction(request, lambda db: get_event(db, event_id))
    return _json(EventDetailOut.of(event, settings_of(request)))


async def list_places(request: Request) -> Response:
    """Autocomplete of the place field: communes, postal codes and départements."""
    text = (request.query_params.get("q") or "")[:MAX_PLACE_QUERY].replace("\x00", "")
    places = await in_transaction(request, lambda db: suggest_places(db, text))
    body = PlacesOut.model_construct(
        items=[
            PlaceSuggestionOut.model_construct(label=p.label, kind=p.kind, value=p.value)
            for p in places
        ]
    )
    # The gazetteer changes only with a new release of it: browsers may keep answers a day.
    return _json(body, headers={"Cache-Control": "public, max-age=86400"})


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def agency_list_events(request: Request) -> Response:
    token = bearer_token(request)
    query = search_query(request.query_params)

    def work(db: Session) -> SearchResult:
        agency = authenticate_agency(db, token)
        return list_agency_events(db, agency_id=agency.id, limit=query.limit, cursor=query.cursor)

    result = await in_transaction(request, work)
    return Response(_page(result, request, with_distance=False), media_type="application/json")


async def agency_create_event(request: Request) -> Response:
    token = bearer_token(request)
    # Authenticate before reading the body, so that a stranger learns nothing from validation.
    await in_transaction(request, lambda db: authenticate_agency(db, token))
    fields = event_fields(await json_body(request), partial=False)

    def work(db: Session) -> EventDetailOut:
        agency = authenticate_agency(db, token)
        event = create_event(db, agency_id=agency.id, fields=fields)
        return EventDetailOut.of(get_event(db, event.id), settings_of(request))

    body = await in_transaction(request, work)
    return _json(body, status_code=201, headers={"Location": body.url})


async def register_for_event(request: Request) -> Response:
    event_id = path_id(request)
    settings = settings_of(request)
    check_rate(request, "registration", settings.rate_limit_registration)
    person = person_of(await json_body(request))

    def work(db: Session) -> RegistrationOut | AlreadyRegisteredOut:
        outcome = register(db, event_id=event_id, person=person, notifier=notifier(request, db))
        if outcome.created:
            return RegistrationOut.of(outcome.registration, settings)
        # The same address again: whoever typed it learns nothing about the person (no name,
        # no waiting-list position, no secret link that would let them cancel the place).
        return AlreadyRegisteredOut.model_construct(
            id=outcome.registration.id, status="already_registered", message=ALREADY_REGISTERED
        )

    body = await in_transaction(request, work, lock=True)
    created = isinstance(body, RegistrationOut)
    return _json(body, status_code=201 if created else 200, background=deliver_mail_soon(request))


async def show_registration(request: Request) -> Response:
    token = str(request.path_params["token"])
    registration = await in_transaction(request, lambda db: get_registration(db, token))
    return _json(RegistrationOut.of(registration, settings_of(request)))


async def cancel_registration_api(request: Request) -> Response:
    token = str(request.path_params["token"])

    def work(db: Session) -> RegistrationOut:
        registration = cancel_registration(db, token=token, notifier=notifier(request, db))
        return RegistrationOut.of(registration, settings_of(request))

    body = await in_transaction(request, work, lock=True)
    return _json(body, background=deliver_mail_soon(request))


async def agency_show_event(request: Request) -> Response:
    token = bearer_token(request)
    event_id = path_id(request)

    def work(db: Session) -> EventDetailOut:
        agency = authenticate_agency(db, token)
        return EventDetailOut.of(get_event(db, event_id, agency_id=agency.id), settings_of(request))

    return _json(await in_transaction(request, work))


async def agency_update_event(request: Request) -> Response:
    token = bearer_token(request)
    event_id = path_id(request)
    await in_transaction(request, lambda db: authenticate_agency(db, token))
    fields = event_fields(await json_body(request), partial=True)

    def work(db: Session) -> EventDetailOut:
        agency = authenticate_agency(db, token)
        edit_event(
            db,
            event_id=event_id,
            agency_id=agency.id,
            fields=fields,
            notifier=notifier(request, db),
        )
        return EventDetailOut.of(get_event(db, event_id), settings_of(request))

    body = await in_transaction(request, work, lock=True)
    return _json(body, background=deliver_mail_soon(request))


async def agency_cancel_event(request: Request) -> Response:
    token = bearer_token(request)
    event_id = path_id(request)
    message = cancel_message(request.query_params)

    def work(db: Session) -> EventDetailOut:
        agency = authenticate_agency(db, token)
        cancel_agency_event(
            db,
            event_id=event_id,
            agency_id=agency.id,
            notifier=notifier(request, db),
            message=message,
        )
        return EventDetailOut.of(get_event(db, event_id), settings_of(request))

    body = await in_transaction(request, work, lock=True)
    return _json(body, background=deliver_mail_soon(request))


def _registrant_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    data = decode_cursor(cursor)
    after = data.get("r")
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_DB_ID:
        raise InvalidInput("cursor", "Curseur de pagination invalide.")
    return after


async def agency_registrants(request: Request) -> Response:
    token = bearer_token(request)
    event_id = path_id(request)
    wants_csv = "text/csv" in request.headers.get("accept", "")
    query = search_query(request.query_params)
    after = _registrant_cursor(query.cursor)

    def work(db: Session) -> list[Registration]:
        agency = authenticate_agency(db, token)
        limit = None if wants_csv else query.limit + 1
        return list_registrants(
            db, event_id=event_id, agency_id=agency.id, limit=limit, after_id=after
        )

    registrations = await in_transaction(request, work)
    if wants_csv:
        return Response(
            registrants_csv(registrations),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="inscrits-{event_id}.csv"',
                "Cache-Control": "no-store",
            },
        )
    page = registrations[: query.limit]
    more = len(registrations) > query.limit
    return _json(
        RegistrantPage.model_construct(
            items=[RegistrantOut.of(r) for r in page],
            next_cursor=encode_cursor({"r": page[-1].id}) if more and page else None,
        ),
        headers={"Cache-Control": "no-store"},
    )


# Who checked a person in, when it was done through the API (a token is the agency's, not a
# person's).
API_CHECKER = "API de l'organisme"


async def agency_checkin(request: Request) -> Response:
    token = bearer_token(request)
    event_id = path_id(request)
    await in_transaction(request, lambda db: authenticate_agency(db, token))
    code = validate(CheckinIn, await json_body(request)).code

    def work(db: Session) -> CheckinOut:
        agency = authenticate_agency(db, token)
        done = check_in(db, event_id=event_id, agency_id=agency.id, code=code, by=API_CHECKER)
        registration = done.registration
        return CheckinOut.model_construct(
            registration_id=registration.id,
            first_name=registration.first_name,
            last_name=registration.last_name,
            attended=True,
            already=done.already,
            checked_in_at=done.checked_in_at,
            checked_in_by=registration.checked_in_by,
        )

    body = await in_transaction(request, work, lock=True)
    return _json(body, headers={"Cache-Control": "no-store"})


def stats_out(stats: AgencyStats) -> StatsOut:
    return StatsOut.model_construct(
        totals=StatsFiguresOut.of(stats.totals),
        by_type=[
            StatsTypeOut.of(figures, type=kind, label=EVENT_TYPES.get(kind, kind))
            for kind, figures in stats.by_type
        ],
        by_month=[StatsMonthOut.of(figures, month=month) for month, figures in stats.by_month],
    )


async def agency_stats_api(request: Request) -> Response:
    token = bearer_token(request)
    date_from, date_to = stats_days(request.query_params)

    def work(db: Session) -> StatsOut:
        agency = authenticate_agency(db, token)
        return stats_out(
            agency_stats(db, agency_id=agency.id, date_from=date_from, date_to=date_to)
        )

    return _json(await in_transaction(request, work), headers={"Cache-Control": "no-store"})


async def openapi(request: Request) -> Response:
    document = getattr(request.app.state, "openapi", None)
    if document is None:
        document = request.app.state.openapi = orjson.dumps(
            openapi_document(ENDPOINTS, settings_of(request))
        )
    return Response(document, media_type="application/json")


# --- the route table: each route with its contract (web/openapi.py builds the document) ---

NOT_FOUND_EVENT = error("Événement inconnu")
NOT_FOUND_OWN_EVENT = error("Événement inconnu ou d'un autre organisme")
NOT_FOUND_REGISTRATION = error("Inscription inconnue")
CACHED = Header("Cache-Control", "Pages en cache 10 s.", {"type": "string"})
NO_STORE = Header("Cache-Control", "Jamais en cache (données personnelles).", {"const": "no-store"})
LOCATION = Header("Location", "L'adresse de l'événement créé.", {"type": "string"})
CSV_DISPOSITION = Header(
    "Content-Disposition", "En CSV : le nom du fichier.", {"type": "string"}, required=False
)

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
EVENT_EXAMPLES: dict[str, Any] = {
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
}
PATCH_EXAMPLES: dict[str, Any] = {
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
}
PERSON_EXAMPLES: dict[str, Any] = {
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
}

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "/events",
        "GET",
        list_events,
        name="api:events",
        operation_id="searchEvents",
        summary="Rechercher des événements",
        description="Par date ; avec `near`, par distance puis les événements en ligne par date.",
        query=SearchParams,
        answers={200: Answer("Une page de résultats", SearchPage, headers=(CACHED,))},
    ),
    Endpoint(
        "/events/{id}",
        "GET",
        show_event,
        name="api:event",
        operation_id="getEvent",
        summary="Un événement",
        answers={200: Answer("L'événement", EventDetailOut), 404: NOT_FOUND_EVENT},
    ),
    Endpoint(
        "/places",
        "GET",
        list_places,
        name="api:places",
        operation_id="suggestPlaces",
        summary="Lieux commençant par ce qui est tapé (communes, codes postaux, départements), "
        "pour compléter le champ « near »",
        query=PlacesParams,
        answers={
            200: Answer(
                "Au plus dix lieux ; « value » se donne tel quel à « near »",
                PlacesOut,
                headers=(Header("Cache-Control", "En cache un jour.", {"type": "string"}),),
            )
        },
    ),
    Endpoint(
        "/agency/events",
        "GET",
        agency_list_events,
        name="api:agency_events",
        operation_id="listAgencyEvents",
        summary="Les événements de l'organisme (passés et annulés compris)",
        bearer=True,
        query=PageParams,
        answers={200: Answer("Une page, par date", EventPage)},
    ),
    Endpoint(
        "/agency/events",
        "POST",
        agency_create_event,
        name="api:agency_create",
        operation_id="createAgencyEvent",
        summary="Publier un événement",
        bearer=True,
        body=EventIn,
        examples=EVENT_EXAMPLES,
        answers={201: Answer("L'événement créé", EventDetailOut, headers=(LOCATION,))},
    ),
    Endpoint(
        "/agency/events/{id}",
        "GET",
        agency_show_event,
        name="api:agency_event",
        operation_id="getAgencyEvent",
        summary="Un événement de l'organisme",
        bearer=True,
        answers={200: Answer("L'événement", EventDetailOut), 404: NOT_FOUND_OWN_EVENT},
    ),
    Endpoint(
        "/agency/events/{id}",
        "PATCH",
        agency_update_event,
        name="api:agency_update",
        operation_id="updateAgencyEvent",
        summary="Modifier un événement (les inscrits sont prévenus d'un changement de date ou "
        "de lieu)",
        bearer=True,
        body=EventPatch,
        examples=PATCH_EXAMPLES,
        answers={200: Answer("L'événement modifié", EventDetailOut), 404: NOT_FOUND_OWN_EVENT},
    ),
    Endpoint(
        "/agency/events/{id}",
        "DELETE",
        agency_cancel_event,
        name="api:agency_cancel",
        operation_id="cancelAgencyEvent",
        summary="Annuler un événement (il reste visible, annulé ; les inscrits sont prévenus)",
        bearer=True,
        query=CancelParams,
        answers={200: Answer("L'événement, annulé", EventDetailOut), 404: NOT_FOUND_OWN_EVENT},
    ),
    Endpoint(
        "/agency/events/{id}/registrations",
        "GET",
        agency_registrants,
        name="api:agency_registrants",
        operation_id="listRegistrants",
        summary="Les inscrits, par ordre d'inscription (CSV avec Accept: text/csv)",
        bearer=True,
        query=PageParams,
        answers={
            200: Answer(
                "Une page d'inscrits, ou tous en CSV (Excel : « ; », UTF-8 avec BOM)",
                RegistrantPage,
                media={"text/csv": {"schema": {"type": "string"}}},
                headers=(NO_STORE, CSV_DISPOSITION),
            ),
            404: NOT_FOUND_OWN_EVENT,
        },
    ),
    Endpoint(
        "/agency/events/{id}/checkins",
        "POST",
        agency_checkin,
        name="api:agency_checkin",
        operation_id="checkIn",
        summary="Pointer une personne à l'entrée, par son code d'entrée (QR code)",
        description="Ouvert de la veille de l'événement au lendemain (jours de Paris). Un "
        "second pointage du même code répond 200 avec `already: true` et l'heure du premier.",
        bearer=True,
        body=CheckinIn,
        examples={"code": {"summary": "Un code lu", "value": {"code": "7KQ2-M9XD-4TPA"}}},
        answers={
            200: Answer("La personne, pointée présente", CheckinOut, headers=(NO_STORE,)),
            404: error(
                "Événement inconnu ou d'un autre organisme, code inconnu, d'un autre événement "
                "ou d'une inscription annulée"
            ),
            409: error("Pointage fermé (hors de la veille au lendemain, ou événement annulé)"),
        },
    ),
    Endpoint(
        "/agency/stats",
        "GET",
        agency_stats_api,
        name="api:agency_stats",
        operation_id="getAgencyStats",
        summary="Le bilan de l'organisme : au total, par type d'événement et par mois",
        description="Les événements non annulés qui commencent entre `from` et `to` (jours de "
        "Paris, inclus) ; sans eux, tous les événements de l'organisme.",
        bearer=True,
        query=StatsParams,
        answers={200: Answer("Les chiffres", StatsOut, headers=(NO_STORE,))},
    ),
    Endpoint(
        "/events/{id}/registrations",
        "POST",
        register_for_event,
        name="api:register",
        operation_id="register",
        summary="S'inscrire",
        body=RegistrationIn,
        examples=PERSON_EXAMPLES,
        answers={
            201: Answer("Inscrit·e (confirmé·e ou en liste d'attente)", RegistrationOut),
            200: Answer(
                "Déjà inscrit·e avec cette adresse : rien sur la personne ; ses liens lui "
                "sont envoyés à nouveau par e-mail",
                AlreadyRegisteredOut,
            ),
            404: NOT_FOUND_EVENT,
            409: error("Inscriptions fermées, événement annulé, passé ou complet"),
            429: error("Trop de demandes", RETRY_AFTER),
        },
    ),
    Endpoint(
        "/alerts",
        "POST",
        create_alert_api,
        name="api:alerts",
        operation_id="createAlert",
        summary="Créer une alerte : les nouveaux événements de cette recherche par e-mail (un "
        "lien de confirmation est d'abord envoyé)",
        body=AlertIn,
        examples={
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
        answers={
            202: Answer("Alerte enregistrée", AlertCreatedOut),
            429: error("Trop de demandes", RETRY_AFTER),
        },
    ),
    Endpoint(
        "/registrations/{token}",
        "GET",
        show_registration,
        name="api:registration",
        operation_id="getRegistration",
        summary="Une inscription, par son jeton secret",
        answers={200: Answer("L'inscription", RegistrationOut), 404: NOT_FOUND_REGISTRATION},
    ),
    Endpoint(
        "/registrations/{token}/cancel",
        "POST",
        cancel_registration_api,
        name="api:cancel_registration",
        operation_id="cancelRegistration",
        summary="Annuler une inscription (sans effet si elle l'est déjà)",
        answers={
            200: Answer("L'inscription, annulée", RegistrationOut),
            404: NOT_FOUND_REGISTRATION,
        },
    ),
    Endpoint(
        "/openapi.json",
        "GET",
        openapi,
        name="api:openapi",
        operation_id="openapi",
        summary="Ce document",
        answers={
            200: Answer(
                "Le document OpenAPI", media={"application/json": {"schema": {"type": "object"}}}
            )
        },
    ),
]

routes: list[BaseRoute] = [endpoint.route() for endpoint in ENDPOINTS]
