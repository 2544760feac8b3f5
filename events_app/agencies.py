"""Agencies and their API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from events_app.errors import Conflict, InvalidInput, Unauthorized
from events_app.events import one_line_text
from events_app.models import Agency
from events_app.vocab import AGENCY_KINDS

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_token() -> str:
    return "evt_" + secrets.token_urlsafe(32)


def create_agency(
    db: Session,
    *,
    slug: str,
    name: str,
    kind: str = "other",
    city: str | None = None,
    postal_code: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
) -> tuple[Agency, str]:
    """Create an agency; return it with its API token (shown once, stored hashed)."""
    if not SLUG_RE.match(slug) or len(slug) > 80:
        raise InvalidInput("slug", "Identifiant invalide : lettres minuscules, chiffres et tirets.")
    name = one_line_text(name)
    if not name or len(name) > 200:
        raise InvalidInput(
            "name", "Le nom de l'organisme est obligatoire (200 caractères au plus)."
        )
    if kind not in AGENCY_KINDS:
        raise InvalidInput("kind", f"Type d'organisme inconnu : « {kind} ».")
    if db.scalar(select(Agency.id).where(Agency.slug == slug)) is not None:
        raise Conflict(f"L'identifiant « {slug} » est déjà pris.", field="slug")
    token = new_api_token()
    agency = Agency(
        slug=slug,
        name=name,
        kind=kind,
        city=city,
        postal_code=postal_code,
        lat=lat,
        lon=lon,
        api_token_hash=hash_token(token),
    )
    db.add(agency)
    db.flush()
    return agency, token


def rotate_api_token(db: Session, agency: Agency) -> str:
    token = new_api_token()
    agency.api_token_hash = hash_token(token)
    db.flush()
    return token


def authenticate_agency(db: Session, token: str | None) -> Agency:
    """The agency owning a bearer token. Raises Unauthorized otherwise.

    Only the SHA-256 of tokens is stored, and looked up by equality: the secret itself is never
    compared byte by byte, so the lookup leaks nothing usable through timing.
    """
    if not token:
        raise Unauthorized("Jeton d'accès manquant : en-tête « Authorization: Bearer … ».")
    agency = db.scalar(select(Agency).where(Agency.api_token_hash == hash_token(token)))
    if agency is None:
        raise Unauthorized("Jeton d'accès invalide.")
    return agency


def agency_name(db: Session, slug: str | None) -> str | None:
    """The display name of the agency with this slug (None without one, or unknown)."""
    if not slug:
        return None
    return db.scalar(select(Agency.name).where(Agency.slug == slug))
