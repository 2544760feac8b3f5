"""The communes in memory, for what an index on a name cannot do cheaply: names beginning with
what a person is typing (autocomplete), the communes sharing a name (ambiguity), and names
close to a misspelt one (suggestions).

The table is written by `events-app migrate` and never changes while the app runs, so one
snapshot per engine is read on first use (about 35,000 rows, a few MB) and kept.
"""

from __future__ import annotations

import bisect
import heapq
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from rapidfuzz import fuzz, process
from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from events_app.db import SNAPSHOT_ENGINE
from events_app.models import Commune, CommunePostalCode

# A misspelt name: candidates at least this alike (rapidfuzz's 0-100 ratio of the keys).
# « marseile » → « marseille » scores 94, « lyom » → « lyon » 75; below 75, suggestions
# stop being the commune the person meant and start being noise.
CLOSE_ENOUGH = 75.0


@dataclass(frozen=True, slots=True)
class CommuneEntry:
    insee: str
    name: str
    key: str
    department: str
    population: int
    is_arrondissement: bool
    postal_codes: tuple[str, ...]
    lat: float = 0.0
    lon: float = 0.0

    @property
    def label(self) -> str:
        """« Saint-Denis (93) »; an arrondissement by its postal code, « Paris 15e … (75015) »."""
        if self.is_arrondissement and self.postal_codes:
            return f"{self.name} ({self.postal_codes[0]})"
        return f"{self.name} ({self.department})"


class Gazetteer:
    def __init__(self, entries: Iterable[CommuneEntry]) -> None:
        self.entries = sorted(entries, key=lambda entry: entry.key)
        self.keys = [entry.key for entry in self.entries]
        self.by_key: dict[str, list[CommuneEntry]] = defaultdict(list)
        self.by_postal_code: dict[str, list[CommuneEntry]] = defaultdict(list)
        for entry in self.entries:
            self.by_key[entry.key].append(entry)
            for code in entry.postal_codes:
                self.by_postal_code[code].append(entry)
        for group in (*self.by_key.values(), *self.by_postal_code.values()):
            group.sort(key=lambda entry: -entry.population)
        self.postal_codes = sorted(self.by_postal_code)
        # One name per key for the fuzzy match (the communes sharing it come with it).
        self.unique_keys = list(self.by_key)
        self.centres = frozenset(centre_key(entry.lat, entry.lon) for entry in self.entries)

    def is_centre(self, lat: float, lon: float) -> bool:
        """Whether a point is exactly the centre of a commune (as the geocoder places a venue
        known only by its commune)."""
        return centre_key(lat, lon) in self.centres

    def named(self, key: str) -> list[CommuneEntry]:
        """Every commune with exactly this key, most populous first."""
        return self.by_key.get(key, [])

    def with_prefix(self, prefix: str, limit: int) -> list[CommuneEntry]:
        """The `limit` most populous communes whose key begins with prefix."""
        start = bisect.bisect_left(self.keys, prefix)
        end = bisect.bisect_left(self.keys, prefix + "\uffff", lo=start)
        return heapq.nlargest(limit, self.entries[start:end], key=lambda entry: entry.population)

    def postal_codes_with_prefix(self, prefix: str, limit: int) -> list[str]:
        start = bisect.bisect_left(self.postal_codes, prefix)
        end = bisect.bisect_left(self.postal_codes, prefix + "\uffff", lo=start)
        return self.postal_codes[start : min(end, start + limit)]

    def close_to(self, key: str, limit: int) -> list[CommuneEntry]:
        """Communes whose name is close to a key that matches none, the likeliest first."""
        found = process.extract(
            key, self.unique_keys, scorer=fuzz.ratio, score_cutoff=CLOSE_ENOUGH, limit=limit
        )
        entries = [entry for match, _score, _index in found for entry in self.by_key[match]]
        scores = {match: score for match, score, _index in found}
        entries.sort(key=lambda entry: (-scores[entry.key], -entry.population))
        return entries[:limit]


def centre_key(lat: float, lon: float) -> tuple[float, float]:
    # Six decimals, about 10 cm: a venue copied from a commune's centre keeps every one.
    return round(lat, 6), round(lon, 6)


_snapshots: WeakKeyDictionary[Engine, Gazetteer] = WeakKeyDictionary()
_lock = threading.Lock()


def gazetteer(db: Session) -> Gazetteer:
    """The snapshot of the communes of db's engine, read on first use. A session of a second
    engine on the same database (Database.search_sessions) names the first in its info."""
    bind = db.get_bind()
    engine = db.info.get(SNAPSHOT_ENGINE) or (bind.engine if isinstance(bind, Connection) else bind)
    with _lock:
        found = _snapshots.get(engine)
    if found is not None:
        return found
    codes: dict[str, list[str]] = defaultdict(list)
    for insee, code in db.execute(
        select(CommunePostalCode.insee, CommunePostalCode.postal_code).order_by(
            CommunePostalCode.postal_code
        )
    ):
        codes[insee].append(code)
    rows = db.execute(
        select(
            Commune.insee,
            Commune.name,
            Commune.name_key,
            Commune.department,
            Commune.population,
            Commune.is_arrondissement,
            Commune.lat,
            Commune.lon,
        )
    )
    snapshot = Gazetteer(
        CommuneEntry(
            insee, name, key, department, population, arrondissement, tuple(codes[insee]), lat, lon
        )
        for insee, name, key, department, population, arrondissement, lat, lon in rows
    )
    if snapshot.entries:
        # An empty table (before `migrate` loads it) is not kept: it will be read again.
        with _lock:
            _snapshots[engine] = snapshot
    return snapshot
