"""A realistic demo data set: agencies across France and their events over the coming weeks.

The same function loads the few hundred events of a demonstration and the hundreds of
thousands of a benchmark. Everything follows from the seed (and `now` for the dates), so two
loads with the same seed on the same communes give the same agencies, titles and places.

Events are written with bulk inserts (a list of dicts, batch by batch), which skip the ORM
mapper events: the derived columns (geo_cell, search_key) are computed here with the
functions the mapper event uses, and nothing keeps the rows once a batch is written.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Generic, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from events_app.agencies import create_agency
from events_app.checkin_codes import new_checkin_code
from events_app.db import PARIS
from events_app.demo_vocabulary import (
    ACCESSIBILITY,
    ACTIVITY_STREETS,
    ALL_SECTORS_SHARE,
    APEC_SECTOR_WEIGHTS,
    BIG_VENUES,
    CANCELLATIONS,
    CAPACITY,
    COMPANIES,
    DEFAULT_DURATIONS,
    DESCRIPTIONS,
    DURATIONS,
    EMPLOYERS,
    FIRST_NAMES,
    FORMAT_NOTES,
    FT_SITES,
    JOB_OFFERS,
    KIND_TITLES,
    KIND_TYPE_WEIGHTS,
    KIND_WEIGHT,
    LAST_NAMES,
    NBSP,
    ONLINE_ACCESSIBILITY,
    ONLINE_ONLY,
    ONSITE_ONLY,
    SECTOR_WEIGHTS,
    SECTOR_WORDS,
    STREETS,
    TITLES,
    URL_STEMS,
    VENUES,
    a_city,
    de,
    de_city,
    slugify,
    typeset,
)
from events_app.events import sanitise_html
from events_app.models import (
    Agency,
    Commune,
    CommunePostalCode,
    Event,
    EventSector,
    Registration,
    geo_cell,
    search_key,
    sector_mask,
)
from events_app.places import DEPARTMENTS
from events_app.vocab import EVENT_TYPES, FORMATS, SECTORS

# Overseas departments keep their own clocks: their events are held in local hours.
_OVERSEAS_ZONES: Final[dict[str, str]] = {
    "971": "America/Guadeloupe",
    "972": "America/Martinique",
    "973": "America/Cayenne",
    "974": "Indian/Reunion",
    "976": "Indian/Mayotte",
}
HORIZON_DAYS: Final = 56  # 8 weeks
BATCH_SIZE: Final = 5_000
# Above this many events the load is a benchmark: events spread over all of France by
# population, and only a bounded number of registrations (a few full events).
LARGE: Final = 5_000
MAX_FULL_EVENTS_LARGE: Final = 300

T = TypeVar("T")


@dataclass(frozen=True)
class DemoSummary:
    agencies: int
    events: int
    registrations: int


_TYPES: Final = tuple(EVENT_TYPES)
_SECTOR_CODES: Final = tuple(code for code in SECTORS if code != "all")
_FORMATS: Final = tuple(FORMATS)
_FORCED_SECTORS: Final = (*_SECTOR_CODES, "all")
_FORCED: Final = len(_FORCED_SECTORS)


# --- Places ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Town:
    insee: str
    city: str  # as shown: "Paris" for "Paris 15e Arrondissement"
    label: str  # as named: "Paris 15e", else the city
    department: str
    population: int
    lat: float
    lon: float
    postal_code: str
    is_arrondissement: bool


_ARRONDISSEMENT_NAME: Final = re.compile(r"^(.+?) (\d+)(?:er|e) Arrondissement$")


def _load_towns(db: Session) -> list[_Town]:
    """Every commune with a postal code, in INSEE order (so draws do not depend on the engine).

    Paris, Lyon and Marseille have no postal code of their own in the data: their
    arrondissements stand in for them, which also spreads their events over the city.
    """
    postal = (
        select(CommunePostalCode.insee, func.min(CommunePostalCode.postal_code).label("code"))
        .group_by(CommunePostalCode.insee)
        .subquery()
    )
    statement = select(
        Commune.insee,
        Commune.name,
        Commune.department,
        Commune.population,
        Commune.lat,
        Commune.lon,
        Commune.is_arrondissement,
        postal.c.code,
    ).join(postal, postal.c.insee == Commune.insee)
    towns = []
    for insee, name, department, population, lat, lon, is_arrondissement, code in db.execute(
        statement
    ):
        city = label = name
        match = _ARRONDISSEMENT_NAME.match(name) if is_arrondissement else None
        if match:
            number = int(match.group(2))
            city = match.group(1)
            label = f"{city} {number}{'er' if number == 1 else 'e'}"
        towns.append(
            _Town(
                insee,
                city,
                label,
                department,
                population or 0,
                lat,
                lon,
                code,
                bool(is_arrondissement),
            )
        )
    towns.sort(key=lambda town: town.insee)
    return towns


class _WeightedTowns:
    """Towns drawn with a probability growing with their population to the given power."""

    def __init__(self, towns: Sequence[_Town], power: float) -> None:
        self.towns = towns
        self.cumulative = list(
            itertools.accumulate(max(town.population, 1) ** power for town in towns)
        )

    def draw(self, rng: random.Random) -> _Town:
        index = bisect.bisect_left(self.cumulative, rng.random() * self.cumulative[-1])
        return self.towns[min(index, len(self.towns) - 1)]


def _jitter(rng: random.Random, lat: float, lon: float, radius_km: float) -> tuple[float, float]:
    distance = radius_km * math.sqrt(rng.random())
    angle = rng.random() * math.tau
    dlat = distance * math.cos(angle) / 111.0
    dlon = distance * math.sin(angle) / (111.0 * math.cos(math.radians(lat)))
    return round(lat + dlat, 6), round(lon + dlon, 6)


def _address(rng: random.Random, streets: Sequence[str] = STREETS) -> str:
    """ "12 rue Victor-Hugo", "ZA des Prés, 14 rue de l'Industrie"."""
    zone, comma, street = rng.choice(streets).rpartition(", ")
    return f"{zone}{comma}{rng.randint(1, 120)} {street}"


# --- Agencies ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _AgencyPlan:
    slug: str
    name: str
    kind: str
    town: _Town
    sectors: tuple[str, ...]  # an employer's own sectors; empty for the others
    address: str


@dataclass(frozen=True, slots=True)
class _DemoAgency:
    id: int
    plan: _AgencyPlan
    lat: float
    lon: float


def _plan_agencies(towns: Sequence[_Town], rng: random.Random) -> list[_AgencyPlan]:
    """About forty agencies, each in the biggest town of a different department.

    The twelve biggest towns always have a France Travail agency; twenty-eight more towns are
    drawn (with the seed) among the next sixty-eight and get the other kinds.
    """
    # Paris, Lyon and Marseille count as whole cities, placed in their biggest arrondissement.
    city_population: dict[tuple[str, str], int] = {}
    for town in towns:
        key = (town.department, town.city)
        city_population[key] = city_population.get(key, 0) + town.population

    def size(town: _Town) -> tuple[int, int]:
        whole = city_population[(town.department, town.city)]
        return (whole if town.is_arrondissement else town.population), town.population

    biggest: dict[str, _Town] = {}
    for town in towns:
        best = biggest.get(town.department)
        if best is None or size(town) > size(best):
            biggest[town.department] = town
    ranked = []
    names: set[str] = set()
    # Saint-Denis is the biggest town of both Seine-Saint-Denis and La Réunion: one is enough
    # (agencies are named, and their slugs made, after their town).
    for town in sorted(biggest.values(), key=lambda t: (-size(t)[0], t.insee)):
        if town.city not in names:
            names.add(town.city)
            ranked.append(town)
    rest = ranked[12:80]
    big, others = ranked[:12], rng.sample(rest, min(28, len(rest)))
    kinds = (
        ["france_travail"] * 5
        + ["mission_locale"] * 8
        + ["cap_emploi"] * 5
        + ["apec"] * 4
        + ["employer"] * 6
    )
    rng.shuffle(kinds)
    del kinds[len(others) :]
    employers = list(EMPLOYERS)
    plans: list[_AgencyPlan] = []
    for town, kind in [(t, "france_travail") for t in big] + list(zip(others, kinds, strict=True)):
        sectors: tuple[str, ...] = ()
        address = _address(rng)
        if kind == "france_travail":
            if town.city in FT_SITES:
                name = f"France Travail {town.city} {rng.choice(FT_SITES[town.city])}"
            else:
                name = f"France Travail {town.label}"
        elif kind == "mission_locale":
            name = f"Mission locale {de_city(town.city)}"
        elif kind == "cap_emploi":
            name = f"Cap emploi {DEPARTMENTS.get(town.department, town.department)}"
        elif kind == "apec":
            name = f"Apec {town.city}"
        else:
            name, sectors = employers.pop(0)
            address = _address(rng, ACTIVITY_STREETS)
        slug = slugify(name)
        if any(plan.slug == slug for plan in plans):
            slug = f"{slug}-{town.department.lower()}"
        plans.append(_AgencyPlan(slug, name, kind, town, sectors, address))
    return plans


def _create_agencies(db: Session, plans: Sequence[_AgencyPlan]) -> list[_DemoAgency]:
    """Create the planned agencies, reusing those a previous load already made."""
    existing = {
        agency.slug: agency
        for agency in db.scalars(select(Agency).where(Agency.slug.in_([p.slug for p in plans])))
    }
    result = []
    for plan in plans:
        agency = existing.get(plan.slug)
        if agency is None:
            agency, _token = create_agency(
                db,
                slug=plan.slug,
                name=plan.name,
                kind=plan.kind,
                city=plan.town.city,
                postal_code=plan.town.postal_code,
                lat=plan.town.lat,
                lon=plan.town.lon,
            )
            agency.address = plan.address
            agency.email = f"contact@{plan.slug}.example.org"
        result.append(
            _DemoAgency(agency.id, plan, agency.lat or plan.town.lat, agency.lon or plan.town.lon)
        )
    db.flush()
    return result


# --- Events ------------------------------------------------------------------------------------


class _Weighted(Generic[T]):
    """A fixed weighted choice, drawn with one random number."""

    def __init__(self, weights: Sequence[tuple[T, float]]) -> None:
        kept = [(key, weight) for key, weight in weights if weight > 0]
        self.keys = [key for key, _ in kept]
        self.cumulative = list(itertools.accumulate(weight for _, weight in kept))

    def draw(self, rng: random.Random) -> T:
        index = bisect.bisect_left(self.cumulative, rng.random() * self.cumulative[-1])
        return self.keys[min(index, len(self.keys) - 1)]


class _Generator:
    """Draws events one at a time; keeps only small caches, never the rows it made."""

    def __init__(
        self,
        *,
        agencies: Sequence[_DemoAgency],
        towns: Sequence[_Town],
        events: int,
        seed: int,
        now: datetime,
    ) -> None:
        self.rng = random.Random(f"{seed}:events")
        self.people = random.Random(f"{seed}:people")
        self.agencies = agencies
        self.now = now
        self.large = events > LARGE
        self.full_share = min(0.07, MAX_FULL_EVENTS_LARGE / events) if self.large else 0.07
        self.full_left = MAX_FULL_EVENTS_LARGE if self.large else events
        self.agency_draw = _Weighted([(a, KIND_WEIGHT[a.plan.kind]) for a in agencies])
        self.type_draws = {
            kind: _Weighted(list(weights.items())) for kind, weights in KIND_TYPE_WEIGHTS.items()
        }
        self.sector_draw = _Weighted(list(SECTOR_WEIGHTS.items()))
        self.apec_sector_draw = _Weighted(list(APEC_SECTOR_WEIGHTS.items()))
        # Across France, small towns get their share (square root); around an agency, events
        # go where people live.
        self.national = _WeightedTowns(towns, 0.5)
        by_department: dict[str, list[_Town]] = {}
        for town in towns:
            by_department.setdefault(town.department, []).append(town)
        self.departments = {
            department: _WeightedTowns(members, 1.0)
            for department, members in by_department.items()
        }
        self.nearest: dict[tuple[str, bool], _DemoAgency] = {}
        self.descriptions: dict[tuple[str, int, str, str], str] = {}
        self.folded: dict[str, str] = {}
        today = now.astimezone(PARIS).date()
        self.days: list[date] = [today + timedelta(days=d) for d in range(HORIZON_DAYS)]
        self.instants: dict[tuple[str, int, int], datetime] = {}
        self.created = [now - timedelta(days=d, hours=h) for d in range(5, 31) for h in (3, 9)]

    # -- pieces

    def _nearest_agency(self, town: _Town, *, public: bool = False) -> _DemoAgency:
        key = (town.insee, public)
        found = self.nearest.get(key)
        if found is None:
            scale = math.cos(math.radians(town.lat)) ** 2
            found = min(
                (a for a in self.agencies if not public or a.plan.kind != "employer"),
                key=lambda a: (a.lat - town.lat) ** 2 + scale * (a.lon - town.lon) ** 2,
            )
            self.nearest[key] = found
        return found

    def _instant(self, zone: str, day: int, minute: int) -> datetime:
        key = (zone, day, minute)
        found = self.instants.get(key)
        if found is None:
            d = self.days[day]
            local = datetime(
                d.year, d.month, d.day, minute // 60, minute % 60, tzinfo=ZoneInfo(zone)
            )
            found = self.instants[key] = local.astimezone(UTC)
        return found

    def _schedule(self, type_: str, zone: str) -> tuple[datetime, datetime]:
        rng = self.rng
        day = rng.randrange(HORIZON_DAYS)
        weekday = self.days[day].weekday()
        # Every draw is made whatever the date, so that the same seed gives the same events
        # (but for their dates) whenever it is loaded.
        if rng.random() < 0.85 and weekday >= 5:  # weekends mostly move to the Monday after
            day += 7 - weekday
            if day >= HORIZON_DAYS:
                day -= 7
        durations, weights = DURATIONS.get(type_, DEFAULT_DURATIONS)
        duration = rng.choices(durations, weights)[0]
        # Starts on the half hour from 9:00, and ends by 17:00.
        start_minute = 9 * 60 + 30 * rng.randrange((8 * 60 - duration) // 30 + 1)
        starts = self._instant(zone, day, start_minute)
        if starts <= self.now:  # today, already past: the same time a week later
            starts = self._instant(zone, day + 7, start_minute)
        return starts, starts + timedelta(minutes=duration)

    def _sectors(self, agency: _DemoAgency, type_: str) -> list[str]:
        rng = self.rng
        if agency.plan.sectors:
            own = agency.plan.sectors
            return sorted(rng.sample(own, rng.randint(1, len(own))))
        if rng.random() < ALL_SECTORS_SHARE[type_]:
            return ["all"]
        draw = self.apec_sector_draw if agency.plan.kind == "apec" else self.sector_draw
        count = rng.choices((1, 2, 3), (6, 3, 1))[0]
        return sorted({draw.draw(rng) for _ in range(count)})

    def _title(self, agency: _DemoAgency, type_: str, sector: str, company: str) -> str:
        words = SECTOR_WORDS[sector]
        templates = TITLES[type_] + KIND_TITLES.get((agency.plan.kind, type_), ())
        if words.metiers is None:
            templates = tuple(t for t in templates if "{metiers}" not in t)
        template = self.rng.choice(templates)
        return template.format(
            c=NBSP + ":",
            q=NBSP + "?",
            metiers=words.metiers,
            job=words.job,
            company=company,
        )

    def _fold(self, text_: str) -> str:
        found = self.folded.get(text_)
        if found is None:
            found = self.folded[text_] = search_key(text_)
        return found

    def _description(self, type_: str, sector: str, fmt: str) -> str:
        variant = self.rng.randrange(len(DESCRIPTIONS[type_]))
        key = (type_, variant, sector, fmt)
        found = self.descriptions.get(key)
        if found is None:
            domaine = SECTOR_WORDS[sector].domaine
            raw = DESCRIPTIONS[type_][variant].format(domaine=domaine, de_domaine=de(domaine))
            found = self.descriptions[key] = sanitise_html(typeset(raw + FORMAT_NOTES[fmt]))
        return found

    # -- one event

    def event(self, event_id: int, index: int) -> tuple[dict[str, Any], list[str], bool]:
        """The row of one event, its sectors, and whether it should be filled up."""
        rng = self.rng
        if self.large:
            town = self.national.draw(rng)
            agency = self._nearest_agency(town)
        else:
            agency = self.agency_draw.draw(rng)
            town = agency.plan.town
            if rng.random() < 0.35:
                town = self.departments[town.department].draw(rng)
        if index < _FORCED and agency.plan.kind == "employer":
            # The first events show every type and sector: not an employer's business.
            agency = self._nearest_agency(town, public=True)
            if not self.large:
                town = agency.plan.town
        type_ = self.type_draws[agency.plan.kind].draw(rng)
        if index < len(_TYPES):  # every type, sector and format shows up in any load
            type_ = _TYPES[index]
        sectors = self._sectors(agency, type_)
        if index < _FORCED:
            sectors = [_FORCED_SECTORS[index]]

        if type_ in ONLINE_ONLY:
            fmt = "online"
        elif type_ in ONSITE_ONLY:
            fmt = "onsite"
        else:
            fmt = rng.choices(_FORMATS, (72, 14, 14))[0]
        if 3 <= index < 6:
            fmt = _FORMATS[index - 3]

        zone = _OVERSEAS_ZONES.get(town.department, "Europe/Paris")
        starts, ends = self._schedule(type_, zone)
        if agency.plan.kind == "employer":
            company = agency.plan.name
        else:
            company = rng.choice(COMPANIES[sectors[0]])
        title = self._title(agency, type_, sectors[0], company)
        title_key = self._fold(title)

        venue_name = venue_address = venue_postal_code = venue_city = None
        lat = lon = cell = None
        online_url = None
        if fmt != "online":
            if agency.plan.kind == "employer" and town == agency.plan.town:
                venue_name, venue_address = agency.plan.name, agency.plan.address
                lat, lon = _jitter(rng, town.lat, town.lon, 2.0)
            elif type_ == "company_visit" or company in title:  # at the company's own site
                venue_name, venue_address = company, _address(rng, ACTIVITY_STREETS)
                lat, lon = _jitter(rng, town.lat, town.lon, 3.0)
            elif town == agency.plan.town and rng.random() < 0.4:
                venue_name, venue_address = agency.plan.name, agency.plan.address
                lat, lon = agency.lat, agency.lon
            else:
                venues = BIG_VENUES if type_ == "forum" else VENUES
                venue_name = rng.choice(venues)
                venue_address = _address(rng)
                lat, lon = _jitter(rng, town.lat, town.lon, 3.0)
            venue_postal_code, venue_city = town.postal_code, town.city
            cell = geo_cell(lat, lon)
            where = a_city(town.city)
            title = f"{title} {where}"
            title_key = f"{title_key} {self._fold(where)}"
        if fmt != "onsite":
            online_url = f"https://visio.example.org/{URL_STEMS[type_]}-{rng.getrandbits(48):012x}"

        empty_share, low, high = CAPACITY[type_]
        capacity = None if rng.random() < empty_share else rng.randint(low, high)
        remote_capacity = rng.randint(2, 20) * 5 if fmt == "hybrid" else None
        offers_share, low, high = JOB_OFFERS.get(type_, (0.05, 1, 10))
        job_offers = rng.randint(low, high) if rng.random() < offers_share else None
        notes = None
        if rng.random() < 0.35:
            notes = typeset(ONLINE_ACCESSIBILITY if fmt == "online" else rng.choice(ACCESSIBILITY))
        waitlist = rng.random() < 0.85

        created_at = rng.choice(self.created)
        updated_at = created_at
        status, message, revision = "scheduled", None, 1
        closed = False
        opens_at = closes_at = None
        window = rng.random()
        hours_ago, days_ahead = rng.randint(1, 72), rng.randint(1, 3)
        if index == 20 or (index > 21 and window < 0.03):
            status, message, revision = "cancelled", typeset(rng.choice(CANCELLATIONS)), 2
            updated_at = self.now - timedelta(hours=hours_ago)
        elif window < 0.06:
            closed = True
        elif window < 0.09:  # closed at a deadline already passed
            closes_at = self.now - timedelta(hours=hours_ago)
        elif window < 0.11 and starts - self.now > timedelta(days=5):  # not open yet
            opens_at = self.now + timedelta(days=days_ahead)
            closes_at = starts - timedelta(days=1)
        elif window < 0.5:
            closes_at = starts - timedelta(hours=(2, 24, 48)[days_ahead - 1])
            if window < 0.2 and closes_at > created_at:
                opens_at = created_at
        fill = (
            status != "cancelled"
            and (index == 21 or (index > 21 and rng.random() < self.full_share))
            and self.full_left > 0
        )
        self.full_left -= fill
        if fill and capacity is None:
            capacity = rng.randint(10, 25)
        if fill and capacity is not None and capacity > 25:
            capacity = rng.randint(10, 25)
        if fill and remote_capacity is not None and remote_capacity > 15:
            remote_capacity = rng.randint(5, 15)

        row: dict[str, Any] = {
            "id": event_id,
            "agency_id": agency.id,
            "title": title,
            "description_html": self._description(type_, sectors[0], fmt),
            "type": type_,
            "format": fmt,
            "starts_at": starts,
            "ends_at": ends,
            "timezone": zone,
            "venue_name": venue_name,
            "venue_address": venue_address,
            "venue_postal_code": venue_postal_code,
            "venue_city": venue_city,
            "venue_lat": lat,
            "venue_lon": lon,
            "geo_cell": cell,
            "sector_mask": sector_mask(sectors),
            # = search_key(title, venue_name, venue_city), from folded pieces: folding works
            # character by character, and a cache of pieces stays small where one of whole
            # titles would not.
            "search_key": " ".join(
                [title_key]
                + ([self._fold(venue_name)] if venue_name else [])
                + ([self._fold(venue_city)] if venue_city else [])
            ),
            "online_url": online_url,
            "capacity": capacity,
            "remote_capacity": remote_capacity,
            "seats_taken": 0,
            "remote_seats_taken": 0,
            "waitlist": waitlist,
            "registration_opens_at": opens_at,
            "registration_closes_at": closes_at,
            "registration_closed": closed,
            "job_offers": job_offers,
            "accessibility_notes": notes,
            "status": status,
            "cancellation_message": message,
            "revision": revision,
            "created_at": created_at,
            "updated_at": updated_at,
        }
        return row, sectors, fill

    # -- registrations

    def registrations(self, row: dict[str, Any], fill: bool) -> list[dict[str, Any]]:
        """People signed up to an event; sets its seats_taken to match. Never oversells."""
        if row["status"] == "cancelled":
            return []
        rng = self.people
        start: datetime = row["created_at"]
        if row["registration_opens_at"] is not None:
            start = max(start, row["registration_opens_at"])
        end = self.now
        if row["registration_closes_at"] is not None:
            end = min(end, row["registration_closes_at"])
        if start >= end:
            return []
        capacity: int | None = row["capacity"]
        remote_capacity: int | None = row["remote_capacity"]
        hybrid = row["format"] == "hybrid"
        if fill and capacity is not None:
            onsite, remote = capacity, (remote_capacity or 0) if hybrid else 0
            waiting = rng.choice((0, 1, 2)) if row["waitlist"] else 0
        elif not self.large and rng.random() < 0.4:
            onsite = rng.randint(1, 6)
            if capacity is not None:
                onsite = min(onsite, capacity - 1)
            remote = rng.randint(0, 3) if hybrid else 0
            if remote_capacity is not None:
                remote = min(remote, remote_capacity - 1)
            waiting = 0
        else:
            return []
        total = onsite + remote + waiting
        if total <= 0:
            return []
        span = (end - start).total_seconds()
        times = sorted(start + timedelta(seconds=rng.random() * span) for _ in range(total))
        # Remote places are what a hybrid event sells at a distance; an online event's only
        # capacity is `capacity`, and its people attend remotely.
        modes = ["onsite"] * onsite + ["remote"] * remote
        rng.shuffle(modes)
        default_mode = "remote" if row["format"] == "online" else "onsite"
        seen: set[str] = set()
        rows = []
        for position, created_at in enumerate(times):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            local = f"{slugify(first)}.{slugify(last)}".replace("-", "")
            email = f"{local}@example.org"
            suffix = 2
            while email in seen:
                email = f"{local}{suffix}@example.org"
                suffix += 1
            seen.add(email)
            confirmed = position < onsite + remote
            mode = modes[position] if confirmed and hybrid else default_mode
            phone = None
            if rng.random() < 0.6:
                digits = " ".join(f"{rng.randrange(100):02d}" for _ in range(4))
                phone = f"0{rng.choice('67')} {digits}"
            rows.append(
                {
                    "event_id": row["id"],
                    "first_name": first,
                    "last_name": last,
                    "email": email,
                    "phone": phone,
                    "attendance": mode,
                    "status": "confirmed" if confirmed else "waitlisted",
                    "waitlist_position": None if confirmed else position - onsite - remote + 1,
                    "token": secrets.token_urlsafe(24),
                    "checkin_code": new_checkin_code() if confirmed else None,
                    "consent_at": created_at,
                    "created_at": created_at,
                    "updated_at": created_at,
                }
            )
        if hybrid:
            row["seats_taken"], row["remote_seats_taken"] = onsite, remote
        else:
            row["seats_taken"] = onsite + remote
        return rows


# --- Entry point -------------------------------------------------------------------------------


def load_demo(
    db: Session,
    *,
    events: int = 300,
    seed: int = 2026,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Create about forty agencies and `events` events over the eight weeks after `now`.

    Needs the communes table loaded (events_app.places.load_communes); raises RuntimeError
    otherwise, and ValueError for a naive `now` or a negative count. Agencies already made by
    an earlier load are reused and events are added to those already there. Writes in batches
    of BATCH_SIZE events and calls `progress` with the number of events written so far after
    each one. Never commits: the caller does, once, at the end.

    Up to LARGE events, each agency's events are around its own town, with a few hundred
    registrations; beyond, for benchmarks, venues are spread over all of France by
    population and only a few full events have registrations.
    """
    if now is None:
        now = datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if events < 0:
        raise ValueError("events must not be negative")
    towns = _load_towns(db)
    if not towns:
        raise RuntimeError("the communes table is empty: run `events-app migrate` first")

    agencies = _create_agencies(db, _plan_agencies(towns, random.Random(f"{seed}:agencies")))
    generator = _Generator(agencies=agencies, towns=towns, events=events, seed=seed, now=now)

    # Ids are given explicitly so that a batch's sectors and registrations can name their
    # event without a RETURNING round trip; PostgreSQL's sequence is moved past them below.
    first_id = (db.scalar(select(func.max(Event.id))) or 0) + 1
    registrations = 0
    for batch_start in range(0, events, BATCH_SIZE):
        event_rows: list[dict[str, Any]] = []
        sector_rows: list[dict[str, Any]] = []
        registration_rows: list[dict[str, Any]] = []
        for index in range(batch_start, min(events, batch_start + BATCH_SIZE)):
            event_id = first_id + index
            row, sectors, fill = generator.event(event_id, index)
            registration_rows.extend(generator.registrations(row, fill))
            event_rows.append(row)
            sector_rows.extend({"event_id": event_id, "sector": code} for code in sectors)
        # render_nulls: every row then names the same columns and the batch goes out as one
        # executemany; otherwise the ORM splits it wherever a None falls (row by row here).
        db.execute(insert(Event).execution_options(render_nulls=True), event_rows)
        db.execute(insert(EventSector), sector_rows)
        if registration_rows:
            db.execute(insert(Registration).execution_options(render_nulls=True), registration_rows)
        registrations += len(registration_rows)
        if progress is not None:
            progress(batch_start + len(event_rows))

    if events and db.get_bind().dialect.name == "postgresql":
        db.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('events', 'id'), "
                "(SELECT max(id) FROM events))"
            )
        )
    return DemoSummary(agencies=len(agencies), events=events, registrations=registrations)
