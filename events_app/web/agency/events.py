"""The dashboard and one event's pages: create, edit, cancel, close or reopen registrations,
duplicate."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from events_app.db import utcnow
from events_app.duplicates import Copy, copies_of, dismiss_duplicates
from events_app.errors import (
    Conflict,
    InvalidInput,
)
from events_app.events import (
    create_event,
    get_event,
    parse_datetime,
    registration_state,
)
from events_app.models import AgencyStaff, Event
from events_app.registrations import (
    cancel_agency_event,
    edit_event,
)
from events_app.staff import (
    DashboardRow,
    EventRegistrants,
    agency_dashboard,
    attendance_open,
    attendance_opens_at,
    duplicate_event,
    event_registrants,
    set_registration_closed,
)
from events_app.web.agency.event_form import (
    NEW_EVENT_VALUES,
    _local_datetime,
    event_form_values,
    form_error,
    parse_event_form,
    read_event_form,
    unchanged_description,
)
from events_app.web.agency.session import (
    HOME,
    MAX_CANCEL_MESSAGE,
    _notice,
    _render,
    _staff_only,
    _text,
    _Who,
    _who,
)
from events_app.web.common import (
    deliver_mail_soon,
    in_transaction,
    notifier,
    path_id,
)


@_staff_only
async def dashboard(request: Request) -> Response:
    who = _who(request)

    def work(db: Session) -> tuple[AgencyStaff, dict[str, list[DashboardRow]]]:
        staff = who.staff(db)
        return staff, agency_dashboard(db, agency_id=staff.agency_id, now=utcnow())

    staff, sections = await in_transaction(request, work)
    return _render(
        request,
        "events/list.html",
        {"staff": staff, "sections": sections, "notice": _notice(request), "nav": "events"},
    )


# --- Create and edit ---------------------------------------------------------------------------


@_staff_only
async def new_event_page(request: Request) -> Response:
    who = _who(request)
    staff = await in_transaction(request, who.staff)
    return _render(
        request,
        "events/form.html",
        {"staff": staff, "form": NEW_EVENT_VALUES, "event": None, "nav": "new"},
    )


@_staff_only
async def new_event_form(request: Request) -> Response:
    who = _who(request)
    values = read_event_form(await request.form())

    def work(db: Session) -> int:
        staff = who.staff(db)
        return create_event(db, agency_id=staff.agency_id, fields=parse_event_form(values)).id

    try:
        event_id = await in_transaction(request, work)
    except InvalidInput as exc:
        staff = await in_transaction(request, who.staff)
        return _render(
            request,
            "events/form.html",
            {"staff": staff, "form": values, "errors": form_error(exc), "event": None},
            status_code=exc.status_code,
        )
    return RedirectResponse(f"{HOME}/evenements/{event_id}?fait=cree", status_code=303)


@_staff_only
async def edit_event_page(request: Request) -> Response:
    who = _who(request)
    event_id = path_id(request)

    def work(db: Session) -> tuple[AgencyStaff, Event]:
        staff = who.staff(db)
        return staff, get_event(db, event_id, agency_id=staff.agency_id)

    staff, event = await in_transaction(request, work)
    return _render(
        request,
        "events/form.html",
        {"staff": staff, "event": event, "form": event_form_values(event)},
    )


@_staff_only
async def edit_event_form(request: Request) -> Response:
    who = _who(request)
    event_id = path_id(request)
    values = read_event_form(await request.form())

    def work(db: Session) -> None:
        staff = who.staff(db)
        # Ownership first: another agency learns nothing from validation messages.
        event = get_event(db, event_id, agency_id=staff.agency_id)
        fields = parse_event_form(values)
        unchanged_description(fields, values, event)
        edit_event(
            db,
            event_id=event_id,
            agency_id=staff.agency_id,
            fields=fields,
            notifier=notifier(request, db),
        )

    try:
        await in_transaction(request, work, lock=True)
    except InvalidInput as exc:

        def reload(db: Session) -> tuple[AgencyStaff, Event]:
            staff = who.staff(db)
            return staff, get_event(db, event_id, agency_id=staff.agency_id)

        staff, event = await in_transaction(request, reload)
        return _render(
            request,
            "events/form.html",
            {"staff": staff, "event": event, "form": values, "errors": form_error(exc)},
            status_code=exc.status_code,
        )
    return RedirectResponse(
        f"{HOME}/evenements/{event_id}?fait=modifie",
        status_code=303,
        background=deliver_mail_soon(request),
    )


# --- One event: registrants and actions --------------------------------------------------------


@dataclass(frozen=True)
class _EventView:
    staff: AgencyStaff
    event: Event
    registrants: EventRegistrants
    copies: list[Copy]


def _load_event_view(who: _Who, event_id: int) -> Callable[[Session], _EventView]:
    def work(db: Session) -> _EventView:
        staff = who.staff(db)
        event = get_event(db, event_id, agency_id=staff.agency_id)
        registrants = event_registrants(db, event_id=event_id, agency_id=staff.agency_id)
        return _EventView(staff, event, registrants, copies_of(db, [event])[event.id])

    return work


async def _event_page(
    request: Request,
    event_id: int,
    *,
    errors: Mapping[str, str] | None = None,
    form: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    view = await in_transaction(request, _load_event_view(_who(request), event_id))
    now = utcnow()
    event = view.event
    return _render(
        request,
        "events/detail.html",
        {
            "staff": view.staff,
            "event": event,
            "registrants": view.registrants,
            "copies": view.copies,
            "state": registration_state(event, now),
            "attendance_open": attendance_open(event, now),
            "attendance_opens_at": attendance_opens_at(event),
            "notice": None if errors else _notice(request),
            "errors": errors or {},
            "form": form or {},
            "now": now,
        },
        status_code=status_code,
    )


@_staff_only
async def event_page(request: Request) -> Response:
    return await _event_page(request, path_id(request))


def _back_to_event(request: Request, event_id: int, done: str) -> Response:
    return RedirectResponse(
        f"{HOME}/evenements/{event_id}?fait={done}",
        status_code=303,
        background=deliver_mail_soon(request),
    )


@_staff_only
async def cancel_event_form(request: Request) -> Response:
    who = _who(request)
    event_id = path_id(request)
    raw = await request.form()
    message = _text(raw, "message").strip()
    confirmed = _text(raw, "confirm") == "1"

    def check_message() -> None:
        if len(message) > MAX_CANCEL_MESSAGE:
            raise InvalidInput(
                "cancel_message",
                f"Le message dépasse {MAX_CANCEL_MESSAGE} caractères\u00a0: raccourcissez-le.",
            )

    if not confirmed:
        # « Définitive »: first the question, on a page of its own (with JavaScript, the event
        # page asks it in a dialog and sends confirm=1 at once).
        try:
            check_message()
        except InvalidInput as exc:
            return await _event_page(
                request,
                event_id,
                errors=form_error(exc),
                form={"cancel_message": message},
                status_code=exc.status_code,
            )
        view = await in_transaction(request, _load_event_view(who, event_id))
        if view.event.status == "cancelled":
            return RedirectResponse(f"{HOME}/evenements/{event_id}", status_code=303)
        return _render(
            request,
            "events/cancel_confirm.html",
            {
                "staff": view.staff,
                "event": view.event,
                "registrants": view.registrants,
                "message": message,
            },
        )

    def work(db: Session) -> None:
        staff = who.staff(db)
        get_event(db, event_id, agency_id=staff.agency_id)
        check_message()
        cancel_agency_event(
            db,
            event_id=event_id,
            agency_id=staff.agency_id,
            notifier=notifier(request, db),
            message=message or None,
        )

    try:
        await in_transaction(request, work, lock=True)
    except (InvalidInput, Conflict) as exc:
        return await _event_page(
            request,
            event_id,
            errors=form_error(exc),
            form={"cancel_message": message},
            status_code=exc.status_code,
        )
    return _back_to_event(request, event_id, "annule")


@_staff_only
async def dismiss_duplicates_form(request: Request) -> Response:
    """« Ce n'est pas le même événement »: the agency's event leaves its group, for good."""
    who = _who(request)
    event_id = path_id(request)

    def work(db: Session) -> None:
        staff = who.staff(db)
        dismiss_duplicates(db, agency_id=staff.agency_id, event_id=event_id)

    await in_transaction(request, work, lock=True)
    return _back_to_event(request, event_id, "distinct")


@_staff_only
async def registrations_state_form(request: Request) -> Response:
    who = _who(request)
    event_id = path_id(request)
    raw = await request.form()
    closed = _text(raw, "closed") == "1"

    def work(db: Session) -> None:
        staff = who.staff(db)
        set_registration_closed(db, event_id=event_id, agency_id=staff.agency_id, closed=closed)

    try:
        await in_transaction(request, work, lock=True)
    except Conflict as exc:
        return await _event_page(
            request,
            event_id,
            errors={"registration_state": exc.message},
            status_code=exc.status_code,
        )
    return _back_to_event(request, event_id, "fermees" if closed else "rouvertes")


@_staff_only
async def duplicate_event_form(request: Request) -> Response:
    who = _who(request)
    event_id = path_id(request)
    raw = await request.form()
    starts_text = _text(raw, "starts_at")

    def work(db: Session) -> int:
        staff = who.staff(db)
        get_event(db, event_id, agency_id=staff.agency_id)  # ownership before validation
        local = _local_datetime(starts_text, "starts_at", required=True)
        starts_at = parse_datetime(local, "starts_at")  # read in Paris time, years 2000-2100
        copy = duplicate_event(
            db, event_id=event_id, agency_id=staff.agency_id, starts_at=starts_at
        )
        return copy.id

    try:
        copy_id = await in_transaction(request, work)
    except InvalidInput as exc:
        error = form_error(exc)
        # The copy's own fields (a window closing after the new end…) are the source's: say so
        # beside the only input of this form.
        message = next(iter(error.values()))
        return await _event_page(
            request,
            event_id,
            errors={"duplicate_starts_at": message},
            form={"duplicate_starts_at": starts_text},
            status_code=exc.status_code,
        )
    return RedirectResponse(f"{HOME}/evenements/{copy_id}?fait=duplique", status_code=303)
