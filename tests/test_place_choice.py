"""Choosing a place: autocomplete, names several communes share, misspelt names (both engines)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from events_app.places import (
    AmbiguousPlace,
    UnknownPlace,
    find_place,
    resolve_place,
    suggest_places,
)


def test_a_dominant_namesake_is_taken_and_said(db: Session) -> None:
    place = find_place(db, "Montreuil")
    assert place.label == "Montreuil (93)"


def test_comparable_namesakes_are_asked_never_picked(db: Session) -> None:
    with pytest.raises(AmbiguousPlace) as caught:
        find_place(db, "Saint-Denis")
    assert caught.value.field == "near"
    assert caught.value.choices[:2] == ["Saint-Denis (974)", "Saint-Denis (93)"]
    assert "Saint-Denis (93)" in caught.value.message
    # Every choice resolves to its own commune.
    assert find_place(db, "Saint-Denis (93)").insee == "93066"
    assert find_place(db, caught.value.choices[0]).department == "974"


def test_a_misspelt_name_gets_close_suggestions(db: Session) -> None:
    with pytest.raises(UnknownPlace) as caught:
        resolve_place(db, "Marseile")
    assert caught.value.suggestions[0] == "Marseille (13)"
    assert "Vouliez-vous dire : Marseille (13)" in caught.value.message
    with pytest.raises(UnknownPlace) as nothing:
        find_place(db, "Zzqxwv")
    assert nothing.value.suggestions == []


def test_autocomplete_by_name_postal_code_and_department(db: Session) -> None:
    by_name = suggest_places(db, "mars")
    assert by_name[0].label == "Marseille (13)" and by_name[0].kind == "commune"
    by_code = suggest_places(db, "931")
    assert {s.kind for s in by_code} == {"postal_code"}
    assert "93100 Montreuil" in [s.label for s in by_code]
    department = suggest_places(db, "93")
    assert department[0].label == "Seine-Saint-Denis (93)" and department[0].value == "93"
    assert suggest_places(db, "") == [] and suggest_places(db, "!!") == []
    # Each value resolves back to the place suggested.
    for suggestion in (*by_name[:3], *by_code[:3], department[0]):
        find_place(db, suggestion.value)


def test_places_endpoint(client: TestClient) -> None:
    response = client.get("/api/v1/places", params={"q": "saint-den"})
    assert response.status_code == 200
    labels = [item["label"] for item in response.json()["items"]]
    assert labels[:2] == ["Saint-Denis (974)", "Saint-Denis (93)"]
    assert client.get("/api/v1/places").json() == {"items": []}
    assert client.get("/api/v1/places", params={"q": "x" * 5000}).status_code == 200


def test_search_asks_which_saint_denis(client: TestClient) -> None:
    response = client.get("/api/v1/events", params={"near": "Saint-Denis"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "near" and error["code"] == "ambiguous"
    assert "Saint-Denis (93)" in error["message"]
