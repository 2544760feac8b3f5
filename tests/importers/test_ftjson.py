from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importers import PARSERS, ftjson
from importers.base import ImportedEvent, ImportedVenue, RowError, Unchanged, content_hash

PARIS = ZoneInfo("Europe/Paris")


def run(document: Any) -> list[ImportedEvent | RowError]:
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    return list(ftjson.parse(data))


def events(document: Any) -> list[ImportedEvent]:
    items = run(document)
    assert all(isinstance(item, ImportedEvent) for item in items), items
    return [item for item in items if isinstance(item, ImportedEvent)]


def errors(document: Any) -> list[RowError]:
    return [item for item in run(document) if isinstance(item, RowError)]


MEE_EVENT: dict[str, Any] = {
    "id": 1234567,
    "titre": "Job dating Santé",
    "description": "<p>Rencontrez des <b>recruteurs</b>.</p>",
    "dateEvenement": "2026-12-10T08:30:00.000+00:00",
    "heureDebut": "08:30:00",
    "heureFin": "11:30:00",
    "timezone": "Europe/Paris",
    "type": "Job dating",
    "modalites": ["en physique", "à distance"],
    "objectifs": "Décrocher un entretien",
    "publics": ["Demandeurs d'emploi", "Jeunes < 26 ans"],
    "ville": "Lyon",
    "codePostal": "69003",
    "codeInsee": "69383",
    "latitude": 45.7597,
    "longitude": 4.8422,
    "nombrePlaceTotalPresentiel": 30,
    "nombrePlaceTotalDistance": 50,
    "nombreInscritPresentiel": 12,
    "nombreInscritDistance": 3,
    "codesRome": ["J", "M"],
    "multisectoriel": False,
    "urlDetailEvenement": "https://mesevenementsemploi.francetravail.fr/evenement/1234567",
    "libelleOrganisateurPrincipal": "France Travail Lyon Part-Dieu",
    "libelleEtablissement": "Agence Lyon Part-Dieu",
    "champInconnu": {"ignored": True},
}


def mee(**changes: Any) -> dict[str, Any]:
    row = {**MEE_EVENT, **changes}
    return {key: value for key, value in row.items() if value is not None}


SALON: dict[str, Any] = {
    "titre": "Salon de l'emploi saisonnier",
    "dateDebut": "2026-03-12T09:00:00",
    "dateFin": "2026-03-12T17:00:00",
    "dateDebutCandidature": "2026-02-01",
    "dateFinCandidature": "2026-03-10",
    "description": "Plus de 40 employeurs.",
    "localisation": "Lyon (69)",
    "typeEvenement": "18",
    "organismeOrganisateur": "France Travail Rhône",
    "nombreOffres": 120,
    "urlSalonEnLigne": None,
    "salonEnCours": False,
}


def salon(**changes: Any) -> dict[str, Any]:
    row = {**SALON, **changes}
    return {key: value for key, value in row.items() if value is not None}


def test_mes_evenements_emploi_event_maps_every_field() -> None:
    [event] = events({"totalElements": 1, "content": [MEE_EVENT]})

    assert event.line == 1
    assert event.external_id == "1234567"
    assert event.title == "Job dating Santé"
    assert event.description_html == (
        "<p>Rencontrez des <b>recruteurs</b>.</p>"
        "<p><strong>Objectifs :</strong></p><p>Décrocher un entretien</p>"
        "<p><strong>Public :</strong></p><p>Demandeurs d&#x27;emploi</p><p>Jeunes &lt; 26 ans</p>"
    )
    assert event.type == "job_dating"
    assert event.sectors == ("J", "M")
    assert event.format == "hybrid"
    assert event.starts_at == datetime(2026, 12, 10, 8, 30, tzinfo=UTC)
    assert event.ends_at == datetime(2026, 12, 10, 11, 30, tzinfo=UTC)
    assert event.starts_at.utcoffset() == timedelta(hours=1)
    assert event.timezone == "Europe/Paris"
    assert event.venue == ImportedVenue(
        name="Agence Lyon Part-Dieu",
        address=None,
        postal_code="69003",
        city="Lyon",
        lat=45.7597,
        lon=4.8422,
    )
    assert event.online_url is None
    assert (event.capacity, event.remote_capacity) == (30, 50)
    assert event.registration_opens_at is None
    assert event.registration_closes_at is None
    assert event.job_offers is None
    assert event.status == "scheduled"
    assert event.source_url == "https://mesevenementsemploi.francetravail.fr/evenement/1234567"
    assert event.organiser == "France Travail Lyon Part-Dieu"
    assert event.warnings == ()


def test_clock_times_are_utc_on_the_utc_date_and_an_earlier_end_is_the_next_day() -> None:
    [event] = events(
        [
            mee(
                dateEvenement="2026-12-10T21:00:00.000+00:00",
                heureDebut="21:00:00",
                heureFin="01:30",
            )
        ]
    )
    assert event.starts_at == datetime(2026, 12, 10, 21, 0, tzinfo=UTC)
    assert event.ends_at == datetime(2026, 12, 11, 1, 30, tzinfo=UTC)


def test_a_day_sent_as_local_midnight_keeps_its_local_date() -> None:
    [event] = events([mee(dateEvenement="2026-12-09T23:00:00.000+00:00")])
    assert event.starts_at == datetime(2026, 12, 10, 8, 30, tzinfo=UTC)


def test_start_without_clock_times_uses_the_instant_and_two_hours() -> None:
    [event] = events([mee(heureDebut=None, heureFin=None, dateEvenement="2026-12-10T14:00:00Z")])
    assert event.starts_at == datetime(2026, 12, 10, 14, 0, tzinfo=UTC)
    assert event.ends_at == datetime(2026, 12, 10, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("modalites", "expected", "capacities"),
    [
        (["en physique"], "onsite", (30, None)),
        (["à distance"], "online", (50, None)),
        ("a distance", "online", (50, None)),
        ("en physique, à distance", "hybrid", (30, 50)),
        (["EN PHYSIQUE", "A DISTANCE"], "hybrid", (30, 50)),
    ],
)
def test_modalites_give_the_format_and_the_capacity_of_that_format(
    modalites: Any, expected: str, capacities: tuple[int | None, int | None]
) -> None:
    [event] = events([mee(modalites=modalites)])
    assert event.format == expected
    assert (event.capacity, event.remote_capacity) == capacities


def test_labels_may_come_as_code_objects() -> None:
    [event] = events(
        [
            mee(
                type={"code": "16", "libelle": "Atelier"},
                modalites=[{"libelle": "à distance"}],
                codesRome=[{"code": "F"}, {"code": "N"}],
            )
        ]
    )
    assert (event.type, event.format, event.sectors) == ("workshop", "online", ("F", "N"))


def test_zero_places_means_no_number() -> None:
    [event] = events([mee(modalites=["en physique"], nombrePlaceTotalPresentiel=0)])
    assert event.capacity is None


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Atelier", "workshop"),
        ("JOB DATING", "job_dating"),
        ("Salon", "forum"),
        ("Forum", "forum"),
        ("Salon en ligne", "online_fair"),
        ("Réunion d'information", "info_session"),
        ("reunion d’information", "info_session"),
        ("Conférence", "conference"),
        ("Visite d'entreprise", "company_visit"),
        ("Portes ouvertes", "open_day"),
        ("Session de recrutement", "recruitment"),
    ],
)
def test_type_labels_match_whatever_their_case_and_accents(label: str, expected: str) -> None:
    [event] = events([mee(type=label)])
    assert event.type == expected
    assert event.warnings == ()


def test_unknown_type_is_other_with_a_warning() -> None:
    [event] = events([mee(type="Webinaire")])
    assert event.type == "other"
    assert event.warnings == ("type « Webinaire » inconnu, classé « Autre »",)


def test_multisectoriel_and_unknown_sectors() -> None:
    [multi] = events([mee(multisectoriel=True)])
    assert multi.sectors == ("all",)
    [unknown] = events([mee(codesRome=["Z"])])
    assert unknown.sectors == ("all",)
    assert unknown.warnings == ("secteur « Z » inconnu, ignoré",)
    [rome] = events([mee(codesRome=["M1607", "n"])])
    assert rome.sectors == ("M", "N")


def test_salons_shape() -> None:
    [event] = events({"salons": [SALON]})
    assert event.title == "Salon de l'emploi saisonnier"
    assert event.type == "job_dating"
    assert event.format == "onsite"
    assert event.starts_at == datetime(2026, 3, 12, 9, 0, tzinfo=PARIS)
    assert event.ends_at == datetime(2026, 3, 12, 17, 0, tzinfo=PARIS)
    assert event.registration_opens_at == datetime(2026, 2, 1, 0, 0, tzinfo=PARIS)
    assert event.registration_closes_at == datetime(2026, 3, 10, 23, 59, tzinfo=PARIS)
    assert event.venue == ImportedVenue(city="Lyon")
    assert event.description_html == "<p>Plus de 40 employeurs.</p>"
    assert event.organiser == "France Travail Rhône"
    assert event.job_offers == 120
    assert event.sectors == ("all",)


def test_salon_address_in_localisation_is_split() -> None:
    [event] = events(
        [salon(localisation="Palais des congrès, 50 quai Charles de Gaulle, 69006 Lyon")]
    )
    assert event.venue == ImportedVenue(
        name="Palais des congrès",
        address="50 quai Charles de Gaulle",
        postal_code="69006",
        city="Lyon",
    )


@pytest.mark.parametrize(
    ("changes", "expected_format", "expected_type"),
    [
        ({"typeEvenement": "17", "localisation": None}, "online", "online_fair"),
        ({"typeEvenement": "Salon", "localisation": "En ligne"}, "online", "forum"),
        ({"typeEvenement": "14", "localisation": "Lyon (69)"}, "hybrid", "forum"),
    ],
)
def test_salon_en_ligne_url(
    changes: dict[str, Any], expected_format: str, expected_type: str
) -> None:
    [event] = events(
        [salon(urlSalonEnLigne="https://salonenligne.francetravail.fr/s/1", **changes)]
    )
    assert event.online_url == "https://salonenligne.francetravail.fr/s/1"
    assert event.format == expected_format
    assert event.type == expected_type


def test_date_only_salon_lasts_until_the_end_of_its_last_day() -> None:
    [event] = events([salon(dateDebut="2026-03-12", dateFin="2026-03-13")])
    assert event.starts_at == datetime(2026, 3, 12, 0, 0, tzinfo=PARIS)
    assert event.ends_at == datetime(2026, 3, 14, 0, 0, tzinfo=PARIS)


def test_naive_dates_are_read_in_the_row_timezone() -> None:
    [event] = events([salon(timezone="Indian/Reunion")])
    assert event.timezone == "Indian/Reunion"
    assert event.starts_at == datetime(2026, 3, 12, 5, 0, tzinfo=UTC)


def test_unknown_timezone_falls_back_to_paris_with_a_warning() -> None:
    [event] = events([salon(timezone="Mars/Olympus")])
    assert event.timezone == "Europe/Paris"
    assert event.starts_at == datetime(2026, 3, 12, 9, 0, tzinfo=PARIS)
    assert event.warnings == ("fuseau horaire « Mars/Olympus » inconnu, Europe/Paris utilisé",)


@pytest.mark.parametrize(
    "document",
    [
        [SALON],
        {"results": [SALON]},
        {"salons": [SALON]},
        {"evenements": [SALON]},
        {"meta": {"page": 1}, "donnees": [SALON]},
        SALON,
    ],
    ids=["list", "results", "salons", "evenements", "any-key", "lone-object"],
)
def test_the_list_is_found_wherever_it_is(document: Any) -> None:
    [event] = events(document)
    assert event.title == "Salon de l'emploi saisonnier"


def test_known_list_key_wins_over_other_lists() -> None:
    document = {"facets": [{"titre": "pas un événement"}], "content": [MEE_EVENT]}
    [event] = events(document)
    assert event.external_id == "1234567"


def test_row_without_id_gets_a_stable_id_from_title_and_start() -> None:
    [first] = events([SALON])
    [again] = events([SALON])
    [renamed] = events([salon(titre="Autre salon")])
    [moved] = events([salon(dateDebut="2026-03-13T09:00:00", dateFin="2026-03-13T17:00:00")])
    assert first.external_id.startswith("h-")
    assert first.external_id == again.external_id
    assert len({first.external_id, renamed.external_id, moved.external_id}) == 3


def test_field_errors_name_the_field_and_the_index_and_spare_the_other_rows() -> None:
    document = {
        "content": [
            mee(id=1),
            mee(id=2, titre="  "),
            mee(id=3, dateEvenement="le 10 décembre"),
            salon(dateFin="2026-03-11T09:00:00"),
            mee(id=5, nombrePlaceTotalPresentiel="trente"),
            salon(nombreOffres=-4, latitude="quarante", longitude=4.8),
            mee(id=7, heureFin="onze heures"),
            mee(id=8),
        ]
    }
    items = run(document)
    assert [(i.line, i.field) for i in items if isinstance(i, RowError)] == [
        (2, "title"),
        (3, "starts_at"),
        (4, "ends_at"),
        (5, "capacity"),
        (6, "venue.lat"),
        (6, "job_offers"),
        (7, "ends_at"),
    ]
    assert [i.external_id for i in items if isinstance(i, ImportedEvent)] == ["1", "8"]
    by_line = {(i.line, i.field): i.reason for i in items if isinstance(i, RowError)}
    assert by_line[(3, "starts_at")] == "date de début illisible : « le 10 décembre »"
    assert by_line[(5, "capacity")] == "places sur place : nombre entier attendu, pas « trente »"
    assert by_line[(6, "job_offers")] == "nombre d'offres : nombre positif attendu, pas « -4 »"


def test_duplicate_ids_are_refused_after_the_first() -> None:
    items = run([mee(id=9), mee(id=9, titre="Copie")])
    assert isinstance(items[0], ImportedEvent)
    assert items[1] == RowError(
        2, "external_id", "identifiant « 9 » en double (déjà vu à l'élément 1)", "9"
    )


def test_a_rejected_row_carries_its_id_when_it_could_be_read() -> None:
    bad = mee(id=12, dateEvenement="pas une date", nombreOffres=-1)
    nameless = {k: v for k, v in mee(titre=None).items() if k != "id"}
    errors = run([bad, nameless])
    assert {(e.line, e.external_id) for e in errors if isinstance(e, RowError)} == {
        (1, "12"),
        (2, None),
    }


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   \n",
        b"<!DOCTYPE html><html><body>Erreur 502</body></html>",
        b'{"totalElements": 2, "content": [{"id": 1, "titre": "a"}, {"id": 2,',
        b'{"content": [{"titre": "a}]}',
        b'{"content": []} {"content": []}',
        b'{"content": [}',
        b"42",
        b'{"totalElements": 0}',
    ],
    ids=[
        "empty",
        "blank",
        "html",
        "truncated",
        "unterminated-string",
        "two-documents",
        "mismatched",
        "scalar",
        "no-list",
    ],
)
def test_unreadable_document_is_one_error_on_line_zero(data: bytes) -> None:
    [error] = run(data)
    assert isinstance(error, RowError)
    assert (error.line, error.field) == (0, None)


def test_empty_list_is_an_empty_feed() -> None:
    assert run({"totalElements": 0, "content": []}) == []


def test_bad_element_is_reported_with_its_position() -> None:
    data = b'[{"id": 1, "titre": "a", "dateDebut": "2026-01-05"}, {"id": 2, "titre": tru}]'
    items = run(data)
    assert isinstance(items[0], ImportedEvent)
    assert isinstance(items[1], RowError)
    assert (items[1].line, items[1].field) == (2, None)
    assert items[1].reason.startswith("élément JSON invalide : ")


def test_element_that_is_no_object_is_reported_with_its_position() -> None:
    data = b'[7, {"id": 1, "titre": "a", "dateDebut": "2026-01-05"}, "texte"]'
    items = run(data)
    assert items[0] == RowError(1, None, "l'élément n'est pas un objet JSON")
    assert isinstance(items[1], ImportedEvent)
    assert items[1].line == 2
    assert items[2] == RowError(3, None, "l'élément n'est pas un objet JSON")


def test_incomplete_page_is_reported_after_the_events() -> None:
    items = run({"totalElements": 3, "content": [mee(id=1)]})
    assert isinstance(items[0], ImportedEvent)
    assert items[1] == RowError(
        0,
        None,
        "le document annonce 3 événements mais n'en contient que 1 : flux paginé ou incomplet",
    )


def test_strings_with_brackets_quotes_and_escapes_do_not_confuse_the_scanner() -> None:
    titles = ['Forum "emploi" [BTP] {2026}', "a\\", "}]", '\u00e9\\"]', "\\\\"]
    rows = [
        salon(titre=title, dateDebut=f"2026-03-1{n}T09:00:00", dateFin=None)
        for n, title in enumerate(titles)
    ]
    document = ("\ufeff" + json.dumps({"content": rows}, ensure_ascii=False, indent=2)).encode()
    assert [event.title for event in events(document)] == titles


def test_many_events_keep_their_positions() -> None:
    rows = [mee(id=n, titre=f"Événement {n}") for n in range(1, 2001)]
    rows[1499]["titre"] = ""
    items = run({"totalElements": 2000, "content": rows})
    assert len(items) == 2000
    assert items[1499] == RowError(1500, "title", "titre absent ou vide", "1500")
    assert [i.line for i in items] == list(range(1, 2001))
    assert items[-1].external_id == "2000"  # type: ignore[union-attr]


def test_windows_1252_element_is_still_read() -> None:
    data = '[{"titre": "Journée métiers", "dateDebut": "2026-05-05"}]'.encode("cp1252")
    [event] = events(data)
    assert event.title == "Journée métiers"


def test_parsers_registry() -> None:
    assert PARSERS["ft-json"] is ftjson.parse


def test_content_hash_ignores_line_and_warnings_and_nothing_else() -> None:
    [event] = events([MEE_EVENT])
    same = dataclasses.replace(event, line=99, warnings=("autre",))
    assert content_hash(same) == content_hash(event)
    assert len(content_hash(event)) == 64
    # The instant counts, not the wall clock it is written in.
    moved_zone = dataclasses.replace(event, starts_at=event.starts_at.astimezone(PARIS))
    assert content_hash(moved_zone) == content_hash(event)
    for change in (
        {"title": "Autre"},
        {"capacity": 31},
        {"sectors": ("J",)},
        {"venue": dataclasses.replace(event.venue, lat=45.0)},
        {"starts_at": datetime(2026, 12, 10, 8, 31, tzinfo=UTC)},
        {"status": "cancelled"},
    ):
        assert content_hash(dataclasses.replace(event, **change)) != content_hash(event), change


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**15), max_value=10**15)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        ["2026-12-10T08:30:00.000+00:00", "2026-03-12", "08:30:00", "25:99", "à distance", "J"]
    )
)
_KEYS = st.sampled_from(
    [*MEE_EVENT.keys(), *SALON.keys(), "content", "results", "id", "statut", "annule"]
)
_ROWS = st.dictionaries(_KEYS, _SCALARS | st.lists(_SCALARS, max_size=3), max_size=14)


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(_ROWS, max_size=6))
def test_any_field_values_give_one_verdict_per_row(rows: list[dict[str, Any]]) -> None:
    items = run({"content": rows})
    assert {item.line for item in items} == set(range(1, len(rows) + 1))
    for item in items:
        if isinstance(item, ImportedEvent):
            assert item.starts_at.utcoffset() is not None
            assert item.starts_at <= item.ends_at
            assert item.format in ("onsite", "online", "hybrid")


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=300) | st.text(alphabet='{}[]",:\\ a1tr', max_size=60).map(str.encode))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    items = run(data)
    assert all(isinstance(item, ImportedEvent | RowError) for item in items)


def test_an_element_whose_raw_text_hashes_as_stored_is_not_mapped_again() -> None:
    rows = [mee(id="A"), mee(id="B", titre="Autre")]
    data = json.dumps({"content": rows}).encode()
    first = [item for item in ftjson.parse(data) if isinstance(item, ImportedEvent)]
    hashes = {item.external_id: item.raw_hash for item in first}
    assert hashes["A"] == ftjson.raw_hash(json.dumps(rows[0]).encode())
    # B's stored hash is stale: it is mapped again; A is recognised before any mapping.
    known = {"A": hashes["A"], "B": "0" * 64}
    again = list(ftjson.parse(data, known))
    assert again[0] == Unchanged(1, "A")
    assert isinstance(again[1], ImportedEvent) and again[1].external_id == "B"
    # A second copy of an unchanged element is still a duplicate.
    twice = json.dumps({"content": [rows[0], rows[0]]}).encode()
    items = list(ftjson.parse(twice, known))
    assert items[0] == Unchanged(1, "A")
    assert isinstance(items[1], RowError) and items[1].field == "external_id"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b'{"content":[{"titre":"x}]}', "chaîne de caractères non terminée à l'octet 21"),
        (b'{"content":[{"titre":[1}]}', "crochet ou accolade inattendu à l'octet 23"),
        (b'{"content":[{"titre":{"a":1}}', "document JSON tronqué"),
        (b'{"content":[{"titre":"a"}]} {}', "contenu inattendu après la fin"),
    ],
    ids=["unterminated-string", "mismatched-bracket", "truncated", "trailing-content"],
)
def test_a_broken_document_is_refused_whole_with_its_reason(document: bytes, reason: str) -> None:
    [error] = list(ftjson.parse(document))
    assert isinstance(error, RowError) and error.line == 0
    assert reason in error.reason


def test_brackets_and_escaped_quotes_inside_strings_do_not_split_an_element() -> None:
    row = {"id": 7, "titre": 'Salon "{[ ]}" \\ }', "dateEvenement": "2027-01-05T09:00:00Z"}
    document = json.dumps({"content": [row, {**row, "id": 8}]}).encode()
    found = events(json.loads(document))
    assert [event.external_id for event in found] == ["7", "8"]
    assert found[0].title == 'Salon "{[ ]}" \\ }'


def test_deeply_nested_elements_are_read_whole() -> None:
    deep: Any = {"z": "]}"}
    for _ in range(8):
        deep = {"a": [deep, "{"]}
    row = {"id": 9, "titre": "Forum", "dateEvenement": "2027-01-05T09:00:00Z", "extra": deep}
    found = events({"content": [row, {**row, "id": 10}]})
    assert [event.external_id for event in found] == ["9", "10"]
