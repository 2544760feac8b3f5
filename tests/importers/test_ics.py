from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from starlette.testclient import TestClient

from events_app.db import Database
from events_app.feeds import add_feed
from events_app.models import Event
from events_app.settings import Settings
from importers import PARSERS, ics
from importers.base import (
    ImportedEvent,
    ImportedVenue,
    Notice,
    RowError,
    content_hash,
    parse_place_text,
)
from importers.run import run_import
from tests.factories import make_agency

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "ics-realworld"


def calendar(*events: str, header: str = "CALSCALE:GREGORIAN") -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Tests//FR", header, *events]
    lines.append("END:VCALENDAR")
    return "\r\n".join(line for line in lines if line).encode() + b"\r\n"


def vevent(*properties: str, uid: str = "evt-1@agence.example") -> str:
    return "\r\n".join(
        ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z", *properties, "END:VEVENT"]
    )


def run(data: bytes, now: datetime = NOW) -> list[ImportedEvent | RowError | Notice]:
    return list(ics.parse(data, now=now))


def events(data: bytes, now: datetime = NOW) -> list[ImportedEvent]:
    items = run(data, now)
    assert all(isinstance(item, ImportedEvent) for item in items), items
    return [item for item in items if isinstance(item, ImportedEvent)]


WEEKLY = (
    "SUMMARY:Atelier CV",
    "DTSTART;TZID=Europe/Paris:20260310T100000",
    "DTEND;TZID=Europe/Paris:20260310T120000",
    "RRULE:FREQ=WEEKLY;COUNT=6",
)


def test_single_event_maps_every_property() -> None:
    data = calendar(
        vevent(
            "SUMMARY:Job dating\\, logistique",
            "DESCRIPTION:Venez avec votre CV.\\nEntrée libre.",
            "DTSTART;TZID=Europe/Paris:20260415T093000",
            "DTEND;TZID=Europe/Paris:20260415T123000",
            "LOCATION:Agence France Travail\\, 12 rue de Paris\\, 93100 Montreuil\\, France",
            "GEO:48.8611;2.4432",
            "CATEGORIES:Job dating,Transport et logistique,M",
            "URL:https://agence.example.org/evt-1",
            "ORGANIZER;CN=France Travail Montreuil:mailto:montreuil@example.org",
            "X-GOOGLE-CONFERENCE:https://meet.google.com/abc-defg-hij",
        )
    )
    [event] = events(data)
    assert event == ImportedEvent(
        line=5,
        external_id="evt-1@agence.example",
        title="Job dating, logistique",
        description_html="<p>Venez avec votre CV.<br>Entrée libre.</p>",
        type="job_dating",
        sectors=("M", "N"),
        format="hybrid",
        starts_at=datetime(2026, 4, 15, 9, 30, tzinfo=PARIS),
        ends_at=datetime(2026, 4, 15, 12, 30, tzinfo=PARIS),
        timezone="Europe/Paris",
        venue=ImportedVenue(
            name="Agence France Travail",
            address="12 rue de Paris",
            postal_code="93100",
            city="Montreuil",
            lat=48.8611,
            lon=2.4432,
        ),
        online_url="https://meet.google.com/abc-defg-hij",
        capacity=None,
        remote_capacity=None,
        registration_opens_at=None,
        registration_closes_at=None,
        job_offers=None,
        status="scheduled",
        source_url="https://agence.example.org/evt-1",
        organiser="France Travail Montreuil",
        warnings=(),
    )


def test_weekly_series_stays_at_ten_local_across_dst() -> None:
    occurrences = events(calendar(vevent(*WEEKLY)))
    assert [e.starts_at.astimezone(PARIS).date() for e in occurrences] == [
        date(2026, 3, 10),
        date(2026, 3, 17),
        date(2026, 3, 24),
        date(2026, 3, 31),
        date(2026, 4, 7),
        date(2026, 4, 14),
    ]
    assert {e.starts_at.astimezone(PARIS).time() for e in occurrences} == {time(10, 0)}
    assert {e.ends_at.astimezone(PARIS).time() for e in occurrences} == {time(12, 0)}
    # Daylight saving time starts on 29 March: 09:00 UTC before, 08:00 UTC after.
    assert [e.starts_at.astimezone(UTC).hour for e in occurrences] == [9, 9, 9, 8, 8, 8]
    assert [e.external_id for e in occurrences[:4]] == [
        "evt-1@agence.example/2026-03-10T09:00:00Z",
        "evt-1@agence.example/2026-03-17T09:00:00Z",
        "evt-1@agence.example/2026-03-24T09:00:00Z",
        "evt-1@agence.example/2026-03-31T08:00:00Z",
    ]
    assert {e.timezone for e in occurrences} == {"Europe/Paris"}
    assert {e.line for e in occurrences} == {5}


def test_exdate_removes_occurrences_whatever_its_timezone() -> None:
    data = calendar(
        vevent(
            *WEEKLY,
            "EXDATE;TZID=Europe/Paris:20260317T100000",
            "EXDATE:20260331T080000Z",
        )
    )
    days = [e.starts_at.astimezone(PARIS).day for e in events(data)]
    assert days == [10, 24, 7, 14]


def test_recurrence_id_override_replaces_its_occurrence() -> None:
    data = calendar(
        vevent(*WEEKLY),
        vevent(
            "RECURRENCE-ID;TZID=Europe/Paris:20260324T100000",
            "SUMMARY:Atelier CV (déplacé)",
            "DTSTART;TZID=Europe/Paris:20260325T140000",
            "DTEND;TZID=Europe/Paris:20260325T153000",
            "SEQUENCE:1",
        ),
    )
    occurrences = events(data)
    assert len(occurrences) == 6
    moved = [e for e in occurrences if e.title == "Atelier CV (déplacé)"]
    assert len(moved) == 1
    assert moved[0].external_id == "evt-1@agence.example/2026-03-24T09:00:00Z"
    assert moved[0].starts_at == datetime(2026, 3, 25, 14, 0, tzinfo=PARIS)
    assert moved[0].ends_at == datetime(2026, 3, 25, 15, 30, tzinfo=PARIS)
    assert moved[0].line == 13
    assert datetime(2026, 3, 24, 10, 0, tzinfo=PARIS) not in {e.starts_at for e in occurrences}


def test_cancelled_override_cancels_one_occurrence() -> None:
    data = calendar(
        vevent(*WEEKLY),
        vevent(
            "RECURRENCE-ID;TZID=Europe/Paris:20260317T100000",
            "SUMMARY:Atelier CV",
            "DTSTART;TZID=Europe/Paris:20260317T100000",
            "STATUS:CANCELLED",
        ),
    )
    statuses = [(e.starts_at.astimezone(PARIS).day, e.status) for e in events(data)]
    assert statuses[:3] == [(10, "scheduled"), (17, "cancelled"), (24, "scheduled")]


def test_rdate_adds_occurrences_and_a_period_keeps_its_own_end() -> None:
    data = calendar(
        vevent(
            *WEEKLY[:3],
            "RDATE;TZID=Europe/Paris:20260320T100000",
            "RDATE;VALUE=PERIOD:20260321T130000Z/20260321T170000Z",
        )
    )
    spans = [(e.starts_at.astimezone(UTC), e.ends_at.astimezone(UTC)) for e in events(data)]
    assert spans == [
        (datetime(2026, 3, 10, 9, 0, tzinfo=UTC), datetime(2026, 3, 10, 11, 0, tzinfo=UTC)),
        (datetime(2026, 3, 20, 9, 0, tzinfo=UTC), datetime(2026, 3, 20, 11, 0, tzinfo=UTC)),
        (datetime(2026, 3, 21, 13, 0, tzinfo=UTC), datetime(2026, 3, 21, 17, 0, tzinfo=UTC)),
    ]


def test_until_in_utc_is_inclusive() -> None:
    data = calendar(
        vevent(*WEEKLY[:3], "RRULE:FREQ=WEEKLY;UNTIL=20260331T080000Z"),
    )
    assert [e.starts_at.astimezone(PARIS).day for e in events(data)] == [10, 17, 24, 31]


def test_all_day_events() -> None:
    data = calendar(
        vevent("SUMMARY:Portes ouvertes", "DTSTART;VALUE=DATE:20260328"),
        vevent(
            "SUMMARY:Salon",
            "DTSTART;VALUE=DATE:20260328",
            "DTEND;VALUE=DATE:20260331",
            uid="salon@agence.example",
        ),
    )
    one_day, three_days = events(data)
    assert one_day.starts_at == datetime(2026, 3, 28, 0, 0, tzinfo=PARIS)
    assert one_day.ends_at == datetime(2026, 3, 29, 0, 0, tzinfo=PARIS)
    assert one_day.type == "other"
    assert three_days.starts_at == datetime(2026, 3, 28, 0, 0, tzinfo=PARIS)
    # 29 March is 23 hours long in Paris; the event still ends at local midnight.
    assert three_days.ends_at == datetime(2026, 3, 31, 0, 0, tzinfo=PARIS)
    duration = three_days.ends_at.astimezone(UTC) - three_days.starts_at.astimezone(UTC)
    assert duration == timedelta(days=3, hours=-1)


def test_floating_times_use_x_wr_timezone_else_paris() -> None:
    event_lines = ("SUMMARY:Forum", "DTSTART:20260310T100000", "DURATION:PT3H")
    [new_york] = events(calendar(vevent(*event_lines), header="X-WR-TIMEZONE:America/New_York"))
    assert new_york.starts_at == datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    assert new_york.ends_at == datetime(2026, 3, 10, 17, 0, tzinfo=UTC)
    assert new_york.timezone == "America/New_York"
    [paris] = events(calendar(vevent(*event_lines)))
    assert paris.starts_at == datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    assert paris.timezone == "Europe/Paris"


def test_utc_times_keep_their_instant() -> None:
    [event] = events(calendar(vevent("SUMMARY:Forum", "DTSTART:20260310T090000Z")))
    assert event.starts_at == datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    assert event.ends_at == datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
    assert event.timezone == "Europe/Paris"


def test_outlook_windows_timezone_name() -> None:
    vtimezone = "\r\n".join(
        [
            "BEGIN:VTIMEZONE",
            "TZID:Romance Standard Time",
            "BEGIN:STANDARD",
            "DTSTART:16010101T030000",
            "TZOFFSETFROM:+0200",
            "TZOFFSETTO:+0100",
            "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10",
            "END:STANDARD",
            "BEGIN:DAYLIGHT",
            "DTSTART:16010101T020000",
            "TZOFFSETFROM:+0100",
            "TZOFFSETTO:+0200",
            "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3",
            "END:DAYLIGHT",
            "END:VTIMEZONE",
        ]
    )
    data = calendar(
        vtimezone,
        vevent("SUMMARY:Réunion", 'DTSTART;TZID="Romance Standard Time":20260610T100000'),
    )
    [event] = events(data)
    assert event.starts_at == datetime(2026, 6, 10, 8, 0, tzinfo=UTC)
    assert event.timezone == "Europe/Paris"


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        (("LOCATION:https://teams.example.com/l/meetup",), ("online", None)),
        (("LOCATION:Salle 3 / https://zoom.example.com/j/1",), ("hybrid", "Salle 3")),
        (("CONFERENCE;VALUE=URI:https://visio.example.org/r",), ("online", None)),
        (("LOCATION:Mairie de Lyon",), ("onsite", "Mairie de Lyon")),
        ((), ("onsite", None)),
    ],
)
def test_online_links(properties: tuple[str, ...], expected: tuple[str, str | None]) -> None:
    [event] = events(calendar(vevent("SUMMARY:A", "DTSTART:20260310T090000Z", *properties)))
    assert (event.format, event.venue.name) == expected


def test_cancelled_status_and_method_cancel() -> None:
    [cancelled] = events(
        calendar(vevent("SUMMARY:A", "DTSTART:20260310T090000Z", "STATUS:CANCELLED"))
    )
    assert cancelled.status == "cancelled"
    [by_method] = events(
        calendar(vevent("SUMMARY:A", "DTSTART:20260310T090000Z"), header="METHOD:CANCEL")
    )
    assert by_method.status == "cancelled"


def test_categories_that_name_no_type() -> None:
    [event] = events(
        calendar(vevent("SUMMARY:A", "DTSTART:20260310T090000Z", "CATEGORIES:Travail,Santé"))
    )
    assert (event.type, event.sectors) == ("other", ("J",))
    assert event.warnings == ("aucune catégorie ne désigne un type connu, classé « Autre »",)


def test_missing_fields_and_end_before_start_are_row_errors_on_their_line() -> None:
    data = calendar(
        vevent("DTSTART:20260310T090000Z", uid="a"),
        vevent("SUMMARY:Sans date", uid="b"),
        vevent("SUMMARY:À l'envers", "DTSTART:20260310T090000Z", "DTEND:20260310T080000Z", uid="c"),
        vevent("SUMMARY:Date cassée", "DTSTART:2026-03-10", uid="d"),
        vevent("SUMMARY:Bon", "DTSTART:20260310T090000Z", uid="e"),
    )
    items = run(data)
    # Each rejected row carries its UID: the import keeps its stored event as it is.
    assert items[:3] == [
        RowError(5, "title", "SUMMARY absent : l'événement n'a pas de titre", "a"),
        RowError(10, "starts_at", "DTSTART absent : l'événement n'a pas de date de début", "b"),
        RowError(15, "ends_at", "la fin (DTEND) précède le début (DTSTART)", "c"),
    ]
    assert isinstance(items[3], RowError)
    assert (items[3].line, items[3].field) == (22, "starts_at")
    assert isinstance(items[4], ImportedEvent)
    assert (items[4].external_id, items[4].line) == ("e", 28)


def test_duplicate_uid_keeps_the_highest_sequence_then_the_latest_stamp() -> None:
    data = calendar(
        vevent("SUMMARY:V2", "DTSTART:20260310T090000Z", "SEQUENCE:2"),
        vevent("SUMMARY:V3", "DTSTART:20260311T090000Z", "SEQUENCE:3"),
        vevent("SUMMARY:V1", "DTSTART:20260312T090000Z", "SEQUENCE:1"),
        vevent(
            "SUMMARY:New", "DTSTART:20260310T090000Z", "LAST-MODIFIED:20260201T000000Z", uid="s"
        ),
        vevent(
            "SUMMARY:Old", "DTSTART:20260310T090000Z", "LAST-MODIFIED:20260101T000000Z", uid="s"
        ),
    )
    first, second = run(data)
    assert isinstance(first, ImportedEvent) and isinstance(second, ImportedEvent)
    assert (first.title, first.starts_at.day) == ("V3", 11)
    assert any("présent plusieurs fois" in w for w in first.warnings)
    assert second.title == "New"


def test_event_without_uid_gets_a_stable_derived_id() -> None:
    body = "\r\n".join(["BEGIN:VEVENT", "SUMMARY:Forum", "DTSTART:20260310T090000Z", "END:VEVENT"])
    [first] = events(calendar(body))
    [second] = events(calendar(body))
    assert first.external_id == second.external_id
    assert first.external_id.startswith("h-")


def test_occurrence_ids_and_hashes_are_stable_when_now_moves() -> None:
    data = calendar(vevent(*WEEKLY[:3], "RRULE:FREQ=WEEKLY"))
    before = {e.external_id: content_hash(e) for e in events(data, now=NOW)}
    after = {e.external_id: content_hash(e) for e in events(data, now=NOW + timedelta(days=20))}
    shared = before.keys() & after.keys()
    assert len(shared) > 40
    assert all(before[key] == after[key] for key in shared)


def test_endless_daily_rule_is_bounded_by_the_horizon() -> None:
    data = calendar(
        vevent(
            "SUMMARY:Permanence", "DTSTART;TZID=Europe/Paris:20000101T100000", "RRULE:FREQ=DAILY"
        )
    )
    occurrences = events(data)
    # From 30 days before `now` (30 January, 12:00 UTC) to 365 days after (1 March 2027).
    assert occurrences[0].starts_at == datetime(2026, 1, 31, 10, 0, tzinfo=PARIS)
    assert occurrences[-1].starts_at == datetime(2027, 3, 1, 10, 0, tzinfo=PARIS)
    assert len(occurrences) == (date(2027, 3, 1) - date(2026, 1, 31)).days + 1


def test_dense_rule_is_capped_per_series() -> None:
    data = calendar(
        vevent(
            "SUMMARY:Permanence",
            "DTSTART;TZID=Europe/Paris:20260301T090000",
            "RRULE:FREQ=DAILY;BYHOUR=9,11,14,16",
        )
    )
    occurrences = events(data)
    assert len(occurrences) == ics.MAX_OCCURRENCES
    assert "série limitée à 500 occurrences" in occurrences[0].warnings


def test_sub_daily_rules_are_expanded_within_the_limits() -> None:
    hourly = run(calendar(vevent("SUMMARY:A", "DTSTART:20260301T090000Z", "RRULE:FREQ=HOURLY")))
    assert len(hourly) == ics.MAX_OCCURRENCES
    assert "série limitée à 500 occurrences" in hourly[-1].warnings  # type: ignore[union-attr]
    # A year of minutes is more work than a feed may spend: the row says so.
    minutely = run(calendar(vevent("SUMMARY:A", "DTSTART:20260301T090000Z", "RRULE:FREQ=MINUTELY")))
    assert minutely[0] == RowError(
        5,
        "RRULE",
        "récurrence trop coûteuse à calculer : la limite de calcul du calendrier est atteinte, "
        "série ignorée",
    )


def test_rule_matching_no_date_keeps_only_dtstart() -> None:
    data = calendar(
        vevent("SUMMARY:A", "DTSTART:20260302T090000Z", "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30")
    )
    [event] = events(data)
    assert event.starts_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert event.warnings == ("règle de récurrence sans aucune date possible, ignorée",)


def test_single_events_in_the_past_are_kept_but_past_series_are_not() -> None:
    data = calendar(
        vevent("SUMMARY:Ancien", "DTSTART:20200310T090000Z", uid="old"),
        vevent("SUMMARY:Ancienne série", "DTSTART:20200310T090000Z", "RRULE:FREQ=WEEKLY;COUNT=3"),
    )
    [event] = events(data)
    assert event.external_id == "old"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff\xfe garbage \x9c" * 50,
        b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20261",
        b"BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:X\r\nBEGIN:STANDARD\r\nTZOFFSETTO:+9999",
        b"BEGIN:VCALENDAR\r\n\r\n:::\r\n;;;\r\nEND:VCALENDAR",
    ],
    ids=["empty", "binary", "html", "truncated", "bad-offset", "colons"],
)
def test_broken_documents_give_row_errors_not_exceptions(data: bytes) -> None:
    items = run(data)
    assert all(isinstance(item, RowError) for item in items)


def test_unreadable_document_is_one_error_on_line_zero() -> None:
    [error] = run(b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>")
    assert isinstance(error, RowError)
    assert (error.line, error.field) == (0, None)
    assert error.reason.startswith("calendrier illisible : ")


def test_broken_event_does_not_stop_the_others() -> None:
    data = calendar(
        vevent("SUMMARY:Cassé", "DTSTART:20260310T090000Z", "RRULE:FREQ=SOUVENT", uid="x"),
        vevent("SUMMARY:Bon", "DTSTART:20260311T090000Z", uid="y"),
    )
    error, event = run(data)
    assert isinstance(error, RowError)
    assert (error.line, error.field) == (5, None)
    assert error.reason.startswith("RRULE illisible")
    assert isinstance(event, ImportedEvent)
    assert event.external_id == "y"


def test_malformed_line_and_missing_end_are_repaired() -> None:
    data = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:r\r\nSUMMARY:Forum\r\n"
        b"DTSTART:20260310T090000Z\r\nEND:VEVENT\r\nnot a content line\r\n"
    )
    [event] = events(data)
    assert event.title == "Forum"
    assert event.warnings == (
        "1 ligne(s) mal formée(s) ignorée(s) dans le calendrier",
        "END:VCALENDAR manquant, calendrier refermé",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Agence, 12 rue de Paris, 75011 Paris", ("Agence", "12 rue de Paris", "75011", "Paris")),
        ("12 rue de Paris 75011 Paris", (None, "12 rue de Paris", "75011", "Paris")),
        ("Lyon (69)", (None, None, None, "Lyon")),
        ("Lyon (69003)", (None, None, "69003", "Lyon")),
        ("Cité des métiers, Paris 75019, France", ("Cité des métiers", None, "75019", "Paris")),
        (
            "Hôtel de ville\n1 place de la Mairie\n01000 Bourg-en-Bresse CEDEX",
            (
                "Hôtel de ville",
                "1 place de la Mairie",
                "01000",
                "Bourg-en-Bresse",
            ),
        ),
        ("Salle polyvalente", ("Salle polyvalente", None, None, None)),
        ("", (None, None, None, None)),
    ],
)
def test_location_text_is_split(text: str, expected: tuple[str | None, ...]) -> None:
    place = parse_place_text(text)
    assert (place.name, place.address, place.postal_code, place.city) == expected


def test_parsers_registry() -> None:
    assert PARSERS["ics"] is ics.parse


def _corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.ics")) if CORPUS.is_dir() else []


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"real-world corpus absent: {CORPUS}")
def test_corpus_is_complete() -> None:
    assert len(_corpus_files()) == 158


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"real-world corpus absent: {CORPUS}")
@pytest.mark.parametrize("path", _corpus_files(), ids=lambda path: path.name)
def test_real_world_file(path: Path) -> None:
    items = list(ics.parse(path.read_bytes(), now=datetime(2026, 6, 1, tzinfo=UTC)))
    assert all(isinstance(item, ImportedEvent | RowError | Notice) for item in items)
    imported = [item for item in items if isinstance(item, ImportedEvent)]
    for event in imported:
        assert event.starts_at.tzinfo is not None and event.starts_at.utcoffset() is not None
        assert event.ends_at.tzinfo is not None and event.ends_at.utcoffset() is not None
        assert event.starts_at <= event.ends_at
        assert event.title
        assert event.line >= 1
    ids = [event.external_id for event in imported]
    assert len(ids) == len(set(ids))
    for error in items:
        if isinstance(error, RowError):
            assert error.line >= 0 and error.reason


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"real-world corpus absent: {CORPUS}")
def test_corpus_specifics() -> None:
    def read(name: str) -> list[ImportedEvent | RowError]:
        return list(ics.parse((CORPUS / name).read_bytes(), now=datetime(2026, 6, 1, tzinfo=UTC)))

    # VTIMEZONE defined after the event that uses it: still New York time.
    [forward] = read("calendars__america_new_york_forward_reference.ics")
    assert isinstance(forward, ImportedEvent)
    assert forward.starts_at == datetime(2014, 8, 29, 12, 0, tzinfo=UTC)
    # A stray "X" line between components: the event survives.
    [repaired] = read("calendars__issue_104_broken_calendar.ics")
    assert isinstance(repaired, ImportedEvent) and repaired.title == "Broken Eevnt"
    # No END:VCALENDAR and twenty empty VEVENTs: twenty pairs of errors, no event.
    *empty, why = read("calendars__big_bad_calendar.ics")
    assert len(empty) == 40 and all(isinstance(item, RowError) for item in empty)
    assert why == Notice("Aucun événement importé de ce calendrier : 20 événement(s) rejeté(s).")
    [fuzz] = read("calendars__fuzz_testcase_invalid_month.ics")
    assert isinstance(fuzz, RowError) and fuzz.line == 0
    chinese = read("calendars__rfc_7529.ics")
    assert RowError(5, None, "calendrier de récurrence « CHINESE » non pris en charge") in chinese


_PROPERTIES = st.sampled_from(
    [
        "SUMMARY:Atelier",
        "SUMMARY:",
        "DTSTART:20260310T090000Z",
        "DTSTART;TZID=Europe/Paris:20260310T100000",
        "DTSTART;TZID=Nowhere/Land:20260310T100000",
        "DTSTART;VALUE=DATE:20260310",
        "DTSTART:20261399T250000",
        "DTEND:20260310T080000Z",
        "DTEND;VALUE=DATE:20260312",
        "DURATION:PT1H",
        "DURATION:-P1D",
        "RRULE:FREQ=WEEKLY;COUNT=5",
        "RRULE:FREQ=DAILY",
        "RRULE:FREQ=MONTHLY;BYDAY=-1FR",
        "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "RRULE:FREQ=DAILY;BYSETPOS=2",
        "RRULE:FREQ=WEEKLY;UNTIL=20260401",
        "RRULE:FREQ=SECONDLY",
        "RRULE:garbage",
        "EXDATE:20260317T090000Z",
        "EXDATE;VALUE=DATE:20260324",
        "EXDATE:nope",
        "RDATE:20260320T090000Z",
        "RDATE;VALUE=PERIOD:20260321T130000Z/PT2H",
        "RECURRENCE-ID:20260317T090000Z",
        "RECURRENCE-ID;VALUE=DATE:20260324",
        "LOCATION:Agence\\, 1 rue X\\, 75011 Paris",
        "LOCATION:https://visio.example.org/x",
        "GEO:91;200",
        "GEO:abc",
        "CATEGORIES:Job dating,F",
        "STATUS:CANCELLED",
        "URL:javascript:alert(1)",
        "X-GOOGLE-CONFERENCE:https://meet.example.org/y",
        "ORGANIZER:mailto:a@example.org",
        "SEQUENCE:x",
        "UID:shared",
        "X-ALT-DESC;FMTTYPE=text/html:<p>Bonjour</p>",
    ]
)


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.lists(_PROPERTIES, max_size=8), min_size=1, max_size=4))
def test_any_mix_of_properties_never_raises(components: list[list[str]]) -> None:
    bodies = [vevent(*props, uid=f"u{n}") for n, props in enumerate(components)]
    items = run(calendar(*bodies))
    assert all(isinstance(item, ImportedEvent | RowError | Notice) for item in items)
    imported = [item for item in items if isinstance(item, ImportedEvent)]
    assert all(e.starts_at.utcoffset() is not None and e.starts_at <= e.ends_at for e in imported)
    assert len({e.external_id for e in imported}) == len(imported)


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    assert all(isinstance(item, ImportedEvent | RowError | Notice) for item in run(data))


# --- issue 13: calendars as real calendar apps write them ------------------------------------

PEERS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "ics-peers"
needs_peers = pytest.mark.skipif(not PEERS.is_dir(), reason=f"ics-peers corpus absent: {PEERS}")


@needs_peers
def test_exchange_label_zones_are_read_as_their_zone() -> None:
    data = (PEERS / "jens-maus+node-ical" / "test_fixtures_Office-2012-owa.ics").read_bytes()
    found = events(data, now=datetime(2020, 11, 1, tzinfo=UTC))
    sydney = next(e for e in found if e.title == "TEST Syd")
    eastern = next(e for e in found if e.title == "TEST")
    assert sydney.starts_at == datetime(2020, 10, 28, 2, 30, tzinfo=UTC)
    assert eastern.starts_at == datetime(2020, 10, 28, 17, 30, tzinfo=UTC)
    assert eastern.timezone == "America/New_York"


def test_own_vtimezone_comes_before_names_and_unknown_zones_warn() -> None:
    own = "\r\n".join(
        [
            "BEGIN:VTIMEZONE",
            "TZID:Customized Time Zone",
            "BEGIN:STANDARD",
            "DTSTART:16010101T000000",
            "TZOFFSETFROM:+0300",
            "TZOFFSETTO:+0300",
            "END:STANDARD",
            "END:VTIMEZONE",
        ]
    )
    data = calendar(
        own,
        vevent("SUMMARY:A", 'DTSTART;TZID="Customized Time Zone":20260310T120000', uid="a"),
        vevent("SUMMARY:B", "DTSTART;TZID=Pacific Standard Time:20260310T120000", uid="b"),
        vevent("SUMMARY:C", 'DTSTART;TZID="(UTC+07:00) Bangkok, Hanoi":20260310T120000', uid="c"),
        vevent("SUMMARY:D", "DTSTART;TZID=Nowhere/Land:20260310T120000", uid="d"),
    )
    a, b, c, d = events(data)
    assert a.starts_at == datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    assert b.starts_at == datetime(2026, 3, 10, 19, 0, tzinfo=UTC)
    assert (b.timezone, c.timezone) == ("America/Los_Angeles", "Asia/Bangkok")
    assert c.starts_at == datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
    assert d.starts_at == datetime(2026, 3, 10, 11, 0, tzinfo=UTC)  # Paris, with a warning
    assert "fuseau « Nowhere/Land » inconnu, heure lue en Europe/Paris" in d.warnings
    assert not a.warnings and not b.warnings and not c.warnings


def test_one_tzid_may_mean_two_zones_in_two_documents() -> None:
    def zone(offset: str) -> str:
        head = ["BEGIN:VTIMEZONE", "TZID:Custom", "BEGIN:STANDARD", "DTSTART:16010101T000000"]
        tail = [f"TZOFFSETFROM:{offset}", f"TZOFFSETTO:{offset}", "END:STANDARD", "END:VTIMEZONE"]
        return "\r\n".join([*head, *tail])

    body = vevent("SUMMARY:A", "DTSTART;TZID=Custom:20260310T120000")
    [first] = events(calendar(zone("+0300"), body))
    [second] = events(calendar(zone("-0500"), body))
    assert first.starts_at.astimezone(UTC).hour == 9
    assert second.starts_at.astimezone(UTC).hour == 17


def test_end_equal_to_start_is_one_day_or_the_default_length() -> None:
    data = calendar(
        vevent("SUMMARY:Jour", "DTSTART;VALUE=DATE:20260310", "DTEND;VALUE=DATE:20260310", uid="a"),
        vevent("SUMMARY:Heure", "DTSTART:20260310T090000Z", "DTEND:20260310T090000Z", uid="b"),
    )
    day, timed = events(data)
    assert day.all_day and not timed.all_day
    assert (day.starts_at, day.ends_at) == (
        datetime(2026, 3, 10, tzinfo=PARIS),
        datetime(2026, 3, 11, tzinfo=PARIS),
    )
    assert timed.ends_at - timed.starts_at == timedelta(hours=2)


@pytest.mark.parametrize(
    ("codec", "bom"),
    [
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-32-le", b"\xff\xfe\x00\x00"),
        ("utf-8", b"\xef\xbb\xbf"),
    ],
)
def test_byte_order_marks_choose_the_encoding(codec: str, bom: bytes) -> None:
    text = calendar(vevent("SUMMARY:Réunion d'équipe", "DTSTART:20260310T090000Z")).decode()
    [event] = events(bom + text.encode(codec))
    assert event.title == "Réunion d'équipe"


def test_windows_1252_is_the_fallback() -> None:
    text = calendar(vevent("SUMMARY:Réunion", "DTSTART:20260310T090000Z")).decode()
    [event] = events(text.encode("cp1252"))
    assert event.title == "Réunion"


def test_empty_rrule_is_no_rule_with_a_warning() -> None:
    [event] = events(calendar(vevent("SUMMARY:A", "DTSTART:20260310T090000Z", "RRULE:")))
    assert event.external_id == "evt-1@agence.example"
    assert "RRULE vide ignorée" in event.warnings


def test_a_calendar_that_imports_nothing_says_why() -> None:
    past = vevent("SUMMARY:A", "DTSTART:20200310T090000Z", "RRULE:FREQ=WEEKLY;COUNT=3", uid="a")
    items = run(calendar(past, vevent("DTSTART:20260310T090000Z", uid="b")))
    assert isinstance(items[0], RowError)
    assert items[-1] == Notice(
        "Aucun événement importé de ce calendrier : 1 série(s) sans occurrence entre le "
        "30/01/2026 et le 01/03/2027, 1 événement(s) rejeté(s)."
    )
    # A calendar that imports something says nothing of the kind.
    assert not any(isinstance(i, Notice) for i in run(calendar(vevent("SUMMARY:B", *WEEKLY[1:3]))))


def test_a_rule_that_never_fires_costs_no_search_and_says_so() -> None:
    # Issue 12.5: dateutil looks for such a date up to the year 9999, seconds per series.
    bodies = [
        vevent(
            "SUMMARY:Jamais",
            f"DTSTART:202603{day:02d}T090000Z",
            "RRULE:FREQ=DAILY;BYYEARDAY=366;BYMONTH=1",
            uid=f"u{day}",
        )
        for day in range(1, 29)
    ]
    found = events(calendar(*bodies))
    assert len(found) == 28  # DTSTART is always an occurrence
    assert all(
        "règle de récurrence sans aucune date possible, ignorée" in e.warnings for e in found
    )


def test_series_past_the_work_budget_are_reported_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # A long daily series with a rule the quick probe cannot decide: each costs an exact probe.
    monkeypatch.setattr("importers.ics_recurrence._BARREN", {})  # no answer known yet
    bodies = [
        vevent(
            "SUMMARY:Long",
            f"DTSTART:190001{day:02d}T090000Z",
            "RRULE:FREQ=DAILY;BYSETPOS=1;BYDAY=MO;BYMONTH=1",
            uid=f"u{day}",
        )
        for day in range(1, 11)
    ]
    items = run(calendar(*bodies))
    refused = [i for i in items if isinstance(i, RowError)]
    assert refused and all(i.reason.startswith("récurrence trop coûteuse") for i in refused)
    assert {i.line for i in refused} <= {5 + 7 * n for n in range(10)}
    assert any(isinstance(i, ImportedEvent) for i in items)


@pytest.mark.parametrize(
    ("location", "extra", "expected"),
    [
        ("En ligne", (), ("online", None)),
        ("Microsoft Teams Meeting", (), ("online", None)),
        ("", ("DESCRIPTION:Rejoindre : https://us02web.zoom.us/j/123",), ("online", "zoom")),
        ("Salle 2\\, 1 rue X\\, 75011 Paris", (), ("onsite", None)),
    ],
)
def test_online_meetings_are_online(
    location: str, extra: tuple[str, ...], expected: tuple[str, str | None]
) -> None:
    props = [f"LOCATION:{location}"] if location else []
    [event] = events(calendar(vevent("SUMMARY:A", "DTSTART:20260310T090000Z", *props, *extra)))
    assert event.format == expected[0]
    assert event.venue.is_empty() == (expected[0] == "online")
    if expected[1]:
        assert event.online_url is not None and expected[1] in event.online_url


def test_all_day_and_online_events_end_to_end(
    client: TestClient, committed: Database, settings: Settings, tmp_path: Path
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        feed = add_feed(
            db,
            agency_id=agency.id,
            url="https://flux.example.org/a.ics",
            format="ics",
            interval_minutes=None,
        )
        feed_id = feed.id
    source = tmp_path / "agenda.ics"
    source.write_bytes(
        calendar(
            vevent(
                "SUMMARY:Forum de l'emploi",
                "DTSTART;VALUE=DATE:20270107",
                "DTEND;VALUE=DATE:20270107",
                "LOCATION:Halle\\, 1 rue X\\, 69003 Lyon",
                uid="day",
            ),
            vevent("SUMMARY:Webinaire", "DTSTART:20270108T090000Z", "LOCATION:En ligne", uid="web"),
        )
    )
    summary = run_import(committed, settings, feed_id=feed_id, source=str(source))
    assert (summary.status, summary.created) == ("succeeded", 2)
    with committed.transaction() as db:
        stored = {
            e.external_id: (e.id, e.all_day, e.format)
            for e in db.scalars(select(Event).where(Event.feed_id == feed_id))
        }
    assert stored["day"][1:] == (True, "onsite")
    assert stored["web"][1:] == (False, "online")

    page = client.get(f"/evenements/{stored['day'][0]}").text
    assert "jeudi 7 janvier 2027</time>" in page
    assert "0 h" not in page
    listing = client.get("/evenements").text
    assert "jeudi 7 janvier 2027</time>" in listing

    feed_text = client.get("/calendar.ics").text
    assert "DTSTART;VALUE=DATE:20270107" in feed_text
    assert "DTEND;VALUE=DATE:20270108" in feed_text


def test_the_run_summary_says_why_nothing_was_imported(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        feed = add_feed(
            db,
            agency_id=agency.id,
            url="https://flux.example.org/b.ics",
            format="ics",
            interval_minutes=None,
        )
        feed_id = feed.id
    source = tmp_path / "ancien.ics"
    source.write_bytes(
        calendar(vevent("SUMMARY:A", "DTSTART:20200310T090000Z", "RRULE:FREQ=WEEKLY;COUNT=3"))
    )
    summary = run_import(committed, settings, feed_id=feed_id, source=str(source))
    assert (summary.status, summary.created) == ("succeeded", 0)
    assert summary.warnings[0].startswith(
        "Aucun événement importé de ce calendrier : 1 série(s) sans occurrence entre le "
    )


def test_every_feed_format_has_its_parser_and_label() -> None:
    # The domain's vocabulary (labels, validation, CLI choices) and the importers' parsers.
    from events_app.vocab import FEED_FORMATS

    assert set(PARSERS) == set(FEED_FORMATS)


def test_a_never_firing_rule_is_not_searched(monkeypatch: pytest.MonkeyPatch) -> None:
    def searched(*_: object) -> bool:
        raise AssertionError("the rule was searched for centuries")

    monkeypatch.setattr("importers.ics_recurrence._barren_exactly", searched)
    body = vevent(
        "SUMMARY:A", "DTSTART:20260605T090000Z", "RRULE:FREQ=DAILY;BYYEARDAY=366;BYMONTH=1"
    )
    [event] = events(calendar(body))
    assert "règle de récurrence sans aucune date possible, ignorée" in event.warnings
