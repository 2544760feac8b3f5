"""Staff sign-in, sign-out, forgotten password and password reset (or invitation)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from events_app.errors import (
    InvalidInput,
    RateLimited,
    Unauthorized,
)
from events_app.staff import (
    INVITATION_MAX_AGE_SECONDS,
    RESET_MAX_AGE_SECONDS,
    authenticate_staff,
    check_staff_token,
    request_staff_password_reset,
    reset_staff_password,
)
from events_app.web.agency.event_form import form_error
from events_app.web.agency.session import (
    HOME,
    SIGN_IN,
    _render,
    _safe_next,
    _sign_in_session,
    _text,
)
from events_app.web.common import (
    check_rate,
    deliver_mail_soon,
    in_transaction,
    settings_of,
)
from events_app.web.sessions import end_sessions


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
    # A new password ends every session opened with the old one, on every worker.
    await end_sessions(request, f"staff:{staff.id}")
    _sign_in_session(request, staff)
    return RedirectResponse(f"{HOME}?fait=motdepasse", status_code=303)


# --- Dashboard ---------------------------------------------------------------------------------
