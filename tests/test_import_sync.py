"""Imports end to end on both databases: run_import on feed files, the upsert's semantics.

Each test writes a feed file to tmp_path and imports it with run_import, as the CLI and the
scheduler do, then reads what was committed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, update

import importers.sync
from events_app.db import Database, insert_many
from events_app.feeds import add_feed
from events_app.models import (
    Agency,
    Event,
    EventSector,
    Feed,
    ImportRun,
    OutboxMessage,
    Registration,
    sector_mask,
)
from events_app.notifications import Notifier
from events_app.registrations import Person, cancel_agency_event, register
from events_app.settings import Settings
from importers import ftjson
from importers.run import RunSummary, run_import
from tests.factories import in_days, make_agency, make_event

EVENT_COLUMNS = [attr.key for attr in inspect(Event).column_attrs]


# --- feed files -----------------------------------------------------------------------------


def mee(n: int, **changes: Any) -> dict[str, Any]:
    """One event in the Mes Evénements Emploi shape (see importers.ftjson)."""
    row: dict[str, Any] = {
        "id": n,
        "titre": f"Job dating santé n° {n}",
        "description": "<p>Rencontrez des <b>recruteurs</b> du secteur.</p>",
        "dateEvenement": f"2030-12-{10 + n % 15:02d}T08:30:00.000+00:00",
        "heureDebut": "08:30:00",
        "heureFin": "11:30:00",
        "timezone": "Europe/Paris",
        "type": "Job dating",
        "modalites": "en physique",
        "objectifs": "Décrocher un entretien",
        "publics": ["Demandeurs d'emploi"],
        "ville": "Lyon",
        "codePostal": "69003",
        "codeInsee": "69383",
        "latitude": 45.7597,
        "longitude": 4.8422,
        "nombrePlaceTotalPresentiel": 20,
        "nombrePlaceTotalDistance": 0,
        "nombreInscritPresentiel": 0,
        "nombreInscritDistance": 0,
        "codesRome": ["J"],
        "multisectoriel": False,
        "urlDetailEvenement": f"https://mesevenementsemploi.francetravail.fr/evenement/{n}",
        "libelleOrganisateurPrincipal": "France Travail Lyon",
        "libelleEtablissement": "Agence Lyon Part-Dieu",
    }
    row.update(changes)
    return row


def ft_json(tmp_path: Path, rows: list[dict[str, Any]], name: str = "feed.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"totalElements": len(rows), "content": rows}), encoding="utf-8")
    return str(path)


CSV_HEADER = (
    "Identifiant;Titre;Date de début;Date de fin;Type;Secteurs;Lieu;Adresse;Code postal;Ville;"
    "Latitude;Longitude;Capacité;Description"
)


def csv_row(n: int, **changes: str) -> dict[str, str]:
    row = {
        "id": f"R-{n}",
        "title": f"Atelier CV n° {n}",
        "start": f"{10 + n % 15:02d}/11/2030 09:30",
        "end": f"{10 + n % 15:02d}/11/2030 12:00",
        "type": "Atelier",
        "sectors": "M, N",
        "venue": "Agence Rennes Est",
        "address": "12 rue de Vern",
        "postal_code": "35000",
        "city": "Rennes",
        "lat": "48,1045",
        "lon": "-1,6556",
        "capacity": "12",
        "description": "Préparer son CV",
    }
    row.update(changes)
    return row


def csv_file(tmp_path: Path, rows: list[dict[str, str]], name: str = "feed.csv") -> str:
    path = tmp_path / name
    lines = [CSV_HEADER, *(";".join(row.values()) for row in rows)]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return str(path)


def ics_file(tmp_path: Path, name: str = "feed.ics") -> str:
    """Two events, one of them weekly (three occurrences), within the parser's horizon."""
    start = in_days(10, 10, 0)
    fair = in_days(20, 9, 0)
    stamp = "%Y%m%dT%H%M%S"
    text = f"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Agence//Tests//FR
BEGIN:VEVENT
UID:atelier-cv@agence.example
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Paris:{start.strftime(stamp)}
DTEND;TZID=Europe/Paris:{(start + timedelta(hours=2)).strftime(stamp)}
RRULE:FREQ=WEEKLY;COUNT=3
SUMMARY:Atelier CV
LOCATION:Agence France Travail, 12 rue de Vern, 35000 Rennes
GEO:48.1045;-1.6556
CATEGORIES:Atelier
END:VEVENT
BEGIN:VEVENT
UID:salon@agence.example
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Paris:{fair.strftime(stamp)}
DTEND;TZID=Europe/Paris:{(fair + timedelta(hours=8)).strftime(stamp)}
SUMMARY:Salon de l'emploi
DESCRIPTION:Plus de 40 employeurs.\\nVenez avec votre CV.
LOCATION:Parc des expositions, 35000 Rennes
END:VEVENT
END:VCALENDAR
"""
    path = tmp_path / name
    path.write_bytes(text.replace("\n", "\r\n").encode())
    return str(path)


# --- database helpers -----------------------------------------------------------------------


def make_feed(database: Database, fmt: str = "ft-json") -> int:
    with database.transaction() as db:
        agency, _ = make_agency(db)
        feed = add_feed(
            db,
            agency_id=agency.id,
            url=f"https://flux.example.org/{agency.slug}.{fmt}",
            format=fmt,
            interval_minutes=None,
        )
        return feed.id


def run(database: Database, settings: Settings, feed_id: int, source: str) -> RunSummary:
    summary = run_import(database, settings, feed_id=feed_id, source=source)
    with database.transaction() as db:
        stored = db.get(ImportRun, summary.run_id)
        assert stored is not None
        assert stored.status == summary.status
        assert stored.finished_at is not None
    return summary


def snapshot(database: Database, feed_id: int) -> dict[str, dict[str, Any]]:
    with database.transaction() as db:
        events = db.scalars(select(Event).where(Event.feed_id == feed_id)).all()
        return {str(e.external_id): {c: getattr(e, c) for c in EVENT_COLUMNS} for e in events}


def event_by_external_id(database: Database, feed_id: int, external_id: str) -> Event:
    with database.transaction() as db:
        event = db.scalars(
            select(Event).where(Event.feed_id == feed_id, Event.external_id == external_id)
        ).one()
        db.expunge(event)
        return event


def sign_up(database: Database, settings: Settings, event_id: int, count: int) -> list[int]:
    ids = []
    with database.transaction(lock=True) as db:
        notifier = Notifier(db, settings)
        for n in range(count):
            person = Person(
                first_name=f"Prénom{n}", last_name=f"Nom{n}", email=f"inscrit{n}@example.org"
            )
            outcome = register(db, event_id=event_id, person=person, notifier=notifier)
            ids.append(outcome.registration.id)
    return ids


def registrations(database: Database, event_id: int) -> dict[int, str]:
    with database.transaction() as db:
        return dict(
            db.execute(
                select(Registration.id, Registration.status).where(
                    Registration.event_id == event_id
                )
            ).all()
        )


def mails(database: Database, kind: str) -> list[OutboxMessage]:
    with database.transaction() as db:
        return list(
            db.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
            )
        )


def count_events(database: Database, feed_id: int) -> int:
    with database.transaction() as db:
        return db.scalar(select(func.count(Event.id)).where(Event.feed_id == feed_id)) or 0


# --- creation and idempotence ---------------------------------------------------------------


def test_import_creates_events_with_their_fields(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    source = ft_json(tmp_path, [mee(1), mee(2, multisectoriel=True, codesRome=[]), mee(3)])

    summary = run(committed, settings, feed_id, source)

    assert (summary.status, summary.created, summary.updated, summary.rejected) == (
        "succeeded",
        3,
        0,
        0,
    )
    event = event_by_external_id(committed, feed_id, "1")
    assert event.title == "Job dating santé n° 1"
    assert event.type == "job_dating"
    assert event.format == "onsite"
    assert event.starts_at.isoformat() == "2030-12-11T08:30:00+00:00"
    assert event.ends_at.isoformat() == "2030-12-11T11:30:00+00:00"
    assert (event.venue_city, event.venue_postal_code) == ("Lyon", "69003")
    assert (event.venue_lat, event.venue_lon) == (45.7597, 4.8422)
    assert event.geo_cell is not None
    assert "lyon" in event.search_key
    assert event.capacity == 20
    assert (event.revision, event.status, event.seats_taken) == (1, "scheduled", 0)
    assert "<b>recruteurs</b>" in event.description_html
    with committed.transaction() as db:
        sectors = db.execute(
            select(Event.external_id, EventSector.sector)
            .join(EventSector, EventSector.event_id == Event.id)
            .where(Event.feed_id == feed_id)
            .order_by(Event.external_id)
        ).all()
    assert [tuple(row) for row in sectors] == [("1", "J"), ("2", "all"), ("3", "J")]


@pytest.mark.parametrize("fmt", ["ft-json", "csv", "ics"])
def test_importing_the_same_file_twice_writes_nothing(
    committed: Database, settings: Settings, tmp_path: Path, fmt: str
) -> None:
    feed_id = make_feed(committed, fmt)
    if fmt == "csv":
        source = csv_file(tmp_path, [csv_row(n) for n in range(1, 5)])
    elif fmt == "ics":
        source = ics_file(tmp_path)  # 3 occurrences + 1 event
    else:
        source = ft_json(tmp_path, [mee(n) for n in range(1, 5)])
    first = run(committed, settings, feed_id, source)
    assert (first.status, first.created, first.rejected) == ("succeeded", 4, 0)
    before = snapshot(committed, feed_id)

    second = run(committed, settings, feed_id, source)

    assert (second.status, second.created, second.updated, second.unchanged) == (
        "succeeded",
        0,
        0,
        4,
    )
    assert second.cancelled == 0
    assert snapshot(committed, feed_id) == before
    assert {e["revision"] for e in before.values()} == {1}
    assert all(e["venue_lat"] is not None for e in before.values())
    if fmt == "ft-json":
        # Stored as the hash of each element's raw text: the re-import recognised every
        # element before mapping it (SPEC §9, unchanged re-import of 100,000 events < 5 s).
        with committed.transaction() as db:
            stored = dict(
                db.execute(
                    select(Event.external_id, Event.source_hash).where(Event.feed_id == feed_id)
                ).all()
            )
        assert stored == {str(n): ftjson.raw_hash(json.dumps(mee(n)).encode()) for n in range(1, 5)}


# --- updates ---------------------------------------------------------------------------------


def test_changed_title_updates_and_raises_the_revision(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    rows = [mee(n) for n in range(1, 4)]
    run(committed, settings, feed_id, ft_json(tmp_path, rows))
    before = snapshot(committed, feed_id)
    registration_ids = sign_up(committed, settings, before["2"]["id"], 2)

    rows[1] = mee(2, titre="Job dating santé : nouveau titre")
    summary = run(committed, settings, feed_id, ft_json(tmp_path, rows, "v2.json"))

    assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 2)
    after = snapshot(committed, feed_id)
    assert after["2"]["title"] == "Job dating santé : nouveau titre"
    assert after["2"]["revision"] == before["2"]["revision"] + 1
    assert after["2"]["updated_at"] > before["2"]["updated_at"]
    assert after["1"] == before["1"] and after["3"] == before["3"]
    # A title is not a practical change: nobody is mailed, nobody loses their seat.
    assert mails(committed, "event_changed") == []
    assert registrations(committed, before["2"]["id"]) == dict.fromkeys(
        registration_ids, "confirmed"
    )


def test_changed_venue_tells_the_registrants(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    rows = [mee(1), mee(2)]
    run(committed, settings, feed_id, ft_json(tmp_path, rows))
    event_id = event_by_external_id(committed, feed_id, "1").id
    registration_ids = sign_up(committed, settings, event_id, 2)

    rows[0] = mee(
        1,
        ville="Villeurbanne",
        codePostal="69100",
        latitude=45.7719,
        longitude=4.8902,
        libelleEtablissement="Agence Villeurbanne",
    )
    summary = run(committed, settings, feed_id, ft_json(tmp_path, rows, "v2.json"))

    assert (summary.updated, summary.unchanged) == (1, 1)
    event = event_by_external_id(committed, feed_id, "1")
    assert (event.venue_city, event.venue_name, event.revision) == (
        "Villeurbanne",
        "Agence Villeurbanne",
        2,
    )
    changed = mails(committed, "event_changed")
    assert sorted(m.registration_id or 0 for m in changed) == sorted(registration_ids)
    assert all("Villeurbanne" in m.body_text for m in changed)
    assert registrations(committed, event_id) == dict.fromkeys(registration_ids, "confirmed")


# --- cancellation ----------------------------------------------------------------------------


def test_event_removed_from_the_feed_is_cancelled_and_its_registrants_told(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    run(committed, settings, feed_id, ft_json(tmp_path, [mee(1), mee(2), mee(3)]))
    event_id = event_by_external_id(committed, feed_id, "2").id
    registration_ids = sign_up(committed, settings, event_id, 3)

    summary = run(committed, settings, feed_id, ft_json(tmp_path, [mee(1), mee(3)], "v2.json"))

    assert (summary.status, summary.cancelled, summary.unchanged) == ("succeeded", 1, 2)
    event = event_by_external_id(committed, feed_id, "2")
    assert (event.status, event.revision) == ("cancelled", 2)
    assert count_events(committed, feed_id) == 3
    # The registrations stay as they were (for the record); each person gets the news once.
    assert registrations(committed, event_id) == dict.fromkeys(registration_ids, "confirmed")
    cancelled = mails(committed, "event_cancelled")
    assert sorted(m.registration_id or 0 for m in cancelled) == sorted(registration_ids)
    assert all(m.ics_method == "CANCEL" for m in cancelled)

    # Importing the same (shorter) feed again tells nobody twice.
    again = run(committed, settings, feed_id, ft_json(tmp_path, [mee(1), mee(3)], "v3.json"))
    assert (again.cancelled, again.unchanged) == (0, 2)
    assert len(mails(committed, "event_cancelled")) == 3


def test_event_cancelled_in_the_feed_is_cancelled(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    run(committed, settings, feed_id, ft_json(tmp_path, [mee(1), mee(2)]))
    event_id = event_by_external_id(committed, feed_id, "1").id
    registration_ids = sign_up(committed, settings, event_id, 1)

    rows = [mee(1, annule=True), mee(2)]
    summary = run(committed, settings, feed_id, ft_json(tmp_path, rows, "v2.json"))

    assert (summary.updated, summary.cancelled) == (1, 0)
    assert event_by_external_id(committed, feed_id, "1").status == "cancelled"
    assert [m.registration_id for m in mails(committed, "event_cancelled")] == registration_ids


def test_event_that_comes_back_in_the_feed_is_scheduled_again(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    rows = [mee(1), mee(2), mee(3)]
    run(committed, settings, feed_id, ft_json(tmp_path, rows))
    run(committed, settings, feed_id, ft_json(tmp_path, [mee(1), mee(3)], "v2.json"))
    assert event_by_external_id(committed, feed_id, "2").status == "cancelled"

    # The very same row again: its content hash did not change, its status did.
    summary = run(committed, settings, feed_id, ft_json(tmp_path, rows, "v3.json"))

    assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 2)
    event = event_by_external_id(committed, feed_id, "2")
    assert (event.status, event.revision) == ("scheduled", 3)
    assert count_events(committed, feed_id) == 3


def test_past_event_that_left_the_feed_is_not_cancelled(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    # Feeds list upcoming events: one that took place drops out, it was not cancelled.
    feed_id = make_feed(committed)
    past = mee(9, dateEvenement="2021-03-04T08:30:00.000+00:00")
    run(committed, settings, feed_id, ft_json(tmp_path, [mee(1), past]))

    summary = run(committed, settings, feed_id, ft_json(tmp_path, [mee(1)], "v2.json"))

    assert (summary.status, summary.cancelled) == ("succeeded", 0)
    assert event_by_external_id(committed, feed_id, "9").status == "scheduled"


def test_a_feed_that_suddenly_is_empty_is_refused(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    run(committed, settings, feed_id, ft_json(tmp_path, [mee(1), mee(2), mee(3)]))
    event_id = event_by_external_id(committed, feed_id, "1").id
    registration_ids = sign_up(committed, settings, event_id, 1)
    before = snapshot(committed, feed_id)

    summary = run(committed, settings, feed_id, ft_json(tmp_path, [], "empty.json"))

    assert summary.status == "refused"
    assert summary.error is not None and "3" in summary.error
    assert summary.cancelled == 0
    assert snapshot(committed, feed_id) == before
    assert mails(committed, "event_cancelled") == []
    assert registrations(committed, event_id) == dict.fromkeys(registration_ids, "confirmed")


def test_a_small_feed_may_become_empty(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    run(committed, settings, feed_id, ft_json(tmp_path, [mee(1), mee(2)]))

    summary = run(committed, settings, feed_id, ft_json(tmp_path, [], "empty.json"))

    assert (summary.status, summary.cancelled) == ("succeeded", 2)


# --- conflicts -------------------------------------------------------------------------------


def test_an_event_edited_by_hand_is_not_overwritten(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    run(committed, settings, feed_id, ft_json(tmp_path, [mee(1), mee(2)]))
    with committed.transaction() as db:
        db.execute(
            update(Event)
            .where(Event.feed_id == feed_id, Event.external_id == "1")
            .values(title="Titre corrigé par l'agence", edited_by_hand=True)
        )
    before = snapshot(committed, feed_id)

    rows = [mee(1, titre="Titre du flux", heureDebut="09:00:00"), mee(2)]
    summary = run(committed, settings, feed_id, ft_json(tmp_path, rows, "v2.json"))

    assert (summary.status, summary.updated, summary.unchanged) == ("succeeded", 0, 2)
    assert snapshot(committed, feed_id) == before
    conflicts = [w for w in summary.warnings if "à la main" in w]
    assert len(conflicts) == 1 and "ligne 1" in conflicts[0]


# --- bad input -------------------------------------------------------------------------------


def test_bad_rows_are_rejected_with_line_field_and_reason_and_good_rows_land(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    rows = [
        mee(1),
        # The job-fair shape with an end before its start.
        {
            "id": 2,
            "titre": "Salon de l'alternance",
            "dateDebut": "2030-11-20T14:00:00+01:00",
            "dateFin": "2030-11-20T10:00:00+01:00",
            "localisation": "Parc des expositions, 33000 Bordeaux",
        },
        mee(3, nombrePlaceTotalPresentiel=-3),
        mee(4, latitude=-33.86, longitude=151.21),  # Sydney
        mee(5, dateEvenement="2030-02-30T08:30:00.000+00:00"),
        mee(6, description='<p>Bienvenue</p><script>alert("x")</script><a href="javascript:x()">'),
        mee(7),
    ]
    summary = run(committed, settings, feed_id, ft_json(tmp_path, rows))

    assert (summary.status, summary.created, summary.rejected) == ("succeeded", 4, 3)
    rejected = {row["line"]: row for row in summary.rejected_rows}
    assert set(rejected) == {2, 3, 5}
    assert rejected[2]["field"] == "ends_at"
    assert rejected[3]["field"] == "capacity" and "-3" in str(rejected[3]["reason"])
    # Coordinates outside France are dropped, not the event (issue 13.13).
    assert any("ligne 4 : coordonnées hors de France" in w for w in summary.warnings)
    assert rejected[5]["field"] == "starts_at" and "2030-02-30" in str(rejected[5]["reason"])
    assert set(snapshot(committed, feed_id)) == {"1", "4", "6", "7"}
    foreign = event_by_external_id(committed, feed_id, "4")
    assert foreign.venue_lat is None or 41 < foreign.venue_lat < 52
    sanitised = event_by_external_id(committed, feed_id, "6").description_html
    assert "Bienvenue" in sanitised
    assert "<script" not in sanitised and "alert" not in sanitised
    assert "javascript:" not in sanitised
    with committed.transaction() as db:
        stored = db.get(ImportRun, summary.run_id)
        assert stored is not None and stored.rejected == 3
        assert [r["line"] for r in stored.rejected_rows] == [2, 3, 5]


def test_bad_csv_rows_are_rejected_by_line(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed, "csv")
    rows = [
        csv_row(1),
        csv_row(2, end="10/11/2030 08:00", start="10/11/2030 09:30"),
        csv_row(3, capacity="-3"),
        csv_row(4, lat="-33,86", lon="151,21"),
        csv_row(5, start="30/02/2030 09:30", end="30/02/2030 12:00"),
        csv_row(6, description="<p>Programme</p><script>alert(1)</script>"),
    ]
    summary = run(committed, settings, feed_id, csv_file(tmp_path, rows))

    assert (summary.status, summary.created) == ("succeeded", 3)
    # The header is line 1: row n sits on line n + 1.
    by_line = {row["line"]: row["field"] for row in summary.rejected_rows}
    assert by_line == {3: "ends_at", 4: "capacity", 6: "starts_at"}
    assert any("ligne 5 : coordonnées hors de France" in w for w in summary.warnings)
    assert "<script" not in event_by_external_id(committed, feed_id, "R-6").description_html


def test_a_rejected_row_does_not_cancel_its_event(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    # A typo in one row of the next export is not a cancellation of that event.
    feed_id = make_feed(committed)
    run(committed, settings, feed_id, ft_json(tmp_path, [mee(1), mee(2), mee(3)]))
    event_id = event_by_external_id(committed, feed_id, "2").id
    registration_ids = sign_up(committed, settings, event_id, 1)

    rows = [mee(1), mee(2, nombrePlaceTotalPresentiel=-3), mee(3)]
    summary = run(committed, settings, feed_id, ft_json(tmp_path, rows, "v2.json"))

    assert (summary.status, summary.rejected, summary.cancelled) == ("succeeded", 1, 0)
    assert event_by_external_id(committed, feed_id, "2").status == "scheduled"
    assert mails(committed, "event_cancelled") == []
    assert registrations(committed, event_id) == dict.fromkeys(registration_ids, "confirmed")


@pytest.mark.parametrize(
    "content",
    [
        b'{"totalElements": 2, "content": [{"id": 1, "titre": "Job dating", "dateEv',
        b'{"totalElements": 1, "content": [{"id": 1 "titre": "x"}]',
        b"<html><body>Service indisponible</body></html>",
    ],
    ids=["truncated", "malformed", "html"],
)
def test_an_unreadable_json_file_fails_the_run_and_changes_nothing(
    committed: Database, settings: Settings, tmp_path: Path, content: bytes
) -> None:
    feed_id = make_feed(committed)
    run(committed, settings, feed_id, ft_json(tmp_path, [mee(1), mee(2)]))
    before = snapshot(committed, feed_id)
    broken = tmp_path / "broken.json"
    broken.write_bytes(content)

    summary = run(committed, settings, feed_id, str(broken))

    assert summary.status == "failed"
    assert summary.error is not None and "JSON" in summary.error
    assert (summary.created, summary.updated, summary.cancelled) == (0, 0, 0)
    assert snapshot(committed, feed_id) == before


def test_an_unreadable_file_on_a_fresh_feed_writes_no_event(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"content": [{"id": 1, "titre": "Job dating"},')

    summary = run(committed, settings, feed_id, str(broken))

    assert summary.status == "failed"
    assert summary.error is not None and "tronqué" in summary.error
    assert count_events(committed, feed_id) == 0


def test_a_missing_file_fails_the_run_with_a_reason(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)

    summary = run(committed, settings, feed_id, str(tmp_path / "absent.json"))

    assert summary.status == "failed"
    assert summary.error is not None and "absent.json" in summary.error


def test_a_duplicate_id_is_reported_and_the_first_row_kept(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    rows = [mee(1), mee(2), mee(1, titre="Doublon")]
    summary = run(committed, settings, feed_id, ft_json(tmp_path, rows))

    assert (summary.created, summary.rejected) == (2, 1)
    [duplicate] = summary.rejected_rows
    assert duplicate["line"] == 3 and "double" in str(duplicate["reason"])
    assert event_by_external_id(committed, feed_id, "1").title == "Job dating santé n° 1"


# --- geocoding and registrations ---------------------------------------------------------------


def test_a_venue_with_only_a_city_and_postal_code_is_geocoded(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    rows = [
        mee(1, latitude=None, longitude=None, ville="Rennes", codePostal="35000"),
        mee(2, latitude=None, longitude=None, ville=None, codePostal="13001"),
        mee(3, latitude=None, longitude=None, ville="Nullepartville", codePostal=None),
    ]
    summary = run(committed, settings, feed_id, ft_json(tmp_path, rows))

    assert summary.created == 3
    rennes = event_by_external_id(committed, feed_id, "1")
    assert rennes.venue_lat == pytest.approx(48.11, abs=0.05)
    assert rennes.venue_lon == pytest.approx(-1.68, abs=0.05)
    assert rennes.geo_cell is not None
    marseille = event_by_external_id(committed, feed_id, "2")
    assert marseille.venue_lat == pytest.approx(43.30, abs=0.05)
    unknown = event_by_external_id(committed, feed_id, "3")
    assert unknown.venue_lat is None and unknown.geo_cell is None
    assert any("Nullepartville" in w for w in summary.warnings)


def test_a_capacity_below_the_seats_taken_keeps_every_registration(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    run(committed, settings, feed_id, ft_json(tmp_path, [mee(1), mee(2)]))
    event_id = event_by_external_id(committed, feed_id, "1").id
    registration_ids = sign_up(committed, settings, event_id, 3)

    rows = [mee(1, nombrePlaceTotalPresentiel=2, titre="Nouveau titre"), mee(2)]
    summary = run(committed, settings, feed_id, ft_json(tmp_path, rows, "v2.json"))

    assert (summary.status, summary.updated) == ("succeeded", 1)
    event = event_by_external_id(committed, feed_id, "1")
    assert event.title == "Nouveau titre"
    assert (event.capacity, event.seats_taken) == (3, 3)
    assert any("capacité" in w for w in summary.warnings)
    assert registrations(committed, event_id) == dict.fromkeys(registration_ids, "confirmed")


def test_a_larger_capacity_confirms_the_waiting_list(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    run(committed, settings, feed_id, ft_json(tmp_path, [mee(1, nombrePlaceTotalPresentiel=1)]))
    event_id = event_by_external_id(committed, feed_id, "1").id
    first, second = sign_up(committed, settings, event_id, 2)
    assert registrations(committed, event_id) == {first: "confirmed", second: "waitlisted"}

    rows = [mee(1, nombrePlaceTotalPresentiel=5)]
    summary = run(committed, settings, feed_id, ft_json(tmp_path, rows, "v2.json"))

    assert summary.updated == 1
    assert registrations(committed, event_id) == {first: "confirmed", second: "confirmed"}
    assert [m.registration_id for m in mails(committed, "promoted")] == [second]
    assert event_by_external_id(committed, feed_id, "1").seats_taken == 2


def test_a_later_deadline_in_the_feed_reopens_registrations(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    rows = [mee(1, dateFinCandidature="2030-11-01T18:00:00+01:00")]
    run(committed, settings, feed_id, ft_json(tmp_path, rows))
    with committed.transaction() as db:  # as the close_registrations job would have done
        db.execute(update(Event).where(Event.feed_id == feed_id).values(registration_closed=True))

    rows = [mee(1, dateFinCandidature="2030-12-01T18:00:00+01:00")]
    summary = run(committed, settings, feed_id, ft_json(tmp_path, rows, "v2.json"))

    assert summary.updated == 1
    event = event_by_external_id(committed, feed_id, "1")
    assert event.registration_closes_at is not None
    assert event.registration_closes_at.isoformat() == "2030-12-01T17:00:00+00:00"
    assert event.registration_closed is False


def test_a_row_rejected_with_a_known_id_keeps_its_event_and_others_still_vanish(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    run(committed, settings, feed_id, ft_json(tmp_path, [mee(1), mee(2), mee(3)]))

    # Row 2 now ends when it starts (rejected after parsing: its id is known); event 3 left
    # the feed.
    rows = [mee(1), mee(2, heureFin="08:30:00")]
    summary = run(committed, settings, feed_id, ft_json(tmp_path, rows, "v2.json"))

    assert (summary.rejected, summary.cancelled, summary.unchanged) == (1, 1, 1)
    assert event_by_external_id(committed, feed_id, "2").status == "scheduled"
    assert event_by_external_id(committed, feed_id, "3").status == "cancelled"


def test_rows_rejected_without_an_id_suspend_cancellations_and_say_so(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    run(committed, settings, feed_id, ft_json(tmp_path, [mee(1), mee(2), mee(3)]))

    # Row 2 has no id left to read: it could be event 2 or event 3.
    nameless = {k: v for k, v in mee(2, dateEvenement="pas une date").items() if k != "id"}
    rows = [mee(1), nameless]
    summary = run(committed, settings, feed_id, ft_json(tmp_path, rows, "v2.json"))

    assert (summary.status, summary.rejected, summary.cancelled) == ("succeeded", 1, 0)
    assert any("n'ont pas été annulés" in w for w in summary.warnings)
    assert {e["status"] for e in snapshot(committed, feed_id).values()} == {"scheduled"}


def test_rows_rejected_with_their_id_keep_only_their_events_and_vanished_ones_are_cancelled(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    # Issue 13.1: 5 events vanished and 5 rows malformed (each with two field errors, 13.5).
    feed_id = make_feed(committed)
    run(committed, settings, feed_id, ft_json(tmp_path, [mee(n) for n in range(1, 16)]))

    broken = [mee(n, dateEvenement="pas une date", nombreOffres=-4) for n in range(6, 11)]
    rows = [mee(n) for n in range(1, 6)] + broken
    summary = run(committed, settings, feed_id, ft_json(tmp_path, rows, "v2.json"))

    assert (summary.status, summary.unchanged, summary.cancelled) == ("succeeded", 5, 5)
    assert summary.rejected == 5  # rows, not reasons
    assert len(summary.rejected_rows) == 10
    assert {r["field"] for r in summary.rejected_rows} == {"starts_at", "job_offers"}
    assert not any("n'ont pas été annulés" in w for w in summary.warnings)
    statuses = {k: e["status"] for k, e in snapshot(committed, feed_id).items()}
    assert {k for k, v in statuses.items() if v == "cancelled"} == {str(n) for n in range(11, 16)}
    with committed.transaction() as db:
        stored = db.scalars(select(ImportRun).order_by(ImportRun.id.desc())).first()
        assert stored is not None and stored.rejected == 5


def test_a_csv_row_rejected_with_its_id_keeps_its_event_and_others_vanish(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed, fmt="csv")
    rows = [csv_row(1), csv_row(2), csv_row(3)]
    run(committed, settings, feed_id, csv_file(tmp_path, rows))

    rows = [csv_row(1), csv_row(2, start="32/13/2030 10:00")]
    summary = run(committed, settings, feed_id, csv_file(tmp_path, rows, "v2.csv"))

    assert (summary.rejected, summary.cancelled, summary.unchanged) == (1, 1, 1)
    statuses = {k: e["status"] for k, e in snapshot(committed, feed_id).items()}
    assert statuses == {"R-1": "scheduled", "R-2": "scheduled", "R-3": "cancelled"}


def test_an_event_cancelled_by_hand_stays_cancelled_without_noise(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    source = ft_json(tmp_path, [mee(1), mee(2)])
    run(committed, settings, feed_id, source)
    event = event_by_external_id(committed, feed_id, "1")
    with committed.transaction(lock=True) as db:
        cancel_agency_event(
            db,
            event_id=event.id,
            agency_id=event.agency_id,
            notifier=Notifier(db, settings),
            message="Annulé par l'agence",
        )

    summary = run(committed, settings, feed_id, source)

    assert (summary.updated, summary.unchanged, summary.warnings) == (0, 2, [])
    assert event_by_external_id(committed, feed_id, "1").status == "cancelled"


def test_imported_events_keep_their_ids_and_later_events_get_new_ones(
    committed: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # New events go in by batch (COPY on PostgreSQL, with ids drawn from the sequence): every
    # event's sectors must land on it, whatever the batch, and an event created afterwards,
    # by hand or by another import, must get an id of its own.
    monkeypatch.setattr(importers.sync, "INSERT_BATCH", 4)
    feed_id = make_feed(committed)
    rows = [mee(n, codesRome=["ABCDEFGHJ"[n % 9]]) for n in range(1, 11)]
    assert run(committed, settings, feed_id, ft_json(tmp_path, rows)).created == 10
    other_feed = make_feed(committed)
    assert run(committed, settings, other_feed, ft_json(tmp_path, [mee(1)], "b.json")).created == 1
    with committed.transaction() as db:
        agency = db.get_one(Agency, db.get_one(Feed, feed_id).agency_id)
        by_hand = make_event(db, agency, title="Créé à la main").id
        imported = db.execute(
            select(Event.external_id, Event.id, Event.sector_mask, Event.starts_at).where(
                Event.feed_id == feed_id
            )
        ).all()
        sectors = dict(
            db.execute(
                select(EventSector.event_id, EventSector.sector).where(
                    EventSector.event_id.in_([row.id for row in imported])
                )
            ).all()
        )
        others = db.scalars(select(Event.id).where(Event.feed_id == other_feed)).all()
    for external_id, event_id, mask, starts_at in imported:
        code = "ABCDEFGHJ"[int(external_id) % 9]
        assert sectors[event_id] == code
        assert mask == sector_mask([code])
        assert starts_at == datetime(2030, 12, 10 + int(external_id) % 15, 8, 30, tzinfo=UTC)
    ids = [row.id for row in imported]
    assert len({*ids, *others, by_hand}) == len(ids) + len(others) + 1
    assert by_hand > max(ids)


def test_insert_many_refuses_records_that_leave_out_a_default() -> None:
    records = [{"title": "Sans date"}]
    with pytest.raises(ValueError, match="insert_many: no value for"):
        insert_many(None, Event.__table__, records, ids_by="title")  # type: ignore[arg-type]


def test_large_feeds_are_written_in_batches(
    committed: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batching and the spool on disk of a 100,000-event feed, on a few rows.
    monkeypatch.setattr(importers.sync, "INSERT_BATCH", 3)
    monkeypatch.setattr(importers.sync, "UPDATE_CHUNK", 2)
    monkeypatch.setattr(importers.sync, "SPOOL_IN_MEMORY", 1)
    feed_id = make_feed(committed)
    first = run(committed, settings, feed_id, ft_json(tmp_path, [mee(n) for n in range(1, 11)]))
    assert first.created == 10
    event_id = event_by_external_id(committed, feed_id, "4").id
    registration_ids = sign_up(committed, settings, event_id, 2)

    rows = [mee(n, heureFin="12:00:00") if n <= 5 else mee(n) for n in range(1, 8)]
    rows += [mee(n) for n in range(20, 24)]
    summary = run(committed, settings, feed_id, ft_json(tmp_path, rows, "v2.json"))

    assert (summary.created, summary.updated, summary.unchanged, summary.cancelled) == (
        4,
        5,
        2,
        3,
    )
    events = snapshot(committed, feed_id)
    assert len(events) == 14
    assert sorted(k for k, e in events.items() if e["revision"] == 2) == sorted(
        ["1", "2", "3", "4", "5", "8", "9", "10"]
    )
    assert sorted(k for k, e in events.items() if e["status"] == "cancelled") == ["10", "8", "9"]
    changed = mails(committed, "event_changed")
    assert sorted(m.registration_id or 0 for m in changed) == sorted(registration_ids)


def test_one_page_of_a_paginated_feed_cancels_nothing(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    feed_id = make_feed(committed)
    run(committed, settings, feed_id, ft_json(tmp_path, [mee(n) for n in range(1, 5)]))
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"totalElements": 4, "content": [mee(1), mee(2, titre="Maj")]}))

    summary = run(committed, settings, feed_id, str(page))

    assert (summary.status, summary.updated, summary.unchanged, summary.cancelled) == (
        "succeeded",
        1,
        1,
        0,
    )
    [incomplete] = summary.rejected_rows
    assert incomplete["line"] == 0 and "incomplet" in str(incomplete["reason"])
    assert {e["status"] for e in snapshot(committed, feed_id).values()} == {"scheduled"}
