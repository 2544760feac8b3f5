"""The day of the event in a real browser (Debian's Chromium through Playwright), on a 360 px
phone: staff sign in, open the scan page, type a code, see the name, open the Bilan page; the
header names them; the dashboard loses nothing; axe-core finds no violation on the new pages.
And the QR code of the manage page, as the browser draws it, decodes back to the code with
zxing-cpp (a maintained decoder): no reading of our own SVG."""

from __future__ import annotations

import io
import re

import httpx
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from events_app.checkin_codes import format_checkin_code
from events_app.db import Database
from events_app.staff import create_staff
from tests.browser.conftest import AxeCheck, Pages, no_horizontal_scroll
from tests.factories import in_days, make_agency, make_event

STAFF_EMAIL = "claire.dupont@agence.example"
STAFF_PASSWORD = "une phrase de passe solide"


def _seed(committed: Database) -> int:
    with committed.transaction() as db:
        agency, _ = make_agency(db, name="Agence France Travail Montreuil")
        create_staff(
            db,
            agency_id=agency.id,
            email=STAFF_EMAIL,
            name="Claire Dupont",
            password=STAFF_PASSWORD,
        )
        # Tomorrow: registrations are open and check-in too (from the day before).
        event = make_event(
            db,
            agency,
            title="Job dating de la logistique, entrepôts et transport de Seine-Saint-Denis",
            starts_at=in_days(1, 9, 30),
            capacity=30,
        )
        return event.id


def test_staff_scan_a_code_on_a_phone_and_open_the_bilan(
    committed: Database, pages: Pages, axe: AxeCheck
) -> None:
    event_id = _seed(committed)
    response = httpx.post(
        f"{pages.base_url}/api/v1/events/{event_id}/registrations",
        json={"first_name": "Inès", "last_name": "Roux", "email": "ines.roux@example.org"},
    )
    assert response.status_code == 201, response.text
    manage_url = response.json()["manage_url"]
    token = manage_url.rsplit("/", 1)[1]
    code = httpx.get(f"{pages.base_url}/api/v1/registrations/{token}").json()["checkin_code"]

    # The person's page: the QR code, as drawn by the browser, holds the code.
    person = pages.new(360, 740)
    person.goto(f"/inscriptions/{token}")
    qr = person.locator("svg.qr-code")
    expect(qr).to_be_visible()
    expect(person.get_by_text(format_checkin_code(code))).to_be_visible()
    image = Image.open(io.BytesIO(qr.screenshot()))
    decoded = zxingcpp.read_barcodes(image)
    assert [result.text for result in decoded] == [code]
    assert [result.format for result in decoded] == [zxingcpp.BarcodeFormat.QRCode]
    violations = axe(person, "registration-manage-qr-mobile")

    page = pages.new(360, 740)
    page.goto("/organisme")
    page.get_by_label("Adresse e-mail").fill(STAFF_EMAIL)
    page.get_by_label("Mot de passe", exact=True).fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mes événements")
    # The header names the signed-in person and offers to sign out, not to sign in.
    header = page.get_by_role("navigation", name="Menu principal")
    expect(header).to_contain_text("Claire Dupont")
    expect(header.get_by_role("button", name="Se déconnecter")).to_be_visible()
    expect(header.get_by_text("Se connecter")).to_have_count(0)
    # The dashboard at 360 px: every column of the event is there, nothing scrolls sideways.
    card = page.locator(".agency-card").first
    expect(card).to_be_visible()
    for label in ("Date", "Format", "Places prises", "Liste d’attente", "Inscriptions"):
        expect(card.get_by_text(label, exact=True)).to_be_visible()
    expect(card).to_contain_text(re.compile(r"1\s*/\s*30"))
    assert no_horizontal_scroll(page)
    violations += axe(page, "agency-dashboard-cards-mobile")

    page.get_by_role("link", name=re.compile("Job dating de la logistique")).click()
    page.get_by_role("link", name="Pointer les arrivées (QR code)").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Pointage")
    violations += axe(page, "agency-scan-mobile")
    page.get_by_label("Code d’entrée").fill(format_checkin_code(code).lower())
    page.get_by_role("button", name="Pointer").click()
    result = page.get_by_role("status")
    expect(result).to_contain_text("Présent·e")
    expect(result).to_contain_text("Inès Roux")
    assert no_horizontal_scroll(page)
    violations += axe(page, "agency-scan-result-mobile")
    page.get_by_label("Code d’entrée").fill(code)
    page.get_by_role("button", name="Pointer").click()
    expect(result).to_contain_text(re.compile(r"Déjà pointé·e à \d{1,2} h( \d{2})?"))
    page.get_by_label("Code d’entrée").fill("AAAA-BBBB-CCCC")
    page.get_by_role("button", name="Pointer").click()
    expect(result).to_contain_text("Code inconnu pour cet événement")

    # The attendance list shows the check-in and who did it.
    page.goto(f"/organisme/evenements/{event_id}")
    expect(page.locator(f"#inscrit-{response.json()['id']}")).to_contain_text("par Claire Dupont")

    page.get_by_role("navigation", name="Espace organisateur").get_by_role(
        "link", name="Bilan"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bilan")
    expect(
        page.get_by_role("img", name=re.compile("Inscriptions et présence par mois"))
    ).to_be_visible()
    expect(page.get_by_role("table", name="Chiffres par mois")).to_contain_text("1")
    assert no_horizontal_scroll(page)
    violations += axe(page, "agency-bilan-mobile")

    desktop = pages.new()
    desktop.goto("/organisme/connexion")
    desktop.get_by_label("Adresse e-mail").fill(STAFF_EMAIL)
    desktop.get_by_label("Mot de passe", exact=True).fill(STAFF_PASSWORD)
    desktop.get_by_role("button", name="Se connecter").click()
    desktop.goto("/organisme/bilan")
    violations += axe(desktop, "agency-bilan")
    desktop.goto(f"/organisme/evenements/{event_id}/pointage")
    violations += axe(desktop, "agency-scan")
    assert violations == [], "\n".join(map(str, violations))
