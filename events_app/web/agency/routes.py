"""The back office's routes, under /organisme."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from events_app.web.agency.auth import (
    forgot_form,
    forgot_page,
    reset_form,
    reset_page,
    sign_in_form,
    sign_in_page,
    sign_out,
)
from events_app.web.agency.checkin import scan_form, scan_page
from events_app.web.agency.events import (
    cancel_event_form,
    dashboard,
    dismiss_duplicates_form,
    duplicate_event_form,
    edit_event_form,
    edit_event_page,
    event_page,
    new_event_form,
    new_event_page,
    registrations_state_form,
)
from events_app.web.agency.feeds import (
    add_feed_form,
    csv_template,
    feeds_page,
    formats_page,
    rotate_token_form,
    token_page,
)
from events_app.web.agency.registrants import attendance_form, registrants_csv_export
from events_app.web.agency.stats import stats_csv_export, stats_page

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
        "/organisme/evenements/{id}/doublon",
        dismiss_duplicates_form,
        methods=["POST"],
        name="agency:dismiss_duplicates",
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
    Route("/organisme/evenements/{id}/pointage", scan_page, methods=["GET"], name="agency:scan"),
    Route(
        "/organisme/evenements/{id}/pointage",
        scan_form,
        methods=["POST"],
        name="agency:scan_post",
    ),
    Route("/organisme/bilan", stats_page, methods=["GET"], name="agency:stats"),
    Route("/organisme/bilan.csv", stats_csv_export, methods=["GET"], name="agency:stats_csv"),
    Route("/organisme/flux", feeds_page, methods=["GET"], name="agency:feeds"),
    Route("/organisme/flux/formats", formats_page, methods=["GET"], name="agency:formats"),
    Route("/organisme/flux/modele.csv", csv_template, methods=["GET"], name="agency:csv_template"),
    Route("/organisme/flux", add_feed_form, methods=["POST"], name="agency:add_feed"),
    Route("/organisme/jeton", token_page, methods=["GET"], name="agency:token"),
    Route("/organisme/jeton", rotate_token_form, methods=["POST"], name="agency:rotate_token"),
]
