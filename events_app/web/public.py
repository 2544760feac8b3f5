"""Public pages for job seekers: home, search results, event page."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from events_app.errors import InvalidInput
from events_app.events import get_event, registration_state, remote_seats_left, seats_left
from events_app.search import SearchQuery, SearchResult, search_events
from events_app.web.common import in_transaction, path_id
from events_app.web.params import parse_search_query


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.state.templates
    return templates


def _next_page_url(request: Request, cursor: str) -> str:
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    items.append(("cursor", cursor))
    return f"{request.url.path}?{QueryParams(items)}"


async def home(request: Request) -> Response:
    result = await in_transaction(request, lambda db: search_events(db, SearchQuery(limit=6)))
    return _templates(request).TemplateResponse(
        request, "public/home.html", {"hits": result.hits, "form": {}}
    )


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
    }
    error: InvalidInput | None = None
    result: SearchResult | None = None
    try:
        query = parse_search_query(request.query_params)
        result = await in_transaction(request, lambda db: search_events(db, query))
    except InvalidInput as exc:
        error = exc
    context = {
        "form": form,
        "error": error,
        "errors": {error.field: error.message} if error and error.field else {},
        "hits": result.hits if result else [],
        "place": result.place if result else None,
        "next_url": _next_page_url(request, result.next_cursor)
        if result and result.next_cursor
        else None,
        "is_continuation": bool(request.query_params.get("cursor")),
    }
    return _templates(request).TemplateResponse(
        request, "public/events/search.html", context, status_code=400 if error else 200
    )


async def event_page(request: Request) -> Response:
    event_id = path_id(request)
    event = await in_transaction(request, lambda db: get_event(db, event_id))
    return _templates(request).TemplateResponse(
        request,
        "public/events/detail.html",
        {
            "event": event,
            "state": registration_state(event),
            "seats_left": seats_left(event),
            "remote_seats_left": remote_seats_left(event),
        },
    )


routes: list[BaseRoute] = [
    Route("/", home, methods=["GET"], name="public:home"),
    Route("/evenements", search_page, methods=["GET"], name="public:search"),
    Route("/evenements/{id}", event_page, methods=["GET"], name="public:event"),
]
