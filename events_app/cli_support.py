"""What keeps the `events-app` command to one French line per mistake.

- `Parser`: argparse with French help and usage errors on one line (exit 2);
- `port`, `count`: argument types that refuse out-of-range values by name;
- `check_address`: a bind test before uvicorn starts, so a busy port is one clear line;
- `check_database`: a missing or unmigrated database is named with the command that fixes it,
  and a read-only command never creates an empty SQLite file;
- `explain`: the line for an exception that reached the top (database unreachable, malformed
  DATABASE_URL, bad setting, anything unexpected).
"""

from __future__ import annotations

import argparse
import errno
import re
import socket
import sys
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy.engine import URL

MIGRATE_HINT = "lancez « events-app migrate »"
URL_FORMS = "sqlite:///CHEMIN ou postgresql://UTILISATEUR@HÔTE:PORT/BASE"
BAD_URL = f"DATABASE_URL n'est pas une adresse de base de données valide (attendu : {URL_FORMS})."


class CliError(Exception):
    """A mistake the user can fix: one French line on stderr, then `code` as the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --- argparse in French ----------------------------------------------------------------------


class _Formatter(argparse.HelpFormatter):
    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, "utilisation : " if prefix is None else prefix)


def _translate(message: str) -> str:
    """argparse's English usage errors (Python 3.11 to 3.13), in French."""
    if m := re.fullmatch(r"the following arguments are required: (.*)", message):
        return f"argument(s) obligatoire(s) manquant(s) : {m[1]}"
    if m := re.fullmatch(r"unrecognized arguments: (.*)", message):
        return f"argument(s) inconnu(s) : {m[1]}"
    if m := re.fullmatch(r"argument (\S+): (.*)", message, flags=re.DOTALL):
        name, detail = m[1], m[2]
        if c := re.fullmatch(r"invalid choice: '?(.*?)'? \(choose from (.*)\)", detail):
            choices = c[2].replace("'", "")
            if name in ("COMMANDE", "ACTION"):
                return f"{name.lower()} inconnue « {c[1]} » ({name.lower()}s : {choices})"
            return f"argument {name} : choix inconnu « {c[1]} » (choix possibles : {choices})"
        if v := re.fullmatch(r"invalid (\w+) value: '(.*)'", detail):
            expected = {"int": "un nombre entier", "float": "un nombre"}.get(v[1], "une valeur")
            return f"argument {name} : {expected} est attendu, pas « {v[2]} »"
        if re.fullmatch(r"expected one argument", detail):
            return f"argument {name} : une valeur est attendue"
        return f"argument {name} : {detail}"
    return message


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose help is in French and whose usage errors are one French line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self._positionals.title = "arguments"
        self._optionals.title = "options"
        self.add_argument("-h", "--help", action="help", help="affiche cette aide")

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog} : {_translate(message)} (aide : {self.prog} --help)\n")
        raise SystemExit(2)


def port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"un numéro de port est attendu, pas « {value} »"
        ) from None
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"le port va de 1 à 65535, pas {number}")
    return number


def count(value: str) -> int:
    """A whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"un nombre entier est attendu, pas « {value} »") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"un nombre d'au moins 1 est attendu, pas {number}")
    return number


# --- where the server listens ----------------------------------------------------------------


def check_address(host: str, port: int) -> None:
    """Raise CliError when uvicorn could not listen on host:port (tested by binding it)."""
    # The same socket as uvicorn's: IPv6 when the host has a colon, SO_REUSEADDR on.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except socket.gaierror:
        raise CliError(
            f"Adresse d'écoute inconnue : « {host} » ; choisissez-en une autre avec HOST "
            "(par exemple HOST=127.0.0.1 make run, ou events-app serve --host 127.0.0.1)."
        ) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CliError(
                f"Le port {port} est déjà utilisé sur {host} ; choisissez-en un autre avec PORT "
                f"(par exemple PORT={port + 1} make run, ou events-app serve --port {port + 1})."
            ) from None
        if exc.errno == errno.EACCES:
            raise CliError(
                f"Le port {port} est réservé à l'administrateur ; choisissez-en un au-delà de "
                "1023 avec PORT (par exemple PORT=8000 make run)."
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise CliError(
                f"L'adresse {host} n'est pas celle de cette machine ; choisissez-en une autre "
                "avec HOST (par exemple HOST=127.0.0.1 make run)."
            ) from None
        raise CliError(
            f"Impossible d'écouter sur {host}:{port} ({exc.strerror}) ; changez HOST ou PORT."
        ) from None


# --- the database ------------------------------------------------------------------------------


def parse_database_url(url: str) -> URL:
    """The URL with our drivers; CliError (exit 2) when it is malformed or of another kind."""
    from sqlalchemy.exc import ArgumentError

    from events_app.db import normalise_url

    try:
        parsed = normalise_url(url)
    except (ArgumentError, ValueError):
        raise CliError(BAD_URL, 2) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise CliError(
            f"DATABASE_URL désigne une base « {backend} », qui n'est pas prise en charge "
            f"(attendu : {URL_FORMS}).",
            2,
        )
    return parsed


def describe_database(parsed: URL) -> str:
    if parsed.get_backend_name() == "sqlite":
        return str(Path(parsed.database or "").resolve())
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    return f"« {parsed.database} » sur {where}"


def check_database(url: str) -> None:
    """Raise CliError unless the database exists and is migrated to this code's head.

    A missing SQLite file is reported, not created (connecting would create it).
    """
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from events_app.db import create_db_engine
    from events_app.migrate import alembic_config

    parsed = parse_database_url(url)
    name = describe_database(parsed)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path and path != ":memory:" and not path.startswith("file:") and not Path(path).exists():
            raise CliError(
                f"La base de données {name} n'existe pas : {MIGRATE_HINT} pour la créer "
                "(ou choisissez-en une autre avec DATABASE_URL)."
            )
    engine = create_db_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    heads = ScriptDirectory.from_config(alembic_config(url)).get_heads()
    if current is None:
        raise CliError(f"La base de données {name} n'est pas initialisée : {MIGRATE_HINT}.")
    if current not in heads:
        raise CliError(
            f"La base de données {name} n'est pas à la version de ce code (révision {current}, "
            f"attendue {', '.join(heads)}) : {MIGRATE_HINT}."
        )


# --- whatever reaches the top --------------------------------------------------------------------

_PG_REASONS = (
    ("connection refused", "connexion refusée (le serveur tourne-t-il sur ce port ?)"),
    ("could not translate host name", "hôte inconnu"),
    ("name or service not known", "hôte inconnu"),
    ("temporary failure in name resolution", "hôte inconnu"),
    ("timeout expired", "pas de réponse dans le délai"),
    ("no route to host", "hôte injoignable"),
    ("network is unreachable", "réseau injoignable"),
    ("password authentication failed", "authentification refusée (utilisateur ou mot de passe)"),
    ("no password supplied", "mot de passe manquant"),
    ("does not exist", "la base ou l'utilisateur n'existe pas"),
)


def explain(exc: BaseException, database_url: str | None) -> str:
    """One French line for an exception that reached the top of the command."""
    from sqlalchemy.exc import ArgumentError, OperationalError

    if isinstance(exc, ArgumentError) and database_url is not None:
        return (
            f"DATABASE_URL n'est pas une adresse de base de données valide (attendu : {URL_FORMS})."
        )
    if isinstance(exc, OperationalError) and database_url is not None:
        try:
            name = describe_database(parse_database_url(database_url))
        except CliError as error:
            return error.message
        detail = str(exc.orig or exc).strip()
        lowered = detail.lower()
        if database_url.startswith("sqlite"):
            first = detail.splitlines()[0] if detail else type(exc).__name__
            if "unable to open" in lowered:
                return f"Impossible d'ouvrir la base SQLite {name} : le dossier existe-t-il ?"
            return f"Erreur de la base SQLite {name} : {first}."
        reason = next((fr for en, fr in _PG_REASONS if en in lowered), None)
        if reason is None:
            reason = detail.splitlines()[-1].strip() if detail else type(exc).__name__
        return f"Base de données injoignable (DATABASE_URL, {name}) : {reason}."
    if isinstance(exc, ValueError) and (
        m := re.match(r"Config '(\w+)' has value '(.*)'", str(exc))
    ):
        return f"La variable d'environnement {m[1]} a une valeur invalide : « {m[2]} »."
    first = (str(exc).strip().splitlines() or [""])[0]
    detail = f" : {first}" if first else ""
    return (
        f"Erreur inattendue ({type(exc).__name__}{detail}). "
        "Relancez avec EVENTS_APP_DEBUG=1 pour voir le détail."
    )
