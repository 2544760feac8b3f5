"""The agency API: read, edit, cancel, registrants (JSON and CSV), isolation between agencies."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from events_app.db import Database
from events_app.models import Event, OutboxMessage
from tests.factories import make_agency, make_event


def _setup(committed: Database, **overrides: Any) -> tuple[int, dict[str, str], dict[str, str]]:
    """One event of agency A; the bearer headers of A and of another agency B."""
    with committed.transaction() as db:
        owner, owner_token = make_agency(db)
        _, other_token = make_agency(db)
        event_id = make_event(db, owner, **overrides).id
    return (
        event_id,
        {"Authorization": f"Bearer {owner_token}"},
        {"Authorization": f"Bearer {other_token}"},
    )


def _register(client: TestClient, event_id: int, n: int, **extra: Any) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/events/{event_id}/registrations",
        json={
            "first_name": f"Prénom{n}",
            "last_name": f"Nom{n}",
            "email": f"p{n}@example.org",
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_other_agency_gets_404_and_nobody_401(client: TestClient, committed: Database) -> None:
    event_id, _, other = _setup(committed)
    base = f"/api/v1/agency/events/{event_id}"
    for method, path, kwargs in (
        ("GET", base, {}),
        ("PATCH", base, {"json": {"title": "Piraté"}}),
        ("DELETE", base, {}),
        ("GET", base + "/registrations", {}),
    ):
        assert client.request(method, path, headers=other, **kwargs).status_code == 404
        assert client.request(method, path, **kwargs).status_code == 401
    with committed.transaction() as db:
        event = db.get(Event, event_id)
        assert event is not None and event.title != "Piraté" and event.status == "scheduled"


def test_patch_raises_revision_and_tells_registrants_of_a_new_time(
    client: TestClient, committed: Database
) -> None:
    event_id, owner, _ = _setup(committed)
    _register(client, event_id, 1)
    before = client.get(f"/api/v1/agency/events/{event_id}", headers=owner).json()
    renamed = client.patch(
        f"/api/v1/agency/events/{event_id}", json={"title": "Nouveau titre"}, headers=owner
    )
    assert renamed.status_code == 200 and renamed.json()["revision"] == before["revision"] + 1
    moved = client.patch(
        f"/api/v1/agency/events/{event_id}",
        json={"starts_at": "2031-01-10T10:00:00+01:00", "ends_at": "2031-01-10T12:00:00+01:00"},
        headers=owner,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["starts_at"] == "2031-01-10T10:00:00+01:00"
    with committed.transaction() as db:
        kinds = list(
            db.scalars(
                select(OutboxMessage.kind).where(OutboxMessage.to_address == "p1@example.org")
            )
        )
    assert kinds == ["confirmed", "event_changed"]
    # Nothing changed: no new revision.
    same = client.patch(
        f"/api/v1/agency/events/{event_id}", json={"title": "Nouveau titre"}, headers=owner
    )
    assert same.json()["revision"] == moved.json()["revision"]


def test_capacity_below_seats_taken_is_refused_with_the_count(
    client: TestClient, committed: Database
) -> None:
    event_id, owner, _ = _setup(committed, capacity=5)
    for n in range(3):
        _register(client, event_id, n)
    response = client.patch(
        f"/api/v1/agency/events/{event_id}", json={"capacity": 2}, headers=owner
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "capacity" and "3 places" in error["message"]


def test_capacity_growth_confirms_the_waiting_list(client: TestClient, committed: Database) -> None:
    event_id, owner, _ = _setup(committed, capacity=1)
    _register(client, event_id, 1)
    waiting = _register(client, event_id, 2)
    assert waiting["status"] == "waitlisted"
    assert (
        client.patch(
            f"/api/v1/agency/events/{event_id}", json={"capacity": 2}, headers=owner
        ).status_code
        == 200
    )
    token = waiting["manage_url"].rsplit("/", 1)[1]
    assert client.get(f"/api/v1/registrations/{token}").json()["status"] == "confirmed"


def test_delete_cancels_keeps_the_event_and_mails_registrants(
    client: TestClient, committed: Database
) -> None:
    event_id, owner, _ = _setup(committed)
    _register(client, event_id, 1)
    response = client.delete(
        f"/api/v1/agency/events/{event_id}", headers=owner, params={"message": "Salle indisponible"}
    )
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    public = client.get(f"/api/v1/events/{event_id}").json()
    assert public["status"] == "cancelled" and public["registration_open"] is False
    with committed.transaction() as db:
        mail = db.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "event_cancelled")
        ).one()
    assert mail.to_address == "p1@example.org" and "Salle indisponible" in mail.body_text
    assert mail.ics and "METHOD:CANCEL" in mail.ics


def test_registrants_json_paged_and_csv_for_french_excel(
    client: TestClient, committed: Database
) -> None:
    event_id, owner, _ = _setup(committed, capacity=2)
    for n in range(3):
        _register(client, event_id, n)
    _register(client, event_id, 9, first_name='=HYPERLINK("x")', email="evil@example.org")
    seen: list[dict[str, Any]] = []
    params: dict[str, str] = {"limit": "2"}
    while True:
        page = client.get(
            f"/api/v1/agency/events/{event_id}/registrations", headers=owner, params=params
        ).json()
        seen.extend(page["items"])
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert [r["email"] for r in seen] == [
        "p0@example.org",
        "p1@example.org",
        "p2@example.org",
        "evil@example.org",
    ]
    assert [r["status"] for r in seen] == ["confirmed", "confirmed", "waitlisted", "waitlisted"]
    assert set(seen[0]) >= {
        "id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "status",
        "waitlist_position",
        "created_at",
    }
    exported = client.get(
        f"/api/v1/agency/events/{event_id}/registrations", headers={**owner, "Accept": "text/csv"}
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["Prénom", "Nom", "E-mail"]
    assert rows[1][0] == "Prénom0" and rows[3][4] == "Liste d'attente"
    assert rows[4][0].startswith("'=")  # no formula injection in Excel


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"ends_at": "2000-01-01T00:00:00+01:00"}, "ends_at"),
        ({"type": "fête"}, "type"),
        ({"title": "x" * 500}, "title"),
        ({"starts_at": "demain"}, "starts_at"),
        ({"id": 4}, "id"),
    ],
)
def test_patch_bad_input_names_the_field(
    client: TestClient, committed: Database, patch: dict[str, Any], field: str
) -> None:
    event_id, owner, _ = _setup(committed)
    response = client.patch(f"/api/v1/agency/events/{event_id}", json=patch, headers=owner)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field
