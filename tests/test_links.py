"""Links in pages come from route names (`path_for`), so a route's path changes in one place."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from events_app.resources import TEMPLATES_DIR

LITERAL_LINK = re.compile(r'(?:href|action)="/(?!static/)')


def test_no_page_template_writes_an_internal_path_by_hand() -> None:
    # Mail templates build absolute links from BASE_URL: they render without a request.
    found = [
        f"{path.relative_to(TEMPLATES_DIR)}: {match.group(0)}"
        for path in sorted(TEMPLATES_DIR.rglob("*.html"))
        if "mail" not in path.relative_to(TEMPLATES_DIR).parts
        for match in LITERAL_LINK.finditer(path.read_text())
    ]
    assert found == [], "use {{ path_for('route:name', …) }}:\n" + "\n".join(found)


def test_pages_still_link_where_they_did(client: TestClient) -> None:
    home = client.get("/").text
    for link in (
        'action="/evenements"',
        'href="/compte/connexion"',
        'href="/donnees-personnelles"',
        'href="/evenements?type=forum"',
    ):
        assert link in home, link
    sign_in = client.get("/organisme/connexion").text
    assert 'action="/organisme/connexion"' in sign_in
    assert 'href="/organisme/mot-de-passe/oubli"' in sign_in
