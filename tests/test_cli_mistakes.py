"""Every command-line mistake is one French line on stderr and a non-zero exit, never a
traceback (SPEC §13). Each case runs the real `events-app` in a child process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from events_app.db import Database
from events_app.models import OutboxMessage
from events_app.notifications import Notifier
from events_app.registrations import Person, register
from events_app.scheduler import JOBS
from events_app.settings import Settings
from tests.factories import make_agency, make_event
from tests.server import free_port


def run(
    *args: str, cwd: Path, database_url: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "EVENTS_APP_DEBUG")}
    if database_url is not None:
        environ["DATABASE_URL"] = database_url
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "events_app.cli", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line(done: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """Assert the exit status, no traceback, and one line on stderr naming the problem."""
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def lille(committed: Database, database_url: str, tmp_path: Path) -> str:
    done = run(
        "create-agency", "--slug", "agence-lille", "--name", "Lille", cwd=tmp_path,
        database_url=database_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return "agence-lille"


# --- the database ------------------------------------------------------------------------------


def test_a_read_only_command_in_another_folder_names_the_missing_database(tmp_path: Path) -> None:
    done = run("feeds", "list", cwd=tmp_path)
    one_line(done, 1, str(tmp_path / "events.db"), "n'existe pas", "events-app migrate")
    assert list(tmp_path.iterdir()) == []  # no empty events.db left behind


def test_a_database_that_is_not_migrated_says_which_command_fixes_it(tmp_path: Path) -> None:
    (tmp_path / "vide.db").touch()
    done = run("jobs", "run", "deliver_mail", cwd=tmp_path, DATABASE_URL="sqlite:///vide.db")
    one_line(done, 1, "vide.db", "n'est pas initialisée", "events-app migrate")


@pytest.mark.parametrize("url", ["n'importe quoi", "postgresql://app@hote:port/base"])
def test_a_malformed_database_url_is_named(tmp_path: Path, url: str) -> None:
    one_line(run("feeds", "list", cwd=tmp_path, DATABASE_URL=url), 2, "DATABASE_URL", "sqlite:///")


def test_an_unsupported_database_is_named(tmp_path: Path) -> None:
    done = run("migrate", cwd=tmp_path, DATABASE_URL="mysql://app@127.0.0.1/events")
    one_line(done, 2, "DATABASE_URL", "« mysql »")


@pytest.mark.parametrize("command", [["feeds", "list"], ["migrate"]])
def test_an_unreachable_database_host_is_named(tmp_path: Path, command: list[str]) -> None:
    url = f"postgresql://app@127.0.0.1:{free_port()}/events"
    done = run(*command, cwd=tmp_path, DATABASE_URL=url)
    one_line(done, 1, "injoignable", "DATABASE_URL", "127.0.0.1", "connexion refusée")


def test_an_unexpected_error_is_one_line_and_its_traceback_needs_debug(tmp_path: Path) -> None:
    (tmp_path / "abimee.db").write_bytes(b"ceci n'est pas une base SQLite" * 100)
    url = "sqlite:///abimee.db"
    one_line(run("feeds", "list", cwd=tmp_path, DATABASE_URL=url), 1, "EVENTS_APP_DEBUG=1")
    debug = run("feeds", "list", cwd=tmp_path, DATABASE_URL=url, EVENTS_APP_DEBUG="1")
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_a_bad_setting_is_named(tmp_path: Path) -> None:
    done = run("jobs", "list", cwd=tmp_path, SMTP_PORT="vingt-cinq")
    one_line(done, 1, "SMTP_PORT", "vingt-cinq")


# --- usage -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["demo", "--events", "-5"], ["--events", "-5"]),
        (["demo", "--events", "beaucoup"], ["--events", "beaucoup"]),
        (["serve", "--port", "99999"], ["--port", "65535", "99999"]),
        (["serve", "--port", "0"], ["--port", "65535"]),
        (["serve", "--workers", "0"], ["--workers"]),
        (["frobnicate"], ["commande inconnue", "frobnicate", "serve"]),
        (["jobs"], ["ACTION"]),
        (["jobs", "run", "nettoyer"], ["Tâche inconnue", "nettoyer", *JOBS]),
        (["import", "--agency", "x", "f.csv"], ["--format"]),
        (["create-agency", "--slug", "x", "--name", "X", "--kind", "zzz"], ["zzz", "employer"]),
    ],
)
def test_usage_mistakes_exit_2_with_one_french_line(
    tmp_path: Path, args: list[str], words: list[str]
) -> None:
    one_line(run(*args, cwd=tmp_path), 2, *words)
    assert list(tmp_path.iterdir()) == []


def test_create_agency_lists_its_kinds_in_help(tmp_path: Path) -> None:
    done = run("create-agency", "--help", cwd=tmp_path)
    assert done.returncode == 0
    for kind in ("france_travail", "mission_locale", "cap_emploi", "apec", "employer", "other"):
        assert kind in done.stdout


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_busy_port_names_the_variable_to_change(
    committed: Database, database_url: str, tmp_path: Path, busy_port: int
) -> None:
    done = run("serve", "--port", str(busy_port), cwd=tmp_path, database_url=database_url)
    one_line(done, 1, f"port {busy_port}", "déjà utilisé", "PORT=")
    assert "Errno" not in done.stderr


def test_a_file_imported_in_the_wrong_format_is_named_with_its_format(
    database_url: str, lille: str, tmp_path: Path
) -> None:
    sheet = tmp_path / "evenements.csv"
    sheet.write_text("titre;date;heure_debut;ville\nJob dating;2030-01-02;09:00;Lille\n")
    done = run(
        "import", "--format", "ics", "--agency", lille, str(sheet), cwd=tmp_path,
        database_url=database_url,
    )  # fmt: skip
    one_line(done, 2, "evenements.csv", "iCalendar", "CSV", "--format csv")


# --- jobs --------------------------------------------------------------------------------------


def test_jobs_list_is_the_scheduler_table(tmp_path: Path) -> None:
    done = run("jobs", "list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()] == list(JOBS)
    assert list(tmp_path.iterdir()) == []  # it needs no database


def test_jobs_run_delivers_the_outbox_as_eml_files(
    committed: Database, database_url: str, settings: Settings, tmp_path: Path
) -> None:
    with committed.transaction(lock=True) as db:
        agency, _ = make_agency(db)
        event = make_event(db, agency, capacity=5)
        person = Person(first_name="Zoé", last_name="Martin", email="zoe@example.org")
        register(db, event_id=event.id, person=person, notifier=Notifier(db, settings))
    mails = tmp_path / "courrier"
    done = run(
        "jobs", "run", "deliver_mail", cwd=tmp_path, database_url=database_url,
        MAIL_DIR=str(mails), SMTP_HOST="",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "deliver_mail : 1 envoyé(s), 0 à réessayer, 0 abandonné(s)"
    [eml] = mails.iterdir()
    assert eml.suffix == ".eml" and str(eml) in done.stderr  # the log line names the file
    with committed.transaction() as db:
        assert db.scalar(select(func.count()).where(OutboxMessage.sent_at.is_(None))) == 0
