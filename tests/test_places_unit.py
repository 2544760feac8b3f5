"""The offline gazetteer, on its own throwaway SQLite database.

Loading the 35,000 communes takes a couple of seconds, so this module loads them once into a
database of its own, built with create_all: the table shapes are all it needs, and the rest of
the suite (built by the migrations) must not pay for the load in every test.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from geopy.distance import EARTH_RADIUS, geodesic, great_circle
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from events_app.db import Base, Database
from events_app.errors import InvalidInput
from events_app.models import Commune, CommunePostalCode
from events_app.places import (
    EARTH_RADIUS_KM,
    AmbiguousPlace,
    ResolvedPlace,
    _wkb_outer_rings,
    _wkb_point,
    distance_km,
    find_place,
    load_communes,
    normalise_name,
    resolve_place,
)

PARIS_CENTRE = (48.8566, 2.3522)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    path: Path = tmp_path_factory.mktemp("places") / "places.db"
    database = Database(f"sqlite:///{path}")
    Base.metadata.create_all(database.engine)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def loaded(database: Database) -> dict[str, Any]:
    started = time.perf_counter()
    with database.transaction() as db:
        inserted = load_communes(db)
    return {"inserted": inserted, "seconds": time.perf_counter() - started}


@pytest.fixture
def db(database: Database, loaded: dict[str, Any]) -> Iterator[Session]:
    with database.sessions() as session:
        yield session
        session.rollback()


def resolve(db: Session, text: str) -> ResolvedPlace:
    # The gazetteer's own answer, not the per-engine memory of it (tested on its own below).
    return find_place(db, text)


# --- Loading -----------------------------------------------------------------------------------


def test_load_fills_the_tables(db: Session, loaded: dict[str, Any]) -> None:
    communes = db.scalar(select(func.count()).select_from(Commune))
    postal_codes = db.scalar(select(func.count(func.distinct(CommunePostalCode.postal_code))))
    arrondissements = db.scalar(
        select(func.count()).select_from(Commune).where(Commune.is_arrondissement.is_(True))
    )
    assert loaded["inserted"] == communes
    assert communes is not None and communes >= 34_000
    assert postal_codes is not None and postal_codes >= 6_000
    assert arrondissements == 20 + 9 + 16  # Paris, Lyon, Marseille
    assert loaded["seconds"] < 20


def test_load_is_a_no_op_on_a_filled_table(db: Session) -> None:
    assert load_communes(db) == 0


def test_every_commune_lies_near_its_department(db: Session) -> None:
    """The town hall points of the data misplace some communes by hundreds of kilometres."""
    rows = db.execute(select(Commune.insee, Commune.department, Commune.lat, Commune.lon)).all()
    centres = {code: resolve(db, code) for code in {row.department for row in rows}}
    for row in rows:
        centre = centres[row.department]
        limit = 250 if row.department == "973" else 150  # French Guiana is vast
        assert distance_km(row.lat, row.lon, centre.lat, centre.lon) < limit, row


def test_misplaced_town_hall_is_replaced(db: Session) -> None:
    # The data puts the town hall of Gex (Ain, near Geneva) in Lyon.
    gex = resolve(db, "Gex")
    assert gex.insee == "01173"
    assert distance_km(gex.lat, gex.lon, 46.333, 6.058) < 5


def test_arrondissements_take_their_parent_department(db: Session) -> None:
    lyon_3 = db.get(Commune, "69383")
    assert lyon_3 is not None
    assert (lyon_3.name, lyon_3.department, lyon_3.is_arrondissement) == (
        "Lyon 3e Arrondissement",
        "69",
        True,
    )


def test_names_carry_their_article(db: Session) -> None:
    havre = db.get(Commune, "76351")
    assert havre is not None
    assert (havre.name, havre.name_key) == ("Le Havre", "le havre")


# --- Names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Saint-Étienne", "saint etienne"),
        ("st etienne", "saint etienne"),
        ("ST-ETIENNE", "saint etienne"),
        ("Ste-Foy-lès-Lyon", "sainte foy les lyon"),
        ("Sainte Foy  les   Lyon", "sainte foy les lyon"),
        ("L'Haÿ-les-Roses", "l hay les roses"),
        ("L’Haÿ-les-Roses", "l hay les roses"),
        ("Œuilly", "oeuilly"),
        ("  Château-Chinon (Ville) ", "chateau chinon ville"),
        ("Stains", "stains"),  # "st" only as a whole word
        ("", ""),
    ],
)
def test_normalise_name(text: str, key: str) -> None:
    assert normalise_name(text) == key


# --- Communes ----------------------------------------------------------------------------------


def _population(db: Session, insee: str) -> int:
    commune = db.get(Commune, insee)
    assert commune is not None
    return commune.population


@pytest.mark.parametrize("text", ["Montreuil", "montreuil", "MONTREUIL", " Montreuil "])
def test_ambiguous_name_gives_the_most_populous(db: Session, text: str) -> None:
    place = resolve(db, text)
    assert (place.insee, place.kind, place.label) == ("93048", "commune", "Montreuil (93)")
    assert place.department == "93"
    assert place.postal_code == "93100"
    others = db.scalars(select(Commune.population).where(Commune.name_key == "montreuil"))
    assert _population(db, "93048") == max(others)


@pytest.mark.parametrize(
    ("text", "insee"),
    [
        ("Montreuil 85200", "85148"),
        ("Montreuil (85)", "85148"),
        ("Montreuil, 93", "93048"),
        ("Montreuil 93100", "93048"),
        ("93100 Montreuil", "93048"),
        ("Montreuil 93108", "93048"),  # a CEDEX code: the department decides
        ("Saint-Denis 974", "97411"),
        ("Saint-Denis (974)", "97411"),
        ("Saint-Denis (93)", "93066"),
        ("Saint-Denis 93200", "93066"),
        ("Saint-Denis, 11", "11339"),
    ],
)
def test_postal_code_or_department_picks_among_homonyms(db: Session, text: str, insee: str) -> None:
    assert resolve(db, text).insee == insee


def test_saint_denis_alone_is_asked(db: Session) -> None:
    # La Réunion and Seine-Saint-Denis are comparable: the person chooses (test_place_choice).
    with pytest.raises(AmbiguousPlace):
        resolve(db, "Saint-Denis")


@pytest.mark.parametrize(
    "text", ["st etienne", "Saint-Étienne", "SAINT ETIENNE", "saint-etienne", "St-Étienne"]
)
def test_saint_spellings(db: Session, text: str) -> None:
    place = resolve(db, text)
    assert place.insee == "42218"
    assert place.label == "Saint-Étienne (42)"


@pytest.mark.parametrize(
    ("text", "insee"),
    [
        ("Lyon", "69123"),
        ("Paris", "75056"),
        ("Marseille", "13055"),
        ("Le Havre", "76351"),
        ("Havre", "76351"),
        ("La Rochelle", "17300"),
        ("Ajaccio", "2A004"),
        ("Château-Chinon (Ville)", "58062"),
        ("Aurseulles", "14581"),  # no point of its own in the data: its delegated communes'
    ],
)
def test_commune_names(db: Session, text: str, insee: str) -> None:
    assert resolve(db, text).insee == insee


@pytest.mark.parametrize(
    ("text", "insee", "label"),
    [
        ("Lyon 3e Arrondissement", "69383", "Lyon 3e Arrondissement (69003)"),
        ("Lyon 3e", "69383", "Lyon 3e Arrondissement (69003)"),
        ("Lyon 69003", "69383", "Lyon 3e Arrondissement (69003)"),
        ("Paris 15", "75115", "Paris 15e Arrondissement (75015)"),
        ("Paris 1er", "75101", "Paris 1er Arrondissement (75001)"),
        ("Paris 75011", "75111", "Paris 11e Arrondissement (75011)"),
        ("PARIS CEDEX 08 75008", "75108", "Paris 8e Arrondissement (75008)"),
        ("Marseille 13e arrondissement", "13213", "Marseille 13e Arrondissement (13013)"),
    ],
)
def test_arrondissements(db: Session, text: str, insee: str, label: str) -> None:
    place = resolve(db, text)
    assert (place.insee, place.label) == (insee, label)


# --- Postal codes ------------------------------------------------------------------------------


def test_postal_code(db: Session) -> None:
    place = resolve(db, "93100")
    assert place == ResolvedPlace(
        label="Montreuil (93100)",
        kind="postal_code",
        lat=place.lat,
        lon=place.lon,
        insee="93048",
        postal_code="93100",
        department="93",
    )
    assert distance_km(place.lat, place.lon, 48.8625, 2.4428) < 2
    assert resolve(db, "93 100").insee == "93048"


def test_postal_code_prefers_the_arrondissement(db: Session) -> None:
    place = resolve(db, "69003")
    assert (place.insee, place.kind, place.label) == (
        "69383",
        "postal_code",
        "Lyon 3e Arrondissement (69003)",
    )


def test_shared_postal_code_gives_the_most_populous_commune(db: Session) -> None:
    sharing = db.scalars(
        select(Commune)
        .join(CommunePostalCode, CommunePostalCode.insee == Commune.insee)
        .where(CommunePostalCode.postal_code == "85200")
    ).all()
    assert len(sharing) > 1
    expected = max(sharing, key=lambda commune: commune.population)
    assert resolve(db, "85200").insee == expected.insee


# --- Departments -------------------------------------------------------------------------------


def test_department_is_the_population_centroid(db: Session) -> None:
    place = resolve(db, "75")
    assert (place.kind, place.label, place.department) == (
        "department",
        "Paris (département 75)",
        "75",
    )
    assert place.insee is None
    assert distance_km(place.lat, place.lon, *PARIS_CENTRE) < 5


@pytest.mark.parametrize(
    ("text", "code", "box"),
    [
        ("2A", "2A", (41.3, 42.4, 8.5, 9.6)),
        ("2a", "2A", (41.3, 42.4, 8.5, 9.6)),
        ("2B", "2B", (41.8, 43.1, 8.5, 9.6)),
        ("01", "01", (45.6, 46.6, 4.7, 6.2)),
        ("1", "01", (45.6, 46.6, 4.7, 6.2)),
        ("971", "971", (15.8, 16.6, -61.9, -61.0)),
        ("974", "974", (-21.4, -20.8, 55.2, 55.9)),
        ("Seine-Saint-Denis", "93", (48.8, 49.0, 2.3, 2.6)),
    ],
)
def test_departments(
    db: Session, text: str, code: str, box: tuple[float, float, float, float]
) -> None:
    place = resolve(db, text)
    assert (place.kind, place.department) == ("department", code)
    assert box[0] < place.lat < box[1]
    assert box[2] < place.lon < box[3]


# --- Coordinates -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["48.86,2.35", "48.86, 2.35", " 48.86 ,2.35", "48,86, 2,35"])
def test_coordinates(db: Session, text: str) -> None:
    assert resolve(db, text) == ResolvedPlace("48,86, 2,35", "coordinates", 48.86, 2.35)


def test_negative_coordinates(db: Session) -> None:
    place = resolve(db, "-21.1,55.5")
    assert (place.lat, place.lon, place.label) == (-21.1, 55.5, "-21,1, 55,5")


# --- Errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("xyz", "Lieu inconnu : « xyz »."),
        ("", "Indiquez un lieu"),
        ("   ", "Indiquez un lieu"),
        ("91.0,2", "hors limites"),
        ("45,181", "hors limites"),
        ("-90.5, 2", "hors limites"),
        ("99999", "Code postal inconnu"),
        ("20", "Pour la Corse, indiquez 2A ou 2B."),
        ("123", "Département inconnu"),
        ("Montreuil 12", "Aucune commune « Montreuil » dans le département 12."),
        ("Montreuil 75001", "Lieu inconnu"),
        ("48,86,2,35", "Lieu inconnu"),
        ("1.2.3", "Lieu inconnu"),
        ("--", "Lieu inconnu"),
        ("x" * 500, "trop long"),
    ],
)
def test_invalid_places(db: Session, text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        resolve(db, text)
    assert caught.value.field == "near"
    assert caught.value.status_code == 400
    assert message in caught.value.message


# --- Indexes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["Montreuil", "Havre", "Montreuil 85200", "Saint-Denis (974)", "69003", "2A", "Lyon 3e"]
)
def test_lookups_use_indexes(database: Database, db: Session, text: str) -> None:
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        resolve(db, text)
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    assert statements
    for statement, parameters in statements:
        plan = db.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        details = " | ".join(str(row[-1]) for row in plan)
        assert "SCAN communes" not in details.replace("SCAN communes USING", ""), details
        assert "SCAN commune_postal_codes" not in details.replace(
            "SCAN commune_postal_codes USING", ""
        ), details


# --- WKB ---------------------------------------------------------------------------------------


def _square(order: str, srid: bool) -> bytes:
    ring = [(1.0, 2.0), (3.0, 2.0), (3.0, 4.0), (1.0, 4.0), (1.0, 2.0)]
    flag = 0x20000000 if srid else 0
    polygon = struct.pack(f"{order}BI", 1 if order == "<" else 0, 3 | flag)
    if srid:
        polygon += struct.pack(f"{order}I", 4326)
    polygon += struct.pack(f"{order}II", 1, len(ring))
    polygon += b"".join(struct.pack(f"{order}dd", x, y) for x, y in ring)
    return polygon


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("srid", [False, True])
def test_wkb_polygons_in_both_byte_orders(order: str, srid: bool) -> None:
    polygon = _square(order, srid)
    assert _wkb_outer_rings(polygon.hex()) == [
        ((1.0, 3.0, 3.0, 1.0, 1.0), (2.0, 2.0, 4.0, 4.0, 2.0))
    ]
    multi = struct.pack(f"{order}BII", 1 if order == "<" else 0, 6, 2) + polygon + polygon
    assert len(_wkb_outer_rings(multi.hex().upper())) == 2


@pytest.mark.parametrize("order", ["<", ">"])
def test_wkb_points(order: str) -> None:
    byte = 1 if order == "<" else 0
    plain = struct.pack(f"{order}BIdd", byte, 1, 2.35, 48.86)
    extended = struct.pack(f"{order}BIIdd", byte, 1 | 0x20000000, 4326, 2.35, 48.86)
    assert _wkb_point(plain.hex()) == (2.35, 48.86)
    assert _wkb_point(extended.hex()) == (2.35, 48.86)
    assert _wkb_point("\\N") is None


# --- Distances ---------------------------------------------------------------------------------


def test_distance_is_close_to_geodesic() -> None:
    paris, lyon = (48.8566, 2.3522), (45.7640, 4.8357)
    fast = distance_km(*paris, *lyon)
    exact = geodesic(paris, lyon).km
    assert abs(fast - exact) / exact < 0.01
    assert 385 < fast < 400
    assert distance_km(*paris, *paris) == 0.0


@given(
    st.floats(min_value=-60, max_value=60),
    st.floats(min_value=-180, max_value=180),
    st.floats(min_value=-60, max_value=60),
    st.floats(min_value=-180, max_value=180),
)
def test_distance_matches_geopy_great_circle(
    lat1: float, lon1: float, lat2: float, lon2: float
) -> None:
    # The float haversine replaces geopy's great_circle on the search's hot path: same sphere,
    # same radius, so the same distances (to well under a metre).
    assert EARTH_RADIUS_KM == EARTH_RADIUS
    assert distance_km(lat1, lon1, lat2, lon2) == pytest.approx(
        great_circle((lat1, lon1), (lat2, lon2)).km, abs=1e-6
    )


def test_resolved_places_are_remembered_per_engine(database: Database, db: Session) -> None:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    first = resolve_place(db, "Montreuil 93100")
    event.listen(database.engine, "before_cursor_execute", record)
    try:
        again = resolve_place(db, "Montreuil 93100")
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    assert again == first == find_place(db, "Montreuil 93100")
    assert statements == []
    with pytest.raises(InvalidInput):
        resolve_place(db, "Nullepartville")
    with pytest.raises(InvalidInput):  # failures are not remembered as places
        resolve_place(db, "Nullepartville")
