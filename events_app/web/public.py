"""Public pages for job seekers: home, search results, event page."""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from events_app.accounts import seeker_of_session
from events_app.agencies import agency_name
from events_app.alerts import UNCONFIRMED_DAYS
from events_app.calendars import add_to_calendar_links
from events_app.duplicates import Copy, copies_of
from events_app.errors import Conflict, InvalidInput, RateLimited
from events_app.events import get_event, registration_state, remote_seats_left, seats_left
from events_app.formatting import fr_date
from events_app.models import Event, Registration
from events_app.places import AmbiguousPlace, UnknownPlace, approximate_venues
from events_app.registrations import (
    ALREADY_REGISTERED,
    Person,
    RegistrationOutcome,
    cancel_registration,
    get_registration,
    manage_state,
    register,
    resend_links,
)
from events_app.search import (
    COUNT_CAP,
    SearchQuery,
    SearchResult,
    search_events,
)
from events_app.settings import Settings
from events_app.structured_data import event_jsonld
from events_app.web.answers import event_url
from events_app.web.calendars import feed_links
from events_app.web.common import (
    check_rate,
    current_seeker_id,
    deliver_mail_soon,
    in_transaction,
    notifier,
    path_id,
    settings_of,
)
from events_app.web.params import canonical_key, parse_search_query
from events_app.web.schemas import person_of
from events_app.web.security import content_security_policy

PERSON_FORM_FIELDS = ("first_name", "last_name", "email", "phone", "attendance", "consent")
# Values that pass person_of, put in place of a field already found wrong, so that the next
# run names the next wrong field: the form then reports every error at once, not one per try.
VALID_STAND_INS: dict[str, str | None] = {
    "first_name": "A",
    "last_name": "A",
    "email": "a@example.org",
    "phone": None,
    "attendance": None,
    "consent": "oui",
}


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.state.templates
    return templates


def _page_url(request: Request, cursor: str | None, **replace: str) -> str:
    """This search's URL with another cursor (None: the first page) or other values."""
    items = [
        (k, v) for k, v in request.query_params.multi_items() if k != "cursor" and k not in replace
    ]
    items.extend(replace.items())
    if cursor is not None:
        items.append(("cursor", cursor))
    return f"{request.url.path}?{QueryParams(items)}"


async def home(request: Request) -> Response:
    result = await in_transaction(request, lambda db: search_events(db, SearchQuery(limit=6)))
    return _templates(request).TemplateResponse(
        request, "public/home.html", {"hits": result.hits, "form": {}}
    )


# A search's count is kept this long per worker: the next and previous pages (and the same
# search asked again) reuse it instead of counting again. A few seconds' staleness in « 123
# événements » is harmless; the list itself is always computed.
COUNT_CACHE_SECONDS = 60.0
COUNT_CACHE_ENTRIES = 4096


@dataclass
class RecentCounts:
    ttl: float = COUNT_CACHE_SECONDS
    max_entries: int = COUNT_CACHE_ENTRIES
    clock: Callable[[], float] = time.monotonic
    _entries: OrderedDict[str, tuple[float, int]] = field(default_factory=OrderedDict)

    @staticmethod
    def key(query: SearchQuery) -> str:
        # The count does not depend on the order or the page.
        return canonical_key(dataclasses.replace(query, sort="distance", cursor=None), paging=False)

    def get(self, key: str) -> int | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1]

    def clear(self) -> None:
        self._entries.clear()

    def put(self, key: str, count: int) -> None:
        self._entries[key] = (self.clock() + self.ttl, count)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def counts_of(app: Starlette) -> RecentCounts:
    """The application's RecentCounts, created on first use (each app, each test, its own)."""
    counts: RecentCounts | None = getattr(app.state, "search_counts", None)
    if counts is None:
        counts = RecentCounts()
        app.state.search_counts = counts
    return counts


@dataclass(frozen=True)
class _ResultsPage:
    result: SearchResult
    approximate: set[int]
    radius_km: float


def _map_data(settings: Settings, page: _ResultsPage) -> dict[str, Any] | None:
    """What static/js/results-map.js draws: the tiles, the search circle, a pin per event
    of the page that has a place. None when the map is off (MAP_TILES_URL empty)."""
    if settings.map_tiles_origin is None:
        return None
    place = page.result.place
    pins = [
        {
            "id": hit.event.id,
            "title": hit.event.title,
            "url": f"/evenements/{hit.event.id}",
            "lat": hit.event.venue_lat,
            "lon": hit.event.venue_lon,
            "city": hit.event.venue_city or "",
            "when": fr_date(hit.event.starts_at, hit.event.timezone),
            "approximate": hit.event.id in page.approximate,
        }
        for hit in page.result.hits
        if hit.event.format != "online" and hit.event.venue_lat is not None
    ]
    circle = None
    if place is not None:
        circle = {
            "lat": place.lat,
            "lon": place.lon,
            "radius_m": page.radius_km * 1000,
            "label": place.label,
        }
    return {
        "tiles": settings.map_tiles_url,
        "attribution": settings.map_tiles_attribution,
        "circle": circle,
        "pins": pins,
    }


async def search_page(request: Request) -> Response:
    form: dict[str, Any] = {
        "q": request.query_params.get("q", ""),
        "near": request.query_params.get("near", ""),
        "radius_km": request.query_params.get("radius_km", "30"),
        "sector": request.query_params.getlist("sector"),
        "type": request.query_params.getlist("type"),
        "format": request.query_params.getlist("format"),
        "from": request.query_params.get("from", ""),
        "to": request.query_params.get("to", ""),
        "available": request.query_params.get("available", ""),
        "agency": request.query_params.get("agency", ""),
        "sort": request.query_params.get("sort", ""),
    }
    settings = settings_of(request)
    error: InvalidInput | None = None
    page: _ResultsPage | None = None
    # A place several communes share, or a misspelt one: each candidate is a link that runs
    # the same search with it (never a silent pick).
    place_links: list[tuple[str, str]] = []
    agency: str | None = None
    try:
        query = parse_search_query(request.query_params)
        counts = counts_of(request.app)
        count_key = counts.key(query)
        known = counts.get(count_key)

        def work(db: Session) -> tuple[_ResultsPage, str | None]:
            result = search_events(db, query, count=known is None)
            venues = [(h.event.id, h.event.venue_lat, h.event.venue_lon) for h in result.hits]
            results = _ResultsPage(result, approximate_venues(db, venues), query.radius_km)
            return results, agency_name(db, query.agency)

        loaded, agency = await in_transaction(request, work)
        page = loaded
        if known is None and loaded.result.count is not None:
            counts.put(count_key, loaded.result.count)
        else:
            loaded.result.count = known
    except InvalidInput as exc:
        error = exc
        if isinstance(exc, AmbiguousPlace):
            choices = exc.choices
        elif isinstance(exc, UnknownPlace):
            choices = exc.suggestions
        else:
            choices = []
        place_links = [(label, _page_url(request, None, near=label)) for label in choices]
    result = page.result if page else None
    context = {
        "form": form,
        "error": error,
        "errors": {error.field: error.message} if error and error.field else {},
        "place_links": place_links,
        "place_ambiguous": isinstance(error, AmbiguousPlace),
        "hits": result.hits if result else [],
        "approximate": page.approximate if page else set(),
        "place": result.place if result else None,
        "count": result.count if result else None,
        "count_cap": COUNT_CAP,
        "next_url": _page_url(request, result.next_cursor)
        if result and result.next_cursor
        else None,
        "prev_url": _page_url(request, result.prev_cursor)
        if result and result.prev_cursor
        else None,
        "is_continuation": bool(request.query_params.get("cursor")),
        "first_url": _page_url(request, None),
        "subscribe": feed_links(settings, request.query_params, agency_name=agency),
        "map": _map_data(settings, page) if page else None,
    }
    headers = None
    if context["map"] is not None and settings.map_tiles_origin is not None:
        headers = {"Content-Security-Policy": content_security_policy(settings.map_tiles_origin)}
    return _templates(request).TemplateResponse(
        request,
        "public/events/search.html",
        context,
        status_code=400 if error else 200,
        headers=headers,
    )


def _event_page(
    request: Request,
    event: Event,
    *,
    form: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    notice: str | None = None,
    status_code: int = 200,
    copies: Sequence[Copy] = (),
    approximate: bool = False,
) -> Response:
    return _templates(request).TemplateResponse(
        request,
        "public/events/detail.html",
        {
            "event": event,
            "state": registration_state(event),
            "seats_left": seats_left(event),
            "remote_seats_left": remote_seats_left(event),
            "form": form or {},
            "errors": errors or {},
            "notice": notice,
            "retention_days": settings_of(request).retention_days,
            "calendar_links": add_to_calendar_links(event, settings_of(request)),
            "subscribe": feed_links(
                settings_of(request),
                QueryParams({"agency": event.agency.slug}),
                agency_name=event.agency.name,
            ),
            "copies": copies,
            "approximate_position": approximate,
            "structured_data": event_jsonld(event, url=event_url(settings_of(request), event.id)),
        },
        status_code=status_code,
    )


async def event_page(request: Request) -> Response:
    event_id = path_id(request)
    seeker_id = current_seeker_id(request)

    def work(db: Session) -> tuple[Event, dict[str, Any], list[Copy], bool]:
        event = get_event(db, event_id)
        copies = copies_of(db, [event])[event.id]
        seeker = seeker_of_session(db, seeker_id, request.session.get("seeker_stamp"))
        prefill: dict[str, Any] = {}
        if seeker is not None:
            prefill = {
                "first_name": seeker.first_name or "",
                "last_name": seeker.last_name or "",
                "email": seeker.email,
                "phone": seeker.phone or "",
            }
        return event, prefill, copies, _approximate(db, event)

    event, prefill, copies, approximate = await in_transaction(request, work)
    return _event_page(request, event, form=prefill, copies=copies, approximate=approximate)


def _approximate(db: Session, event: Event) -> bool:
    return bool(approximate_venues(db, [(event.id, event.venue_lat, event.venue_lon)]))


def person_errors(payload: Mapping[str, Any]) -> dict[str, str]:
    """Every invalid field of the registration form with its message (empty when valid)."""
    errors: dict[str, str] = {}
    values = dict(payload)
    for _ in VALID_STAND_INS:
        try:
            person_of(values, require_consent=True)
        except InvalidInput as exc:
            field = exc.field or "form"
            if field in errors or field not in VALID_STAND_INS:
                errors.setdefault(field, exc.message)
                break
            errors[field] = exc.message
            values[field] = VALID_STAND_INS[field]
        else:
            break
    return errors


@dataclass(frozen=True)
class _EventAgain:
    """The event page shown again: with the refusal (the registration's writes rolled back to
    a savepoint), or, without one, to a person already registered."""

    event: Event
    refusal: InvalidInput | Conflict | RateLimited | None = None
    approximate: bool = False


async def register_form(request: Request) -> Response:
    event_id = path_id(request)
    settings = settings_of(request)
    raw = await request.form()
    form = {key: str(raw.get(key) or "") for key in PERSON_FORM_FIELDS}
    seeker_id = current_seeker_id(request)
    person_payload: dict[str, Any] = {
        "first_name": form["first_name"],
        "last_name": form["last_name"],
        "email": form["email"],
        "phone": form["phone"] or None,
        "attendance": form["attendance"] or None,
        "consent": form["consent"],
    }
    stamp = request.session.get("seeker_stamp")
    person: Person | None = None
    early: InvalidInput | RateLimited | None = None
    try:
        check_rate(request, "registration", settings.rate_limit_registration)
        person = person_of(person_payload, require_consent=True)
    except (InvalidInput, RateLimited) as exc:
        early = exc

    def work(db: Session) -> RegistrationOutcome | _EventAgain:
        # One unit of work whatever the answer: the registration, or the event page again.
        if person is None:
            event = get_event(db, event_id)
            return _EventAgain(event, early, _approximate(db, event))
        seeker = seeker_of_session(db, seeker_id, stamp)
        try:
            with db.begin_nested():
                outcome = register(
                    db,
                    event_id=event_id,
                    person=person,
                    notifier=notifier(request, db),
                    seeker_id=seeker.id if seeker is not None else None,
                )
        except (InvalidInput, Conflict) as exc:
            event = get_event(db, event_id)
            return _EventAgain(event, exc, _approximate(db, event))
        if not outcome.created:
            event = get_event(db, event_id)
            return _EventAgain(event, None, _approximate(db, event))
        return outcome

    answer = await in_transaction(request, work, lock=person is not None)
    if isinstance(answer, RegistrationOutcome):
        return RedirectResponse(
            f"/inscriptions/{answer.registration.token}?nouvelle=1",
            status_code=303,
            background=deliver_mail_soon(request),
        )
    refusal = answer.refusal
    if refusal is None:
        response = _event_page(
            request, answer.event, notice=ALREADY_REGISTERED, approximate=answer.approximate
        )
        response.background = deliver_mail_soon(request)
        return response
    errors = {refusal.field or "form": refusal.message}
    if isinstance(refusal, InvalidInput) and refusal.field in VALID_STAND_INS:
        errors = person_errors({**person_payload, "attendance": None}) or errors
        if refusal.field == "attendance":
            errors.setdefault("attendance", refusal.message)
    return _event_page(
        request,
        answer.event,
        form=form,
        errors=errors,
        status_code=refusal.status_code,
        approximate=answer.approximate,
    )


async def registration_page(request: Request) -> Response:
    token = str(request.path_params["token"])
    registration = await in_transaction(request, lambda db: get_registration(db, token))
    return _templates(request).TemplateResponse(
        request,
        "public/registrations/manage.html",
        {
            "registration": registration,
            "event": registration.event,
            "just_created": request.query_params.get("nouvelle") == "1",
            "just_cancelled": request.query_params.get("annulee") == "1",
            "state": manage_state(registration, registration.event),
            "calendar_links": add_to_calendar_links(registration.event, settings_of(request)),
        },
        headers={"Cache-Control": "no-store"},
    )


async def cancel_confirm_page(request: Request) -> Response:
    """The confirmation asked before cancelling, as a page of its own (without JavaScript the
    manage page's button leads here; with it, the same question is a dialog). A GET: mail
    scanners that follow it cancel nothing."""
    token = str(request.path_params["token"])
    registration = await in_transaction(request, lambda db: get_registration(db, token))
    if not manage_state(registration, registration.event).can_cancel:
        return RedirectResponse(f"/inscriptions/{token}", status_code=303)
    return _templates(request).TemplateResponse(
        request,
        "public/registrations/cancel_confirm.html",
        {"registration": registration, "event": registration.event},
        headers={"Cache-Control": "no-store"},
    )


async def cancel_form(request: Request) -> Response:
    token = str(request.path_params["token"])

    def work(db: Session) -> Registration:
        return cancel_registration(db, token=token, notifier=notifier(request, db))

    await in_transaction(request, work, lock=True)
    return RedirectResponse(
        f"/inscriptions/{token}?annulee=1", status_code=303, background=deliver_mail_soon(request)
    )


LOST_LINK_PATH = "/inscriptions/lien-perdu"


async def lost_link_page(request: Request) -> Response:
    return _templates(request).TemplateResponse(
        request,
        "public/registrations/lost_link.html",
        {"sent": request.query_params.get("envoye") == "1", "form": {}, "errors": {}},
    )


async def lost_link_form(request: Request) -> Response:
    """Mail the links of every live registration of an address; the same answer whether or
    not there is any (nobody learns who registered with an address they typed)."""
    settings = settings_of(request)
    raw = await request.form()
    email = raw.get("email")
    form = {"email": email if isinstance(email, str) else ""}
    try:
        check_rate(request, "lost_links", settings.rate_limit_signin)
        await in_transaction(
            request,
            lambda db: resend_links(db, email=form["email"], notifier=notifier(request, db)),
        )
    except (InvalidInput, RateLimited) as exc:
        return _templates(request).TemplateResponse(
            request,
            "public/registrations/lost_link.html",
            {"sent": False, "form": form, "errors": {exc.field or "form": exc.message}},
            status_code=exc.status_code,
        )
    return RedirectResponse(
        f"{LOST_LINK_PATH}?envoye=1", status_code=303, background=deliver_mail_soon(request)
    )


async def accessibility_page(request: Request) -> Response:
    return _templates(request).TemplateResponse(request, "public/accessibility.html", {})


async def privacy_page(request: Request) -> Response:
    return _templates(request).TemplateResponse(
        request,
        "public/privacy.html",
        {
            "retention_days": settings_of(request).retention_days,
            "alert_unconfirmed_days": UNCONFIRMED_DAYS,
        },
    )


routes: list[BaseRoute] = [
    Route("/", home, methods=["GET"], name="public:home"),
    Route("/evenements", search_page, methods=["GET"], name="public:search"),
    Route("/evenements/{id}", event_page, methods=["GET"], name="public:event"),
    Route("/evenements/{id}/inscription", register_form, methods=["POST"], name="public:register"),
    # Before /inscriptions/{token}, which would take « lien-perdu » for a token.
    Route(LOST_LINK_PATH, lost_link_page, methods=["GET"], name="public:lost_link"),
    Route(LOST_LINK_PATH, lost_link_form, methods=["POST"], name="public:lost_link_post"),
    Route("/inscriptions/{token}", registration_page, methods=["GET"], name="public:registration"),
    Route(
        "/inscriptions/{token}/annulation",
        cancel_confirm_page,
        methods=["GET"],
        name="public:cancel_registration_confirm",
    ),
    Route(
        "/inscriptions/{token}/annulation",
        cancel_form,
        methods=["POST"],
        name="public:cancel_registration",
    ),
    Route("/donnees-personnelles", privacy_page, methods=["GET"], name="public:privacy"),
    Route("/accessibilite", accessibility_page, methods=["GET"], name="public:accessibility"),
]
