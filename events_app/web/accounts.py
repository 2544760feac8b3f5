"""Job seeker account pages under /compte: sign-up, sign-in and out, "Mes événements",
preferences, password reset, the personal calendar feed's address.

The session (a signed cookie, see events_app.app) holds the seeker's id and the stamp of the
password it was opened with; a page of this module treats a session whose stamp no longer
matches (the password changed since) as signed out and clears it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from events_app.accounts import (
    MIN_PASSWORD_LENGTH,
    RESET_MAX_AGE_SECONDS,
    authenticate,
    check_reset_token,
    confirm_account,
    delete_account,
    ensure_feed_token,
    events_for_me,
    export_seeker_data,
    has_preferences,
    my_registrations,
    password_stamp,
    regenerate_feed_token,
    request_password_reset,
    reset_password,
    seeker_of_session,
    sign_up,
    update_preferences,
)
from events_app.errors import Conflict, InvalidInput, RateLimited, Unauthorized
from events_app.models import Registration, Seeker
from events_app.search import MAX_RADIUS_KM, MIN_RADIUS_KM, SearchResult
from events_app.web.calendars import (
    personal_cache_of,
    personal_feed_links,
    personal_feed_url,
)
from events_app.web.common import (
    JSONResponse,
    check_rate,
    current_seeker_id,
    deliver_mail_soon,
    in_transaction,
    notifier,
    settings_of,
)
from events_app.web.sessions import end_sessions

SESSION_SEEKER = "seeker_id"
SESSION_STAMP = "seeker_stamp"
HOME = "/compte"
SIGN_IN = "/compte/connexion"
NO_STORE = {"Cache-Control": "no-store"}
FORM_ERRORS = (InvalidInput, Conflict, Unauthorized, RateLimited)


def _render(
    request: Request, template: str, context: Mapping[str, Any], *, status_code: int = 200
) -> Response:
    templates: Jinja2Templates = request.state.templates
    base: dict[str, Any] = {
        "form": {},
        "errors": {},
        "min_password_length": MIN_PASSWORD_LENGTH,
    }
    return templates.TemplateResponse(
        request,
        f"public/account/{template}",
        {**base, **context},
        status_code=status_code,
        headers=NO_STORE,
    )


def _errors(exc: InvalidInput | Conflict | Unauthorized | RateLimited) -> dict[str, str]:
    return {exc.field or "form": exc.message}


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _safe_next(raw: str | None) -> str:
    """A local path to go back to after sign-in; anything else (another site) gives /compte."""
    if (
        raw
        and raw.startswith("/")
        and not raw.startswith(("//", "/\\"))
        and len(raw) <= 500
        and raw.isprintable()
        and "\\" not in raw
    ):
        return raw
    return HOME


def _sign_in_session(request: Request, seeker: Seeker) -> None:
    # A fresh session at every sign-in: nothing set before it (by anyone) survives.
    request.session.clear()
    request.session[SESSION_SEEKER] = seeker.id
    request.session[SESSION_STAMP] = password_stamp(seeker)


def _to_sign_in(request: Request) -> Response:
    request.session.clear()
    back = urlencode({"suivant": request.url.path})
    return RedirectResponse(f"{SIGN_IN}?{back}", status_code=303)


# --- Sign-up -----------------------------------------------------------------------------------


SIGN_UP_FIELDS = ("first_name", "last_name", "email")


async def sign_up_page(request: Request) -> Response:
    if current_seeker_id(request) is not None:
        return RedirectResponse(HOME, status_code=303)
    return _render(request, "sign_up.html", {})


async def sign_up_form(request: Request) -> Response:
    settings = settings_of(request)
    raw = await request.form()
    form = {name: _text(raw, name) for name in SIGN_UP_FIELDS}
    password = _text(raw, "password")
    try:
        check_rate(request, "signup", settings.rate_limit_signin)

        def work(db: Session) -> None:
            # A new account or a known address: the same answer (the mail differs).
            sign_up(
                db,
                email=form["email"],
                password=password,
                first_name=form["first_name"],
                last_name=form["last_name"],
                settings=settings,
            )

        await in_transaction(request, work)
    except FORM_ERRORS as exc:
        return _render(
            request,
            "sign_up.html",
            {"form": form, "errors": _errors(exc)},
            status_code=exc.status_code,
        )
    return RedirectResponse(
        "/compte/inscription/envoyee", status_code=303, background=deliver_mail_soon(request)
    )


async def sign_up_sent(request: Request) -> Response:
    return _render(request, "sign_up_sent.html", {})


async def confirm_page(request: Request) -> Response:
    """The link of the sign-up mail opens this page; only its button (a POST) confirms, since
    mail scanners follow links."""
    token = request.query_params.get("token", "")[:500]
    return _render(request, "confirm.html", {"token": token})


async def confirm_form(request: Request) -> Response:
    settings = settings_of(request)
    raw = await request.form()
    token = _text(raw, "token")
    try:
        check_rate(request, "password_reset", settings.rate_limit_signin)
        seeker = await in_transaction(
            request, lambda db: confirm_account(db, token=token, settings=settings)
        )
    except (InvalidInput, RateLimited) as exc:
        return _render(request, "confirm.html", {"invalid": exc.message}, status_code=400)
    _sign_in_session(request, seeker)
    return RedirectResponse(f"{HOME}?bienvenue=1", status_code=303)


# --- Sign-in and sign-out ----------------------------------------------------------------------


async def sign_in_page(request: Request) -> Response:
    return _render(
        request,
        "sign_in.html",
        {
            "next": _safe_next(request.query_params.get("suivant")),
            "signed_out": request.query_params.get("deconnecte") == "1",
            "deleted": request.query_params.get("supprime") == "1",
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
        check_rate(request, "signin", settings.rate_limit_signin)
        seeker = await in_transaction(
            request, lambda db: authenticate(db, email=form["email"], password=password)
        )
    except FORM_ERRORS as exc:
        return _render(
            request,
            "sign_in.html",
            {"form": form, "errors": _errors(exc), "next": next_path},
            status_code=exc.status_code,
        )
    _sign_in_session(request, seeker)
    return RedirectResponse(next_path, status_code=303)


async def sign_out(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse(f"{SIGN_IN}?deconnecte=1", status_code=303)


# --- Mes événements ----------------------------------------------------------------------------


NOTICES = {
    "bienvenue": "Votre compte est créé et vous êtes connecté·e. Renseignez vos préférences "
    "pour voir les événements faits pour vous.",
    "preferences": "Vos préférences sont enregistrées.",
    "motdepasse": "Votre mot de passe est modifié.",
    "agenda": "Votre agenda personnel a une nouvelle adresse\u00a0: l’ancienne ne fonctionne "
    "plus. Abonnez-vous de nouveau avec l’adresse ci-dessous dans votre application d’agenda.",
}


async def home(request: Request) -> Response:
    settings = settings_of(request)
    seeker_id = current_seeker_id(request)
    stamp = request.session.get(SESSION_STAMP)

    def work(db: Session) -> tuple[Seeker, SearchResult, list[Registration], str] | None:
        seeker = seeker_of_session(db, seeker_id, stamp)
        if seeker is None:
            return None
        feed_token = ensure_feed_token(db, seeker)
        return seeker, events_for_me(db, seeker), my_registrations(db, seeker), feed_token

    loaded = await in_transaction(request, work)
    if loaded is None:
        return _to_sign_in(request)
    seeker, result, registrations, feed_token = loaded
    notice = next((text for key, text in NOTICES.items() if request.query_params.get(key)), None)
    return _render(
        request,
        "home.html",
        {
            "seeker": seeker,
            "hits": result.hits,
            "place": result.place,
            "place_lost": bool(result.extra.get("place_lost")),
            "registrations": registrations,
            "notice": notice,
            "feed_url": personal_feed_url(settings, feed_token),
            "feed_links": personal_feed_links(settings, feed_token),
            "has_preferences": has_preferences(seeker),
        },
    )


async def regenerate_feed(request: Request) -> Response:
    """Give the personal feed a new secret address; the old one answers 404 at once."""
    seeker_id = current_seeker_id(request)
    stamp = request.session.get(SESSION_STAMP)

    def work(db: Session) -> str | None:
        seeker = seeker_of_session(db, seeker_id, stamp)
        if seeker is None:
            return None
        old = seeker.feed_token
        regenerate_feed_token(db, seeker)
        return old or ""

    old_token = await in_transaction(request, work)
    if old_token is None:
        # Back to the account page after signing in (this path only takes a POST).
        request.session.clear()
        return RedirectResponse(f"{SIGN_IN}?{urlencode({'suivant': HOME})}", status_code=303)
    # The lookup of each request already refuses the old token; this frees its cached body.
    personal_cache_of(request.app).discard(old_token)
    return RedirectResponse(f"{HOME}?agenda=1#mon-agenda", status_code=303)


# --- Preferences -------------------------------------------------------------------------------


def _preferences_form(seeker: Seeker) -> dict[str, Any]:
    return {
        "home_place": seeker.home_place or "",
        "radius_km": str(seeker.radius_km or 30),
        "sectors": list(seeker.sectors or []),
        "types": list(seeker.types or []),
        "formats": list(seeker.formats or []),
    }


def _radius(raw: str) -> int | None:
    value = raw.strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 4:
        raise InvalidInput(
            "radius_km",
            f"Le rayon est un nombre entier de kilomètres, de {MIN_RADIUS_KM} à {MAX_RADIUS_KM}.",
        )
    return int(value)


async def preferences_page(request: Request) -> Response:
    seeker_id = current_seeker_id(request)
    stamp = request.session.get(SESSION_STAMP)
    seeker = await in_transaction(request, lambda db: seeker_of_session(db, seeker_id, stamp))
    if seeker is None:
        return _to_sign_in(request)
    return _render(request, "preferences.html", {"form": _preferences_form(seeker)})


async def preferences_form(request: Request) -> Response:
    seeker_id = current_seeker_id(request)
    stamp = request.session.get(SESSION_STAMP)
    raw = await request.form()
    form: dict[str, Any] = {
        "home_place": _text(raw, "home_place"),
        "radius_km": _text(raw, "radius_km"),
        "sectors": [v for v in raw.getlist("sectors") if isinstance(v, str)],
        "types": [v for v in raw.getlist("types") if isinstance(v, str)],
        "formats": [v for v in raw.getlist("formats") if isinstance(v, str)],
    }

    def work(db: Session) -> bool:
        seeker = seeker_of_session(db, seeker_id, stamp)
        if seeker is None:
            return False
        update_preferences(
            db,
            seeker,
            home_place=form["home_place"],
            radius_km=_radius(form["radius_km"]),
            sectors=form["sectors"],
            types=form["types"],
            formats=form["formats"],
        )
        return True

    try:
        saved = await in_transaction(request, work)
    except InvalidInput as exc:
        return _render(
            request,
            "preferences.html",
            {"form": form, "errors": _errors(exc)},
            status_code=exc.status_code,
        )
    if not saved:
        return _to_sign_in(request)
    return RedirectResponse(f"{HOME}?preferences=1", status_code=303)


# --- Password reset ----------------------------------------------------------------------------


async def forgot_page(request: Request) -> Response:
    return _render(
        request,
        "forgot.html",
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
        check_rate(request, "password_reset", settings.rate_limit_signin)
        await in_transaction(
            request,
            lambda db: request_password_reset(
                db, email=form["email"], settings=settings, env=request.state.mail_env
            ),
        )
    except (InvalidInput, RateLimited) as exc:
        return _render(
            request,
            "forgot.html",
            {
                "form": form,
                "errors": _errors(exc),
                "valid_minutes": RESET_MAX_AGE_SECONDS // 60,
            },
            status_code=exc.status_code,
        )
    # The same answer whether or not an account has this address.
    return RedirectResponse(
        "/compte/mot-de-passe/oubli?envoye=1",
        status_code=303,
        background=deliver_mail_soon(request),
    )


async def reset_page(request: Request) -> Response:
    settings = settings_of(request)
    token = request.query_params.get("token", "")
    try:
        await in_transaction(
            request, lambda db: check_reset_token(db, token=token, settings=settings)
        )
    except InvalidInput as exc:
        return _render(request, "reset.html", {"invalid": exc.message}, status_code=400)
    return _render(request, "reset.html", {"token": token})


async def reset_form(request: Request) -> Response:
    settings = settings_of(request)
    raw = await request.form()
    token = _text(raw, "token") or request.query_params.get("token", "")
    password = _text(raw, "password")
    try:
        check_rate(request, "password_reset", settings.rate_limit_signin)
        seeker = await in_transaction(
            request,
            lambda db: reset_password(db, token=token, new_password=password, settings=settings),
        )
    except (InvalidInput, RateLimited) as exc:
        if exc.field == "token":
            return _render(request, "reset.html", {"invalid": exc.message}, status_code=400)
        return _render(
            request,
            "reset.html",
            {"token": token, "errors": _errors(exc)},
            status_code=exc.status_code,
        )
    # A new password ends every session opened with the old one, on every worker.
    await end_sessions(request, f"seeker:{seeker.id}")
    _sign_in_session(request, seeker)
    return RedirectResponse(f"{HOME}?motdepasse=1", status_code=303)


# --- Personal data: download and deletion -------------------------------------------------------


async def download_data(request: Request) -> Response:
    seeker_id = current_seeker_id(request)
    stamp = request.session.get(SESSION_STAMP)

    def work(db: Session) -> dict[str, Any] | None:
        seeker = seeker_of_session(db, seeker_id, stamp)
        return None if seeker is None else export_seeker_data(db, seeker)

    data = await in_transaction(request, work)
    if data is None:
        return _to_sign_in(request)
    return JSONResponse(
        data,
        headers={
            "Content-Disposition": 'attachment; filename="mes-donnees.json"',
            "Cache-Control": "no-store",
        },
    )


async def delete_page(request: Request) -> Response:
    if current_seeker_id(request) is None:
        return _to_sign_in(request)
    return _render(request, "delete.html", {"errors": {}})


async def delete_form(request: Request) -> Response:
    seeker_id = current_seeker_id(request)
    stamp = request.session.get(SESSION_STAMP)
    raw = await request.form()
    password = str(raw.get("password") or "")

    def work(db: Session) -> bool:
        seeker = seeker_of_session(db, seeker_id, stamp)
        if seeker is None:
            return False
        delete_account(db, seeker, password=password, notifier=notifier(request, db))
        return True

    try:
        deleted = await in_transaction(request, work, lock=True)
    except InvalidInput as exc:
        return _render(request, "delete.html", {"errors": _errors(exc)}, status_code=400)
    if not deleted:
        return _to_sign_in(request)
    await end_sessions(request, f"seeker:{seeker_id}")
    request.session.clear()
    return RedirectResponse(
        "/compte/connexion?supprime=1", status_code=303, background=deliver_mail_soon(request)
    )


routes: list[BaseRoute] = [
    Route("/compte", home, methods=["GET"], name="account:home"),
    Route("/compte/inscription", sign_up_page, methods=["GET"], name="account:sign_up"),
    Route("/compte/inscription", sign_up_form, methods=["POST"], name="account:sign_up_post"),
    Route(
        "/compte/inscription/envoyee", sign_up_sent, methods=["GET"], name="account:sign_up_sent"
    ),
    Route("/compte/confirmation", confirm_page, methods=["GET"], name="account:confirm"),
    Route("/compte/confirmation", confirm_form, methods=["POST"], name="account:confirm_post"),
    Route("/compte/connexion", sign_in_page, methods=["GET"], name="account:sign_in"),
    Route("/compte/connexion", sign_in_form, methods=["POST"], name="account:sign_in_post"),
    Route("/compte/deconnexion", sign_out, methods=["POST"], name="account:sign_out"),
    Route(
        "/compte/agenda/regenerer",
        regenerate_feed,
        methods=["POST"],
        name="account:regenerate_feed",
    ),
    Route("/compte/donnees.json", download_data, methods=["GET"], name="account:data"),
    Route("/compte/suppression", delete_page, methods=["GET"], name="account:delete"),
    Route("/compte/suppression", delete_form, methods=["POST"], name="account:delete_post"),
    Route("/compte/preferences", preferences_page, methods=["GET"], name="account:preferences"),
    Route(
        "/compte/preferences",
        preferences_form,
        methods=["POST"],
        name="account:preferences_post",
    ),
    Route("/compte/mot-de-passe/oubli", forgot_page, methods=["GET"], name="account:forgot"),
    Route("/compte/mot-de-passe/oubli", forgot_form, methods=["POST"], name="account:forgot_post"),
    Route("/compte/mot-de-passe/nouveau", reset_page, methods=["GET"], name="account:reset"),
    Route("/compte/mot-de-passe/nouveau", reset_form, methods=["POST"], name="account:reset_post"),
]
