"""The `events-app` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sqlalchemy import func, select

from events_app.db import Database
from events_app.errors import DomainError
from events_app.settings import Settings, load_settings


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run(
        "events_app.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        server_header=False,
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
    try:
        code: int = args.handler(settings, args)
    except DomainError as exc:
        where = f" ({exc.field})" if exc.field else ""
        sys.stderr.write(f"Erreur{where} : {exc.message}\n")
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
