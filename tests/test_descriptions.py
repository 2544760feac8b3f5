"""Agencies' descriptions: a small Markdown subset rendered server-side (markdown-it-py), then
sanitised (nh3); HTML as sent is kept, sanitised; plain text and Markdown for mails and the form."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from events_app.db import Database
from events_app.events import description_html, html_to_markdown, html_to_text
from tests.factories import event_fields, make_agency

MARKDOWN = (
    "Venez **avec votre CV** et *une lettre*.\n"
    "Entrée libre.\n\n"
    "- CV à jour\n"
    "- pièce d'identité\n\n"
    "1. accueil\n"
    "2. entretiens\n\n"
    "Voir [le programme](https://exemple.fr/programme) ou <https://exemple.fr>."
)


def test_the_markdown_subset_becomes_safe_html() -> None:
    html = description_html(MARKDOWN)
    assert html.startswith(
        "<p>Venez <strong>avec votre CV</strong> et <em>une lettre</em>.<br>Entrée libre.</p>"
    )
    assert "<ul><li>CV à jour</li><li>pièce d'identité</li></ul>" in html
    assert "<ol><li>accueil</li><li>entretiens</li></ol>" in html
    assert '<a href="https://exemple.fr/programme" rel="noopener noreferrer nofollow">' in html
    assert "**" not in html


@pytest.mark.parametrize(
    ("typed", "absent", "present"),
    [
        ("[clic](javascript:alert(1))", "<a", "[clic](javascript:alert(1))"),
        ("Tapez a < b et a > c", "<b", "a &lt; b et a &gt; c"),
        ("# Titre\n\n> cité", "<h1", "# Titre"),
        ("![image](https://x.fr/i.png)", "<img", "!"),
    ],
)
def test_what_is_outside_the_subset_stays_text(typed: str, absent: str, present: str) -> None:
    html = description_html(typed)
    assert absent not in html and present in html


def test_html_as_sent_is_kept_sanitised() -> None:
    sent = '<p>Bienvenue <strong>à tous</strong></p><script>alert("x")</script>'
    assert description_html(sent) == "<p>Bienvenue <strong>à tous</strong></p>"


def test_plain_text_for_mails_and_markdown_for_the_form() -> None:
    html = description_html(MARKDOWN)
    text = html_to_text(html)
    assert text.splitlines()[:2] == ["Venez avec votre CV et une lettre.", "Entrée libre."]
    assert "• CV à jour\n• pièce d'identité" in text
    assert "1. accueil\n2. entretiens" in text
    assert "le programme (https://exemple.fr/programme)" in text
    assert "**" not in text and "<" not in text
    # What the form shows gives the same HTML back.
    assert description_html(html_to_markdown(html)) == html
    assert html_to_markdown(html).startswith("Venez **avec votre CV** et *une lettre*.")


def test_the_api_takes_markdown_too(client: TestClient, committed: Database) -> None:
    with committed.transaction() as db:
        _, token = make_agency(db)
    body: dict[str, Any] = {
        key: value.isoformat() if hasattr(value, "isoformat") else value
        for key, value in event_fields(description=MARKDOWN).items()
    }
    created = client.post(
        "/api/v1/agency/events", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert created.status_code == 201, created.text
    detail = client.get(f"/api/v1/events/{created.json()['id']}").json()
    assert "<strong>avec votre CV</strong>" in detail["description"]
    assert "<li>CV à jour</li>" in detail["description"]
