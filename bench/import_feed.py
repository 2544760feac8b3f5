"""Import a generated 100,000-event ft-json feed, then import it again unchanged.

    python -m bench.import_feed [--events N] [--database-url URL]

Each import runs as its own `events-app import` process, so the figures are those of the
importer alone: wall time of the process, and its peak resident memory (ru_maxrss from
os.wait4). Linux carries a parent's peak over fork and exec into the child's ru_maxrss, so the
database set-up and the generator run in another process too, and this launcher stays small
(its own peak is printed: it is the floor of the measure). Targets (spec §5): first import
under 60 s and 300 MB, the unchanged re-import under 5 s (spec §9).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from events_app import migrate
from events_app.agencies import create_agency
from events_app.db import Database
from events_app.models import Commune, CommunePostalCode, Event, ImportRun
from events_app.places import load_communes

TARGET_SECONDS = 60.0
TARGET_MB = 300.0
TARGET_REIMPORT_SECONDS = 5.0
PLACES = 400
DETAIL_URL = "https://mesevenementsemploi.francetravail.fr/mes-evenements-emploi/evenement/"

TYPES = [
    "Job dating",
    "Atelier",
    "Salon",
    "Réunion d'information",
    "Visite d'entreprise",
    "Conférence",
    "Information collective",
    "Forum",
]
SECTORS = {
    "A": "agriculture",
    "D": "commerce et vente",
    "F": "bâtiment et travaux publics",
    "G": "hôtellerie-restauration",
    "H": "industrie",
    "J": "santé",
    "K": "services à la personne",
    "M": "support à l'entreprise",
    "N": "transport et logistique",
}
PUBLICS = ["Demandeurs d'emploi", "Jeunes de moins de 26 ans", "Seniors", "Tout public"]


@dataclass(frozen=True)
class Place:
    city: str
    postal_code: str
    insee: str
    lat: float
    lon: float


def _places(database: Database) -> list[Place]:
    """The most populous communes, with one of their postal codes."""
    with database.transaction() as db:
        rows = db.execute(
            select(
                Commune.name,
                func.min(CommunePostalCode.postal_code),
                Commune.insee,
                Commune.lat,
                Commune.lon,
            )
            .join(CommunePostalCode, CommunePostalCode.insee == Commune.insee)
            .where(Commune.is_arrondissement.is_(False))
            .group_by(Commune.insee, Commune.name, Commune.lat, Commune.lon, Commune.population)
            .order_by(Commune.population.desc())
            .limit(PLACES)
        ).all()
    return [Place(*row) for row in rows]


def _event(n: int, rng: random.Random, places: list[Place], first_day: date) -> dict[str, object]:
    place = rng.choice(places)
    kind = rng.choice(TYPES)
    codes = sorted(rng.sample(sorted(SECTORS), rng.randint(1, 3)))
    sector = SECTORS[codes[0]]
    day = first_day + timedelta(days=rng.randrange(300))
    start_hour = rng.choice([7, 8, 9, 12, 13, 14])
    duration = rng.choice([1, 2, 3, 4])
    remote = rng.random() < 0.1
    capacity = rng.choice([10, 12, 15, 20, 25, 30, 40, 50, 80, 120])
    agency = f"France Travail {place.city}"
    return {
        "id": 4_000_000 + n,
        "titre": f"{kind} {sector} à {place.city}",
        "description": (
            f"<p>Venez rencontrer des employeurs du secteur <b>{sector}</b> qui recrutent "
            f"près de {place.city}.</p><ul><li>Présentation des métiers</li>"
            f"<li>Entretiens individuels</li><li>Conseils pour votre CV</li></ul>"
            f"<p>Pensez à apporter plusieurs exemplaires de votre CV. Référence {n}.</p>"
        ),
        "dateEvenement": f"{day.isoformat()}T{start_hour:02d}:00:00.000+00:00",
        "heureDebut": f"{start_hour:02d}:00:00",
        "heureFin": f"{start_hour + duration:02d}:30:00",
        "timezone": "Europe/Paris",
        "type": kind,
        "modalites": "à distance" if remote else "en physique",
        "objectifs": "Rencontrer des recruteurs et décrocher un entretien",
        "publics": rng.sample(PUBLICS, 2),
        "ville": place.city,
        "codePostal": place.postal_code,
        "codeInsee": place.insee,
        "latitude": round(place.lat + rng.uniform(-0.02, 0.02), 6),
        "longitude": round(place.lon + rng.uniform(-0.02, 0.02), 6),
        "nombrePlaceTotalPresentiel": 0 if remote else capacity,
        "nombrePlaceTotalDistance": capacity if remote else 0,
        "nombreInscritPresentiel": 0 if remote else rng.randrange(capacity),
        "nombreInscritDistance": rng.randrange(capacity) if remote else 0,
        "codesRome": codes,
        "multisectoriel": rng.random() < 0.05,
        "urlDetailEvenement": f"{DETAIL_URL}{4_000_000 + n}",
        "libelleOrganisateurPrincipal": agency,
        "libelleEtablissement": f"Agence {agency}",
    }


def generate(path: Path, count: int, places: list[Place], *, seed: int = 2026) -> int:
    """Write the feed, one event at a time; return its size in bytes."""
    rng = random.Random(seed)
    first_day = datetime.now(UTC).date() + timedelta(days=2)
    with path.open("w", encoding="utf-8") as out:
        out.write(f'{{"totalElements": {count}, "content": [\n')
        for n in range(count):
            if n:
                out.write(",\n")
            out.write(json.dumps(_event(n, rng, places, first_day), ensure_ascii=False))
        out.write("\n]}\n")
    return path.stat().st_size


@dataclass(frozen=True)
class Measure:
    seconds: float
    # CPU time of the import process: steadier than wall time on a shared machine.
    cpu_seconds: float
    peak_mb: float


def timed_import(database_url: str, slug: str, source: Path, log: Path) -> Measure:
    """Run `events-app import` in a child process; its wall time and peak RSS."""
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    command = [
        sys.executable,
        "-m",
        "events_app.cli",
        "import",
        "--format",
        "ft-json",
        "--agency",
        slug,
        str(source),
    ]
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"import failed ({process.returncode}):\n{log.read_text()[-3000:]}")
    # ru_maxrss is in KiB on Linux.
    return Measure(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def prepare(url: str, workdir: str, events: int) -> tuple[str, int]:
    """Build the database and the feed (in a child process); return the agency slug and the
    feed's size."""
    migrate.upgrade(url)
    database = Database(url)
    try:
        slug = f"bench-{uuid.uuid4().hex[:8]}"
        with database.transaction() as db:
            load_communes(db)
            create_agency(db, slug=slug, name="Agence du banc d'essai")
        size = generate(Path(workdir) / "feed.json", events, _places(database))
    finally:
        database.dispose()
    return slug, size


def _last_run(database: Database) -> ImportRun:
    with database.transaction() as db:
        run = db.scalars(select(ImportRun).order_by(ImportRun.id.desc()).limit(1)).one()
        db.expunge(run)
        return run


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(prog="python -m bench.import_feed", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="default: a new temporary SQLite")
    parser.add_argument("--prepare-into", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.prepare_into:  # the child that builds the database and the feed
        slug, size = prepare(args.database_url, args.prepare_into, args.events)
        print(json.dumps({"slug": slug, "size": size}))
        return {"slug": slug, "size": size}

    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        workdir = Path(tmp)
        url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
        built = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.import_feed",
                "--events",
                str(args.events),
                "--database-url",
                url,
                "--prepare-into",
                tmp,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if built.returncode != 0:
            raise SystemExit(f"set-up failed:\n{built.stderr[-3000:]}")
        prepared = json.loads(built.stdout.strip().splitlines()[-1])
        slug, size = prepared["slug"], prepared["size"]
        feed = workdir / "feed.json"
        launcher_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        database = Database(url)
        try:
            first = timed_import(url, slug, feed, workdir / "first.log")
            first_run = _last_run(database)
            again = timed_import(url, slug, feed, workdir / "again.log")
            again_run = _last_run(database)
            with database.transaction() as db:
                stored = db.scalar(
                    select(func.count(Event.id)).where(Event.feed_id == first_run.feed_id)
                )
        finally:
            database.dispose()

    figures: dict[str, object] = {
        "events": args.events,
        "feed_mb": round(size / 1_000_000, 1),
        "backend": url.split(":", 1)[0],
        "first_import_s": round(first.seconds, 2),
        "first_import_cpu_s": round(first.cpu_seconds, 2),
        "first_import_peak_mb": round(first.peak_mb, 1),
        "reimport_s": round(again.seconds, 2),
        "reimport_cpu_s": round(again.cpu_seconds, 2),
        "reimport_peak_mb": round(again.peak_mb, 1),
        "launcher_peak_mb": round(launcher_mb, 1),
        "created": first_run.created,
        "unchanged_on_reimport": again_run.unchanged,
        "stored": stored,
    }
    checks = {
        "first import < 60 s": first.seconds < TARGET_SECONDS,
        "peak memory < 300 MB": max(first.peak_mb, again.peak_mb) < TARGET_MB,
        "re-import < 5 s": again.seconds < TARGET_REIMPORT_SECONDS,
        "every event created, then unchanged": (
            first_run.status == again_run.status == "succeeded"
            and first_run.created == stored == args.events
            and again_run.unchanged == args.events
            and again_run.created == again_run.updated == again_run.cancelled == 0
        ),
    }
    figures["checks"] = checks
    figures["passed"] = all(checks.values())

    print(f"import_feed: {args.events} events, feed {figures['feed_mb']} MB, {figures['backend']}")
    print(f"  {'':<14}{'seconds':>10}{'CPU s':>8}{'peak RSS MB':>14}")
    for label, measure in (("first import", first), ("re-import", again)):
        print(
            f"  {label:<14}{measure.seconds:>10.1f}{measure.cpu_seconds:>8.1f}"
            f"{measure.peak_mb:>14.0f}"
        )
    print(f"  (launcher's own peak, the floor of the memory figures: {launcher_mb:.0f} MB)")
    for label, ok in checks.items():
        print(f"  {'pass' if ok else 'MISS'}  {label}")
    return figures


if __name__ == "__main__":
    raise SystemExit(0 if main().get("passed", True) else 1)
