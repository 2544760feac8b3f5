"""Alerts in a real browser without JavaScript (issue 15): created from the results page,
confirmed by the button of the mailed link, managed, then ended from the unsubscribe page;
axe-core on each of these pages, at 1280 and 360 px."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect
from sqlalchemy import delete, select

from events_app.db import Database
from events_app.models import Alert, OutboxMessage
from tests.browser.conftest import AxeCheck, Pages, no_horizontal_scroll
from tests.factories import MONTREUIL_VENUE, in_days, make_agency, make_event

ADDRESS = "lea.martin@exemple.fr"


def _alert(committed: Database) -> Alert:
    with committed.transaction() as db:
        alert = db.scalars(select(Alert)).one()
        db.expunge(alert)
        return alert


def _walk(page: Page, committed: Database, axe: AxeCheck | None, suffix: str) -> list[Any]:
    """Make, confirm and end one alert through the pages; axe on each page when given."""
    violations: list[Any] = []

    def check(name: str) -> None:
        if axe is not None:
            violations.extend(axe(page, f"{name}{suffix}"))

    page.goto("/evenements?near=Montreuil&radius_km=15&sector=J")
    page.get_by_label("Votre adresse e-mail").fill(ADDRESS)
    page.get_by_label("Chaque semaine").check()
    page.get_by_role("button", name="Créer l’alerte").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alerte créée")
    check("alert-created")

    alert = _alert(committed)
    assert alert.confirmed_at is None and alert.frequency == "weekly"
    assert ["near", "Montreuil"] in alert.filters and ["sector", "J"] in alert.filters
    with committed.transaction() as db:
        [confirmation] = list(
            db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "alert_confirm"))
        )
    link = f"/alertes/confirmer/{alert.token}"
    assert link in confirmation.body_text

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirmer l’alerte")
    check("alert-confirm")
    assert _alert(committed).confirmed_at is None  # opening the link confirms nothing
    page.get_by_role("button", name="Confirmer l’alerte").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Gérer l’alerte")
    expect(page.get_by_role("status")).to_contain_text("Votre alerte est confirmée")
    assert _alert(committed).confirmed_at is not None
    check("alert-manage")

    page.goto(f"/alertes/desabonner/{alert.token}")
    check("alert-unsubscribe")
    page.get_by_role("button", name="Ne plus recevoir cette alerte").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alerte supprimée")
    check("alert-unsubscribed")
    with committed.transaction() as db:
        assert db.scalars(select(Alert)).first() is None
        db.execute(delete(OutboxMessage))
    return violations


def test_an_alert_is_made_confirmed_and_ended_without_javascript(
    committed: Database, pages: Pages, axe: AxeCheck
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db, name="Agence France Travail Montreuil")
        make_event(
            db, agency, title="Forum de l'alternance", venue=MONTREUIL_VENUE, starts_at=in_days(9)
        )
    # The journey itself, as a browser without JavaScript makes it (axe needs JavaScript).
    _walk(pages.new(java_script_enabled=False), committed, None, "")
    # The same pages checked by axe, wide and on a phone.
    violations = []
    for width in (1280, 360):
        page = pages.new(width=width)
        violations += _walk(page, committed, axe, "" if width == 1280 else "-360")
        assert no_horizontal_scroll(page) or width > 360
    assert violations == [], "\n".join(map(str, violations))
