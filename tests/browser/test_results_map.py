"""The results page in a real browser (issue 16): the map on and off, the sort, the place
combobox with the keyboard alone, the ambiguous « Saint-Denis », axe-core, and the
screenshots of the page with its map at 1280 and 360 px (tests/artifacts/)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from events_app.db import Database
from tests.browser.conftest import AxeCheck, Pages, no_horizontal_scroll, save_screenshot
from tests.factories import MONTREUIL_VENUE, in_days, make_agency, make_event

VENUE = MONTREUIL_VENUE
# Known by its commune only: placed at the centre of Saint-Denis (93) by the gazetteer.
SAINT_DENIS = {
    "name": "Salle des fêtes",
    "address": None,
    "postal_code": "93200",
    "city": "Saint-Denis",
    "lat": None,
    "lon": None,
}
VINCENNES = {**VENUE, "postal_code": "94300", "city": "Vincennes", "lat": 48.8474, "lon": 2.4390}


def seed(committed: Database) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db, name="Agence France Travail Montreuil")
        make_event(
            db,
            agency,
            title="Forum de l'alternance",
            venue=VENUE,
            starts_at=in_days(9),
            type="forum",
        )
        make_event(
            db,
            agency,
            title="Job dating des métiers du soin",
            venue=VINCENNES,
            starts_at=in_days(3),
        )
        make_event(
            db,
            agency,
            title="Atelier CV à Saint-Denis",
            venue=SAINT_DENIS,
            starts_at=in_days(5),
            type="workshop",
        )
        make_event(
            db,
            agency,
            title="Salon en ligne du numérique",
            format="online",
            venue=None,
            online_url="https://visio.example/salon",
            starts_at=in_days(4),
            type="online_fair",
        )


def titles(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("#results-list .event-card h3").all_inner_texts()]


RESULTS = "/evenements?near=Montreuil&radius_km=15"


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (360, 740)], ids=["1280", "360"])
def test_map_beside_the_list(
    committed: Database, pages: Pages, axe: AxeCheck, width: int, height: int
) -> None:
    seed(committed)
    page = pages.new(width, height)
    page.goto(RESULTS)
    expect(page.locator("#results-count")).to_contain_text("4 événements correspondent")
    panel = page.locator("#results-map-panel")
    expect(panel).to_be_visible()
    # A pin per on-site event, the search circle, and the tiles of the configured server.
    expect(page.locator(".leaflet-marker-icon")).to_have_count(3)
    expect(page.locator(".leaflet-overlay-pane path")).to_have_count(1)
    expect(page.locator(".leaflet-tile-loaded").first).to_be_visible()
    expect(page.locator(".leaflet-control-attribution")).to_contain_text("Tuiles de test")
    approximate = page.locator(".leaflet-marker-icon.pin-approximate")
    expect(approximate).to_have_count(1)
    assert approximate.get_attribute("alt") == "Atelier CV à Saint-Denis (position approximative)"
    if width == 1280:
        # Beside the list, not below it.
        list_box = page.locator("#results-list").bounding_box()
        map_box = page.locator("#results-map").bounding_box()
        assert list_box and map_box and map_box["x"] > list_box["x"] + list_box["width"] - 1
    else:
        assert no_horizontal_scroll(page)
    violations = axe(page, f"results-map-{width}")
    assert violations == [], violations
    save_screenshot(page, f"results-map-{width}")


def test_map_by_keyboard_then_off_and_on(committed: Database, pages: Pages) -> None:
    seed(committed)
    page = pages.new()
    page.goto(RESULTS)
    expect(page.locator(".leaflet-marker-icon")).to_have_count(3)
    # The map takes the focus, then each pin in turn; Enter opens a pin's popup.
    page.locator(".map-toggle").focus()
    page.keyboard.press("Tab")
    expect(page.locator("#results-map")).to_be_focused()
    page.keyboard.press("Tab")
    focused_pin = page.locator(".leaflet-marker-icon:focus")
    expect(focused_pin).to_have_count(1)
    page.keyboard.press("Enter")
    popup = page.locator(".leaflet-popup-content")
    expect(popup).to_be_visible()
    expect(popup.get_by_role("link")).to_have_count(1)
    page.locator(".leaflet-marker-icon.pin-approximate").focus()
    page.keyboard.press("Enter")
    expect(
        page.locator(".leaflet-popup-content", has_text="Position approximative")
    ).to_be_visible()

    toggle = page.get_by_role("button", name="Masquer la carte")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#results-map")).to_be_hidden()
    shown = page.get_by_role("button", name="Afficher la carte")
    assert shown.get_attribute("aria-expanded") == "false"
    # The choice lasts: the next results page comes without the map.
    page.reload()
    expect(page.locator("#results-map")).to_be_hidden()
    expect(page.locator("#results-list .event-card")).to_have_count(4)
    page.get_by_role("button", name="Afficher la carte").click()
    expect(page.locator("#results-map")).to_be_visible()
    expect(page.locator(".leaflet-marker-icon")).to_have_count(3)


def test_without_javascript_or_tiles_the_list_stays(committed: Database, pages: Pages) -> None:
    seed(committed)
    plain = pages.new(java_script_enabled=False)
    plain.goto(RESULTS)
    expect(plain.locator("#results-list .event-card")).to_have_count(4)
    expect(plain.locator("#results-map-panel")).to_be_hidden()
    expect(plain.locator(".map-jump")).to_be_hidden()

    page = pages.new()
    tiles = re.compile(r"^http://127\.0\.0\.1:\d+/\d+/\d+/\d+\.png$")
    page.route(tiles, lambda route: route.abort())
    page.goto(RESULTS)
    expect(page.locator("#results-map-status")).to_contain_text(
        "Le fond de carte n'a pas pu être chargé"
    )
    expect(page.locator(".leaflet-marker-icon")).to_have_count(3)
    expect(page.locator("#results-list .event-card")).to_have_count(4)
    # The refused tiles are the failure this test makes: nothing else went wrong.
    pages.errors[:] = [e for e in pages.errors if "Failed to load resource" not in e]


def test_sort_by_date_then_distance(committed: Database, pages: Pages) -> None:
    seed(committed)
    page = pages.new()
    page.goto(RESULTS)
    # Nearest first, online events after them.
    assert titles(page) == [
        "Forum de l'alternance",
        "Job dating des métiers du soin",
        "Atelier CV à Saint-Denis",
        "Salon en ligne du numérique",
    ]
    page.get_by_label("Les plus tôt d'abord").check()
    expect(page.locator("#results-list .event-card h3").first).to_have_text(
        "Job dating des métiers du soin"
    )
    assert titles(page) == [
        "Job dating des métiers du soin",
        "Salon en ligne du numérique",
        "Atelier CV à Saint-Denis",
        "Forum de l'alternance",
    ]
    assert "sort=date" in page.url
    # The map follows the list.
    expect(page.locator(".leaflet-marker-icon")).to_have_count(3)
    page.get_by_label("Les plus proches d'abord").check()
    expect(page.locator("#results-list .event-card h3").first).to_have_text("Forum de l'alternance")


def test_place_autocomplete_with_the_keyboard_only(committed: Database, pages: Pages) -> None:
    seed(committed)
    page = pages.new()
    page.goto("/evenements")
    page.get_by_label("Mots-clés").focus()
    page.keyboard.press("Tab")
    near = page.locator("#near")
    expect(near).to_be_focused()
    assert near.get_attribute("role") == "combobox"
    assert near.get_attribute("aria-expanded") == "false"
    page.keyboard.type("saint-den", delay=30)
    listbox = page.get_by_role("listbox", name="Lieux proposés")
    expect(listbox).to_be_visible()
    expect(near).to_have_attribute("aria-expanded", "true")
    options = listbox.get_by_role("option")
    expect(options.nth(1)).to_have_text("Saint-Denis (93)")
    save_screenshot(page, "search-place-combobox")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    active = near.get_attribute("aria-activedescendant")
    assert active and page.locator(f"#{active}").inner_text() == "Saint-Denis (93)"
    page.keyboard.press("Enter")
    expect(near).to_have_value("Saint-Denis (93)")
    expect(listbox).to_be_hidden()
    expect(near).to_have_attribute("aria-expanded", "false")
    expect(near).to_be_focused()
    # Escape closes the list and keeps what was typed.
    page.keyboard.press("Control+A")
    page.keyboard.type("93", delay=30)
    expect(listbox).to_be_visible()
    page.keyboard.press("Escape")
    expect(listbox).to_be_hidden()
    expect(near).to_have_value("93")
    page.keyboard.press("Control+A")
    page.keyboard.type("saint-den", delay=30)
    expect(listbox).to_be_visible()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    # Enter again, with the list closed, submits the search.
    page.keyboard.press("Enter")
    expect(page.locator("#results-count")).to_contain_text("autour de Saint-Denis (93)")
    assert "Atelier CV à Saint-Denis" in titles(page)
    # The live search (app.js) first asked for the results in the background: the 400 of that
    # request is how it learns to show the whole page with the choices, not an error.
    pages.errors[:] = [
        e for e in pages.errors if "status of 400" not in e or "near=Saint-Denis&" not in e
    ]


def test_ambiguous_saint_denis_asks_then_searches(
    committed: Database, pages: Pages, axe: AxeCheck
) -> None:
    seed(committed)
    page = pages.new()
    page.goto("/evenements")
    near = page.get_by_label("Commune, code postal ou département")
    near.fill("Saint-Denis")
    near.press("Escape")
    page.locator(".search-form").get_by_role("button", name="Rechercher").click()
    choices = page.get_by_role("navigation", name="De quelle commune s'agit-il ?")
    expect(choices).to_be_visible()
    expect(page.locator("#results-count")).to_contain_text("Plusieurs communes portent ce nom")
    expect(choices.get_by_role("link", name="Saint-Denis (974)")).to_be_visible()
    assert axe(page, "results-ambiguous") == []
    choices.get_by_role("link", name="Saint-Denis (93)").click()
    expect(page.locator("#results-count")).to_contain_text("autour de Saint-Denis (93)")
    expect(near).to_have_value("Saint-Denis (93)")
    assert "Atelier CV à Saint-Denis" in titles(page)
    # The live search (app.js) first asked for the results in the background: the 400 of that
    # request is how it learns to show the whole page with the choices, not an error.
    pages.errors[:] = [
        e for e in pages.errors if "status of 400" not in e or "near=Saint-Denis&" not in e
    ]
