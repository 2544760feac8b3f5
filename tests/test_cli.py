"""The `events-app` command, run as a real process against the test database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from events_app.db import Database
from events_app.models import Event, Feed, ImportRun

EVENT = {
    "id": 1,
    "titre": "Job dating transport",
    "dateEvenement": "2030-12-10T08:30:00.000+00:00",
    "heureDebut": "08:30:00",
    "heureFin": "11:30:00",
    "type": "Job dating",
    "modalites": "en physique",
    "ville": "Lille",
    "codePostal": "59000",
    "latitude": 50.63,
    "longitude": 3.06,
    "codesRome": ["N"],
    "nombrePlaceTotalPresentiel": 15,
}


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    env.pop("FEED_ALLOW_PRIVATE", None)
    return subprocess.run(
        [sys.executable, "-m", "events_app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def create_agency(database_url: str, slug: str = "agence-lille") -> str:
    done = cli(database_url, "create-agency", "--slug", slug, "--name", "Agence de Lille")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def feed_file(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    path = tmp_path / "evenements.json"
    path.write_text(json.dumps({"totalElements": len(rows), "content": rows}), encoding="utf-8")
    return path


def test_create_agency_prints_a_token_that_opens_the_api(
    client: TestClient, database_url: str
) -> None:
    token = create_agency(database_url)

    assert token.startswith("evt_")
    anonymous = client.get("/api/v1/agency/events")
    assert anonymous.status_code == 401
    response = client.get("/api/v1/agency/events", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    wrong = client.get("/api/v1/agency/events", headers={"Authorization": f"Bearer {token}x"})
    assert wrong.status_code == 401


def test_create_agency_twice_is_refused(committed: Database, database_url: str) -> None:
    create_agency(database_url)
    again = cli(database_url, "create-agency", "--slug", "agence-lille", "--name", "Autre")
    assert again.returncode == 2
    assert "déjà pris" in again.stderr
    assert "Traceback" not in again.stderr


def test_import_prints_a_summary_and_the_rejected_rows(
    committed: Database, database_url: str, tmp_path: Path
) -> None:
    create_agency(database_url)
    source = feed_file(
        tmp_path,
        [
            EVENT,
            {**EVENT, "id": 2, "nombrePlaceTotalPresentiel": -3, "nombreOffres": "beaucoup"},
            {**EVENT, "id": 3},
        ],
    )

    done = cli(
        database_url, "import", "--format", "ft-json", "--agency", "agence-lille", str(source)
    )

    assert done.returncode == 0, done.stderr
    assert "réussi" in done.stdout
    assert "créés" in done.stdout and "rejetés" in done.stdout
    # One line per rejected row (issue 13.5), with each of its reasons.
    assert "ligne 2 : [capacity]" in done.stdout and "-3" in done.stdout
    [row_line] = [line for line in done.stdout.splitlines() if "ligne 2" in line]
    assert "[job_offers]" in row_line
    assert "Traceback" not in done.stderr
    with committed.transaction() as db:
        titles = db.scalars(select(Event.external_id).order_by(Event.external_id)).all()
        feed = db.scalars(select(Feed)).one()
    assert titles == ["1", "3"]
    assert feed.url == str(source.resolve())
    with committed.transaction() as db:
        assert db.scalars(select(ImportRun.rejected)).one() == 1

    again = cli(
        database_url, "import", "--format", "ft-json", "--agency", "agence-lille", str(source)
    )
    assert again.returncode == 0, again.stderr
    with committed.transaction() as db:
        runs = db.scalars(select(ImportRun).order_by(ImportRun.id)).all()
    assert [(r.created, r.unchanged, r.rejected) for r in runs] == [(2, 0, 1), (0, 2, 1)]


def test_an_unreadable_file_exits_with_a_one_line_reason(
    committed: Database, database_url: str, tmp_path: Path
) -> None:
    create_agency(database_url)
    missing = tmp_path / "absent.json"

    done = cli(
        database_url, "import", "--format", "ft-json", "--agency", "agence-lille", str(missing)
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Échec de l'import : Fichier illisible")
    assert "fichier introuvable" in lines[0]
    # Issue 13.3: the file's name, never the server path; and no feed is left behind.
    assert "absent.json" in lines[0] and str(tmp_path) not in lines[0]
    with committed.transaction() as db:
        assert db.scalars(select(Feed)).all() == []
        assert db.scalars(select(ImportRun)).all() == []


def test_a_file_of_another_format_leaves_no_feed(
    committed: Database, database_url: str, tmp_path: Path
) -> None:
    create_agency(database_url)
    spreadsheet = tmp_path / "export.csv"
    spreadsheet.write_text("Titre;Date de début\nAtelier;10/12/2030 10:00\n", encoding="utf-8")
    garbage = tmp_path / "export.json"
    garbage.write_text("bonjour\n", encoding="utf-8")

    for source in (spreadsheet, garbage):
        done = cli(
            database_url, "import", "--format", "ft-json", "--agency", "agence-lille", str(source)
        )
        assert done.returncode != 0 and "Traceback" not in done.stderr

    with committed.transaction() as db:
        assert db.scalars(select(Feed)).all() == []
        assert db.scalars(select(ImportRun)).all() == []


def test_a_broken_json_file_exits_with_a_one_line_reason(
    committed: Database, database_url: str, tmp_path: Path
) -> None:
    create_agency(database_url)
    broken = tmp_path / "tronque.json"
    broken.write_text('{"content": [{"id": 1, "titre": "Job', encoding="utf-8")

    done = cli(
        database_url, "import", "--format", "ft-json", "--agency", "agence-lille", str(broken)
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "JSON" in line
    with committed.transaction() as db:
        assert db.scalars(select(Event.id)).all() == []


def test_an_unknown_agency_exits_2_in_french(
    committed: Database, database_url: str, tmp_path: Path
) -> None:
    source = feed_file(tmp_path, [EVENT])

    done = cli(database_url, "import", "--format", "ft-json", "--agency", "inconnue", str(source))

    assert done.returncode == 2
    assert done.stderr.strip() == "Erreur (agency) : Organisme inconnu : « inconnue »."


def test_feeds_add_list_run_and_history(committed: Database, database_url: str) -> None:
    create_agency(database_url)
    url = "https://127.0.0.1:9/evenements.json"

    added = cli(
        database_url, "feeds", "add", "--agency", "agence-lille", "--format", "ft-json", url
    )
    assert added.returncode == 0, added.stderr
    assert "ajouté pour Agence de Lille" in added.stdout
    with committed.transaction() as db:
        feed = db.scalars(select(Feed)).one()
    assert (feed.url, feed.interval_minutes, feed.enabled) == (url, 60, True)

    listed = cli(database_url, "feeds", "list")
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.strip().splitlines()
    assert line.split("\t") == [
        str(feed.id),
        "agence-lille",
        "ft-json",
        "toutes les 60 min",
        "jamais",
        url,
    ]

    # A loopback address is refused (FEED_ALLOW_PRIVATE is not set): the run fails, recorded.
    ran = cli(database_url, "feeds", "run", str(feed.id))
    assert ran.returncode == 1
    assert "Adresse refusée (127.0.0.1)" in ran.stderr
    assert "Traceback" not in ran.stderr

    history = cli(database_url, "feeds", "history", str(feed.id))
    assert history.returncode == 0, history.stderr
    [entry] = history.stdout.strip().splitlines()
    assert "\tfailed\t" in entry and "Adresse refusée" in entry


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "1", "https://flux.example.org/a.json"], "L'intervalle va de 5 minutes"),
        (["ftp://flux.example.org/a.json"], "doit commencer par http"),
    ],
)
def test_feeds_add_refuses_bad_input(
    committed: Database, database_url: str, args: list[str], message: str
) -> None:
    create_agency(database_url)

    done = cli(database_url, "feeds", "add", "--agency", "agence-lille", "--format", "ics", *args)

    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_running_an_unknown_feed_exits_2(committed: Database, database_url: str) -> None:
    done = cli(database_url, "feeds", "run", "999999")
    assert done.returncode == 2
    assert "Flux introuvable" in done.stderr


def test_the_history_of_an_unknown_feed_exits_2(committed: Database, database_url: str) -> None:
    done = cli(database_url, "feeds", "history", "999999")
    assert done.returncode == 2
    assert "Flux introuvable" in done.stderr


@pytest.mark.parametrize("source", ["file:///etc/passwd", "ftp://ftp.example.org/flux.json"])
def test_import_refuses_other_schemes_by_name(
    committed: Database, database_url: str, source: str
) -> None:
    create_agency(database_url)

    done = cli(database_url, "import", "--format", "ft-json", "--agency", "agence-lille", source)

    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert "Adresse non prise en charge" in line and source in line


def test_feeds_add_refuses_an_overlong_url(committed: Database, database_url: str) -> None:
    create_agency(database_url)
    url = "https://flux.example.org/" + "a" * 2000

    done = cli(database_url, "feeds", "add", "--agency", "agence-lille", "--format", "ics", url)

    assert done.returncode == 2
    assert "2000 caractères" in done.stderr
    assert "Traceback" not in done.stderr


def test_create_staff_prints_a_link_that_sets_the_password(
    client: TestClient, database_url: str
) -> None:
    create_agency(database_url, slug="ft-roubaix")
    done = cli(
        database_url, "create-staff", "--agency", "ft-roubaix", "--email", "agent@example.org"
    )
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip().splitlines()[-1]
    assert link.startswith("http://") and "/organisme/mot-de-passe/nouveau?token=" in link
    page = client.get(link.split("127.0.0.1:8000", 1)[-1])
    assert page.status_code == 200
    assert 'name="password"' in page.text
    unknown = cli(database_url, "create-staff", "--agency", "nope", "--email", "b@example.org")
    assert unknown.returncode == 2
    assert "Organisme inconnu" in unknown.stderr and "Traceback" not in unknown.stderr


@pytest.mark.parametrize("fmt", ["csv", "ft-json"])
def test_a_renamed_export_updates_the_same_events_and_agencies_stay_apart(
    committed: Database, database_url: str, tmp_path: Path, fmt: str
) -> None:
    # Issue 13.2: agencies save each export under the day's date.
    create_agency(database_url)
    create_agency(database_url, slug="autre-agence")
    if fmt == "csv":
        content = (
            "Identifiant;Titre;Date de début;Ville\n"
            "A1;Atelier CV;10/12/2030 10:00;Lille\n"
            "A2;Job dating;11/12/2030 10:00;Lille\n"
        )
    else:
        content = json.dumps({"content": [EVENT, {**EVENT, "id": 2}]})
    first, renamed = tmp_path / f"ml.{fmt}", tmp_path / f"ml-export-2026-12-05.{fmt}"
    first.write_text(content, encoding="utf-8")
    renamed.write_text(content, encoding="utf-8")

    for agency, source in (
        ("agence-lille", first),
        ("agence-lille", renamed),
        ("autre-agence", renamed),
    ):
        done = cli(database_url, "import", "--format", fmt, "--agency", agency, str(source))
        assert done.returncode == 0, done.stderr

    with committed.transaction() as db:
        runs = db.scalars(select(ImportRun).order_by(ImportRun.id)).all()
        counts = db.execute(
            select(Event.agency_id, func.count())
            .group_by(Event.agency_id)
            .order_by(Event.agency_id)
        ).all()
        feeds = db.scalars(select(Feed).order_by(Feed.id)).all()
    assert [(r.created, r.unchanged) for r in runs] == [(2, 0), (0, 2), (2, 0)]
    assert [n for _, n in counts] == [2, 2]
    assert [Path(f.url).name for f in feeds] == [renamed.name, renamed.name]


def test_an_import_killed_midway_is_marked_interrupted_by_the_next_import(
    committed: Database, database_url: str, tmp_path: Path
) -> None:
    create_agency(database_url)
    big = feed_file(tmp_path, [{**EVENT, "id": n} for n in range(1, 40_001)])
    env = {**os.environ, "DATABASE_URL": database_url}
    args = ["import", "--format", "ft-json", "--agency", "agence-lille", str(big)]
    process = subprocess.Popen(
        [sys.executable, "-m", "events_app.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):  # until its run is recorded (at most a minute)
            with committed.transaction() as db:
                running = db.scalars(select(ImportRun).where(ImportRun.status == "running")).all()
            if running or process.poll() is not None:
                break
            time.sleep(0.1)
        assert running, "the import finished before it could be killed"
        assert running[0].owner is not None and running[0].owner.endswith(f":{process.pid}")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    with committed.transaction() as db:
        assert db.scalars(select(ImportRun.status)).one() == "running"

    done = cli(database_url, *args[:-1], str(feed_file(tmp_path, [EVENT])))

    assert done.returncode == 0, done.stderr
    with committed.transaction() as db:
        runs = db.scalars(select(ImportRun).order_by(ImportRun.id)).all()
    assert [r.status for r in runs] == ["interrupted", "succeeded"]
    assert runs[0].finished_at is not None and "interrompu" in (runs[0].error or "")
