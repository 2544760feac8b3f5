"""Alerts: saved searches mailed when new events match them (SPEC section 10).

An alert stores the search's own query string pairs, and is matched by the search itself
(`rank_events`, restricted to the events created since the oldest due alert's mark), so an
alert and a search can never disagree. Each event mailed to an alert is stored
(AlertSentEvent): never the same event twice.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment
from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from events_app.db import PARIS, utcnow
from events_app.errors import InvalidInput, NotFound
from events_app.models import Alert, AlertSentEvent, Event, Seeker
from events_app.notifications import (
    ALERT,
    ALERT_CONFIRM,
    AlertConfirmation,
    AlertDigest,
)
from events_app.passwords import clean_email
from events_app.search import SearchHit, SearchQuery, hits_of, rank_events
from events_app.settings import Settings
from events_app.vocab import EVENT_TYPES, FORMATS, SECTORS

FREQUENCIES = {"immediate": "dès la parution", "daily": "chaque jour", "weekly": "chaque semaine"}
DEFAULT_FREQUENCY = "daily"
MAX_UNCONFIRMED_PER_ADDRESS = 5
UNCONFIRMED_DAYS = 7
# Daily alerts go from this hour (Paris time); weekly ones on Monday from the same hour.
SEND_HOUR = 7
log = logging.getLogger("events_app.alerts")
# The filters an alert keeps (the search's query string names).
FILTER_NAMES = ("q", "near", "radius_km", "sector", "type", "format")
MAX_EVENTS_PER_MAIL = 50
CONFIRM_PATH = "/alertes/confirmer"
MANAGE_PATH = "/alertes/gerer"
UNSUBSCRIBE_PATH = "/alertes/desabonner"


def filter_pairs(values: dict[str, Any]) -> list[tuple[str, str]]:
    """The alert's filters as query string pairs, from a JSON body or a form (lists allowed)."""
    pairs: list[tuple[str, str]] = []
    for name in FILTER_NAMES:
        raw = values.get(name)
        if raw is None or raw == "":
            continue
        if isinstance(raw, list) and name in ("q", "near", "radius_km"):
            raise InvalidInput(name, f"Une seule valeur pour « {name} ».")
        items = raw if isinstance(raw, list) else [raw]
        for item in items:
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise InvalidInput(name, f"Valeur invalide pour « {name} ».")
            text = str(item).strip()
            if text:
                pairs.append((name, text))
    return pairs


def alert_query(filters: Iterable[Sequence[str]]) -> SearchQuery:
    """The SearchQuery of stored filters, read by the search's own parser."""
    from events_app.web.params import parse_search_query

    return parse_search_query(QueryParams([(str(k), str(v)) for k, v in filters]))


@dataclass(frozen=True)
class AlertInput:
    email: str
    filters: list[tuple[str, str]]
    frequency: str


def clean_alert(db: Session, values: dict[str, Any]) -> AlertInput:
    """The one validation of the API and the page form. Raises InvalidInput naming the field:
    a malformed address, an unknown place or sector, a radius out of range, a frequency."""
    email_raw = values.get("email")
    if not isinstance(email_raw, str):
        raise InvalidInput("email", "Indiquez votre adresse e-mail.")
    email = clean_email(email_raw)
    frequency = values.get("frequency") or DEFAULT_FREQUENCY
    if not isinstance(frequency, str) or frequency not in FREQUENCIES:
        raise InvalidInput("frequency", "La fréquence vaut immediate, daily ou weekly.")
    pairs = filter_pairs(values)
    query = alert_query(pairs)
    # An unknown place is refused here, as the search refuses it.
    rank_events(db, replace(query, limit=1))
    return AlertInput(email, pairs, str(frequency))


def create_alert(
    db: Session,
    data: AlertInput,
    *,
    settings: Settings,
    env: Environment,
    seeker: Seeker | None = None,
    now: datetime | None = None,
) -> Alert:
    """Store an alert. Signed in with a confirmed account of the same address: confirmed at
    once; otherwise a confirmation link is mailed (double opt-in)."""
    now = now or utcnow()
    confirmed = (
        seeker is not None and seeker.email_confirmed_at is not None and seeker.email == data.email
    )
    if not confirmed:
        pending = db.scalar(
            select(func.count())
            .select_from(Alert)
            .where(Alert.email == data.email, Alert.confirmed_at.is_(None))
        )
        if (pending or 0) >= MAX_UNCONFIRMED_PER_ADDRESS:
            raise InvalidInput(
                "email",
                "Trop d’alertes en attente de confirmation pour cette adresse\u00a0: "
                "confirmez-les d’abord.",
                code="too_many_alerts",
            )
    alert = Alert(
        email=data.email,
        seeker_id=seeker.id if seeker is not None and confirmed else None,
        filters=[list(pair) for pair in data.filters],
        frequency=data.frequency,
        token=secrets.token_urlsafe(32),
        confirmed_at=now if confirmed else None,
        since=now,
        created_at=now,
    )
    db.add(alert)
    db.flush()
    if not confirmed:
        ALERT_CONFIRM.queue(
            db,
            to=alert.email,
            context=AlertConfirmation(
                alert=alert,
                filters=describe_filters(alert.filters),
                frequency=FREQUENCIES[alert.frequency],
                confirm_url=f"{settings.base_url}{CONFIRM_PATH}/{alert.token}",
                valid_days=UNCONFIRMED_DAYS,
                base_url=settings.base_url,
            ),
            env=env,
        )
    return alert


def alert_by_token(db: Session, token: str) -> Alert:
    alert = db.scalar(select(Alert).where(Alert.token == token)) if token else None
    if alert is None:
        raise NotFound("Alerte introuvable (peut-être déjà supprimée).")
    return alert


def confirm_alert(db: Session, token: str, *, now: datetime | None = None) -> Alert:
    """Confirm from the button of the confirmation page (a POST: link scanners confirm nothing).
    Events created from now on are new to it."""
    alert = alert_by_token(db, token)
    if alert.confirmed_at is None:
        now = now or utcnow()
        alert.confirmed_at = now
        alert.since = now
    return alert


def delete_alert(db: Session, token: str) -> None:
    db.delete(alert_by_token(db, token))


def set_frequency(db: Session, token: str, frequency: str) -> Alert:
    if frequency not in FREQUENCIES:
        raise InvalidInput("frequency", "La fréquence vaut immediate, daily ou weekly.")
    alert = alert_by_token(db, token)
    alert.frequency = frequency
    return alert


def erase_unconfirmed(db: Session, *, now: datetime | None = None) -> int:
    """Delete the alerts left unconfirmed for UNCONFIRMED_DAYS."""
    limit = (now or utcnow()) - timedelta(days=UNCONFIRMED_DAYS)
    result = db.execute(delete(Alert).where(Alert.confirmed_at.is_(None), Alert.created_at < limit))
    return int(getattr(result, "rowcount", 0) or 0)


def _of(seeker: Seeker) -> ColumnElement[bool]:
    """A person's alerts: made while signed in, or to the account's address."""
    return (Alert.seeker_id == seeker.id) | (Alert.email == seeker.email)


def alerts_of(db: Session, seeker: Seeker) -> list[Alert]:
    """« Mes alertes »: every alert of an account or its address, oldest first."""
    return list(db.scalars(select(Alert).where(_of(seeker)).order_by(Alert.id)))


def delete_alerts_of(db: Session, seeker: Seeker) -> int:
    """Every alert of an account or its address (account deletion)."""
    result = db.execute(delete(Alert).where(_of(seeker)))
    return int(getattr(result, "rowcount", 0) or 0)


def export_alerts(db: Session, seeker: Seeker) -> list[dict[str, Any]]:
    alerts = alerts_of(db, seeker)
    return [
        {
            "email": a.email,
            "filtres": [list(p) for p in a.filters],
            "filtres_en_clair": describe_filters(a.filters),
            "frequence": a.frequency,
            "confirmee_le": a.confirmed_at.isoformat() if a.confirmed_at else None,
            "dernier_envoi_le": a.last_sent_at.isoformat() if a.last_sent_at else None,
            "creee_le": a.created_at.isoformat(),
        }
        for a in alerts
    ]


def describe_filters(filters: Iterable[Sequence[str]]) -> str:
    """The filters in words (French), for mails and the account page."""
    parts: list[str] = []
    pairs = [(str(k), str(v)) for k, v in filters]
    values: dict[str, list[str]] = {}
    for k, v in pairs:
        values.setdefault(k, []).append(v)
    if "q" in values:
        parts.append(f"« {values['q'][0]} »")
    if "near" in values:
        radius = values.get("radius_km", ["30"])[0]
        parts.append(f"à {radius}\u00a0km de {values['near'][0]}")
    labels = {"sector": SECTORS, "type": EVENT_TYPES, "format": FORMATS}
    for name, vocab in labels.items():
        if name in values:
            parts.append(", ".join(vocab.get(v, v) for v in values[name]))
    return " · ".join(parts) or "tous les événements"


def last_period_start(frequency: str, now: datetime) -> datetime | None:
    """Start (UTC) of the current sending period: None for immediate alerts."""
    if frequency == "immediate":
        return None
    local = now.astimezone(PARIS)
    start = datetime.combine(local.date(), time(SEND_HOUR), tzinfo=PARIS)
    if frequency == "daily":
        if local < start:
            start -= timedelta(days=1)
    else:
        start -= timedelta(days=local.weekday())
        if local < start:
            start -= timedelta(days=7)
    # Rebuild from the local date so a daylight saving change keeps the hour.
    local_start = datetime.combine(start.date(), time(SEND_HOUR), tzinfo=PARIS)
    return local_start.astimezone(now.tzinfo)


def is_due(alert: Alert, now: datetime) -> bool:
    start = last_period_start(alert.frequency, now)
    return start is None or alert.last_sent_at is None or alert.last_sent_at < start


def send_alerts(db: Session, settings: Settings, env: Environment, *, now: datetime) -> int:
    """Mail each confirmed, due alert the new matching events; returns the mails queued.

    Cost: one query for the events created since the oldest due alert's mark, then one search
    per due alert restricted to those ids, so it grows with new events times due alerts.
    """
    alerts = [
        a
        for a in db.scalars(select(Alert).where(Alert.confirmed_at.is_not(None)))
        if is_due(a, now)
    ]
    if not alerts:
        return 0
    oldest = min(a.since for a in alerts)
    rows = db.execute(
        select(Event.id, Event.created_at).where(
            Event.created_at >= oldest,
            Event.created_at <= now,
            Event.status != "cancelled",
            Event.starts_at > now,
        )
    ).all()
    if not rows:
        return 0
    created = {event_id: created_at for event_id, created_at in rows}
    loaded: dict[int, SearchHit] = {}  # each new event read once, whatever the alerts
    queued = 0
    for alert in alerts:
        ids = tuple(e for e, c in created.items() if c >= alert.since)
        if not ids:
            continue
        sent = set(
            db.scalars(
                select(AlertSentEvent.event_id).where(
                    AlertSentEvent.alert_id == alert.id, AlertSentEvent.event_id.in_(ids)
                )
            )
        )
        ids = tuple(e for e in ids if e not in sent)
        if not ids:
            continue
        query = replace(alert_query(alert.filters), only_ids=ids, limit=len(ids))
        try:
            ranking = rank_events(db, query)
        except InvalidInput as exc:
            # Checked when the alert was made, but places change (a commune merged or renamed,
            # a name now shared): this alert waits, the others are sent.
            log.warning("alert %s skipped: %s", alert.id, exc.message)
            continue
        matched = [event_id for event_id, _ in ranking.hits]
        if not matched:
            continue
        # The first MAX_EVENTS_PER_MAIL are listed, the others counted with a link to the
        # search; all are marked sent, so none comes back in a later mail as if it were new.
        hits = hits_of(db, ranking.hits[:MAX_EVENTS_PER_MAIL], loaded)
        db.execute(insert(AlertSentEvent), [{"alert_id": alert.id, "event_id": e} for e in matched])
        alert.last_sent_at = now
        _queue_alert_mail(db, env, settings, alert, hits, more=len(matched) - len(hits))
        queued += 1
    return queued


def _query_string(filters: Iterable[Sequence[str]]) -> str:
    return urlencode([(name, value) for name, value in filters])


def _queue_alert_mail(
    db: Session,
    env: Environment,
    settings: Settings,
    alert: Alert,
    hits: list[Any],
    *,
    more: int,
) -> None:
    unsubscribe_url = f"{settings.base_url}{UNSUBSCRIBE_PATH}/{alert.token}"
    ALERT.queue(
        db,
        to=alert.email,
        context=AlertDigest(
            hits=hits,
            more=more,
            search_url=f"{settings.base_url}/evenements?{_query_string(alert.filters)}",
            filters=describe_filters(alert.filters),
            frequency=FREQUENCIES[alert.frequency],
            manage_url=f"{settings.base_url}{MANAGE_PATH}/{alert.token}",
            unsubscribe_url=unsubscribe_url,
            base_url=settings.base_url,
        ),
        env=env,
        headers={
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
