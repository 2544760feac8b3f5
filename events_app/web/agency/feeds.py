"""The agency's feeds with their import runs, and its API token."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from events_app.agencies import rotate_api_token
from events_app.db import PARIS
from events_app.errors import (
    Conflict,
    InvalidInput,
)
from events_app.feeds import add_feed
from events_app.models import AgencyStaff, Feed, ImportRun
from events_app.staff import (
    feeds_with_runs,
)
from events_app.vocab import FEED_FORMATS
from events_app.web.agency.event_form import _whole_number, form_error
from events_app.web.agency.session import HOME, _notice, _render, _staff_only, _text, _who
from events_app.web.common import (
    in_transaction,
)
from importers import csv as csv_import

RUN_STATUSES = {
    "running": "En cours",
    "succeeded": "Réussi",
    "failed": "Échec",
    "not_modified": "Inchangé depuis la dernière lecture",
    "interrupted": "Interrompu",
}


async def _feeds_page(
    request: Request,
    *,
    form: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    who = _who(request)

    def work(db: Session) -> tuple[AgencyStaff, list[tuple[Feed, list[ImportRun]]]]:
        staff = who.staff(db)
        return staff, feeds_with_runs(db, agency_id=staff.agency_id)

    staff, feeds = await in_transaction(request, work)
    return _render(
        request,
        "feeds/list.html",
        {
            "staff": staff,
            "feeds": feeds,
            "form": form or {"format": "ft-json", "interval_minutes": "60"},
            "errors": errors or {},
            "notice": None if errors else _notice(request),
            "FEED_FORMATS": FEED_FORMATS,
            "RUN_STATUSES": RUN_STATUSES,
            "nav": "feeds",
        },
        status_code=status_code,
    )


@_staff_only
async def feeds_page(request: Request) -> Response:
    return await _feeds_page(request)


@_staff_only
async def add_feed_form(request: Request) -> Response:
    who = _who(request)
    raw = await request.form()
    form = {name: _text(raw, name).strip() for name in ("url", "format", "interval_minutes")}

    def work(db: Session) -> None:
        staff = who.staff(db)
        interval = _whole_number(
            form["interval_minutes"],
            "interval_minutes",
            "Indiquez un nombre entier de minutes, ou rien pour un import à la main.",
        )
        add_feed(
            db,
            agency_id=staff.agency_id,
            url=form["url"],
            format=form["format"],
            interval_minutes=interval,
        )

    try:
        await in_transaction(request, work)
    except (InvalidInput, Conflict) as exc:
        return await _feeds_page(
            request, form=form, errors=form_error(exc), status_code=exc.status_code
        )
    return RedirectResponse(f"{HOME}/flux?fait=flux", status_code=303)


@_staff_only
async def formats_page(request: Request) -> Response:
    staff = await in_transaction(request, _who(request).staff)
    return _render(request, "feeds/formats.html", {"staff": staff, "nav": "feeds"})


@_staff_only
async def csv_template(request: Request) -> Response:
    """The spreadsheet template, its example event a month ahead."""
    first_day = datetime.now(PARIS) + timedelta(days=30)
    return Response(
        csv_import.template(first_day),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="modele-evenements.csv"'},
    )


# --- API token ---------------------------------------------------------------------------------


@_staff_only
async def token_page(request: Request) -> Response:
    staff = await in_transaction(request, _who(request).staff)
    return _render(request, "token/show.html", {"staff": staff, "token": None, "nav": "token"})


@_staff_only
async def rotate_token_form(request: Request) -> Response:
    who = _who(request)

    def work(db: Session) -> tuple[AgencyStaff, str]:
        staff = who.staff(db)
        return staff, rotate_api_token(db, staff.agency)

    staff, token = await in_transaction(request, work)
    # Shown once, in this answer only (no-store): only its hash is kept.
    return _render(request, "token/show.html", {"staff": staff, "token": token, "nav": "token"})
