"""The same event published by several agencies: one search result, copies kept apart from
look-alikes, a notice the agency can dismiss (SPEC §11)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from events_app.db import Database
from events_app.duplicates import (
    TITLE_THRESHOLD,
    commune_key,
    copies_of,
    dismiss_duplicates,
    title_key,
    titles_alike,
)
from events_app.events import clean_event_fields, get_event, update_event
from events_app.feeds import source_feed
from events_app.models import Agency, Event
from events_app.notifications import Notifier
from events_app.registrations import cancel_event
from events_app.search import SearchQuery, search_events
from events_app.settings import Settings
from events_app.staff import create_staff
from importers.run import run_import
from tests.factories import in_days, make_agency, make_event

# (title, title) pairs from real announcements: the same event as two agencies word it...
SAME = [
    ("Forum de l'emploi saisonnier", "FORUM EMPLOI SAISONNIER"),
    ("Job dating logistique (H/F)", "Job dating – Logistique"),
    ("Job Dating : préparateurs de commandes H/F", "Job dating préparateur de commandes"),
    ("Salon de l'alternance 2030", "Salon alternance 2030 !"),
    ("Forum pour l'emploi des seniors", "Forum emploi seniors à Lyon"),
]
# ...and different events that share words, which a place and an hour do not make one.
DIFFERENT = [
    ("Job dating logistique", "Atelier CV"),
    ("Job dating logistique", "Job dating hôtellerie"),
    ("Réunion d'information BTP", "Réunion d'information santé"),
    ("Job dating Amazon", "Job dating Decathlon"),
    ("Atelier CV", "Atelier CV et entretien"),
    ("Forum de l'emploi", "Forum de l'alternance"),
]


@pytest.mark.parametrize(("first", "second"), SAME)
def test_titles_of_the_same_event_are_alike(first: str, second: str) -> None:
    assert titles_alike(first, second)


@pytest.mark.parametrize(("first", "second"), DIFFERENT)
def test_titles_of_different_events_are_not(first: str, second: str) -> None:
    assert not titles_alike(first, second)


def test_the_threshold_sits_in_the_gap_between_the_examples() -> None:
    from rapidfuzz import fuzz

    same = min(fuzz.token_sort_ratio(title_key(a), title_key(b)) for a, b in SAME)
    different = max(fuzz.token_sort_ratio(title_key(a), title_key(b)) for a, b in DIFFERENT)
    assert different < TITLE_THRESHOLD <= same
    assert title_key("Job dating : Caristes (H/F) à Lyon") == "job dating caristes lyon"


def test_commune_keys() -> None:
    assert commune_key("Paris 11e", "75011") == commune_key("PARIS", "75015") == "c:paris"
    assert commune_key("Lyon Cedex 03", None) == "c:lyon"
    assert commune_key("Saint-Étienne", None) == commune_key("saint etienne", "42000")
    assert commune_key(None, "93100") == "p:93100"
    assert commune_key(None, None) is None


def agencies(db: Session, n: int = 2) -> list[Agency]:
    return [make_agency(db, name=f"Organisme {i}")[0] for i in range(n)]


def shown(db: Session, **filters: Any) -> list[int]:
    return [hit.event.id for hit in search_events(db, SearchQuery(limit=100, **filters)).hits]


def test_the_same_event_is_one_result_listing_the_other(db: Session) -> None:
    first, second = agencies(db)
    start = in_days(8, 9, 0)
    a = make_event(db, first, title="Forum de l'emploi saisonnier", starts_at=start, capacity=50)
    b = make_event(
        db,
        second,
        title="FORUM EMPLOI SAISONNIER",
        starts_at=start + timedelta(minutes=30),
        capacity=80,
        venue={"name": "Salle des fêtes", "postal_code": "93100", "city": "Montreuil"},
    )
    # The one with the most seats left is shown, the other listed.
    assert shown(db) == [b.id]
    [hit] = search_events(db, SearchQuery()).hits
    assert [(c.id, c.agency_id, c.agency_name) for c in hit.duplicates] == [
        (a.id, first.id, "Organisme 0")
    ]
    assert shown(db, near="Montreuil") == [b.id]
    # Each keeps its page (and so its registrations): an agency's own list still has it.
    assert shown(db, agency=first.slug) == [a.id]
    assert copies_of(db, [a])[a.id][0].id == b.id


def test_equal_seats_show_the_earliest_published(db: Session) -> None:
    first, second, third = agencies(db, 3)
    start = in_days(9, 14, 0)
    a = make_event(db, first, title="Job dating logistique (H/F)", starts_at=start)
    make_event(db, second, title="Job dating – Logistique", starts_at=start)
    make_event(db, third, title="job dating logistique", starts_at=start + timedelta(minutes=15))
    [hit] = search_events(db, SearchQuery()).hits
    assert hit.event.id == a.id
    assert len(hit.duplicates) == 2


def test_different_events_at_the_same_time_and_place_stay_apart(db: Session) -> None:
    first, second = agencies(db)
    start = in_days(10, 10, 0)
    dating = make_event(db, first, title="Job dating logistique", starts_at=start)
    workshop = make_event(db, second, title="Atelier CV", type="workshop", starts_at=start)
    assert sorted(shown(db)) == sorted([dating.id, workshop.id])
    assert db.get(Event, dating.id).duplicate_group_id is None  # type: ignore[union-attr]


def test_another_hour_commune_or_the_same_agency_stay_apart(db: Session) -> None:
    first, second = agencies(db)
    start = in_days(11, 9, 0)
    make_event(db, first, title="Forum de l'alternance", starts_at=start)
    make_event(db, second, title="Forum de l'alternance", starts_at=start + timedelta(minutes=40))
    make_event(
        db,
        second,
        title="Forum de l'alternance",
        starts_at=start,
        venue={"postal_code": "69003", "city": "Lyon"},
    )
    make_event(db, first, title="Forum de l'alternance", starts_at=start + timedelta(minutes=5))
    assert len(shown(db)) == 4


def test_online_events_are_the_same_when_both_are_online(db: Session) -> None:
    first, second = agencies(db)
    start = in_days(12, 10, 0)
    online = {
        "format": "online",
        "venue": None,
        "type": "online_fair",
        "online_url": "https://visio.example.org/x",
    }
    make_event(db, first, title="Salon en ligne du numérique", starts_at=start, **online)
    make_event(db, second, title="Salon en ligne : numérique", starts_at=start, **online)
    make_event(db, second, title="Salon en ligne du numérique", starts_at=start)  # on site
    assert len(shown(db)) == 2


def test_an_edit_or_a_cancellation_regroups(db: Session, settings: Settings) -> None:
    first, second = agencies(db)
    start = in_days(13, 9, 0)
    a = make_event(db, first, title="Forum de l'emploi", starts_at=start, capacity=100)
    b = make_event(db, second, title="Forum de l'emploi", starts_at=start, capacity=10)
    assert shown(db) == [a.id]
    # Moved to the afternoon: not the same any more.
    update_event(
        db,
        get_event(db, b.id),
        clean_event_fields(
            {
                "starts_at": in_days(13, 15, 0).isoformat(),
                "ends_at": in_days(13, 17, 0).isoformat(),
            },
            partial=True,
        ),
    )
    assert sorted(shown(db)) == sorted([a.id, b.id])
    update_event(
        db,
        get_event(db, b.id),
        clean_event_fields(
            {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=3)).isoformat()},
            partial=True,
        ),
    )
    assert shown(db) == [a.id]
    # The shown one is cancelled: the copy is shown again, alone.
    cancel_event(db, get_event(db, a.id), notifier=Notifier(db, settings), message=None)
    assert b.id in shown(db)
    assert get_event(db, b.id).duplicate_group_id is None


def test_a_dismissal_is_kept(db: Session) -> None:
    first, second = agencies(db)
    start = in_days(14, 9, 0)
    a = make_event(db, first, title="Forum de l'emploi", starts_at=start)
    b = make_event(db, second, title="Forum de l'emploi", starts_at=start)
    assert len(shown(db)) == 1
    assert dismiss_duplicates(db, agency_id=second.id, event_id=b.id) == 1
    assert sorted(shown(db)) == sorted([a.id, b.id])
    # A later edit does not group them again.
    update_event(
        db, get_event(db, b.id), clean_event_fields({"title": "Forum emploi"}, partial=True)
    )
    assert sorted(shown(db)) == sorted([a.id, b.id])


def test_an_import_groups_with_what_is_already_published(
    client: TestClient, committed: Database, settings: Settings, tmp_path: Path
) -> None:
    with committed.transaction() as db:
        first, second = agencies(db)
        original = make_event(db, first, title="Forum de l'emploi saisonnier", capacity=10)
        second_id = second.id
    page = tmp_path / "event.html"
    page.write_text(client.get(f"/evenements/{original.id}").text)
    with committed.transaction() as db:
        feed_id = source_feed(db, agency_id=second_id, source=str(page), format="jsonld").id
    summary = run_import(committed, settings, feed_id=feed_id)
    assert summary.created == 1
    with committed.transaction() as db:
        [hit] = search_events(db, SearchQuery()).hits
        assert hit.event.id == original.id  # same seats: the earliest published
        [copy] = hit.duplicates
        assert copy.agency_id == second_id


def test_api_pages_and_back_office(client: TestClient, committed: Database) -> None:
    start = in_days(15, 9, 0)
    with committed.transaction() as db:
        first, second = agencies(db)
        a = make_event(db, first, title="Forum de l'emploi", starts_at=start, capacity=100)
        b = make_event(db, second, title="Forum emploi", starts_at=start, capacity=10)
        create_staff(
            db,
            agency_id=second.id,
            email="claire@organisme.example",
            name="Claire",
            password="une phrase de passe solide",
        )
        first_id = first.id
    items = client.get("/api/v1/events").json()["items"]
    assert [item["id"] for item in items] == [a.id]
    assert items[0]["duplicates"] == [
        {"id": b.id, "agency": {"id": second.id, "name": "Organisme 1"}}
    ]
    detail = client.get(f"/api/v1/events/{b.id}").json()
    assert detail["duplicates"] == [{"id": a.id, "agency": {"id": first_id, "name": "Organisme 0"}}]
    spec = client.get("/api/v1/openapi.json").json()
    assert "duplicates" in str(spec)

    page = client.get(f"/evenements/{b.id}").text
    assert re.search(rf'Aussi publié par <a href="/evenements/{a.id}">Organisme 0</a>', page)

    csrf = re.compile(r'name="csrftoken" value="([^"]+)"')
    token = csrf.search(client.get("/organisme/connexion").text)
    assert token is not None
    client.post(
        "/organisme/connexion",
        data={
            "email": "claire@organisme.example",
            "password": "une phrase de passe solide",
            "csrftoken": token.group(1),
        },
    )
    own = client.get(f"/organisme/evenements/{b.id}").text
    assert "Doublon possible" in own
    assert "Ce n’est pas le même événement" in own
    token = csrf.search(own)
    assert token is not None
    done = client.post(
        f"/organisme/evenements/{b.id}/doublon",
        data={"csrftoken": token.group(1)},
        follow_redirects=True,
    )
    assert "n’est plus regroupé" in done.text
    assert "Doublon possible" not in done.text
    # (Another query string: the search keeps its pages for a few seconds.)
    after = client.get("/api/v1/events?limit=50").json()["items"]
    assert sorted(item["id"] for item in after) == sorted([a.id, b.id])
    # Another agency's event cannot be dismissed from here.
    other = client.post(f"/organisme/evenements/{a.id}/doublon", data={"csrftoken": token.group(1)})
    assert other.status_code == 404
