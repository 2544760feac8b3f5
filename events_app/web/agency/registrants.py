"""An event's registrants: attendance and the CSV export."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from events_app.errors import (
    Conflict,
    NotFound,
)
from events_app.registrations import (
    list_registrants,
    registrants_csv,
)
from events_app.staff import (
    mark_attendance,
)
from events_app.web.agency.events import _event_page
from events_app.web.agency.session import HOME, NO_STORE, _staff_only, _text, _who
from events_app.web.common import (
    MAX_DB_ID,
    in_transaction,
    path_id,
)


def _registration_id(request: Request) -> int:
    raw = str(request.path_params["registration_id"])
    value = int(raw) if raw.isdigit() and len(raw) <= 10 else -1
    if not 0 < value <= MAX_DB_ID:
        raise NotFound("Inscription introuvable.", field="registration")
    return value


@_staff_only
async def attendance_form(request: Request) -> Response:
    who = _who(request)
    event_id = path_id(request)
    registration_id = _registration_id(request)
    raw = await request.form()
    present = _text(raw, "present") == "1"

    def work(db: Session) -> None:
        staff = who.staff(db)
        mark_attendance(
            db,
            event_id=event_id,
            agency_id=staff.agency_id,
            registration_id=registration_id,
            present=present,
            by=staff.name or staff.email,
        )

    try:
        await in_transaction(request, work, lock=True)
    except Conflict as exc:
        return await _event_page(
            request,
            event_id,
            errors={f"registration-{registration_id}": exc.message},
            status_code=exc.status_code,
        )
    return RedirectResponse(
        f"{HOME}/evenements/{event_id}?fait=presence#inscrit-{registration_id}", status_code=303
    )


@_staff_only
async def registrants_csv_export(request: Request) -> Response:
    who = _who(request)
    event_id = path_id(request)

    def work(db: Session) -> bytes:
        staff = who.staff(db)
        return registrants_csv(list_registrants(db, event_id=event_id, agency_id=staff.agency_id))

    body = await in_transaction(request, work)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="inscrits-{event_id}.csv"',
            **NO_STORE,
        },
    )


# --- Feeds -------------------------------------------------------------------------------------
