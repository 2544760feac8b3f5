"""Job seeker accounts: sign-up, sign-in, preferences, "events for me", password reset.

Passwords are hashed with argon2id (argon2-cffi). Every function takes a Session and never
commits; the caller owns the transaction.

Past registrations. A registration made while signed in carries the account's id (see
events_app.web.public). Registrations made earlier with the same address (seeker_id NULL) are
attached only once the person has shown they read that mailbox, that is after a password reset
through the mailed link. Attaching them at sign-up or sign-in would hand anyone who signs up
with someone else's address that person's registrations, phone number and manage links
(which cancel): an address typed into a sign-up form proves nothing.

Password stamp. password_stamp(seeker) is a short digest of the current password hash. The
reset token carries it, so a token stops working once the password changes (single use), and
the web layer keeps it in the session, so changing the password signs out every other session.

Personal calendar feed. Seeker.feed_token is the secret of the feed's URL (/agenda/{token}.ics):
created on first need, replaced on demand, and the old URL stops working at once.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from jinja2 import Environment
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from events_app import passwords
from events_app.alerts import delete_alerts_of, export_alerts
from events_app.db import utcnow
from events_app.errors import Conflict, InvalidInput, NotFound, Unauthorized
from events_app.models import Event, Registration, Seeker
from events_app.notifications import Notifier, delete_mails_to, mail_environment, queue_mail
from events_app.places import ResolvedPlace, resolve_place
from events_app.registrations import anonymise_registrations, cancel_registration
from events_app.search import (
    DEFAULT_RADIUS_KM,
    SearchQuery,
    SearchResult,
    check_radius,
    search_events,
)
from events_app.settings import Settings
from events_app.vocab import EVENT_TYPES, FORMATS, SECTORS

MIN_PASSWORD_LENGTH = passwords.MIN_PASSWORD_LENGTH
RESET_MAX_AGE_SECONDS = 3600
RESET_SALT = "password-reset"
RESET_PATH = "/compte/mot-de-passe/nouveau"

SIGN_IN_FAILED = "Adresse e-mail ou mot de passe incorrect."
RESET_LINK_INVALID = (
    "Ce lien de réinitialisation n’est plus valable\u00a0: il a déjà servi, il a expiré (il "
    "vaut une heure) ou il est incomplet. Demandez un nouveau lien."
)
RESET_SUBJECT = "Réinitialiser votre mot de passe"
CONFIRM_SALT = "account-confirmation"
CONFIRM_PATH = "/compte/confirmation"
CONFIRM_MAX_AGE_SECONDS = 7 * 24 * 3600
CONFIRM_SUBJECT = "Confirmez votre adresse pour ouvrir votre compte"
CONFIRM_LINK_INVALID = (
    "Ce lien de confirmation n'est plus valable. Demandez un lien avec « Mot de passe oublié » : "
    "il confirme aussi votre adresse."
)
ACCOUNT_EXISTS_SUBJECT = "Une demande de compte avec votre adresse"
NOT_CONFIRMED = (
    "Confirmez d'abord votre adresse e-mail avec le lien reçu après l'inscription (ou "
    "demandez-en un nouveau avec « Mot de passe oublié »)."
)

FEED_TOKEN_BYTES = 32  # 43 URL-safe characters
FEED_TOKEN_MAX_LENGTH = 64  # the column's size
_FEED_TOKEN_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{1,{FEED_TOKEN_MAX_LENGTH}}}")


def password_stamp(seeker: Seeker) -> str:
    """16 hex digits derived from the current password hash; changes with the password."""
    return passwords.password_stamp(seeker.password_hash)


def stamp_matches(seeker: Seeker, stamp: object) -> bool:
    return passwords.stamp_matches(seeker.password_hash, stamp)


# --- Input -------------------------------------------------------------------------------------


def _clean_name(raw: str, field: str, label: str) -> str:
    value = " ".join(raw.split())
    if not value:
        raise InvalidInput(field, f"Indiquez votre {label}.")
    if len(value) > 100:
        raise InvalidInput(field, f"Votre {label} dépasse 100 caractères.")
    return value


def _seeker_by_email(db: Session, email: str) -> Seeker | None:
    return db.scalars(select(Seeker).where(Seeker.email == email)).first()


# --- Sign-up and sign-in -----------------------------------------------------------------------


def sign_up(
    db: Session,
    *,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    settings: Settings,
    env: Environment | None = None,
) -> Seeker | None:
    """Create an account, to be confirmed by the link mailed to its address; or, when the
    address already has one, mail its owner instead (None). The caller answers the same way
    in both cases, so that sign-up never tells whether an address has an account. Raises
    InvalidInput naming the field."""
    first = _clean_name(first_name, "first_name", "prénom")
    last = _clean_name(last_name, "last_name", "nom")
    address = passwords.clean_email(email)
    passwords.check_new_password(password)
    env = env or mail_environment()
    existing = _seeker_by_email(db, address)
    if existing is not None:
        queue_mail(
            db,
            env,
            to=existing.email,
            subject=ACCOUNT_EXISTS_SUBJECT,
            template="account_exists",
            context={"seeker": existing, "base_url": settings.base_url},
            kind="account_exists",
        )
        db.flush()
        return None
    conflict = Conflict(
        "Impossible de créer un compte avec cette adresse e-mail pour le moment. Réessayez.",
        field="email",
        code="account_race",
    )
    seeker = Seeker(
        email=address,
        password_hash=passwords.hash_password(password),
        first_name=first,
        last_name=last,
        sectors=[],
        types=[],
        formats=[],
    )
    try:
        # Two sign-ups racing for one address: the unique constraint decides, and the
        # savepoint keeps the caller's transaction usable.
        with db.begin_nested():
            db.add(seeker)
            db.flush()
    except IntegrityError as exc:
        raise conflict from exc
    token = passwords.password_link_token(
        settings.secret_key, CONFIRM_SALT, seeker.id, seeker.password_hash
    )
    queue_mail(
        db,
        env,
        to=seeker.email,
        subject=CONFIRM_SUBJECT,
        template="confirm_account",
        context={
            "seeker": seeker,
            "confirm_url": f"{settings.base_url}{CONFIRM_PATH}?token={token}",
            "valid_days": CONFIRM_MAX_AGE_SECONDS // 86400,
            "base_url": settings.base_url,
        },
        kind="confirm_account",
    )
    db.flush()
    return seeker


def confirm_account(db: Session, *, token: str, settings: Settings) -> Seeker:
    """Confirm the address of an account from the link mailed at sign-up, and attach the past
    registrations made with it (the link proves the mailbox). Raises InvalidInput("token")."""
    seeker = _seeker_of_link(
        db, token, settings, CONFIRM_SALT, CONFIRM_MAX_AGE_SECONDS, CONFIRM_LINK_INVALID
    )
    if seeker.email_confirmed_at is None:
        seeker.email_confirmed_at = utcnow()
        db.flush()
        attach_past_registrations(db, seeker)
    return seeker


def authenticate(db: Session, *, email: str, password: str) -> Seeker:
    """The account behind an address and password. Raises Unauthorized with one generic
    message whatever went wrong, after the same argon2 work whether or not the address exists.
    """
    if not email.strip():
        raise InvalidInput("email", "Indiquez votre adresse e-mail.")
    if not password:
        raise InvalidInput("password", "Indiquez votre mot de passe.")
    seeker = _seeker_by_email(db, passwords.lookup_email(email)[:254])
    matches, new_hash = passwords.verify_password(
        seeker.password_hash if seeker is not None else None, password
    )
    if seeker is None or not matches:
        raise Unauthorized(SIGN_IN_FAILED, code="sign_in_failed")
    if seeker.email_confirmed_at is None:
        # Only whoever chose this password learns it: the address's owner, or whoever tried.
        raise Unauthorized(NOT_CONFIRMED, code="not_confirmed")
    if new_hash is not None:
        seeker.password_hash = new_hash
        db.flush()
    return seeker


def get_seeker(db: Session, seeker_id: int) -> Seeker:
    seeker = db.get(Seeker, seeker_id)
    if seeker is None:
        raise NotFound("Compte introuvable.")
    return seeker


# --- Preferences and "events for me" -----------------------------------------------------------


def _codes(values: Iterable[str], allowed: dict[str, str], field: str, label: str) -> list[str]:
    codes: list[str] = []
    for value in values:
        code = value.strip()
        if not code:
            continue
        if code not in allowed:
            raise InvalidInput(field, f"{label} inconnu\u00a0: «\u00a0{code[:50]}\u00a0».")
        if code not in codes:
            codes.append(code)
    return codes


def update_preferences(
    db: Session,
    seeker: Seeker,
    *,
    home_place: str | None,
    radius_km: int | None,
    sectors: Iterable[str],
    types: Iterable[str],
    formats: Iterable[str],
) -> ResolvedPlace | None:
    """Save the preferences behind "events for me"; return the resolved home place.

    Raises InvalidInput naming the field: an unknown place, a radius outside 1 to 200 km,
    an unknown code. An empty place means "anywhere" (the radius is then kept as given).
    """
    place_text = " ".join((home_place or "").split())
    place: ResolvedPlace | None = None
    if place_text:
        try:
            place = resolve_place(db, place_text)
        except InvalidInput as exc:
            raise InvalidInput("home_place", exc.message) from exc
    if radius_km is not None:
        check_radius(radius_km)
    sector_codes = _codes(
        sectors, {k: v for k, v in SECTORS.items() if k != "all"}, "sectors", "Secteur"
    )
    type_codes = _codes(types, EVENT_TYPES, "types", "Type d’événement")
    format_codes = _codes(formats, FORMATS, "formats", "Format")
    seeker.home_place = place_text or None
    seeker.radius_km = radius_km if radius_km is not None else DEFAULT_RADIUS_KM
    seeker.sectors = sector_codes
    seeker.types = type_codes
    seeker.formats = format_codes
    db.flush()
    return place


def preferences_query(seeker: Seeker, *, limit: int = 20) -> SearchQuery:
    return SearchQuery(
        near=seeker.home_place or None,
        radius_km=float(seeker.radius_km or DEFAULT_RADIUS_KM),
        sectors=tuple(seeker.sectors or ()),
        types=tuple(seeker.types or ()),
        formats=tuple(seeker.formats or ()),
        limit=limit,
    )


def has_preferences(seeker: Seeker) -> bool:
    """Whether anything is saved that narrows the events (a place, sectors, types, formats)."""
    return bool(seeker.home_place or seeker.sectors or seeker.types or seeker.formats)


def events_for_me(db: Session, seeker: Seeker, *, limit: int = 20) -> SearchResult:
    """Upcoming events matching the preferences, nearest first when a home place is set.

    Cancelled events are left out. A home place that no longer resolves (the commune table
    changed) is dropped rather than failing the page; result.extra["place_lost"] says so.
    """
    query = preferences_query(seeker, limit=limit)
    try:
        result = search_events(db, query)
    except InvalidInput as exc:
        if exc.field != "near":
            raise
        result = search_events(db, replace(query, near=None))
        result.extra["place_lost"] = True
    result.hits = [hit for hit in result.hits if hit.event.status != "cancelled"]
    return result


def my_registrations(db: Session, seeker: Seeker) -> list[Registration]:
    """The account's registrations, every status, with event and agency, newest event first."""
    return list(
        db.scalars(
            select(Registration)
            .join(Event, Event.id == Registration.event_id)
            .where(Registration.seeker_id == seeker.id)
            .options(joinedload(Registration.event).joinedload(Event.agency))
            .order_by(Event.starts_at.desc(), Registration.id.desc())
        )
    )


def attach_past_registrations(db: Session, seeker: Seeker) -> int:
    """Link the registrations made with the account's address before it existed (or while
    signed out). Only for an address the person has proven to own; see the module notes."""
    result = db.execute(
        update(Registration)
        .where(Registration.email == seeker.email, Registration.seeker_id.is_(None))
        .values(seeker_id=seeker.id)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- Password reset ----------------------------------------------------------------------------


def reset_token(seeker: Seeker, settings: Settings) -> str:
    return passwords.password_link_token(
        settings.secret_key, RESET_SALT, seeker.id, seeker.password_hash
    )


def request_password_reset(
    db: Session, *, email: str, settings: Settings, env: Environment | None = None
) -> None:
    """Queue a reset link for the account with this address, if there is one.

    Says nothing either way: the caller shows the same message whether or not an account
    exists. Raises InvalidInput only for an empty or malformed address.
    """
    address = passwords.clean_email(email)
    seeker = _seeker_by_email(db, address)
    if seeker is None:
        return
    env = env or mail_environment()
    context: dict[str, Any] = {
        "seeker": seeker,
        "reset_url": f"{settings.base_url}{RESET_PATH}?token={reset_token(seeker, settings)}",
        "valid_minutes": RESET_MAX_AGE_SECONDS // 60,
        "base_url": settings.base_url,
    }
    queue_mail(
        db,
        env,
        to=seeker.email,
        subject=RESET_SUBJECT,
        template="password_reset",
        context=context,
        kind="password_reset",
    )
    db.flush()


def check_reset_token(db: Session, *, token: str, settings: Settings) -> Seeker:
    """The account a reset token is for. Raises InvalidInput("token") when the token is
    forged, malformed, older than an hour, or already used (the password changed since)."""
    return _seeker_of_link(
        db, token, settings, RESET_SALT, RESET_MAX_AGE_SECONDS, RESET_LINK_INVALID
    )


def _seeker_of_link(
    db: Session, token: str, settings: Settings, salt: str, max_age: int, message: str
) -> Seeker:
    """The account a signed link (reset, confirmation) is for; InvalidInput("token") when it
    is forged, malformed, too old, or used (the password changed since it was made)."""
    invalid = InvalidInput("token", message, code="invalid_token")
    try:
        claims = passwords.read_password_link_token(
            settings.secret_key, salt, token, max_age=max_age
        )
    except passwords.LinkExpired as exc:
        raise invalid from exc
    if claims is None:
        raise invalid
    seeker = db.get(Seeker, claims[0])
    if seeker is None or not stamp_matches(seeker, claims[1]):
        raise invalid
    return seeker


def reset_password(db: Session, *, token: str, new_password: str, settings: Settings) -> Seeker:
    """Set a new password from a reset link. The link then stops working (the stamp changed).

    Also attaches the past registrations made with the address: whoever holds the link reads
    that mailbox. Raises InvalidInput("token") or InvalidInput("password").
    """
    seeker = check_reset_token(db, token=token, settings=settings)
    passwords.check_new_password(new_password)
    seeker.password_hash = passwords.hash_password(new_password)
    # The link came to the mailbox: that confirms the address too.
    seeker.email_confirmed_at = seeker.email_confirmed_at or utcnow()
    db.flush()
    attach_past_registrations(db, seeker)
    return seeker


def seeker_of_session(db: Session, seeker_id: int | None, stamp: object) -> Seeker | None:
    """The signed-in seeker, or None when the session is empty, the account is gone, or the
    password changed since the session was opened (its stamp no longer matches)."""
    if seeker_id is None:
        return None
    seeker = db.get(Seeker, seeker_id)
    if seeker is None or not stamp_matches(seeker, stamp):
        return None
    return seeker


# --- Personal calendar feed --------------------------------------------------------------------


def _new_feed_token() -> str:
    return secrets.token_urlsafe(FEED_TOKEN_BYTES)


def ensure_feed_token(db: Session, seeker: Seeker) -> str:
    """The secret of the seeker's personal feed, created if there is none yet.

    Two first visits at once (two tabs) agree on one token: only a NULL column is filled, and
    the loser reads the winner's value back.
    """
    if seeker.feed_token:
        return seeker.feed_token
    db.execute(
        update(Seeker)
        .where(Seeker.id == seeker.id, Seeker.feed_token.is_(None))
        .values(feed_token=_new_feed_token())
        .execution_options(synchronize_session=False)
    )
    db.refresh(seeker, attribute_names=["feed_token"])
    if not seeker.feed_token:
        raise NotFound("Compte introuvable.")
    return seeker.feed_token


def regenerate_feed_token(db: Session, seeker: Seeker) -> str:
    """Replace the feed's secret: the old URL stops working at once. Returns the new one."""
    token = _new_feed_token()
    seeker.feed_token = token
    db.flush()
    return token


def seeker_by_feed_token(db: Session, token: str) -> Seeker:
    """The account whose personal feed this token opens. NotFound, saying nothing more, for an
    empty, over-long, malformed, unknown or replaced token."""
    unknown = NotFound("Agenda introuvable.")
    # Only the alphabet of token_urlsafe reaches the database (no NUL byte, no odd text).
    if not _FEED_TOKEN_SHAPE.fullmatch(token):
        raise unknown
    seeker = db.scalars(select(Seeker).where(Seeker.feed_token == token)).first()
    # The index finds the row; the final comparison is constant-time.
    if seeker is None or not seeker.feed_token:
        raise unknown
    if not hmac.compare_digest(seeker.feed_token.encode(), token.encode()):
        raise unknown
    return seeker


# --- Personal data (GDPR): download and deletion ------------------------------------------


def export_seeker_data(db: Session, seeker: Seeker) -> dict[str, Any]:
    """Everything kept about a person with an account, as JSON-ready data."""
    registrations = list(
        db.scalars(
            select(Registration)
            .where(Registration.seeker_id == seeker.id)
            .options(joinedload(Registration.event).joinedload(Event.agency))
            .order_by(Registration.id)
        ).unique()
    )
    return {
        "compte": {
            "email": seeker.email,
            "prenom": seeker.first_name,
            "nom": seeker.last_name,
            "telephone": seeker.phone,
            "cree_le": seeker.created_at.isoformat(),
        },
        "preferences": {
            "lieu": seeker.home_place,
            "rayon_km": seeker.radius_km,
            "secteurs": list(seeker.sectors or []),
            "types": list(seeker.types or []),
            "formats": list(seeker.formats or []),
            "agenda_personnel_actif": seeker.feed_token is not None,
        },
        "inscriptions": [
            {
                "evenement": r.event.title,
                "organisme": r.event.agency.name,
                "debut": r.event.starts_at.isoformat(),
                "statut": r.status,
                "position_liste_attente": r.waitlist_position,
                "prenom": r.first_name,
                "nom": r.last_name,
                "email": r.email,
                "telephone": r.phone,
                "participation": r.attendance,
                "inscrit_le": r.created_at.isoformat(),
                "annulee_le": r.cancelled_at.isoformat() if r.cancelled_at else None,
            }
            for r in registrations
        ],
        "alertes": export_alerts(db, seeker),
    }


def delete_account(db: Session, seeker: Seeker, *, password: str, notifier: Notifier) -> int:
    """Delete an account after checking its password.

    Live registrations are cancelled first (each freed seat goes to the waiting list at once,
    and the people promoted are told), then every registration of the account is anonymised,
    the mails written to the person are deleted with the rest of their data, and the account
    is removed. Returns how many registrations were cancelled. The
    caller's transaction must hold the write lock (it changes seats).
    """
    matches, _ = passwords.verify_password(seeker.password_hash, password)
    if not matches:
        raise InvalidInput("password", "Mot de passe incorrect : le compte n'a pas été supprimé.")
    registrations = list(
        db.scalars(
            select(Registration)
            .where(Registration.seeker_id == seeker.id)
            .order_by(Registration.id)
        )
    )
    cancelled = 0
    for registration in registrations:
        if registration.status in ("confirmed", "waitlisted"):
            cancel_registration(db, token=registration.token, notifier=notifier)
            cancelled += 1
    db.flush()
    anonymise_registrations(db, registrations)
    # Every other mail to the person too: a reset link, the sign-up confirmation...
    delete_mails_to(db, seeker.email)
    delete_alerts_of(db, seeker)
    db.delete(seeker)
    db.flush()
    return cancelled
