"""The agency back office under /organisme: staff sign-in and password, the agency's events
(create, edit, duplicate, cancel, close or reopen registrations), registrants and attendance,
CSV export, feeds and their import runs, and the API token.

Staff sessions use their own keys (staff_id and the stamp of the password they were opened
with), in the same signed cookie as seekers' sessions; every sign-in, staff or seeker, starts
from an empty session, so one browser is never both at once. Every page needs a signed-in staff
member, and every query is scoped to that person's agency: another agency's event is a 404
page, never a 403 that would confirm it exists.

Forms are turned into the agency API's field dict (parse_event_form) and validated by the same
domain functions as the API; their InvalidInput errors are shown beside the field, with status
400, in French words rather than API field names.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from events_app.agencies import rotate_api_token
from events_app.db import utcnow
from events_app.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
)
from events_app.events import (
    MAX_TITLE,
    create_event,
    get_event,
    parse_datetime,
    registration_state,
)
from events_app.feeds import add_feed
from events_app.models import AgencyStaff, Event, Feed, ImportRun
from events_app.registrations import (
    cancel_agency_event,
    edit_event,
    list_registrants,
    registrants_csv,
)
from events_app.staff import (
    INVITATION_MAX_AGE_SECONDS,
    MIN_PASSWORD_LENGTH,
    RESET_MAX_AGE_SECONDS,
    DashboardRow,
    EventRegistrants,
    agency_dashboard,
    attendance_open,
    attendance_opens_at,
    authenticate_staff,
    check_staff_token,
    duplicate_event,
    event_registrants,
    feeds_with_runs,
    mark_attendance,
    password_stamp,
    request_staff_password_reset,
    reset_staff_password,
    set_registration_closed,
    staff_of_session,
)
from events_app.vocab import FEED_FORMATS
from events_app.web.common import (
    MAX_DB_ID,
    check_rate,
    deliver_mail_soon,
    in_transaction,
    notifier,
    path_id,
    settings_of,
)
from events_app.web.schemas import event_fields

SESSION_STAFF = "staff_id"
SESSION_STAMP = "staff_stamp"
HOME = "/organisme"
SIGN_IN = "/organisme/connexion"
NO_STORE = {"Cache-Control": "no-store"}
PARIS = ZoneInfo("Europe/Paris")
MAX_CANCEL_MESSAGE = 2000

RUN_STATUSES = {
    "running": "En cours",
    "succeeded": "Réussi",
    "failed": "Échec",
    "not_modified": "Inchangé depuis la dernière lecture",
}

NOTICES = {
    "cree": "L’événement est créé et publié.",
    "modifie": "Les modifications sont enregistrées.",
    "duplique": "Voici la copie de l’événement, à la nouvelle date. Vérifiez-la et modifiez-la "
    "si besoin.",
    "annule": "L’événement est annulé. Les personnes inscrites sont prévenues par e-mail.",
    "fermees": "Les inscriptions sont fermées.",
    "rouvertes": "Les inscriptions sont rouvertes.",
    "presence": "La présence est enregistrée.",
    "motdepasse": "Votre mot de passe est enregistré.",
    "flux": "Le flux est enregistré. Il sera lu à la prochaine échéance.",
}


# --- Sessions ----------------------------------------------------------------------------------


class _SignedOut(Exception):
    """Raised inside a transaction when the session no longer names an active staff member."""


@dataclass(frozen=True)
class _Who:
    """What the session says about the staff member, read before leaving the event loop."""

    staff_id: int | None
    stamp: object

    def staff(self, db: Session) -> AgencyStaff:
        staff = staff_of_session(db, self.staff_id, self.stamp)
        if staff is None:
            raise _SignedOut
        return staff


def _who(request: Request) -> _Who:
    value = request.session.get(SESSION_STAFF)
    staff_id = value if isinstance(value, int) and not isinstance(value, bool) else None
    return _Who(staff_id, request.session.get(SESSION_STAMP))


def _sign_in_session(request: Request, staff: AgencyStaff) -> None:
    # A fresh session at every sign-in: nothing set before it (a seeker's session, a planted
    # value) survives.
    request.session.clear()
    request.session[SESSION_STAFF] = staff.id
    request.session[SESSION_STAMP] = password_stamp(staff)


def _to_sign_in(request: Request) -> Response:
    # Only the staff keys go: a seeker who strays here stays signed in as a seeker.
    request.session.pop(SESSION_STAFF, None)
    request.session.pop(SESSION_STAMP, None)
    target = SIGN_IN
    if request.method == "GET":
        target += "?" + urlencode({"suivant": request.url.path})
    return RedirectResponse(target, status_code=303)


Handler = Callable[[Request], Awaitable[Response]]


def _staff_only(handler: Handler) -> Handler:
    """Send visitors without a valid staff session to the sign-in page (303)."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        if _who(request).staff_id is None:
            return _to_sign_in(request)
        try:
            return await handler(request)
        except _SignedOut:
            return _to_sign_in(request)

    return wrapped


def _safe_next(raw: str | None) -> str:
    """A back-office path to go back to after sign-in; anything else gives the dashboard."""
    if (
        raw
        and (raw == HOME or raw.startswith(HOME + "/"))
        and len(raw) <= 500
        and raw.isprintable()
        and "\\" not in raw
        and "//" not in raw
    ):
        return raw
    return HOME


# --- Rendering ---------------------------------------------------------------------------------


def _render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    templates: Jinja2Templates = request.state.templates
    base: dict[str, Any] = {
        "staff": None,
        "form": {},
        "errors": {},
        "notice": None,
        "min_password_length": MIN_PASSWORD_LENGTH,
        "max_title": MAX_TITLE,
        "max_cancel_message": MAX_CANCEL_MESSAGE,
        "nav": None,
    }
    # Pages of the back office show personal data: never kept by a browser or proxy cache.
    return templates.TemplateResponse(
        request,
        f"agency/{template}",
        {**base, **context},
        status_code=status_code,
        headers=NO_STORE,
    )


def _notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("fait", ""))


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    # No browser sends NUL in a field, and PostgreSQL refuses it in text: drop it here.
    return value.replace("\x00", "") if isinstance(value, str) else ""


def _registration_id(request: Request) -> int:
    raw = str(request.path_params["registration_id"])
    value = int(raw) if raw.isdigit() and len(raw) <= 10 else -1
    if not 0 < value <= MAX_DB_ID:
        raise NotFound("Inscription introuvable.", field="registration")
    return value


# --- Event forms -------------------------------------------------------------------------------

EVENT_FORM_TEXT = (
    "title",
    "description",
    "type",
    "format",
    "starts_at",
    "ends_at",
    "venue_name",
    "venue_address",
    "venue_postal_code",
    "venue_city",
    "venue_lat",
    "venue_lon",
    "online_url",
    "capacity",
    "remote_capacity",
    "registration_opens_at",
    "registration_closes_at",
    "job_offers",
    "accessibility_notes",
    # The place and coordinates the form was shown with (see parse_event_form).
    "shown_place",
    "shown_lat",
    "shown_lon",
)
# The words a person reads in the form, for the messages that name an API field.
FIELD_LABELS = {
    "title": "Titre",
    "description": "Description",
    "type": "Type d’événement",
    "sectors": "Secteurs",
    "format": "Format",
    "starts_at": "Début",
    "ends_at": "Fin",
    "venue": "Lieu",
    "venue.name": "Nom du lieu",
    "venue.address": "Adresse",
    "venue.postal_code": "Code postal",
    "venue.city": "Commune",
    "venue.lat": "Latitude",
    "venue.lon": "Longitude",
    "online_url": "Lien de connexion",
    "capacity": "Places",
    "remote_capacity": "Places à distance",
    "waitlist": "Liste d’attente",
    "registration_opens_at": "Ouverture des inscriptions",
    "registration_closes_at": "Clôture des inscriptions",
    "job_offers": "Offres d’emploi",
    "accessibility_notes": "Accessibilité",
}
# API field -> the form input the error is shown beside.
FORM_FIELD = {
    "venue": "venue_city",
    "venue.name": "venue_name",
    "venue.address": "venue_address",
    "venue.postal_code": "venue_postal_code",
    "venue.city": "venue_city",
    "venue.lat": "venue_lat",
    "venue.lon": "venue_lon",
    "body": "form",
}
_ISO_LOCAL = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?$")
_FRENCH_LOCAL = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})\s+(?:à\s+)?(\d{1,2})\s*[h:]\s*(\d{2})?$")
_HTML_TAG = re.compile(r"<[a-zA-Z/!]")


def form_error(exc: DomainError) -> dict[str, str]:
    """An error as {form input: French message}, the API field name replaced by its label."""
    field = exc.field or "form"
    message = exc.message
    label = FIELD_LABELS.get(field)
    if label is not None:
        for quote in ("« {} »", "«\u00a0{}\u00a0»"):
            message = message.replace(quote.format(field), quote.format(label))
    return {FORM_FIELD.get(field, field): message}


def _local_datetime(raw: str, field: str, *, required: bool) -> str | None:
    """A date and time typed in a form (datetime-local, or jj/mm/aaaa hh:mm where the browser
    shows a plain text box) as a naive ISO string, which the domain reads in Europe/Paris."""
    value = raw.strip()
    if not value:
        if required:
            raise InvalidInput(field, "Indiquez la date et l’heure.")
        return None
    parts: list[int] | None = None
    if match := _ISO_LOCAL.match(value):
        parts = [int(g) if g else 0 for g in match.groups()]
    elif match := _FRENCH_LOCAL.match(value):
        day, month, year, hour, minute = (int(g) if g else 0 for g in match.groups())
        parts = [year, month, day, hour, minute, 0]
    try:
        if parts is None:
            raise ValueError(value)
        year, month, day, hour, minute, second = parts
        # Naive on purpose: the domain reads it in the event's time zone.
        moment = datetime(year, month, day, hour, minute, second)  # noqa: DTZ001
    except ValueError as exc:
        raise InvalidInput(
            field, "Date et heure invalides\u00a0: indiquez-les sous la forme jj/mm/aaaa hh:mm."
        ) from exc
    return moment.isoformat()


def _whole_number(raw: str, field: str, message: str) -> int | None:
    value = raw.strip().replace("\u202f", "").replace("\u00a0", "").replace(" ", "")
    if not value:
        return None
    if not value.isdigit() or len(value) > 9:
        raise InvalidInput(field, message)
    return int(value)


def _coordinate(raw: str, field: str, label: str) -> float | None:
    value = raw.strip().replace(",", ".")
    if not value:
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise InvalidInput(
            field, f"La {label} est un nombre décimal (exemple\u00a0: 48,8615)."
        ) from exc


def _description_html(raw: str) -> str:
    """HTML as typed, or plain text (no tag at all) turned into paragraphs and line breaks.
    Either way the domain sanitises it."""
    text = raw.replace("\r\n", "\n").strip()
    if not text or _HTML_TAG.search(text):
        return text
    paragraphs = (p.strip() for p in re.split(r"\n\s*\n", text))
    return "".join(
        "<p>" + "<br>".join(html.escape(line.strip()) for line in p.split("\n")) + "</p>"
        for p in paragraphs
        if p
    )


def _place_key(values: Mapping[str, Any]) -> str:
    return f"{values['venue_postal_code'].strip()}|{values['venue_city'].strip().casefold()}"


def read_event_form(raw: FormData) -> dict[str, Any]:
    """The form's values as typed, for showing the form again."""
    values: dict[str, Any] = {name: _text(raw, name) for name in EVENT_FORM_TEXT}
    values["sectors"] = [
        v.replace("\x00", "") for v in raw.getlist("sectors") if isinstance(v, str)
    ]
    values["waitlist"] = _text(raw, "waitlist") == "1"
    return values


def parse_event_form(values: Mapping[str, Any]) -> dict[str, Any]:
    """The agency API's (cleaned) event fields from the event form's values.

    Coordinates left as they were shown while the postal code or commune changed are dropped,
    so that the domain places the venue in its new commune instead of keeping the old point.
    Raises InvalidInput naming the API field.
    """
    lat = _coordinate(values["venue_lat"], "venue.lat", "latitude")
    lon = _coordinate(values["venue_lon"], "venue.lon", "longitude")
    if (
        values["shown_lat"]
        and values["venue_lat"].strip() == values["shown_lat"]
        and values["venue_lon"].strip() == values["shown_lon"]
        and _place_key(values) != values["shown_place"]
    ):
        lat = lon = None
    payload: dict[str, Any] = {
        "title": values["title"],
        "description": _description_html(values["description"]),
        "type": values["type"] or None,
        "sectors": list(values["sectors"]) or None,
        "format": values["format"] or None,
        "starts_at": _local_datetime(values["starts_at"], "starts_at", required=True),
        "ends_at": _local_datetime(values["ends_at"], "ends_at", required=True),
        "venue": {
            "name": values["venue_name"] or None,
            "address": values["venue_address"] or None,
            "postal_code": values["venue_postal_code"] or None,
            "city": values["venue_city"] or None,
            "lat": lat,
            "lon": lon,
        },
        "online_url": values["online_url"].strip() or None,
        "capacity": _whole_number(
            values["capacity"],
            "capacity",
            "Indiquez un nombre entier de places, ou laissez vide pour ne pas limiter.",
        ),
        "remote_capacity": _whole_number(
            values["remote_capacity"],
            "remote_capacity",
            "Indiquez un nombre entier de places, ou laissez vide pour ne pas limiter.",
        ),
        "waitlist": bool(values["waitlist"]),
        "registration_opens_at": _local_datetime(
            values["registration_opens_at"], "registration_opens_at", required=False
        ),
        "registration_closes_at": _local_datetime(
            values["registration_closes_at"], "registration_closes_at", required=False
        ),
        "job_offers": _whole_number(
            values["job_offers"], "job_offers", "Indiquez un nombre entier d’offres, ou rien."
        ),
        "accessibility_notes": values["accessibility_notes"] or None,
    }
    if payload["type"] is None:
        raise InvalidInput("type", "Choisissez le type d’événement.")
    if payload["sectors"] is None:
        raise InvalidInput(
            "sectors", "Cochez au moins un secteur (ou «\u00a0Tous secteurs\u00a0»)."
        )
    if payload["format"] is None:
        raise InvalidInput("format", "Choisissez le format de l’événement.")
    return event_fields(payload, partial=False)


def _local_input(moment: datetime | None) -> str:
    """The value of a datetime-local input, in Paris time."""
    if moment is None:
        return ""
    local = moment.astimezone(PARIS)
    return local.strftime("%Y-%m-%dT%H:%M:%S" if local.second else "%Y-%m-%dT%H:%M")


def event_form_values(event: Event) -> dict[str, Any]:
    """The form's values for an existing event."""
    lat = "" if event.venue_lat is None else str(event.venue_lat)
    lon = "" if event.venue_lon is None else str(event.venue_lon)
    values: dict[str, Any] = {
        "title": event.title,
        "description": event.description_html or "",
        "type": event.type,
        "format": event.format,
        "sectors": list(event.sectors),
        "starts_at": _local_input(event.starts_at),
        "ends_at": _local_input(event.ends_at),
        "venue_name": event.venue_name or "",
        "venue_address": event.venue_address or "",
        "venue_postal_code": event.venue_postal_code or "",
        "venue_city": event.venue_city or "",
        "venue_lat": lat,
        "venue_lon": lon,
        "online_url": event.online_url or "",
        "capacity": "" if event.capacity is None else str(event.capacity),
        "remote_capacity": "" if event.remote_capacity is None else str(event.remote_capacity),
        "waitlist": event.waitlist,
        "registration_opens_at": _local_input(event.registration_opens_at),
        "registration_closes_at": _local_input(event.registration_closes_at),
        "job_offers": "" if event.job_offers is None else str(event.job_offers),
        "accessibility_notes": event.accessibility_notes or "",
        "shown_lat": lat,
        "shown_lon": lon,
    }
    values["shown_place"] = _place_key(values)
    return values


NEW_EVENT_VALUES: dict[str, Any] = {
    **dict.fromkeys(EVENT_FORM_TEXT, ""),
    "sectors": [],
    "waitlist": True,
    "format": "onsite",
}


# --- Sign-in, sign-out, password ---------------------------------------------------------------


async def sign_in_page(request: Request) -> Response:
    return _render(
        request,
        "account/sign_in.html",
        {
            "next": _safe_next(request.query_params.get("suivant")),
            "signed_out": request.query_params.get("deconnecte") == "1",
        },
    )


async def sign_in_form(request: Request) -> Response:
    settings = settings_of(request)
    raw = await request.form()
    form = {"email": _text(raw, "email")}
    password = _text(raw, "password")
    next_path = _safe_next(_text(raw, "suivant"))
    try:
        # Before any hashing: a flood of attempts costs one counter check each.
        check_rate(request, "staff_signin", settings.rate_limit_signin)
        staff = await in_transaction(
            request, lambda db: authenticate_staff(db, email=form["email"], password=password)
        )
    except (InvalidInput, Unauthorized, RateLimited) as exc:
        return _render(
            request,
            "account/sign_in.html",
            {"form": form, "errors": form_error(exc), "next": next_path},
            status_code=exc.status_code,
        )
    _sign_in_session(request, staff)
    return RedirectResponse(next_path, status_code=303)


async def sign_out(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse(f"{SIGN_IN}?deconnecte=1", status_code=303)


async def forgot_page(request: Request) -> Response:
    return _render(
        request,
        "account/forgot.html",
        {
            "sent": request.query_params.get("envoye") == "1",
            "valid_minutes": RESET_MAX_AGE_SECONDS // 60,
        },
    )


async def forgot_form(request: Request) -> Response:
    settings = settings_of(request)
    raw = await request.form()
    form = {"email": _text(raw, "email")}
    try:
        check_rate(request, "staff_password_reset", settings.rate_limit_signin)
        await in_transaction(
            request,
            lambda db: request_staff_password_reset(
                db, email=form["email"], settings=settings, env=request.state.mail_env
            ),
        )
    except (InvalidInput, RateLimited) as exc:
        return _render(
            request,
            "account/forgot.html",
            {
                "form": form,
                "errors": form_error(exc),
                "valid_minutes": RESET_MAX_AGE_SECONDS // 60,
            },
            status_code=exc.status_code,
        )
    # The same answer whether or not a staff account has this address.
    return RedirectResponse(
        "/organisme/mot-de-passe/oubli?envoye=1",
        status_code=303,
        background=deliver_mail_soon(request),
    )


def _reset_context(token: str) -> dict[str, Any]:
    return {"token": token, "invitation_days": INVITATION_MAX_AGE_SECONDS // 86400}


async def reset_page(request: Request) -> Response:
    settings = settings_of(request)
    token = request.query_params.get("token", "")
    try:
        staff = await in_transaction(
            request, lambda db: check_staff_token(db, token=token, settings=settings)
        )
    except InvalidInput as exc:
        return _render(request, "account/reset.html", {"invalid": exc.message}, status_code=400)
    return _render(
        request,
        "account/reset.html",
        {**_reset_context(token), "first_time": staff.password_hash is None},
    )


async def reset_form(request: Request) -> Response:
    settings = settings_of(request)
    raw = await request.form()
    token = _text(raw, "token") or request.query_params.get("token", "")
    password = _text(raw, "password")
    try:
        check_rate(request, "staff_password_reset", settings.rate_limit_signin)
        staff = await in_transaction(
            request,
            lambda db: reset_staff_password(
                db, token=token, new_password=password, settings=settings
            ),
        )
    except (InvalidInput, RateLimited) as exc:
        if exc.field == "token":
            return _render(request, "account/reset.html", {"invalid": exc.message}, status_code=400)
        return _render(
            request,
            "account/reset.html",
            {**_reset_context(token), "errors": form_error(exc)},
            status_code=exc.status_code,
        )
    _sign_in_session(request, staff)
    return RedirectResponse(f"{HOME}?fait=motdepasse", status_code=303)


# --- Dashboard ---------------------------------------------------------------------------------


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
        get_event(db, event_id, agency_id=staff.agency_id)
        edit_event(
            db,
            event_id=event_id,
            agency_id=staff.agency_id,
            fields=parse_event_form(values),
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


def _load_event_view(who: _Who, event_id: int) -> Callable[[Session], _EventView]:
    def work(db: Session) -> _EventView:
        staff = who.staff(db)
        event = get_event(db, event_id, agency_id=staff.agency_id)
        registrants = event_registrants(db, event_id=event_id, agency_id=staff.agency_id)
        return _EventView(staff, event, registrants)

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

    def work(db: Session) -> None:
        staff = who.staff(db)
        get_event(db, event_id, agency_id=staff.agency_id)
        if len(message) > MAX_CANCEL_MESSAGE:
            raise InvalidInput(
                "cancel_message",
                f"Le message dépasse {MAX_CANCEL_MESSAGE} caractères\u00a0: raccourcissez-le.",
            )
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


routes: list[BaseRoute] = [
    Route("/organisme/connexion", sign_in_page, methods=["GET"], name="agency:sign_in"),
    Route("/organisme/connexion", sign_in_form, methods=["POST"], name="agency:sign_in_post"),
    Route("/organisme/deconnexion", sign_out, methods=["POST"], name="agency:sign_out"),
    Route("/organisme/mot-de-passe/oubli", forgot_page, methods=["GET"], name="agency:forgot"),
    Route(
        "/organisme/mot-de-passe/oubli", forgot_form, methods=["POST"], name="agency:forgot_post"
    ),
    Route("/organisme/mot-de-passe/nouveau", reset_page, methods=["GET"], name="agency:reset"),
    Route(
        "/organisme/mot-de-passe/nouveau", reset_form, methods=["POST"], name="agency:reset_post"
    ),
    Route("/organisme", dashboard, methods=["GET"], name="agency:dashboard"),
    Route("/organisme/evenements/nouveau", new_event_page, methods=["GET"], name="agency:new"),
    Route(
        "/organisme/evenements/nouveau", new_event_form, methods=["POST"], name="agency:new_post"
    ),
    Route("/organisme/evenements/{id}", event_page, methods=["GET"], name="agency:event"),
    Route(
        "/organisme/evenements/{id}/modifier", edit_event_page, methods=["GET"], name="agency:edit"
    ),
    Route(
        "/organisme/evenements/{id}/modifier",
        edit_event_form,
        methods=["POST"],
        name="agency:edit_post",
    ),
    Route(
        "/organisme/evenements/{id}/annulation",
        cancel_event_form,
        methods=["POST"],
        name="agency:cancel",
    ),
    Route(
        "/organisme/evenements/{id}/inscriptions",
        registrations_state_form,
        methods=["POST"],
        name="agency:registrations_state",
    ),
    Route(
        "/organisme/evenements/{id}/duplication",
        duplicate_event_form,
        methods=["POST"],
        name="agency:duplicate",
    ),
    Route(
        "/organisme/evenements/{id}/inscrits/{registration_id}/presence",
        attendance_form,
        methods=["POST"],
        name="agency:attendance",
    ),
    Route(
        "/organisme/evenements/{id}/inscrits.csv",
        registrants_csv_export,
        methods=["GET"],
        name="agency:registrants_csv",
    ),
    Route("/organisme/flux", feeds_page, methods=["GET"], name="agency:feeds"),
    Route("/organisme/flux", add_feed_form, methods=["POST"], name="agency:add_feed"),
    Route("/organisme/jeton", token_page, methods=["GET"], name="agency:token"),
    Route("/organisme/jeton", rotate_token_form, methods=["POST"], name="agency:rotate_token"),
]
