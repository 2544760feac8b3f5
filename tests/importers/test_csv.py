from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importers import PARSERS
from importers import csv as csvfeed
from importers.base import ImportedEvent, ImportedVenue, RowError

PARIS = ZoneInfo("Europe/Paris")


def run(text: str | bytes, encoding: str = "utf-8") -> list[ImportedEvent | RowError]:
    data = text if isinstance(text, bytes) else text.encode(encoding)
    return list(csvfeed.parse(data))


def events(text: str | bytes, encoding: str = "utf-8") -> list[ImportedEvent]:
    items = run(text, encoding)
    assert all(isinstance(item, ImportedEvent) for item in items), items
    return [item for item in items if isinstance(item, ImportedEvent)]


def one(header: str, row: str) -> ImportedEvent:
    [event] = events(f"{header}\n{row}\n")
    return event


FULL_HEADER = (
    "Référence;Intitulé;Description;Type;Secteurs;Modalité;Date de début;Date de fin;"
    "Nom du lieu;Adresse;Code postal;Ville;Latitude;Longitude;Lien en ligne;Capacité;"
    "Places à distance;Début des inscriptions;Clôture des inscriptions;Nombre d'offres;Statut;"
    "Organisateur;Page de l'événement"
)
FULL_ROW = (
    "EVT-7;Job dating logistique;Venez avec votre CV.;Job dating;N, M;hybride;"
    "10/12/2026 09:30;10/12/2026 12h00;Agence de Montreuil;12 rue de Paris;93100;Montreuil;"
    "48,8611;2,4432;https://visio.example.org/abc;25;40;01/12/2026;09/12/2026 18:00;12;;"
    "France Travail Montreuil;https://agence.example.org/evt-7"
)


def test_every_column_is_read() -> None:
    [event] = events("\ufeff" + FULL_HEADER + "\r\n" + FULL_ROW + "\r\n")
    assert event == ImportedEvent(
        line=2,
        external_id="EVT-7",
        title="Job dating logistique",
        description_html="<p>Venez avec votre CV.</p>",
        type="job_dating",
        sectors=("M", "N"),
        format="hybrid",
        starts_at=datetime(2026, 12, 10, 9, 30, tzinfo=PARIS),
        ends_at=datetime(2026, 12, 10, 12, 0, tzinfo=PARIS),
        timezone="Europe/Paris",
        venue=ImportedVenue(
            name="Agence de Montreuil",
            address="12 rue de Paris",
            postal_code="93100",
            city="Montreuil",
            lat=48.8611,
            lon=2.4432,
        ),
        online_url="https://visio.example.org/abc",
        capacity=25,
        remote_capacity=40,
        registration_opens_at=datetime(2026, 12, 1, 0, 0, tzinfo=PARIS),
        registration_closes_at=datetime(2026, 12, 9, 18, 0, tzinfo=PARIS),
        job_offers=12,
        status="scheduled",
        source_url="https://agence.example.org/evt-7",
        organiser="France Travail Montreuil",
        warnings=(),
    )
    assert event.starts_at.astimezone(UTC) == datetime(2026, 12, 10, 8, 30, tzinfo=UTC)


def test_windows_1252_comma_separated_with_quoted_cells() -> None:
    text = (
        "titre,date de début,description,ville\n"
        '"Forum des métiers, édition 2026",15/01/2026 14:00,"Entrée libre, sans inscription",'
        "Évry-Courcouronnes\n"
    )
    [event] = events(text, encoding="cp1252")
    assert event.title == "Forum des métiers, édition 2026"
    assert event.description_html == "<p>Entrée libre, sans inscription</p>"
    assert event.venue.city == "Évry-Courcouronnes"
    assert event.starts_at == datetime(2026, 1, 15, 14, 0, tzinfo=PARIS)


def test_tab_separated_utf16_export() -> None:
    text = "Titre\tDate\tHeure\nAtelier CV\t05/02/2026\t10:00\n"
    [event] = events(text.encode("utf-16"))
    assert event.title == "Atelier CV"
    assert event.starts_at == datetime(2026, 2, 5, 10, 0, tzinfo=PARIS)


def test_excel_sep_line() -> None:
    items = run("sep=,\nTitre,Date\nAtelier,05/02/2026 10:00\n")
    assert [(i.line, i.title) for i in items if isinstance(i, ImportedEvent)] == [(3, "Atelier")]


@pytest.mark.parametrize(
    "header",
    [
        "Titre;Date de début",
        "TITRE;DATE DEBUT",
        " intitulé ; date début ",
        "Intitule;date_de_debut",
        "Titre *;Début",
        "Nom de l'événement;Date et heure de début",
    ],
)
def test_header_variants(header: str) -> None:
    event = one(header, "Atelier;05/02/2026 10:00")
    assert (event.title, event.starts_at) == ("Atelier", datetime(2026, 2, 5, 10, 0, tzinfo=PARIS))


@pytest.mark.parametrize(
    ("header", "row"),
    [
        ("Titre;Début", "A;10/12/2026 09:30"),
        ("Titre;Début", "A;10/12/2026 9h30"),
        ("Titre;Début", "A;10/12/2026 09H30"),
        ("Titre;Début", "A;10-12-2026 09:30:00"),
        ("Titre;Début", "A;10/12/26 09:30"),
        ("Titre;Début", "A;2026-12-10T09:30"),
        ("Titre;Début", "A;2026-12-10 09:30:00"),
        ("Titre;Début", "A;2026-12-10T08:30:00Z"),
        ("Titre;Date;Heure de début", "A;10/12/2026;09:30"),
        ("Titre;Date;Heure début", "A;10/12/2026;9h30"),
    ],
)
def test_date_formats(header: str, row: str) -> None:
    event = one(header, row)
    assert event.starts_at == datetime(2026, 12, 10, 9, 30, tzinfo=PARIS)
    assert event.ends_at == datetime(2026, 12, 10, 11, 30, tzinfo=PARIS)


def test_date_without_time_is_an_all_day_event() -> None:
    event = one("Titre;Date", "Portes ouvertes;28/03/2026")
    assert event.starts_at == datetime(2026, 3, 28, 0, 0, tzinfo=PARIS)
    assert event.ends_at == datetime(2026, 3, 29, 0, 0, tzinfo=PARIS)


def test_end_date_without_time_lasts_all_that_day_across_dst() -> None:
    event = one("Titre;Début;Fin", "Salon;28/03/2026 09:00;29/03/2026")
    assert event.ends_at == datetime(2026, 3, 30, 0, 0, tzinfo=PARIS)
    assert event.ends_at.utcoffset() == timedelta(hours=2)


def test_end_time_column_alone_is_on_the_start_date_or_the_next() -> None:
    day = one("Titre;Date;Heure début;Heure fin", "A;10/12/2026;09:00;12:30")
    assert day.ends_at == datetime(2026, 12, 10, 12, 30, tzinfo=PARIS)
    night = one("Titre;Date;Heure début;Heure fin", "A;10/12/2026;21:00;01:00")
    assert night.ends_at == datetime(2026, 12, 11, 1, 0, tzinfo=PARIS)


def test_end_date_with_separate_end_time() -> None:
    event = one("Titre;Début;Date de fin;Heure de fin", "A;10/12/2026 09:00;11/12/2026;17h")
    assert event.ends_at == datetime(2026, 12, 11, 17, 0, tzinfo=PARIS)


def test_timezone_column() -> None:
    event = one("Titre;Début;Fuseau horaire", "A;10/12/2026 09:00;America/Cayenne")
    assert event.timezone == "America/Cayenne"
    assert event.starts_at == datetime(2026, 12, 10, 12, 0, tzinfo=UTC)


def test_quoted_multiline_cells_keep_physical_line_numbers() -> None:
    text = (
        "Titre;Date;Description\n"  # line 1
        'Atelier;05/02/2026;"Première ligne\n'  # line 2
        "\n"  # line 3
        'troisième ligne"\n'  # line 4
        ";06/02/2026;sans titre\n"  # line 5
        "\n"  # line 6
        '"Job\ndating";31/02/2026;\n'  # lines 7-8
        "Forum;07/02/2026;\n"  # line 9
    )
    items = run(text)
    assert [(type(i).__name__, i.line) for i in items] == [
        ("ImportedEvent", 2),
        ("RowError", 5),
        ("RowError", 7),
        ("ImportedEvent", 9),
    ]
    first = items[0]
    assert isinstance(first, ImportedEvent)
    assert first.description_html == "<p>Première ligne</p><p>troisième ligne</p>"
    assert items[1] == RowError(5, "title", "titre absent ou vide")
    assert items[2] == RowError(7, "starts_at", "date de début illisible : « 31/02/2026 »")


def test_crlf_and_lone_cr_line_ends_count_as_lines() -> None:
    items = run("Titre;Date\r\nA;05/02/2026\rB;bad\r\nC;07/02/2026\r\n")
    assert [(type(i).__name__, i.line) for i in items] == [
        ("ImportedEvent", 2),
        ("RowError", 3),
        ("ImportedEvent", 4),
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Date;Lieu", [RowError(1, "title", "colonne obligatoire « titre » absente de l'en-tête")]),
        (
            "Titre;Lieu",
            [
                RowError(
                    1, "starts_at", "colonne obligatoire « date de début » absente de l'en-tête"
                )
            ],
        ),
        (
            "Nom;Prénom",
            [
                RowError(1, "title", "colonne obligatoire « titre » absente de l'en-tête"),
                RowError(
                    1, "starts_at", "colonne obligatoire « date de début » absente de l'en-tête"
                ),
            ],
        ),
    ],
)
def test_missing_required_column(header: str, expected: list[RowError]) -> None:
    assert run(f"{header}\nA;B\nC;D\n") == expected


@pytest.mark.parametrize(
    ("cell", "sectors", "warnings"),
    [
        ("F, N", ("F", "N"), ()),
        ("Santé; Transport et logistique", ("J", "N"), ()),
        ("a|b / C", ("A", "B", "C"), ()),
        ("Banque, assurance, immobilier", ("C",), ()),
        ("Hôtellerie-restauration", ("G",), ()),
        ("Tous secteurs", ("all",), ()),
        ("", ("all",), ()),
        ("Z, M", ("M",), ("secteur « Z » inconnu, ignoré",)),
        ("Astronautique", ("all",), ("secteur « Astronautique » inconnu, ignoré",)),
    ],
)
def test_sectors(cell: str, sectors: tuple[str, ...], warnings: tuple[str, ...]) -> None:
    event = one("Titre;Date;Secteur(s)", f'A;05/02/2026;"{cell}"')
    assert (event.sectors, event.warnings) == (sectors, warnings)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("Présentiel", "onsite"),
        ("sur place", "onsite"),
        ("Distanciel", "online"),
        ("En ligne", "online"),
        ("à distance", "online"),
        ("Hybride", "hybrid"),
        ("présentiel et distanciel", "hybrid"),
        ("Sur place et en ligne", "hybrid"),
    ],
)
def test_formats(cell: str, expected: str) -> None:
    event = one("Titre;Date;Format;Lien", f"A;05/02/2026;{cell};https://visio.example.org/x")
    assert event.format == expected


def test_format_is_deduced_when_absent() -> None:
    header = "Titre;Date;Ville;Lien"
    assert one(header, "A;05/02/2026;Lyon;").format == "onsite"
    assert one(header, "A;05/02/2026;;https://visio.example.org/x").format == "online"
    assert one(header, "A;05/02/2026;Lyon;https://visio.example.org/x").format == "hybrid"
    unknown = one("Titre;Date;Modalité;Ville", "A;05/02/2026;téléphone;Lyon")
    assert unknown.format == "onsite"
    assert unknown.warnings == ("format « téléphone » inconnu, déduit du lieu et du lien",)


def test_capacities_follow_the_format() -> None:
    header = "Titre;Date;Modalité;Places;Places à distance"
    assert (lambda e: (e.capacity, e.remote_capacity))(
        one(header, "A;05/02/2026;hybride;20;100")
    ) == (20, 100)
    online = one(header, "A;05/02/2026;distanciel;;100")
    assert (online.capacity, online.remote_capacity) == (100, None)
    onsite = one(header, "A;05/02/2026;présentiel;20;100")
    assert (onsite.capacity, onsite.remote_capacity) == (20, None)
    assert onsite.warnings == ("places à distance ignorées : l'événement n'est pas hybride",)
    spaced = one(header, "A;05/02/2026;présentiel;1 200;")
    assert spaced.capacity == 1200


def test_types() -> None:
    header = "Titre;Date;Type d'événement"
    assert one(header, "A;05/02/2026;Réunion d'information").type == "info_session"
    assert one(header, "A;05/02/2026;16").type == "workshop"
    assert one(header, "A;05/02/2026;").type == "other"
    webinar = one(header, "A;05/02/2026;Webinaire")
    assert (webinar.type, webinar.warnings) == (
        "other",
        ("type « Webinaire » inconnu, classé « Autre »",),
    )


def test_coordinates_with_decimal_commas_and_postal_code_without_leading_zero() -> None:
    event = one("Titre;Date;Code postal;Latitude;Longitude", 'A;05/02/2026;1000;"46,2052";"5,2255"')
    assert (event.venue.postal_code, event.venue.lat, event.venue.lon) == ("01000", 46.2052, 5.2255)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("Annulé", "cancelled"),
        ("ANNULEE", "cancelled"),
        ("reporté", "postponed"),
        ("", "scheduled"),
    ],
)
def test_status(cell: str, expected: str) -> None:
    assert one("Titre;Date;Statut", f"A;05/02/2026;{cell}").status == expected


def test_field_errors_name_field_and_line() -> None:
    text = (
        "Titre;Début;Fin;Latitude;Longitude;Capacité;Nombre d'offres;Lien;"
        "Inscriptions ouvertes le;Clôture des inscriptions;Fuseau horaire\n"
        "Bon;05/02/2026 10:00;;;;;;;;;\n"
        "Fin avant début;05/02/2026 10:00;05/02/2026 09:00;;;;;;;;\n"
        "Chiffres;05/02/2026 10:00;;quarante;2,3;dix;-1;;;;\n"
        "Lien;05/02/2026 10:00;;91;2;;;ftp://exemple;;;\n"
        "Inscriptions;05/02/2026 10:00;;;;;;;04/02/2026;01/02/2026;\n"
        "Fuseau;05/02/2026 10:00;;;;;;;;;Lune/Mer\n"
    )
    items = run(text)
    assert isinstance(items[0], ImportedEvent)
    assert items[1:] == [
        RowError(3, "ends_at", "la fin (05/02/2026 09:00) précède le début (05/02/2026 10:00)"),
        RowError(4, "venue.lat", "latitude : nombre attendu, pas « quarante »"),
        RowError(4, "capacity", "capacité : nombre entier attendu, pas « dix »"),
        RowError(4, "job_offers", "nombre d'offres : nombre positif attendu, pas « -1 »"),
        RowError(5, "venue.lat", "latitude : « 91 » hors de l'intervalle [-90, 90]"),
        RowError(5, "online_url", "lien en ligne invalide : « ftp://exemple » (https://… attendu)"),
        RowError(
            6,
            "registration_closes_at",
            "la clôture des inscriptions précède leur ouverture",
        ),
        RowError(7, "timezone", "fuseau horaire inconnu : « Lune/Mer »"),
    ]


def test_ids_given_derived_and_duplicated() -> None:
    text = "Réf;Titre;Date\nR1;A;05/02/2026 10:00\n;B;05/02/2026 10:00\nR1;C;06/02/2026 10:00\n"
    items = run(text)
    first, derived, duplicate = items
    assert isinstance(first, ImportedEvent) and first.external_id == "R1"
    assert isinstance(derived, ImportedEvent) and derived.external_id.startswith("h-")
    assert duplicate == RowError(
        4, "external_id", "identifiant « R1 » en double (déjà vu ligne 2)", "R1"
    )
    [again] = [i for i in run(text) if isinstance(i, ImportedEvent) and i.title == "B"]
    assert again.external_id == derived.external_id


def test_blank_rows_are_skipped_and_extra_cells_warned() -> None:
    items = run("Titre;Date\n;\n\nA;05/02/2026;en trop\n")
    [event] = items
    assert isinstance(event, ImportedEvent)
    assert event.line == 4
    assert event.warnings == ("1 cellule(s) au-delà des colonnes de l'en-tête ignorée(s)",)


def test_title_is_clipped_to_the_database_size() -> None:
    event = one("Titre;Date", "A" * 250 + ";05/02/2026")
    assert len(event.title) == 200
    assert event.warnings == ("titre tronqué à 200 caractères",)


@pytest.mark.parametrize("data", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
def test_empty_file(data: bytes) -> None:
    assert run(data) == [RowError(0, None, "fichier CSV vide : aucune ligne d'en-tête")]


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(256)) * 20,
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
    ],
    ids=["binary", "pdf"],
)
def test_garbage_never_raises(data: bytes) -> None:
    items = run(data)
    assert all(isinstance(i, ImportedEvent | RowError) for i in items)
    assert any(isinstance(i, RowError) for i in items)


def test_unclosed_quote_is_blamed_on_its_row() -> None:
    text = 'Titre;Date\nA;05/02/2026\n"jamais fermé;05/02/2026\nB;06/02/2026\n'
    items = run(text)
    assert isinstance(items[0], ImportedEvent)
    assert items[1:] == [
        RowError(
            3,
            None,
            "guillemet ouvert jamais refermé : la suite du fichier a été lue comme une "
            "seule cellule",
        )
    ]


def test_control_characters_are_dropped() -> None:
    [event] = events(b"Titre;Date\nA\x00B\x07;05/02/2026\n")
    assert event.title == "AB"


def test_parsers_registry() -> None:
    assert PARSERS["csv"] is csvfeed.parse


_HEADERS = [
    "Titre",
    "Date de début",
    "Heure début",
    "Date de fin",
    "Heure fin",
    "Secteurs",
    "Modalité",
    "Type",
    "Latitude",
    "Longitude",
    "Capacité",
    "Places à distance",
    "Lien",
    "Code postal",
    "Statut",
    "Identifiant",
    "Clôture des inscriptions",
    "Fuseau horaire",
]
_CELLS = st.text(alphabet='0123456789/:-hT ;,"\né aAZ', max_size=18) | st.sampled_from(
    ["10/12/2026 09:30", "10/12/2026", "9h30", "2026-12-10T09:30", "hybride", "F, N", "48,8"]
)


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.lists(st.sampled_from(_HEADERS), min_size=1, max_size=9, unique=True),
    st.lists(st.lists(_CELLS, max_size=10), max_size=5),
    st.sampled_from([";", ",", "\t"]),
)
def test_any_cells_never_raise(headers: list[str], rows: list[list[str]], delimiter: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(headers)
    writer.writerows(rows)
    text = buffer.getvalue()
    items = run(text)
    line_count = len(io.StringIO(text, newline="").readlines())
    for item in items:
        assert 0 <= item.line <= line_count
        if isinstance(item, ImportedEvent):
            assert item.starts_at.utcoffset() is not None
            assert item.starts_at <= item.ends_at


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    assert all(isinstance(item, ImportedEvent | RowError) for item in run(data))


def test_a_rejected_row_carries_its_id_when_it_has_one() -> None:
    items = run(
        "Identifiant;Titre;Date de début;Capacité\n"
        "R-7;Atelier;32/13/2030 10:00;-2\n"
        ";Atelier;pas une date\n"
    )
    errors = [item for item in items if isinstance(item, RowError)]
    assert {(e.line, e.field, e.external_id) for e in errors} == {
        (2, "starts_at", "R-7"),
        (2, "capacity", "R-7"),
        (3, "starts_at", None),
    }


def test_the_template_reads_back_as_one_full_event_and_every_header_is_a_column() -> None:
    first_day = datetime(2027, 3, 15, tzinfo=PARIS)
    data = csvfeed.template(first_day)
    assert data.startswith("\ufeff".encode())  # French Excel needs the BOM to read UTF-8
    headers = data.decode("utf-8-sig").splitlines()[0].split(";")
    columns = [csvfeed._column(header) for header in headers]
    assert len(set(columns)) == len(columns)  # no column twice
    # Every column the parser reads, the separate clock-time columns aside.
    assert set(columns) == set(csvfeed._COLUMNS) - {"start_time", "end_time"}
    [event] = events(data)
    assert event.external_id == "ML-2027-001"
    assert event.title == "Job dating : métiers de la logistique"
    assert event.starts_at == datetime(2027, 3, 15, 8, 30, tzinfo=UTC)
    assert event.ends_at == datetime(2027, 3, 15, 11, 0, tzinfo=UTC)
    assert event.capacity == 30 and event.job_offers == 12
    assert event.venue is not None and event.venue.postal_code == "69100"
    assert event.registration_closes_at == datetime(2027, 3, 14, 17, 0, tzinfo=UTC)
