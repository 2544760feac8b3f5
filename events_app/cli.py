"""The `events-app` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from events_app.db import Database
from events_app.errors import DomainError
from events_app.settings import Settings, load_settings

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
    for row in summary.rejected_rows[:50]:
        field = f" [{row['field']}]" if row.get("field") else ""
        console.print(f"  ligne {row['line']}{field} : {row['reason']}", markup=False)
    if len(summary.rejected_rows) > 50:
        console.print(f"  … et {len(summary.rejected_rows) - 50} autres lignes rejetées")
    for warning in summary.warnings[:20]:
        console.print(f"  avertissement : {warning}", markup=False)


STATUS_LABELS = {
    "succeeded": "réussi",
    "failed": "échec",
    "refused": "refusé",
    "not_modified": "flux inchangé",
    "running": "en cours",
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
    from events_app.feeds import get_agency_by_slug, source_feed

    # Only a path is resolved: a URL, and another scheme (file://, ftp://) too, reaches the
    # fetcher as given, which refuses the latter by name instead of reporting a missing file.
    if args.source is None:
        if args.format != "ft-api":
            sys.stderr.write("Indiquez la source à importer (un fichier ou une adresse).\n")
            return 2
        from importers.ftapi import DEFAULT_BASE_URL

        args.source = DEFAULT_BASE_URL
    source = args.source if "://" in args.source else str(Path(args.source).resolve())
    database = Database(settings.database_url)
    try:
        with database.transaction() as db:
            agency = get_agency_by_slug(db, args.agency)
            feed_id = source_feed(db, agency_id=agency.id, source=source, format=args.format).id
    finally:
        database.dispose()
    return _finish_run(_run_with_progress(settings, feed_id, source))


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
    parser = argparse.ArgumentParser(prog="events-app", description="Événements emploi")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the app with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(handler=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply the migrations and load the communes")
    migrate.set_defaults(handler=cmd_migrate)

    demo = sub.add_parser("demo", help="load the demo data set")
    demo.add_argument("--events", type=int, default=300)
    demo.add_argument("--seed", type=int, default=2026)
    demo.add_argument("--if-empty", action="store_true", help="only when there is no event yet")
    demo.set_defaults(handler=cmd_demo)

    importer = sub.add_parser("import", help="import a feed file or URL for an agency")
    importer.add_argument(
        "--format", required=True, choices=["ft-json", "ics", "csv", "ft-api", "jsonld"]
    )
    importer.add_argument("--agency", required=True, help="the agency's slug")
    importer.add_argument(
        "source", nargs="?", help="a path or an http(s) URL (ft-api: the API's base URL)"
    )
    importer.set_defaults(handler=cmd_import)

    feeds = sub.add_parser("feeds", help="list, add, run feeds and show their history")
    feed_actions = feeds.add_subparsers(dest="action", required=True)
    feed_actions.add_parser("list")
    add = feed_actions.add_parser("add")
    add.add_argument("--agency", required=True)
    add.add_argument(
        "--format", required=True, choices=["ft-json", "ics", "csv", "ft-api", "jsonld"]
    )
    add.add_argument("--every", type=int, default=60, help="minutes between imports")
    add.add_argument("url")
    run = feed_actions.add_parser("run")
    run.add_argument("feed_id", type=int)
    history = feed_actions.add_parser("history")
    history.add_argument("feed_id", type=int)
    feeds.set_defaults(handler=cmd_feeds)

    scheduler = sub.add_parser("scheduler", help="run the scheduled jobs in this process")
    scheduler.add_argument("--tick", type=int, default=None, help=argparse.SUPPRESS)
    scheduler.set_defaults(handler=cmd_scheduler)

    staff = sub.add_parser("create-staff", help="invite a staff member of an agency")
    staff.add_argument("--agency", required=True, help="the agency's slug")
    staff.add_argument("--email", required=True)
    staff.add_argument("--name", default=None)
    staff.set_defaults(handler=cmd_create_staff)

    agency = sub.add_parser("create-agency", help="create an agency; prints its API token last")
    agency.add_argument("--slug", required=True)
    agency.add_argument("--name", required=True)
    agency.add_argument("--kind", default="other")
    agency.set_defaults(handler=cmd_create_agency)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # One line per request at INFO would bury the single line a failure prints.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        code: int = args.handler(settings, args)
    except DomainError as exc:
        where = f" ({exc.field})" if exc.field else ""
        sys.stderr.write(f"Erreur{where} : {exc.message}\n")
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
