"""The scan page of one event: staff check people in at the door, from a phone.

The typed-code form is a plain POST that works without JavaScript; static/js/scan.js adds the
camera (the browser's BarcodeDetector, where there is one) and posts the same form with
`Accept: application/json`, to show the answer without leaving the page. Both go through
events_app.checkins.check_in, as the agency API does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from events_app.checkins import UNKNOWN_CODE, check_in, checkin_closed_reason
from events_app.db import utcnow
from events_app.errors import Conflict, NotFound
from events_app.events import get_event
from events_app.formatting import fr_time
from events_app.models import AgencyStaff, Event
from events_app.web.agency.session import NO_STORE, _render, _staff_only, _text, _who
from events_app.web.common import in_transaction, path_id

# The camera is refused to every page by default (web/security.py); this page asks for it.
SCAN_PERMISSIONS = {"Permissions-Policy": "geolocation=(), camera=(self), microphone=()"}
MAX_CODE = 64


@dataclass(frozen=True)
class ScanResult:
    """What the page shows in large after a scan: « Présent·e », « Déjà pointé·e à 9 h 42 »,
    or why not."""

    outcome: str  # "present", "already", "unknown", "closed"
    headline: str
    name: str | None = None
    detail: str | None = None

    def as_json(self) -> bytes:
        return orjson.dumps(
            {
                "outcome": self.outcome,
                "headline": self.headline,
                "name": self.name,
                "detail": self.detail,
                "already": self.outcome == "already",
                "attended": self.outcome in ("present", "already"),
            }
        )


async def _load(request: Request, event_id: int) -> tuple[AgencyStaff, Event]:
    who = _who(request)

    def work(db: Session) -> tuple[AgencyStaff, Event]:
        staff = who.staff(db)
        return staff, get_event(db, event_id, agency_id=staff.agency_id)

    return await in_transaction(request, work)


def _page(
    request: Request,
    staff: AgencyStaff,
    event: Event,
    *,
    result: ScanResult | None = None,
    status_code: int = 200,
    now: datetime | None = None,
) -> Response:
    response = _render(
        request,
        "events/scan.html",
        {
            "staff": staff,
            "event": event,
            "result": result,
            "closed_reason": checkin_closed_reason(event, now or utcnow()),
        },
        status_code=status_code,
    )
    response.headers.update(SCAN_PERMISSIONS)
    return response


@_staff_only
async def scan_page(request: Request) -> Response:
    staff, event = await _load(request, path_id(request))
    return _page(request, staff, event)


@_staff_only
async def scan_form(request: Request) -> Response:
    who = _who(request)
    event_id = path_id(request)
    raw = await request.form()
    code = _text(raw, "code")[:MAX_CODE]
    wants_json = "application/json" in request.headers.get("accept", "")

    def work(db: Session) -> ScanResult:
        staff = who.staff(db)
        done = check_in(
            db,
            event_id=event_id,
            agency_id=staff.agency_id,
            code=code,
            by=staff.name or staff.email,
        )
        person = f"{done.registration.first_name} {done.registration.last_name}".strip()
        if done.already:
            return ScanResult(
                "already",
                f"Déjà pointé·e à {fr_time(done.checked_in_at)}",
                person,
                f"Par {done.registration.checked_in_by}"
                if done.registration.checked_in_by
                else None,
            )
        return ScanResult("present", "Présent·e", person)

    status_code = 200
    try:
        result = await in_transaction(request, work, lock=True)
    except NotFound as exc:
        if exc.field != "code":
            raise
        result, status_code = ScanResult("unknown", UNKNOWN_CODE.rstrip(".")), 404
    except Conflict as exc:
        result, status_code = ScanResult("closed", "Pointage fermé", detail=exc.message), 409
    if wants_json:
        return Response(
            result.as_json(),
            status_code=status_code,
            media_type="application/json",
            headers=NO_STORE,
        )
    staff, event = await _load(request, event_id)
    return _page(request, staff, event, result=result, status_code=status_code)
