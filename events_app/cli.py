"""The `events-app` command."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from events_app.cli_support import (
    CliError,
    Parser,
    check_address,
    check_database,
    count,
    explain,
    parse_database_url,
    port,
)
from events_app.db import Database
from events_app.errors import DomainError
from events_app.settings import Settings, debug_enabled, load_settings
from events_app.vocab import AGENCY_KINDS, FEED_FORMATS

if TYPE_CHECKING:
    from importers.run import RunSummary


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def cmd_serve(
    settings: Settings, args: argparse.Namespace, *, app: str = "events_app.app:create_app"
) -> int:
    """Serve an app factory with uvicorn. The benchmarks serve their hello-world baseline
    through here too (`app`), so that both are served with exactly these options."""
    import uvicorn

    # uvicorn would print an English traceback and exit 3 on a busy port: say it in one line.
    check_address(args.host, args.port)
    if getattr(args, "check", False):
        return 0
    if app == "events_app.app:create_app":
        from importers.run import interrupt_dead_runs_at_start

        interrupt_dead_runs_at_start(Database(settings.database_url))

    uvicorn.run(
        app,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        # X-Forwarded-For is read by the app itself, from FORWARDED_ALLOW_IPS only (uvicorn
        # would trust 127.0.0.1 by default).
        proxy_headers=False,
        server_header=False,
        # Requests are logged by the reverse proxy in front; uvicorn's own access log line
        # costs about 5 % of a search and a third of a cached answer.
        access_log=False,
    )
    return 0


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from events_app import migrate
    from events_app.places import load_communes

    parse_database_url(settings.database_url)  # a malformed URL is named, not a traceback
    migrate.upgrade(settings.database_url)
    database = Database(settings.database_url)
    try:
        with database.transaction() as db:
            loaded = load_communes(db)
    finally:
        database.dispose()
    _out("Base de données à jour.")
    if loaded:
        _out(f"{loaded} communes chargées.")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from events_app.demo import load_demo
    from events_app.models import Event

    database = Database(settings.database_url)
    try:
        with database.transaction() as db:
            if args.if_empty and db.scalar(select(func.count(Event.id))):
                _out(
                    "La base contient déjà des événements : données de démonstration non chargées."
                )
                return 0
            summary = load_demo(db, events=args.events, seed=args.seed)
    finally:
        database.dispose()
    _out(
        f"Données de démonstration chargées : {summary.agencies} organismes, "
        f"{summary.events} événements, {summary.registrations} inscriptions."
    )
    return 0


def cmd_create_agency(settings: Settings, args: argparse.Namespace) -> int:
    from events_app.agencies import create_agency

    database = Database(settings.database_url)
    try:
        with database.transaction() as db:
            agency, token = create_agency(db, slug=args.slug, name=args.name, kind=args.kind)
            slug = agency.slug
    finally:
        database.dispose()
    _out(f"Organisme « {args.name} » créé ({slug}). Jeton d'API (affiché une seule fois) :")
    _out(token)
    return 0


def _print_summary(summary: RunSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        title=f"Import n° {summary.run_id} : {STATUS_LABELS.get(summary.status, summary.status)}"
    )
    for column in ("créés", "mis à jour", "inchangés", "annulés", "rejetés"):
        table.add_column(column, justify="right")
    table.add_row(
        *(
            str(n)
            for n in (
                summary.created,
                summary.updated,
                summary.unchanged,
                summary.cancelled,
                summary.rejected,
            )
        )
    )
    console.print(table)
    # One line per rejected row, with each of its reasons.
    reasons: dict[object, list[str]] = {}
    for row in summary.rejected_rows:
        field = f"[{row['field']}] " if row.get("field") else ""
        reasons.setdefault(row["line"], []).append(f"{field}{row['reason']}")
    for line, texts in list(reasons.items())[:50]:
        console.print(f"  ligne {line} : {' ; '.join(texts)}", markup=False, soft_wrap=True)
    if len(reasons) > 50:
        console.print(f"  … et {len(reasons) - 50} autres lignes rejetées")
    for warning in summary.warnings[:20]:
        console.print(f"  avertissement : {warning}", markup=False)


STATUS_LABELS = {
    "succeeded": "réussi",
    "failed": "échec",
    "refused": "refusé",
    "not_modified": "flux inchangé",
    "running": "en cours",
    "interrupted": "interrompu",
}


def _run_with_progress(settings: Settings, feed_id: int, source: str | None) -> RunSummary:
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from importers.run import run_import

    database = Database(settings.database_url)
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True) as bar:
            task = bar.add_task("Lecture du flux…")

            def progress(count: int) -> None:
                bar.update(task, description=f"{count} lignes lues…")

            return run_import(database, settings, feed_id=feed_id, source=source, progress=progress)
    finally:
        database.dispose()


def _finish_run(summary: RunSummary) -> int:
    _print_summary(summary)
    if summary.status in ("succeeded", "not_modified"):
        return 0
    sys.stderr.write(f"Échec de l'import : {summary.error}\n")
    return 1


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from events_app.feeds import forget_unread_feed, get_agency_by_slug, source_feed

    # Only a path is resolved: a URL, and another scheme (file://, ftp://) too, reaches the
    # fetcher as given, which refuses the latter by name instead of reporting a missing file.
    if args.source is None:
        if args.format != "ft-api":
            sys.stderr.write("Indiquez la source à importer (un fichier ou une adresse).\n")
            return 2
        from importers.ftapi import DEFAULT_BASE_URL

        args.source = DEFAULT_BASE_URL
    source = args.source if "://" in args.source else str(Path(args.source).resolve())
    if "://" not in args.source:
        _check_file_format(Path(source), args.format)
    database = Database(settings.database_url)
    try:
        with database.transaction() as db:
            agency = get_agency_by_slug(db, args.agency)
            feed = source_feed(db, agency_id=agency.id, source=source, format=args.format)
            feed_id, new_feed = feed.id, feed.last_run_at is None
        summary = _run_with_progress(settings, feed_id, source)
        if summary.status == "failed" and new_feed:
            # Only a run that read the source creates a feed: a missing file or a document of
            # another format leaves nothing behind (the error is printed below).
            with database.transaction(lock=True) as db:
                forget_unread_feed(db, feed_id)
    finally:
        database.dispose()
    return _finish_run(summary)


FORMAT_NAMES = {"ft-json": "JSON France Travail", "ics": "iCalendar", "csv": "CSV"}


def _check_file_format(path: Path, declared: str) -> None:
    """Refuse a local file whose content is plainly of another format than --format."""
    from importers.sniff import guess_format

    try:
        with path.open("rb") as file:
            head = file.read(64 * 1024)
    except OSError:
        return  # the importer reports an unreadable file itself, by name
    guessed = guess_format(head)
    if guessed is None or guessed == declared:
        return
    raise CliError(
        f"« {path.name} » n'est pas au format {FORMAT_NAMES[declared]} : il ressemble à un "
        f"fichier {FORMAT_NAMES[guessed]} ; relancez avec --format {guessed}.",
        2,
    )


def _every(seconds: int) -> str:
    for unit, singular, plural in ((86400, "chaque jour", "j"), (3600, "chaque heure", "h")):
        if seconds % unit == 0:
            return singular if seconds == unit else f"toutes les {seconds // unit} {plural}"
    minutes = max(seconds // 60, 1)
    return "chaque minute" if minutes == 1 else f"toutes les {minutes} min"


def cmd_jobs(settings: Settings, args: argparse.Namespace) -> int:
    from events_app.scheduler import JOBS, describe, run_now

    if args.action == "list":
        width = max(len(name) for name in JOBS)
        for name, (_job, every) in JOBS.items():
            period = _every(every)
            _out(f"{name:<{width}}  {period:<18}  {describe(name)}")
        return 0
    if args.name not in JOBS:
        raise CliError(f"Tâche inconnue : « {args.name} » (tâches : {', '.join(JOBS)}).", 2)
    check_database(settings.database_url)
    _out(f"{args.name} : {run_now(settings, args.name)}")
    return 0


def cmd_feeds(settings: Settings, args: argparse.Namespace) -> int:
    from events_app.feeds import add_feed, feed_runs, get_agency_by_slug, get_feed, list_feeds

    database = Database(settings.database_url)
    try:
        if args.action == "add":
            with database.transaction() as db:
                agency = get_agency_by_slug(db, args.agency)
                feed = add_feed(
                    db,
                    agency_id=agency.id,
                    url=args.url,
                    format=args.format,
                    interval_minutes=args.every,
                )
                _out(f"Flux n° {feed.id} ajouté pour {agency.name}.")
            return 0
        if args.action == "list":
            with database.transaction() as db:
                for feed in list_feeds(db):
                    every = (
                        f"toutes les {feed.interval_minutes} min"
                        if feed.interval_minutes
                        else "à la main"
                    )
                    last = feed.last_run_at.isoformat() if feed.last_run_at else "jamais"
                    _out(
                        f"{feed.id}\t{feed.agency.slug}\t{feed.format}\t{every}\t{last}\t{feed.url}"
                    )
            return 0
        if args.action == "history":
            with database.transaction() as db:
                get_feed(db, args.feed_id)  # an unknown feed is an error, not an empty history
                for run in feed_runs(db, args.feed_id):
                    _out(
                        f"{run.id}\t{run.started_at.isoformat()}\t{run.status}\t"
                        f"+{run.created} ~{run.updated} ={run.unchanged} x{run.cancelled} "
                        f"!{run.rejected}\t{run.error or ''}"
                    )
            return 0
    finally:
        database.dispose()
    return _finish_run(_run_with_progress(settings, args.feed_id, None))


def cmd_scheduler(settings: Settings, args: argparse.Namespace) -> int:
    from events_app.scheduler import run_scheduler

    _out("Planificateur démarré (Ctrl+C pour arrêter).")
    run_scheduler(settings, tick_seconds=args.tick)
    return 0


def cmd_create_staff(settings: Settings, args: argparse.Namespace) -> int:
    from events_app.staff import invite_staff

    database = Database(settings.database_url)
    try:
        with database.transaction() as db:
            _staff, link = invite_staff(
                db, agency_slug=args.agency, email=args.email, name=args.name, settings=settings
            )
    finally:
        database.dispose()
    _out(f"Compte créé pour {args.email}. Lien pour choisir le mot de passe (valable 7 jours) :")
    _out(link)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="events-app", description="Événements emploi")
    sub = parser.add_subparsers(
        dest="command", required=True, title="commandes", metavar="COMMANDE"
    )
    # needs_db: the database must exist and be migrated (checked before the command runs).
    parser.set_defaults(needs_db=True)
    formats = list(FEED_FORMATS)

    serve = sub.add_parser("serve", help="sert l'application (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="adresse d'écoute (127.0.0.1)")
    serve.add_argument("--port", type=port, default=8000, help="port d'écoute, 1 à 65535 (8000)")
    serve.add_argument("--workers", type=count, default=1, help="processus serveurs (1)")
    serve.add_argument(
        "--check", action="store_true", help="vérifie l'adresse et la base, puis s'arrête"
    )
    serve.set_defaults(handler=cmd_serve)

    migrate = sub.add_parser("migrate", help="crée ou met à jour la base, charge les communes")
    migrate.set_defaults(handler=cmd_migrate, needs_db=False)

    demo = sub.add_parser("demo", help="charge les données de démonstration")
    demo.add_argument("--events", type=count, default=300, help="nombre d'événements (300)")
    demo.add_argument("--seed", type=int, default=2026, help=argparse.SUPPRESS)
    demo.add_argument("--if-empty", action="store_true", help="seulement si la base est vide")
    demo.set_defaults(handler=cmd_demo)

    importer = sub.add_parser("import", help="importe un fichier ou une URL pour un organisme")
    importer.add_argument("--format", required=True, choices=formats, help="format du flux")
    importer.add_argument("--agency", required=True, help="identifiant (slug) de l'organisme")
    importer.add_argument(
        "source", nargs="?", help="un chemin ou une URL http(s) (ft-api : l'adresse de l'API)"
    )
    importer.set_defaults(handler=cmd_import)

    feeds = sub.add_parser("feeds", help="liste, ajoute, lance les flux ; leur historique")
    feed_actions = feeds.add_subparsers(
        dest="action", required=True, title="actions", metavar="ACTION"
    )
    feed_actions.add_parser("list", help="liste les flux")
    add = feed_actions.add_parser("add", help="ajoute un flux importé régulièrement")
    add.add_argument("--agency", required=True, help="identifiant (slug) de l'organisme")
    add.add_argument("--format", required=True, choices=formats, help="format du flux")
    add.add_argument("--every", type=int, default=60, help="minutes entre deux imports (60)")
    add.add_argument("url")
    run = feed_actions.add_parser("run", help="importe un flux maintenant")
    run.add_argument("feed_id", type=int, metavar="ID")
    history = feed_actions.add_parser("history", help="historique des imports d'un flux")
    history.add_argument("feed_id", type=int, metavar="ID")
    feeds.set_defaults(handler=cmd_feeds)

    scheduler = sub.add_parser("scheduler", help="exécute les tâches planifiées")
    scheduler.add_argument("--tick", type=int, default=None, help=argparse.SUPPRESS)
    scheduler.set_defaults(handler=cmd_scheduler)

    jobs = sub.add_parser("jobs", help="liste les tâches planifiées ; en lance une maintenant")
    job_actions = jobs.add_subparsers(
        dest="action", required=True, title="actions", metavar="ACTION"
    )
    job_actions.add_parser("list", help="liste les tâches et leur fréquence")
    run_job = job_actions.add_parser("run", help="exécute une tâche une fois, maintenant")
    run_job.add_argument("name", metavar="NOM", help="une tâche de « events-app jobs list »")
    # `jobs list` reads no database; `jobs run` checks it once the name is known.
    jobs.set_defaults(handler=cmd_jobs, needs_db=False)

    staff = sub.add_parser("create-staff", help="invite un membre de l'équipe d'un organisme")
    staff.add_argument("--agency", required=True, help="identifiant (slug) de l'organisme")
    staff.add_argument("--email", required=True)
    staff.add_argument("--name", default=None)
    staff.set_defaults(handler=cmd_create_staff)

    agency = sub.add_parser("create-agency", help="crée un organisme ; son jeton d'API en dernier")
    agency.add_argument("--slug", required=True, help="identifiant dans les adresses")
    agency.add_argument("--name", required=True, help="nom affiché")
    agency.add_argument(
        "--kind",
        default="other",
        choices=list(AGENCY_KINDS),
        help="type : " + ", ".join(f"{k} ({label})" for k, label in AGENCY_KINDS.items()),
    )
    agency.set_defaults(handler=cmd_create_agency)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command. Every mistake ends as one French line on stderr and a non-zero exit
    (2 for usage); the traceback of an unexpected error shows only with EVENTS_APP_DEBUG=1."""
    args = build_parser().parse_args(argv)
    database_url: str | None = None
    try:
        settings = load_settings()
        database_url = settings.database_url
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)s %(message)s"
        )
        logging.getLogger("alembic").setLevel(logging.WARNING)
        # One line per request at INFO would bury the single line a failure prints.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        if args.needs_db:
            check_database(settings.database_url)
        code: int = args.handler(settings, args)
    except DomainError as exc:
        where = f" ({exc.field})" if exc.field else ""
        sys.stderr.write(f"Erreur{where} : {exc.message}\n")
        return 2
    except CliError as exc:
        sys.stderr.write(exc.message + "\n")
        return exc.code
    except KeyboardInterrupt:
        sys.stderr.write("Interrompu.\n")
        return 130
    except Exception as exc:
        if debug_enabled():
            traceback.print_exc()
        sys.stderr.write(explain(exc, database_url) + "\n")
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
