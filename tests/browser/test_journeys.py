"""End-to-end journeys in a real browser (Debian's Chromium, through Playwright), against the
app under uvicorn: a seeker on a desktop and on a 360 px phone, a seeker with the keyboard
alone, the errors of the registration form, an agency in its back office, the filters that
update the results in place, and axe-core on every kind of page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from playwright.sync_api import Page, expect

from events_app.db import Database
from events_app.events import get_event
from events_app.models import Agency
from events_app.notifications import Notifier
from events_app.registrations import Person, cancel_event, register
from events_app.settings import Settings
from events_app.staff import create_staff
from tests.browser.conftest import AxeCheck, Pages, no_horizontal_scroll
from tests.factories import in_days, make_agency, make_event

STAFF_EMAIL = "claire.dupont@agence.example"
STAFF_PASSWORD = "une phrase de passe solide"

COMMERCE = "D"
MONTREUIL = {
    "name": "Agence France Travail Montreuil",
    "address": "1 place Jean-Jaurès",
    "postal_code": "93100",
    "city": "Montreuil",
    "lat": 48.8615,
    "lon": 2.4432,
}
LYON = {
    "name": "Mission locale",
    "address": "3 rue de la République",
    "postal_code": "69002",
    "city": "Lyon",
    "lat": 45.7640,
    "lon": 4.8357,
}


@dataclass(frozen=True)
class Seeded:
    agency_id: int
    target_id: int
    target_title: str
    other_sector_id: int
    far_id: int


def seed(committed: Database) -> Seeded:
    """A job dating in Commerce in Montreuil (the one to find), and two that must not match:
    the same near Montreuil in Transport, and the same in Commerce in Lyon."""
    with committed.transaction() as db:
        agency, _ = make_agency(db, name="Agence France Travail Montreuil")
        create_staff(
            db,
            agency_id=agency.id,
            email=STAFF_EMAIL,
            name="Claire Dupont",
            password=STAFF_PASSWORD,
        )
        target = make_event(
            db,
            agency,
            title="Job dating de la grande distribution",
            type="job_dating",
            sectors=[COMMERCE],
            venue=MONTREUIL,
            starts_at=in_days(6, 9, 30),
            capacity=12,
            job_offers=25,
            accessibility_notes="Salle de plain-pied, accessible en fauteuil roulant.",
        )
        other_sector = make_event(
            db,
            agency,
            title="Job dating des chauffeurs-livreurs",
            type="job_dating",
            sectors=["N"],
            venue=MONTREUIL,
            starts_at=in_days(8, 14, 0),
        )
        far = make_event(
            db,
            agency,
            title="Job dating des caissiers à Lyon",
            type="job_dating",
            sectors=[COMMERCE],
            venue=LYON,
            starts_at=in_days(9, 10, 0),
        )
        return Seeded(agency.id, target.id, target.title, other_sector.id, far.id)


def card_titles(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("#results-list .event-card h3").all_inner_texts()]


def register_through_form(page: Page) -> None:
    page.get_by_label("Prénom", exact=True).fill("Inès")
    page.get_by_label("Nom", exact=True).fill("Roux")
    page.get_by_label("Adresse e-mail").fill("ines.roux@example.org")
    page.get_by_label("Téléphone (facultatif)").fill("06 12 34 56 78")
    page.locator("#consent").check()
    page.get_by_role("button", name="Je m'inscris").click()


# --- 1 and 2: the seeker's journey, on a desktop and on a phone ---------------------------


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (360, 740)], ids=["desktop", "phone"])
def test_seeker_finds_registers_and_cancels(
    committed: Database, pages: Pages, width: int, height: int
) -> None:
    data = seed(committed)
    page = pages.new(width, height)
    phone = width <= 360

    page.goto("/")
    assert no_horizontal_scroll(page)
    page.get_by_label("Commune, code postal ou département").fill("Montreuil")
    page.get_by_label("Rayon (km)").fill("10")
    page.get_by_role("button", name="Rechercher").click()
    expect(page).to_have_url(re.compile(r"/evenements\?.*near=Montreuil"))
    expect(page.locator("#results-count")).to_contain_text("autour de Montreuil")
    assert no_horizontal_scroll(page)

    # Job datings in Commerce: the filter groups are folded on a phone, open on a desktop.
    sectors = page.locator("details.filter-group", has=page.locator("input[name=sector]"))
    types = page.locator("details.filter-group", has=page.locator("input[name=type]"))
    if phone:
        sectors.locator("summary").click()
        types.locator("summary").click()
    page.get_by_role("checkbox", name="Commerce, vente et grande distribution", exact=True).check()
    page.get_by_role("checkbox", name="Job dating", exact=True).check()
    page.locator(".search-form").get_by_role("button", name="Rechercher").click()
    expect(page.locator("#results-count")).to_contain_text("1 événement correspond")
    assert card_titles(page) == [data.target_title]
    expect(page.locator("#results-list .distance")).to_contain_text("km")
    assert "sector=D" in page.url and "type=job_dating" in page.url
    assert no_horizontal_scroll(page)

    page.get_by_role("link", name=data.target_title).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(data.target_title)
    expect(page.locator(".key-facts")).to_contain_text("12 places restantes")
    expect(page.locator(".key-facts")).to_contain_text("25 offres")
    expect(page.get_by_role("link", name=re.compile("OpenStreetMap"))).to_be_visible()
    assert no_horizontal_scroll(page)

    # « Ajouter à mon agenda »: a menu of three ways.
    page.get_by_text("Ajouter à mon agenda").click()
    menu = page.locator(".add-to-calendar")
    google = menu.get_by_role("link", name="Google Agenda").get_attribute("href") or ""
    assert google.startswith("https://calendar.google.com/calendar/render?action=TEMPLATE")
    assert "dates=" in google and "Job%20dating%20de%20la%20grande%20distribution" in google
    outlook = (
        menu.get_by_role("link", name="Outlook.com ou Microsoft 365").get_attribute("href") or ""
    )
    assert outlook.startswith("https://outlook.live.com/calendar/0/deeplink/compose?")
    ics = menu.get_by_role("link", name=re.compile(r"\.ics"))
    assert ics.get_attribute("href") == f"/events/{data.target_id}.ics"

    register_through_form(page)
    expect(page).to_have_url(re.compile(r"/inscriptions/[^/?]+\?nouvelle=1"))
    expect(page.get_by_role("status")).to_contain_text("Votre inscription est confirmée")
    expect(page.locator("dl")).to_contain_text("Inès Roux")
    assert no_horizontal_scroll(page)

    # The page of the confirmation e-mail: opened again later, it still cancels nothing.
    manage_url = page.url.split("?")[0]
    page.goto(manage_url)
    expect(page.locator("dl")).to_contain_text("Confirmée")
    # Cancelling asks first, in a dialog: « Non » changes nothing, « Oui » cancels.
    page.get_by_role("button", name="Annuler mon inscription").click()
    dialog = page.get_by_role("dialog", name=re.compile(r"^Annuler votre inscription"))
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Non, garder mon inscription").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("dl")).to_contain_text("Confirmée")
    page.get_by_role("button", name="Annuler mon inscription").click()
    dialog.get_by_role("button", name="Oui, annuler mon inscription").click()
    expect(page.get_by_role("status")).to_contain_text("Votre inscription est annulée")
    expect(page.locator("dl")).to_contain_text("Annulée")
    expect(page.get_by_role("button", name="Annuler mon inscription")).to_have_count(0)
    assert no_horizontal_scroll(page)

    page.goto(f"/evenements/{data.target_id}")
    expect(page.locator(".key-facts")).to_contain_text("12 places restantes")


# --- 3: the keyboard alone ----------------------------------------------------------------


def focused(page: Page, attribute: str = "id") -> str:
    value: str = page.evaluate(
        "(name) => { const e = document.activeElement; return e ? (e.getAttribute(name) || '') "
        ": ''; }",
        attribute,
    )
    return value


def focus_is_visible(page: Page) -> bool:
    visible: bool = page.evaluate(
        """() => {
            const style = getComputedStyle(document.activeElement);
            const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
            return outline || style.boxShadow !== "none";
        }"""
    )
    return visible


def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching `selector` has the focus."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_keyboard_only_journey(committed: Database, pages: Pages) -> None:
    data = seed(committed)
    page = pages.new()
    page.goto("/")

    page.keyboard.press("Tab")
    assert focused(page, "class") == "skip-link"
    assert page.locator(".skip-link").is_visible()
    assert focus_is_visible(page)
    page.keyboard.press("Enter")
    assert focused(page) == "contenu"

    # The search form, from the main content onwards.
    page.keyboard.press("Tab")
    assert focused(page) == "q"
    assert focus_is_visible(page)
    page.keyboard.press("Tab")
    assert focused(page) == "near"
    assert focus_is_visible(page)
    page.keyboard.type("Montreuil")
    page.keyboard.press("Tab")
    assert focused(page) == "radius_km"
    page.keyboard.press("Control+A")
    page.keyboard.type("10")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.type") == "submit"
    assert focus_is_visible(page)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/evenements\?"))
    expect(page.locator("#results-count")).to_contain_text("autour de Montreuil")

    # A filter checked with the keyboard (Space), the form sent with Enter.
    tab_to(page, "input[name=sector][value=D]")
    page.keyboard.press("Space")
    expect(page.locator("#results-count")).to_contain_text("1 événement")
    tab_to(page, f"a[href='/evenements/{data.target_id}']")
    assert focus_is_visible(page) or page.evaluate(
        "() => getComputedStyle(document.activeElement.closest('.event-card')).outlineStyle"
        " !== 'none'"
    )
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(data.target_title)

    tab_to(page, "#first_name")
    page.keyboard.type("Karim")
    page.keyboard.press("Tab")
    page.keyboard.type("Benali")
    page.keyboard.press("Tab")
    page.keyboard.type("karim.benali@example.org")
    tab_to(page, "#consent")
    assert focus_is_visible(page)
    page.keyboard.press("Space")
    tab_to(page, "button[type=submit]")
    assert focus_is_visible(page)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Votre inscription est confirmée")

    tab_to(page, "form[action$='/annulation'] button")
    assert focus_is_visible(page)
    page.keyboard.press("Enter")
    # The confirmation dialog takes the focus on its safe answer; Échap closes it.
    dialog = page.locator("dialog#confirmer-annulation")
    expect(dialog).to_be_visible()
    assert page.evaluate("() => document.activeElement.hasAttribute('data-close')")
    assert focus_is_visible(page)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    tab_to(page, "form[action$='/annulation'] button")
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("() => document.activeElement.textContent.startsWith('Oui')")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Votre inscription est annulée")


# --- 4: errors tied to their fields ---------------------------------------------------------


def test_registration_errors_are_announced_and_tied_to_fields(
    committed: Database, pages: Pages
) -> None:
    data = seed(committed)
    page = pages.new()
    page.goto(f"/evenements/{data.target_id}")
    page.get_by_role("button", name="Je m'inscris").click()

    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    assert summary.get_attribute("role") == "alert"
    expect(summary).to_be_focused()  # app.js puts the focus on it
    assert page.title().startswith("Erreur")
    for field in ("first_name", "last_name", "email", "consent"):
        control = page.locator(f"#{field}")
        assert control.get_attribute("aria-invalid") == "true", field
        described = (control.get_attribute("aria-describedby") or "").split()
        assert described, field
        for message_id in described:
            message = page.locator(f"#{message_id}")
            expect(message).to_be_visible()
            assert message.inner_text().strip(), message_id
        expect(summary.locator(f"a[href='#{field}']")).to_have_count(1)
    assert page.locator("#phone").get_attribute("aria-invalid") is None

    # The summary's link leads to the field.
    summary.locator("a[href='#email']").click()
    expect(page.locator("#email")).to_be_focused()

    # Fixing some fields leaves only the others in error, with what was typed kept.
    page.locator("#first_name").fill("Inès")
    page.locator("#last_name").fill("Roux")
    page.locator("#email").fill("pas-une-adresse")
    page.get_by_role("button", name="Je m'inscris").click()
    expect(page.locator("#email-error")).to_contain_text("Adresse e-mail invalide")
    expect(page.locator("#consent-error")).to_be_visible()
    expect(page.locator("#first_name")).to_have_value("Inès")
    assert page.locator("#first_name").get_attribute("aria-invalid") is None


# --- 5: an agency in its back office -----------------------------------------------------------


def test_agency_creates_closes_and_exports(committed: Database, pages: Pages) -> None:
    seed(committed)
    page = pages.new()
    page.goto("/organisme")
    expect(page).to_have_url(re.compile(r"/organisme/connexion"))
    page.get_by_label("Adresse e-mail").fill(STAFF_EMAIL)
    page.get_by_label("Mot de passe", exact=True).fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mes événements")

    page.get_by_role("navigation", name="Espace organisateur").get_by_role(
        "link", name="Créer un événement"
    ).click()
    starts = in_days(12, 14, 0)
    ends = starts + timedelta(hours=2)
    title = "Forum des métiers du commerce de Montreuil"
    page.get_by_label("Titre *").fill(title)
    page.get_by_label("Type d’événement *").select_option("forum")
    page.locator("input[name=sectors][value=D]").check()
    page.locator("input[name=format][value=onsite]").check()
    page.get_by_label("Description").fill("Vingt enseignes recrutent.\n\nApportez votre CV.")
    page.get_by_label("Début *").fill(starts.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Fin *").fill(ends.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Nom du lieu").fill("Salle des fêtes")
    page.get_by_label("Adresse", exact=True).fill("2 rue de Paris")
    page.get_by_label("Code postal").fill("93100")
    page.get_by_label("Commune").fill("Montreuil")
    page.get_by_label("Places (sur place pour un événement hybride)").fill("40")
    page.get_by_role("button", name="Créer et publier l’événement").click()
    expect(page.get_by_role("status")).to_contain_text("L’événement est créé et publié.")
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    event_path = page.url.split("?")[0]

    page.goto("/organisme")
    expect(page.get_by_role("table").first).to_contain_text(title)

    # It is public at once.
    public = pages.new()
    public.goto("/evenements?near=93100&radius_km=10&sector=D&type=forum")
    assert card_titles(public) == [title]

    # A seeker registers through the API; the agency closes registrations and exports.
    event_id = int(event_path.rstrip("/").rsplit("/", 1)[1])
    response = httpx.post(
        f"{pages.base_url}/api/v1/events/{event_id}/registrations",
        json={"first_name": "Léa", "last_name": "Martin", "email": "lea.martin@example.org"},
    )
    assert response.status_code == 201, response.text
    page.goto(event_path)
    expect(page.locator("#inscrits")).to_contain_text("(1)")
    page.get_by_role("button", name="Fermer les inscriptions").click()
    expect(page.get_by_text("Vous avez fermé les inscriptions.")).to_be_visible()
    public.goto(f"/evenements/{event_id}")
    expect(public.get_by_role("button", name="Je m'inscris")).to_have_count(0)

    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile("Exporter les inscrits")).click()
    download = download_info.value
    path = download.path()
    assert path is not None
    content = path.read_bytes()
    assert content.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, for French Excel
    text = content.decode("utf-8-sig")
    assert ";" in text.splitlines()[0] and "Léa" in text and "Martin" in text


# --- 6: the filters update the results in place ----------------------------------------------


def test_filters_update_results_without_reloading(committed: Database, pages: Pages) -> None:
    data = seed(committed)
    page = pages.new()
    page.goto("/evenements?near=Montreuil&radius_km=10")
    expect(page.locator("#results-count")).to_contain_text("2 événements correspondent")
    assert sorted(card_titles(page)) == sorted(
        ["Job dating de la grande distribution", "Job dating des chauffeurs-livreurs"]
    )
    live = page.locator("#results-count")
    assert live.get_attribute("role") == "status"
    page.evaluate("() => { window.stillTheSamePage = true; }")

    page.get_by_role("checkbox", name="Commerce, vente et grande distribution", exact=True).check()
    expect(live).to_contain_text("1 événement correspond")
    assert card_titles(page) == [data.target_title]
    assert page.evaluate("() => window.stillTheSamePage === true")  # no navigation
    assert "sector=D" in page.url and "near=Montreuil" in page.url
    expect(page.locator("details.filter-group summary .count").first).to_have_text("(1 choisi)")

    page.get_by_role(
        "checkbox", name="Commerce, vente et grande distribution", exact=True
    ).uncheck()
    page.get_by_role("checkbox", name="Santé", exact=True).check()
    expect(live).to_contain_text("Aucun événement ne correspond")
    expect(page.locator(".empty-state")).to_contain_text("Élargissez la recherche")
    assert page.evaluate("() => window.stillTheSamePage === true")
    assert "sector=J" in page.url and "sector=D" not in page.url

    # The address the script wrote gives the same page without JavaScript.
    plain = pages.new(java_script_enabled=False)
    plain.goto(page.url.replace(pages.base_url, ""))
    expect(plain.locator("#results-count")).to_contain_text("Aucun événement ne correspond")
    # The checkbox of the search form (the alert form below carries the filters as hidden fields).
    assert plain.locator("input[type=checkbox][name=sector][value=J]").is_checked()


# --- 7: axe-core on every kind of page --------------------------------------------------------


def test_pages_have_no_accessibility_violations(
    committed: Database, pages: Pages, axe: AxeCheck
) -> None:
    data = seed(committed)
    violations = []
    for width, suffix in ((1280, ""), (360, "-mobile")):
        page = pages.new(width, 900 if width > 360 else 740)

        page.goto("/")
        violations += axe(page, f"home{suffix}")
        page.goto("/evenements?near=Montreuil&radius_km=10&sector=D")
        violations += axe(page, f"results{suffix}")
        page.goto("/evenements?q=introuvable-xyz")
        violations += axe(page, f"results-empty{suffix}")
        page.goto("/evenements?near=Zzzyxville")
        violations += axe(page, f"results-error{suffix}")
        page.goto(f"/evenements/{data.target_id}")
        page.get_by_text("Ajouter à mon agenda").click()
        violations += axe(page, f"event{suffix}")
        page.get_by_role("button", name="Je m'inscris").click()
        violations += axe(page, f"event-errors{suffix}")
        if not suffix:
            register_through_form(page)
            expect(page.get_by_role("status")).to_contain_text("Votre inscription est confirmée")
            violations += axe(page, "registration-confirmation")
            page.goto(page.url.split("?")[0])
            violations += axe(page, "registration-manage")
        page.goto("/accessibilite")
        violations += axe(page, f"accessibility{suffix}")
        page.goto("/donnees-personnelles")
        violations += axe(page, f"privacy{suffix}")
        page.goto("/nulle-part")
        violations += axe(page, f"not-found{suffix}")
        page.goto("/compte/connexion")
        violations += axe(page, f"account-sign-in{suffix}")

        page.goto("/organisme/connexion")
        violations += axe(page, f"agency-sign-in{suffix}")
        page.get_by_label("Adresse e-mail").fill(STAFF_EMAIL)
        page.get_by_label("Mot de passe", exact=True).fill(STAFF_PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Mes événements")
        violations += axe(page, f"agency-dashboard{suffix}")
        page.goto(f"/organisme/evenements/{data.target_id}")
        violations += axe(page, f"agency-event{suffix}")
        page.goto("/organisme/evenements/nouveau")
        violations += axe(page, f"agency-new-event{suffix}")
        page.get_by_role("button", name="Créer et publier l’événement").click()
        violations += axe(page, f"agency-new-event-errors{suffix}")
        page.goto("/organisme/flux")
        violations += axe(page, f"agency-feeds{suffix}")
        page.goto("/organisme/flux/formats")
        violations += axe(page, f"agency-feed-formats{suffix}")
        page.goto("/organisme/jeton")
        violations += axe(page, f"agency-token{suffix}")
        assert no_horizontal_scroll(page) or width > 360
    assert violations == [], "\n".join(map(str, violations))


# --- issue 16: the organiser-cancelled event's registration, the confirmations -------------


def test_registration_of_an_event_the_organiser_cancelled_on_a_phone(
    committed: Database, pages: Pages, axe: AxeCheck, settings: Settings
) -> None:
    data = seed(committed)
    with committed.transaction(lock=True) as db:
        notifier = Notifier(db, settings)
        registration = register(
            db,
            event_id=data.target_id,
            person=Person("Inès", "Roux", "ines.roux@example.org"),
            notifier=notifier,
        ).registration
        token = registration.token
        cancel_event(
            db,
            get_event(db, data.target_id),
            notifier=notifier,
            message="La salle est inondée : nous vous écrirons pour une autre date.",
        )
    page = pages.new(360, 740)
    page.goto(f"/inscriptions/{token}")
    banner = page.locator("#evenement-annule")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("annulé par l'organisateur")
    expect(banner).to_contain_text("La salle est inondée")
    expect(page.locator("#etat")).to_have_text("Événement annulé par l'organisateur")
    expect(page.get_by_text("Confirmée", exact=True)).to_have_count(0)
    expect(page.get_by_text("Ajouter à mon agenda")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("Annuler"))).to_have_count(0)
    ics = page.get_by_role("link", name=re.compile("Mettre à jour mon agenda"))
    expect(ics).to_be_visible()
    href = ics.get_attribute("href") or ""
    body = httpx.get(pages.base_url + href, timeout=10).text
    assert "STATUS:CANCELLED" in body and "STATUS:CONFIRMED" not in body
    assert no_horizontal_scroll(page)
    violations = axe(page, "registration-event-cancelled-mobile")

    # « J'ai perdu mon lien », on the same phone.
    page.goto("/inscriptions/lien-perdu")
    violations += axe(page, "lost-link-mobile")
    page.get_by_label("Adresse e-mail").fill("ines.roux@example.org")
    page.get_by_role("button", name="Recevoir mes liens").click()
    expect(page.get_by_role("status")).to_contain_text("Si des inscriptions à venir")
    violations += axe(page, "lost-link-sent-mobile")
    assert no_horizontal_scroll(page)
    assert violations == [], "\n".join(map(str, violations))


def test_cancellations_ask_in_a_dialog_or_on_a_page(
    committed: Database, pages: Pages, axe: AxeCheck
) -> None:
    data = seed(committed)
    violations = []
    # A seeker: the dialog with JavaScript.
    page = pages.new(360, 740)
    page.goto(f"/evenements/{data.target_id}")
    register_through_form(page)
    expect(page.get_by_role("status")).to_contain_text("Votre inscription est confirmée")
    manage_url = page.url.split("?")[0]
    page.get_by_role("button", name="Annuler mon inscription").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    violations += axe(page, "registration-cancel-dialog-mobile")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()

    # Without JavaScript: the same question on a page of its own.
    nojs = pages.new(360, 740, java_script_enabled=False)
    nojs.goto(manage_url)
    nojs.get_by_role("button", name="Annuler mon inscription").click()
    expect(nojs).to_have_url(re.compile(r"/inscriptions/[^/]+/annulation\??$"))
    expect(nojs.get_by_role("heading", level=2)).to_have_text(
        re.compile(r"^Annuler votre inscription\W+\?$")
    )
    # axe needs scripts: the same page, opened by a page that runs them.
    page.goto(manage_url + "/annulation")
    violations += axe(page, "registration-cancel-confirm-mobile")
    nojs.get_by_role("link", name="Non, garder mon inscription").click()
    expect(nojs.locator("#etat")).to_have_text("Confirmée")
    nojs.get_by_role("button", name="Annuler mon inscription").click()
    nojs.get_by_role("button", name="Oui, annuler mon inscription").click()
    expect(nojs.get_by_role("status")).to_contain_text("Votre inscription est annulée")

    # An agency: « définitive », so asked first too.
    agency = pages.new(1280, 900)
    agency.goto("/organisme/connexion")
    agency.get_by_label("Adresse e-mail").fill(STAFF_EMAIL)
    agency.get_by_label("Mot de passe", exact=True).fill(STAFF_PASSWORD)
    agency.get_by_role("button", name="Se connecter").click()
    agency.goto(f"/organisme/evenements/{data.target_id}")
    agency.get_by_label("Message aux personnes inscrites (facultatif)").fill("Salle indisponible.")
    agency.get_by_role("button", name="Annuler l’événement").click()
    dialog = agency.get_by_role("dialog", name=re.compile(r"^Annuler l’événement"))
    expect(dialog).to_be_visible()
    violations += axe(agency, "agency-cancel-dialog")
    dialog.get_by_role("button", name="Non, garder l’événement").click()
    expect(dialog).to_be_hidden()
    expect(agency.locator(".badge-status")).to_have_text("Programmé")
    agency.get_by_role("button", name="Annuler l’événement").click()
    dialog.get_by_role("button", name="Oui, annuler définitivement").click()
    expect(agency.locator(".badge-status")).to_have_text("Annulé")

    # The agency's confirmation page, without JavaScript.
    with committed.transaction() as db:
        other = make_event(db, db.get(Agency, data.agency_id), title="Atelier CV").id
    nojs_agency = pages.new(360, 740, java_script_enabled=False)
    nojs_agency.goto("/organisme/connexion")
    nojs_agency.get_by_label("Adresse e-mail").fill(STAFF_EMAIL)
    nojs_agency.get_by_label("Mot de passe", exact=True).fill(STAFF_PASSWORD)
    nojs_agency.get_by_role("button", name="Se connecter").click()
    nojs_agency.goto(f"/organisme/evenements/{other}")
    nojs_agency.get_by_role("button", name="Annuler l’événement").click()
    expect(nojs_agency.get_by_role("heading", level=1)).to_have_text(
        re.compile(r"^Annuler l’événement\W+\?$")
    )
    assert no_horizontal_scroll(nojs_agency)
    # axe needs scripts: the same confirmation page, reached by a page that runs them with the
    # dialog let through.
    agency.set_viewport_size({"width": 360, "height": 740})
    with committed.transaction() as db:
        third = make_event(db, db.get(Agency, data.agency_id), title="Atelier lettre").id
    agency.goto(f"/organisme/evenements/{third}")
    agency.evaluate(
        "() => document.querySelector('#annuler-evenement button[type=submit]')"
        ".setAttribute('data-confirmed', '')"
    )
    agency.get_by_role("button", name="Annuler l’événement").click()
    expect(agency.get_by_role("heading", level=1)).to_have_text(
        re.compile(r"^Annuler l’événement\W+\?$")
    )
    violations += axe(agency, "agency-cancel-confirm-mobile")
    nojs_agency.get_by_role("button", name="Oui, annuler définitivement").click()
    expect(nojs_agency.locator(".badge-status")).to_have_text("Annulé")
    assert violations == [], "\n".join(map(str, violations))
