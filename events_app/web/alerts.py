"""Alerts on the web: the API's POST /api/v1/alerts, the form under the results, the
confirmation, manage and unsubscribe pages, and « Mes alertes » in the account (SPEC section 10).

The API and the form share one validation (events_app.alerts.clean_alert).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from events_app.accounts import seeker_of_session
from events_app.alerts import (
    FILTER_NAMES,
    FREQUENCIES,
    UNCONFIRMED_DAYS,
    AlertInput,
    alert_by_token,
    alerts_of,
    clean_alert,
    confirm_alert,
    create_alert,
    delete_alert,
    describe_filters,
    set_frequency,
)
from events_app.errors import InvalidInput, NotFound, RateLimited
from events_app.models import Alert, Seeker
from events_app.web.common import (
    check_rate,
    current_seeker_id,
    deliver_mail_soon,
    in_transaction,
    json_body,
    settings_of,
)
from events_app.web.schemas import AlertCreatedOut, AlertIn, dump, validate

NO_STORE = {"Cache-Control": "no-store"}
MANAGE = "/alertes/gerer"


def _render(
    request: Request, template: str, context: Mapping[str, Any], *, status_code: int = 200
) -> Response:
    templates: Jinja2Templates = request.state.templates
    return templates.TemplateResponse(
        request,
        f"public/alerts/{template}",
        {"frequencies": FREQUENCIES, **context},
        status_code=status_code,
        headers=NO_STORE,
    )


def _signed_in(request: Request, db: Session) -> Seeker | None:
    return seeker_of_session(db, current_seeker_id(request), request.session.get("seeker_stamp"))


def _save(request: Request, values: dict[str, Any]) -> Any:
    """Validate and store (one transaction); returns (alert, confirmed at once)."""
    settings = settings_of(request)
    check_rate(request, "alert", settings.rate_limit_signin)

    def work(db: Session) -> tuple[int, bool]:
        data: AlertInput = clean_alert(db, values)
        alert = create_alert(
            db,
            data,
            settings=settings,
            env=request.state.mail_env,
            seeker=_signed_in(request, db),
        )
        return alert.id, alert.confirmed_at is not None

    return in_transaction(request, work)


async def create_alert_api(request: Request) -> Response:
    body = validate(AlertIn, await json_body(request)).model_dump(exclude_unset=True)
    alert_id, confirmed = await _save(request, body)
    answer = AlertCreatedOut(id=alert_id, status="active" if confirmed else "pending_confirmation")
    return Response(
        dump(answer),
        status_code=202,
        media_type="application/json",
        background=deliver_mail_soon(request),
    )


def _form_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in (*FILTER_NAMES, "email", "frequency"):
        items = [v for v in form.getlist(name) if isinstance(v, str)]
        if name in ("sector", "type", "format"):
            values[name] = items
        elif items:
            values[name] = items[0]
    return values


async def create_alert_form(request: Request) -> Response:
    values = _form_values(await request.form())
    try:
        _alert_id, confirmed = await _save(request, values)
    except (InvalidInput, RateLimited) as exc:
        return _render(
            request,
            "create.html",
            {
                "error": exc.message,
                "field": exc.field,
                "values": values,
                "filters": describe_filters(
                    [(k, v) for k, v in values.items() if k in FILTER_NAMES and isinstance(v, str)]
                ),
            },
            status_code=400 if isinstance(exc, InvalidInput) else 429,
        )
    return RedirectResponse(
        f"/alertes/creee?active={int(confirmed)}",
        status_code=303,
        background=deliver_mail_soon(request),
    )


async def created_page(request: Request) -> Response:
    return _render(
        request,
        "created.html",
        {"active": request.query_params.get("active") == "1", "days": UNCONFIRMED_DAYS},
    )


def _load(request: Request) -> dict[str, Any]:
    token = str(request.path_params["token"])[:100]

    def work(db: Session) -> dict[str, Any]:
        alert = alert_by_token(db, token)
        return _view(alert)

    return {"token": token, "work": work}


def _view(alert: Alert) -> dict[str, Any]:
    return {
        "token": alert.token,
        "filters": describe_filters(alert.filters),
        "frequency": alert.frequency,
        "frequency_label": FREQUENCIES[alert.frequency],
        "confirmed": alert.confirmed_at is not None,
        "last_sent_at": alert.last_sent_at,
        "email": alert.email,
    }


async def _page(request: Request, template: str, **extra: Any) -> Response:
    loaded = _load(request)
    try:
        alert = await in_transaction(request, loaded["work"])
    except NotFound:
        return _render(request, "gone.html", {}, status_code=404)
    return _render(request, template, {"alert": alert, **extra})


async def confirm_page(request: Request) -> Response:
    """The link of the confirmation mail: a page whose button confirms (scanners only GET)."""
    return await _page(request, "confirm.html")


async def confirm_form(request: Request) -> Response:
    token = str(request.path_params["token"])[:100]
    try:
        await in_transaction(request, lambda db: confirm_alert(db, token))
    except NotFound:
        return _render(request, "gone.html", {}, status_code=404)
    return RedirectResponse(f"{MANAGE}/{token}?confirmee=1", status_code=303)


async def manage_page(request: Request) -> Response:
    notices = {
        "confirmee": "Votre alerte est confirmée.",
        "modifiee": "La fréquence de l’alerte est modifiée.",
    }
    notice = next((text for key, text in notices.items() if request.query_params.get(key)), None)
    return await _page(request, "manage.html", notice=notice)


async def manage_form(request: Request) -> Response:
    token = str(request.path_params["token"])[:100]
    form = await request.form()
    frequency = form.get("frequency")
    try:
        await in_transaction(
            request,
            lambda db: set_frequency(db, token, frequency if isinstance(frequency, str) else ""),
        )
    except NotFound:
        return _render(request, "gone.html", {}, status_code=404)
    except InvalidInput as exc:
        return await _page(request, "manage.html", error=exc.message)
    return RedirectResponse(f"{MANAGE}/{token}?modifiee=1", status_code=303)


async def unsubscribe_page(request: Request) -> Response:
    return await _page(request, "unsubscribe.html")


async def unsubscribe_form(request: Request) -> Response:
    """End the alert: the page's button, or a mail client's one-click POST (RFC 8058, body
    `List-Unsubscribe=One-Click`, no cookie; exempt from CSRF, see web/security.py)."""
    token = str(request.path_params["token"])[:100]
    # Already gone (NotFound): the wish is fulfilled all the same.
    with contextlib.suppress(NotFound):
        await in_transaction(request, lambda db: delete_alert(db, token))
    return _render(request, "unsubscribed.html", {})


# --- « Mes alertes » in the account ----------------------------------------------------------


async def account_alerts(request: Request) -> Response:
    def work(db: Session) -> list[dict[str, Any]] | None:
        seeker = _signed_in(request, db)
        if seeker is None:
            return None
        return [_view(alert) for alert in alerts_of(db, seeker)]

    alerts = await in_transaction(request, work)
    if alerts is None:
        request.session.clear()
        return RedirectResponse("/compte/connexion?suivant=/compte/alertes", status_code=303)
    return _render(request, "account.html", {"alerts": alerts})


routes: list[BaseRoute] = [
    Route("/alertes", create_alert_form, methods=["POST"], name="alerts:create"),
    Route("/alertes/creee", created_page, methods=["GET"], name="alerts:created"),
    Route("/alertes/confirmer/{token}", confirm_page, methods=["GET"], name="alerts:confirm"),
    Route("/alertes/confirmer/{token}", confirm_form, methods=["POST"], name="alerts:confirm_post"),
    Route("/alertes/gerer/{token}", manage_page, methods=["GET"], name="alerts:manage"),
    Route("/alertes/gerer/{token}", manage_form, methods=["POST"], name="alerts:manage_post"),
    Route(
        "/alertes/desabonner/{token}", unsubscribe_page, methods=["GET"], name="alerts:unsubscribe"
    ),
    Route(
        "/alertes/desabonner/{token}",
        unsubscribe_form,
        methods=["POST"],
        name="alerts:unsubscribe_post",
    ),
    Route("/compte/alertes", account_alerts, methods=["GET"], name="alerts:account"),
]
