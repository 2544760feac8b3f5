"""The back office's staff session, the staff-only guard and page rendering."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from events_app.events import (
    MAX_TITLE,
)
from events_app.models import AgencyStaff
from events_app.staff import (
    MIN_PASSWORD_LENGTH,
    password_stamp,
    staff_of_session,
)

SESSION_STAFF = "staff_id"
SESSION_STAMP = "staff_stamp"
HOME = "/organisme"
SIGN_IN = "/organisme/connexion"
NO_STORE = {"Cache-Control": "no-store"}
MAX_CANCEL_MESSAGE = 2000

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
    "distinct": "C’est noté\u00a0: cet événement n’est plus regroupé avec les autres.",
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
