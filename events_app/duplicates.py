"""The same event published by several agencies: one result in a search (SPEC §11).

Two events are copies of each other when they belong to different agencies, are not cancelled,
start within 30 minutes of each other, take place in the same commune (or are both online), and
have titles alike once case, accents, punctuation and filler words are set aside
(`rapidfuzz.fuzz.token_sort_ratio` of at least TITLE_THRESHOLD). A group is a connected set of
copies; an agency may say that its event is not the same as the others (a dismissal, kept).

Groups are computed when events are written (create, edit, cancel, import) and stored in
`events.duplicate_group_id`: the id of the group's shown event, on every member. A search
only adds `duplicate_group_id IS NULL OR duplicate_group_id = id` to its filters, so its cost
does not depend on grouping. The shown event is the one with the most seats left at the time
the group was computed, else the earliest published.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple, Protocol

from rapidfuzz import fuzz
from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from events_app.errors import NotFound
from events_app.models import Agency, DuplicateDismissal, Event

WINDOW: Final = timedelta(minutes=30)
# token_sort_ratio of the folded titles. Copies seen in practice score 88 or more ("Forum pour
# l'emploi des seniors" / "Forum emploi seniors à Lyon": 88.9; word endings, "H/F", dashes and
# case: 98-100); different events at the same place score 80 or less ("Réunion d'information
# BTP" / "… santé": 79.2; "Job dating Amazon" / "Job dating Decathlon": 59.5; "Atelier CV" /
# "Atelier CV et entretien": 66.7). tests/test_duplicates.py keeps these examples.
TITLE_THRESHOLD: Final = 85.0
FILLER_WORDS: Final = frozenset(
    {
        "a",
        "au",
        "aux",
        "avec",
        "d",
        "de",
        "des",
        "du",
        "en",
        "et",
        "f",
        "fh",
        "h",
        "hf",
        "l",
        "la",
        "le",
        "les",
        "pour",
        "sur",
        "un",
        "une",
    }
)
_NON_WORD = re.compile(r"[^0-9a-z]+")
_ARRONDISSEMENT = re.compile(r"\s+(?:\d+\s*(?:er|e|eme)?(?:\s+arrondissement)?|cedex.*)$")
# Intervals of start times read in one query.
WINDOWS_PER_QUERY: Final = 50
CHUNK: Final = 500


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", stripped).strip()


def title_key(title: str) -> str:
    return " ".join(word for word in _fold(title).split() if word not in FILLER_WORDS)


def titles_alike(first: str, second: str) -> bool:
    return fuzz.token_sort_ratio(title_key(first), title_key(second)) >= TITLE_THRESHOLD


def commune_key(city: str | None, postal_code: str | None) -> str | None:
    """Paris 11e, PARIS CEDEX 11 and Paris are the same commune; a lone postal code stands in."""
    if city:
        key = _ARRONDISSEMENT.sub("", _fold(city))
        if key:
            return "c:" + key
    return "p:" + postal_code.strip() if postal_code and postal_code.strip() else None


class Row(NamedTuple):
    id: int
    agency_id: int
    starts_at: datetime
    status: str
    format: str
    city: str | None
    postal_code: str | None
    title: str
    capacity: int | None
    seats_taken: int
    remote_capacity: int | None
    remote_seats_taken: int
    created_at: datetime
    group_id: int | None
    copies: list[dict[str, Any]] | None

    @property
    def place(self) -> str | None:
        if self.format == "online":
            return "online"
        return commune_key(self.city, self.postal_code)

    @property
    def seats(self) -> float:
        if self.capacity is None:
            return math.inf
        left = self.capacity - self.seats_taken
        if self.remote_capacity is not None:
            left += self.remote_capacity - self.remote_seats_taken
        return float(left)


_COLUMNS = (
    Event.id,
    Event.agency_id,
    Event.starts_at,
    Event.status,
    Event.format,
    Event.venue_city,
    Event.venue_postal_code,
    Event.title,
    Event.capacity,
    Event.seats_taken,
    Event.remote_capacity,
    Event.remote_seats_taken,
    Event.created_at,
    Event.duplicate_group_id,
    Event.duplicate_copies,
)


def _rows(db: Session, condition: Any) -> list[Row]:
    return [Row._make(values) for values in db.execute(select(*_COLUMNS).where(condition))]


def _chunks(values: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _windows(starts: list[datetime]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start in sorted(starts):
        low, high = start - WINDOW, start + WINDOW
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return merged


def _dismissed(db: Session) -> set[tuple[int, int]]:
    # A dismissal is one person's decision about one event: the table stays small enough to
    # read whole, which beats an IN list of every event near a large import.
    return {
        (low, high)
        for low, high in db.execute(
            select(DuplicateDismissal.event_id, DuplicateDismissal.other_event_id)
        )
    }


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def refresh_duplicates(db: Session, event_ids: Iterable[int]) -> int:
    """Recompute the groups that the given (just written) events belong to, or now join or
    leave, and store them. Returns how many events changed group. Never commits."""
    wanted_ids = sorted(set(event_ids))
    seeds = {row.id: row for ids in _chunks(wanted_ids) for row in _rows(db, Event.id.in_(ids))}
    if not seeds:
        return 0
    universe = dict(seeds)
    live_starts = [row.starts_at for row in seeds.values() if row.status != "cancelled"]
    windows = _windows(live_starts)
    for start in range(0, len(windows), WINDOWS_PER_QUERY):
        part = windows[start : start + WINDOWS_PER_QUERY]
        in_windows = or_(*(Event.starts_at.between(low, high) for low, high in part))
        for row in _rows(db, and_(Event.status != "cancelled", in_windows)):
            universe.setdefault(row.id, row)
    # Whole groups, so that a member outside the windows keeps (or loses) its group rightly.
    groups = sorted({row.group_id for row in universe.values() if row.group_id is not None})
    for ids in _chunks(groups):
        for row in _rows(db, Event.duplicate_group_id.in_(ids)):
            universe.setdefault(row.id, row)

    parent = {event_id: event_id for event_id in universe}

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    dismissed = _dismissed(db)
    keys: dict[int, str] = {}
    buckets: dict[str, list[Row]] = defaultdict(list)
    for row in universe.values():
        if row.status != "cancelled" and (place := row.place) is not None:
            buckets[place].append(row)
    for bucket in buckets.values():
        bucket.sort(key=lambda r: r.starts_at)
        for index, row in enumerate(bucket):
            for other in bucket[index + 1 :]:
                if other.starts_at - row.starts_at > WINDOW:
                    break
                if other.agency_id == row.agency_id or _pair(row.id, other.id) in dismissed:
                    continue
                if row.id not in keys:
                    keys[row.id] = title_key(row.title)
                if other.id not in keys:
                    keys[other.id] = title_key(other.title)
                if fuzz.token_sort_ratio(keys[row.id], keys[other.id]) >= TITLE_THRESHOLD:
                    parent[find(row.id)] = find(other.id)

    members: dict[int, list[Row]] = defaultdict(list)
    for row in universe.values():
        members[find(row.id)].append(row)
    grouped_agencies = {r.agency_id for group in members.values() if len(group) > 1 for r in group}
    names: dict[int, str] = {}
    if grouped_agencies:
        statement = select(Agency.id, Agency.name).where(Agency.id.in_(grouped_agencies))
        names = {agency_id: name for agency_id, name in db.execute(statement)}
    wanted: dict[int, tuple[int | None, list[dict[str, Any]] | None]] = {}
    for group in members.values():
        if len(group) < 2:
            wanted[group[0].id] = (None, None)
            continue
        shown = min(group, key=lambda r: (-r.seats, r.created_at, r.id))
        # The shown event first, then by id.
        ordered = sorted(group, key=lambda r: (r.id != shown.id, r.id))
        for row in group:
            copies = [
                Copy(other.id, other.agency_id, names[other.agency_id]).as_item()
                for other in ordered
                if other.id != row.id
            ]
            wanted[row.id] = (shown.id, copies)
    changes = [
        {"pk": event_id, "group": group_id, "copies": copies}
        for event_id, (group_id, copies) in wanted.items()
        if (universe[event_id].group_id, universe[event_id].copies) != (group_id, copies)
    ]
    if changes:
        # Core, not ORM: no mapper event or revision for a change no calendar shows.
        table = Event.metadata.tables["events"]
        db.execute(
            update(table)
            .where(table.c.id == bindparam("pk"))
            .values(duplicate_group_id=bindparam("group"), duplicate_copies=bindparam("copies")),
            changes,
        )
        # Keep the events already in the session in step (a page rendered in the same
        # transaction reads them).
        for change in changes:
            loaded = db.identity_map.get(db.identity_key(Event, change["pk"]))
            if loaded is not None:
                set_committed_value(loaded, "duplicate_group_id", change["group"])
                set_committed_value(loaded, "duplicate_copies", change["copies"])
    return len(changes)


def written_since(db: Session, feed_id: int, since: datetime) -> list[int]:
    """The events of a feed that an import created, changed or cancelled from `since` on."""
    return list(
        db.scalars(select(Event.id).where(Event.feed_id == feed_id, Event.updated_at >= since))
    )


class Copy(NamedTuple):
    id: int
    agency_id: int
    agency_name: str

    def as_item(self) -> dict[str, Any]:
        return {"id": self.id, "agency": {"id": self.agency_id, "name": self.agency_name}}


class _Grouped(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def duplicate_copies(self) -> list[dict[str, Any]] | None: ...


def copies_of(_db: Session, events: Sequence[_Grouped]) -> dict[int, list[Copy]]:
    """event id -> the other events of its group (with their agency), as stored with the
    group: no query, so a search page costs the same with or without groups."""
    return {
        event.id: [
            Copy(int(item["id"]), int(item["agency"]["id"]), str(item["agency"]["name"]))
            for item in event.duplicate_copies or ()
        ]
        for event in events
    }


def dismiss_duplicates(db: Session, *, agency_id: int, event_id: int) -> int:
    """The agency says its event is not the same as the others of its group: the choice is
    kept (a later edit or import does not group them again). Returns how many were set apart.
    Raises NotFound for an event of another agency."""
    event = db.scalar(select(Event).where(Event.id == event_id, Event.agency_id == agency_id))
    if event is None:
        raise NotFound("Événement introuvable.", field="event")
    if event.duplicate_group_id is None:
        return 0
    others = [copy.id for copy in copies_of(db, [event])[event.id]]
    known = _dismissed(db)
    for other in others:
        low, high = _pair(event.id, other)
        if (low, high) not in known:
            db.add(DuplicateDismissal(event_id=low, other_event_id=high))
    db.flush()
    refresh_duplicates(db, [event.id, *others])
    return len(others)
