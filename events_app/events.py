"""Events: validation of what agencies send, creation, update, and the registration state."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import nh3
from markdown_it import MarkdownIt
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from events_app.db import utcnow
from events_app.duplicates import refresh_duplicates
from events_app.errors import InvalidInput, NotFound
from events_app.models import Event, EventSector
from events_app.places import PARIS_ZONE, resolve_place, venue_zone

MAX_TITLE = 200
MAX_DESCRIPTION = 50_000
MAX_CAPACITY = 1_000_000
VENUE_FIELDS = ("name", "address", "postal_code", "city", "lat", "lon")
# Tags an agency may use in a description; everything else is stripped, never escaped raw.
ALLOWED_TAGS = {"p", "br", "strong", "em", "b", "i", "u", "ul", "ol", "li", "a", "h3", "h4"}


def sanitise_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


# What makes html5ever's parse and serialisation differ from the text itself.
_MARKUP = re.compile(r"[<>&\r\x00\ufeff]")


def plain_text(value: str) -> str:
    """A plain-text field (a title, a venue) with any markup removed by the sanitiser.

    Entities are decoded afterwards, and cleaning repeats until nothing changes, so that an
    escaped tag (&lt;script&gt;) cannot come back to life once decoded. "a < b" stays as typed.
    """
    if not _MARKUP.search(value):
        # Nothing the sanitiser would touch (no markup, entity, carriage return or byte-order
        # mark): what nearly every title and venue is, and a feed has a hundred thousand.
        return value.strip()
    import html as html_module

    for _ in range(5):
        cleaned = html_module.unescape(nh3.clean(value, tags=set()))
        if cleaned == value:
            break
        value = cleaned
    return value.strip()


def one_line(value: str) -> str:
    """Text that must hold on one line: line breaks of any kind (\\n, \\r, U+2028, U+0085…)
    and other control characters become spaces, runs of spaces one. What a title, a venue or a
    name is, since it goes into mail subjects, calendar summaries and CSV cells."""
    if not value.isprintable():  # rare: only then look at each character
        value = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in value)
    return " ".join(value.split())


def one_line_text(value: str) -> str:
    """A one-line plain-text field: markup removed (plain_text), then on one line."""
    return one_line(plain_text(value))


# What an agency may type in a description (the back office says it beside the field):
# paragraphs (a blank line), line breaks, **bold**, *italic*, lists (« - » or « 1. ») and links
# ([text](https://…) or <https://…>). Raw HTML typed among Markdown is shown as typed, escaped.
MARKDOWN_RULES = ["emphasis", "list", "link", "autolink", "newline", "escape", "entity"]
# Text with such a tag is HTML (a feed's, an API client's, an event saved before Markdown).
_HTML_TAG = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*[\s/>]|/[a-zA-Z]|!--)")


@functools.cache
def _markdown() -> MarkdownIt:
    return MarkdownIt("zero", {"breaks": True, "html": False}).enable(MARKDOWN_RULES)


def description_html(text: str) -> str:
    """An agency's description as stored: HTML as sent (with tags), or else the Markdown
    subset rendered; sanitised either way (sanitise_html)."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        return ""
    if not _HTML_TAG.search(text):
        # markdown-it ends each block (and each <br> of breaks=True) with a line feed: no
        # meaning in HTML, so left out for a compact, stable stored form.
        text = _markdown().render(text).replace("\n", "")
    return sanitise_html(text)


class _Writer(HTMLParser):
    """Sanitised description HTML written as plain text (mails, calendars) or as the Markdown
    subset that gives it back (the back office's form)."""

    def __init__(self, markdown: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.markdown = markdown
        self.out: list[str] = []
        self.lists: list[list[int]] = []  # per open list: [is_ordered, items so far]
        self.href: list[str | None] = []
        self.link_text: list[int] = []

    def _block(self) -> None:
        text = "".join(self.out)
        if text and not text.endswith("\n\n"):
            self.out.append("\n" if text.endswith("\n") else "\n\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("p", "h3", "h4"):
            self._block()
            if tag != "p" and self.markdown:
                self.out.append("**")
        elif tag == "br":
            self.out.append("\n")
        elif tag in ("ul", "ol"):
            if not self.lists:
                self._block()
            self.lists.append([tag == "ol", 0])
        elif tag == "li":
            current = self.lists[-1] if self.lists else [False, 0]
            current[1] += 1
            if "".join(self.out) and not "".join(self.out).endswith("\n"):
                self.out.append("\n")
            indent = "   " * max(len(self.lists) - 1, 0)
            bullet = f"{current[1]}. " if current[0] else ("- " if self.markdown else "• ")
            self.out.append(indent + bullet)
        elif tag in ("strong", "b") and self.markdown:
            self.out.append("**")
        elif tag in ("em", "i") and self.markdown:
            self.out.append("*")
        elif tag == "a":
            self.href.append(dict(attrs).get("href"))
            self.link_text.append(len(self.out))
            if self.markdown:
                self.out.append("[")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("p", "h3", "h4"):
            if tag != "p" and self.markdown:
                self.out.append("**")
            self._block()
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            if not self.lists:
                self._block()
        elif tag in ("strong", "b") and self.markdown:
            self.out.append("**")
        elif tag in ("em", "i") and self.markdown:
            self.out.append("*")
        elif tag == "a" and self.href:
            href = self.href.pop()
            start = self.link_text.pop()
            label = "".join(self.out[start:]).lstrip("[")
            if self.markdown:
                self.out.append(f"]({href})" if href else "]")
            elif href and href.removeprefix("mailto:") != label.strip():
                self.out.append(f" ({href.removeprefix('mailto:')})")

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split()) if not data.strip() else re.sub(r"\s+", " ", data)
        if not text.strip() and (not self.out or self.out[-1].endswith("\n")):
            return
        if self.markdown:
            text = re.sub(r"([\\*_\[\]<`])", r"\\\1", text)
        self.out.append(text)

    def result(self) -> str:
        lines = [
            line.strip()
            if not line.lstrip().startswith(("- ", "• ")) and not re.match(r"\s*\d+\. ", line)
            else line.rstrip()
            for line in "".join(self.out).split("\n")
        ]
        text = "\n".join(lines)
        while "\n\n\n" in text:
            text = text.replace("\n\n\n", "\n\n")
        return text.strip()


def html_to_text(html: str) -> str:
    """Plain text of sanitised HTML, for mails and calendars: paragraphs apart, list items
    bulleted (« • », or numbered), each link followed by its address."""
    writer = _Writer(markdown=False)
    writer.feed(sanitise_html(html))
    writer.close()
    return writer.result()


def html_to_markdown(html: str) -> str:
    """Sanitised description HTML as the Markdown subset of description_html, for the back
    office's form (what the agency typed, or near enough for HTML that came from elsewhere)."""
    writer = _Writer(markdown=True)
    writer.feed(sanitise_html(html))
    writer.close()
    return writer.result()


class EventFacts(Protocol):
    """What the registration state and the seat counts read of an event: an `Event` row, or
    the lean `EventSummary` a search page is served from (events_app.summaries)."""

    @property
    def status(self) -> str: ...
    @property
    def format(self) -> str: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def capacity(self) -> int | None: ...
    @property
    def seats_taken(self) -> int: ...
    @property
    def remote_capacity(self) -> int | None: ...
    @property
    def remote_seats_taken(self) -> int: ...
    @property
    def waitlist(self) -> bool: ...
    @property
    def registration_closed(self) -> bool: ...
    @property
    def registration_opens_at(self) -> datetime | None: ...
    @property
    def registration_closes_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class RegistrationState:
    open: bool
    reason: str | None


def seats_left(event: EventFacts) -> int | None:
    if event.capacity is None:
        return None
    return max(event.capacity - event.seats_taken, 0)


def remote_seats_left(event: EventFacts) -> int | None:
    if event.remote_capacity is None:
        return None
    return max(event.remote_capacity - event.remote_seats_taken, 0)


def is_full(event: EventFacts, attendance: str = "onsite") -> bool:
    left = remote_seats_left(event) if attendance == "remote" else seats_left(event)
    return left is not None and left <= 0


def registration_state(event: EventFacts, now: datetime | None = None) -> RegistrationState:
    """Whether a person can sign up now, and if not, the French reason why."""
    now = now or utcnow()
    if event.status == "cancelled":
        return RegistrationState(False, "Cet événement est annulé.")
    if event.status == "postponed":
        return RegistrationState(
            False, "Cet événement est reporté : les inscriptions sont suspendues."
        )
    if event.starts_at <= now:
        return RegistrationState(False, "Cet événement a déjà commencé ou est passé.")
    if event.registration_closed:
        return RegistrationState(False, "Les inscriptions sont closes pour cet événement.")
    if event.registration_opens_at is not None and now < event.registration_opens_at:
        return RegistrationState(False, "Les inscriptions ne sont pas encore ouvertes.")
    if event.registration_closes_at is not None and now >= event.registration_closes_at:
        return RegistrationState(False, "Les inscriptions sont closes pour cet événement.")
    full = is_full(event, "onsite") and (event.format != "hybrid" or is_full(event, "remote"))
    if full and not event.waitlist:
        return RegistrationState(False, "Cet événement est complet.")
    return RegistrationState(True, None)


def get_event(db: Session, event_id: int, *, agency_id: int | None = None) -> Event:
    """One event with its agency and sectors; NotFound when unknown (or another agency's)."""
    statement = (
        select(Event)
        .where(Event.id == event_id)
        .options(joinedload(Event.agency), selectinload(Event.sector_rows))
    )
    if agency_id is not None:
        statement = statement.where(Event.agency_id == agency_id)
    event = db.scalars(statement).first()
    if event is None:
        raise NotFound("Événement introuvable.", field="id")
    return event


# --- an agency's event fields ---------------------------------------------------------------
# Types and shapes are checked at the edge (web/schemas.py, for the API and the back office);
# here are the rules of the domain: what is stored is sanitised, a title says something, and
# apply_event_fields checks what needs the stored event (end after start…).


def parse_datetime(value: Any, field: str, tz: str | None = "Europe/Paris") -> datetime:
    """An ISO 8601 date-time; without an offset it is read in `tz`, or left naive (tz=None)
    for apply_event_fields to read in the event's own time zone."""
    if isinstance(value, datetime):
        parsed = value
    elif not isinstance(value, str):
        raise InvalidInput(field, f"Le champ « {field} » doit être une date ISO 8601.")
    else:
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(
                field, f"Date invalide pour « {field} » : attendu 2026-12-08T09:30:00+01:00."
            ) from exc
    if parsed.tzinfo is None and tz is not None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    if not 2000 <= parsed.year <= 2100:
        raise InvalidInput(field, f"Date hors limites pour « {field} ».")
    return parsed


def _one_line_or_none(value: str | None) -> str | None:
    return (one_line_text(value) or None) if value else None


def sanitise_event_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields as stored: markup stripped from plain texts (titles and venues on one
    line), the description sanitised, blanks trimmed. Raises InvalidInput("title") when
    nothing is left of the title."""
    out = dict(fields)
    if "title" in out:
        out["title"] = one_line_text(out["title"])
        if not out["title"]:
            raise InvalidInput("title", "Le titre est obligatoire.")
    if "description" in out:
        out["description"] = description_html(out["description"] or "")
    if "accessibility_notes" in out:
        notes = (out["accessibility_notes"] or "").strip()
        out["accessibility_notes"] = (plain_text(notes) or None) if notes else None
    if "online_url" in out:
        out["online_url"] = (out["online_url"] or "").strip() or None
    if out.get("venue") is not None:
        venue = dict.fromkeys(VENUE_FIELDS) | out["venue"]
        for key in ("name", "address", "city"):
            venue[key] = _one_line_or_none(venue[key])
        venue["postal_code"] = (venue["postal_code"] or "").strip() or None
        out["venue"] = venue
    return out


_VENUE_COLUMNS = {
    "name": "venue_name",
    "address": "venue_address",
    "postal_code": "venue_postal_code",
    "city": "venue_city",
    "lat": "venue_lat",
    "lon": "venue_lon",
}
# Changes a subscribed calendar must see: they raise the revision (iCalendar SEQUENCE).
CALENDAR_FIELDS = {
    "title",
    "description_html",
    "starts_at",
    "ends_at",
    "all_day",
    "venue_name",
    "venue_address",
    "venue_postal_code",
    "venue_city",
    "venue_lat",
    "venue_lon",
    "online_url",
    "status",
    "type",
    "format",
    "sectors",
    "timezone",
}
# Changes that registrants are told about by email.
PRACTICAL_FIELDS = {
    "starts_at",
    "ends_at",
    "venue_name",
    "venue_address",
    "venue_postal_code",
    "venue_city",
    "online_url",
}


def _geocode_venue(db: Session, venue: dict[str, Any]) -> None:
    """Fill missing coordinates from the offline gazetteer (postal code and city)."""
    if venue.get("lat") is not None or not (venue.get("postal_code") or venue.get("city")):
        return
    query = " ".join(part for part in (venue.get("city"), venue.get("postal_code")) if part)
    try:
        place = resolve_place(db, query)
    except InvalidInput as exc:
        raise InvalidInput(
            "venue.city", "Commune ou code postal du lieu introuvable : précisez-les."
        ) from exc
    venue["lat"], venue["lon"] = place.lat, place.lon


MOMENT_FIELDS = ("starts_at", "ends_at", "registration_opens_at", "registration_closes_at")


def _event_zone(
    db: Session,
    event: Event,
    fields: dict[str, Any],
    values: dict[str, Any],
    old_venue: tuple[str | None, str | None],
) -> str:
    """The event's time zone after these fields: the one sent, else the zone of its venue's
    overseas département (places.venue_zone) for a new event, for a `timezone` sent as null,
    or when the venue moves and the zone was its old venue's; else the zone it had."""
    sent = fields.get("timezone")
    if sent:
        return str(sent)
    new_venue = (
        values.get("venue_postal_code", event.venue_postal_code),
        values.get("venue_city", event.venue_city),
    )
    if event.id is None or "timezone" in fields:
        return venue_zone(db, *new_venue)
    current_zone = event.timezone or PARIS_ZONE
    if "venue" in fields and current_zone == venue_zone(db, *old_venue):
        return venue_zone(db, *new_venue)
    return current_zone


def apply_event_fields(db: Session, event: Event, fields: dict[str, Any]) -> set[str]:
    """Set cleaned fields on an event, check cross-field rules; return the changed columns.

    Raises InvalidInput when the result would be inconsistent (end before start, capacity
    below the seats already taken, a registration window closing after the event, a missing
    venue or link for the format).
    """
    fields = sanitise_event_fields(fields)
    values: dict[str, Any] = {}
    old_venue = (event.venue_postal_code, event.venue_city)
    for key, value in fields.items():
        if key == "description":
            values["description_html"] = value
        elif key == "venue":
            value = value or dict.fromkeys(VENUE_FIELDS)
            _geocode_venue(db, value)
            for sub, column in _VENUE_COLUMNS.items():
                values[column] = value.get(sub)
        elif key not in ("sectors", "timezone"):
            values[key] = value
    values["timezone"] = _event_zone(db, event, fields, values, old_venue)
    # Date-times sent without an offset (the back office's form, API clients) are wall-clock
    # times of the event's zone.
    for name in MOMENT_FIELDS:
        moment = values.get(name)
        if isinstance(moment, datetime) and moment.tzinfo is None:
            values[name] = moment.replace(tzinfo=ZoneInfo(values["timezone"]))

    def current(name: str) -> Any:
        return values[name] if name in values else getattr(event, name, None)

    starts, ends = current("starts_at"), current("ends_at")
    if ends <= starts:
        raise InvalidInput("ends_at", "La fin doit être postérieure au début.")
    opens, closes = current("registration_opens_at"), current("registration_closes_at")
    if closes is not None and closes > ends:
        raise InvalidInput(
            "registration_closes_at",
            "La clôture des inscriptions doit précéder la fin de l'événement.",
        )
    if opens is not None and closes is not None and opens >= closes:
        raise InvalidInput(
            "registration_opens_at", "L'ouverture des inscriptions doit précéder leur clôture."
        )
    fmt = current("format")
    if fmt in ("onsite", "hybrid") and current("venue_lat") is None:
        raise InvalidInput(
            "venue", "Un événement sur place doit avoir un lieu (commune ou coordonnées)."
        )
    if fmt in ("online", "hybrid") and not current("online_url"):
        raise InvalidInput("online_url", "Un événement en ligne doit avoir un lien de connexion.")
    if fmt != "hybrid" and current("remote_capacity") is not None:
        raise InvalidInput(
            "remote_capacity", "Seul un événement hybride a une capacité à distance."
        )
    capacity = current("capacity")
    if capacity is not None and capacity < (event.seats_taken or 0):
        raise InvalidInput(
            "capacity",
            f"La capacité ne peut pas être inférieure aux {event.seats_taken} places déjà prises.",
        )
    remote = current("remote_capacity")
    if remote is not None and remote < (event.remote_seats_taken or 0):
        raise InvalidInput(
            "remote_capacity",
            f"La capacité à distance ne peut pas être inférieure aux {event.remote_seats_taken} "
            "places déjà prises.",
        )

    changed = {name for name, value in values.items() if getattr(event, name, None) != value}
    for name in changed:
        setattr(event, name, values[name])
    if "sectors" in fields and (event.id is None or event.sectors != sorted(fields["sectors"])):
        event.sector_rows = [EventSector(sector=code) for code in sorted(fields["sectors"])]
        changed.add("sectors")
    return changed


def create_event(db: Session, *, agency_id: int, fields: dict[str, Any]) -> Event:
    event = Event(agency_id=agency_id, seats_taken=0, remote_seats_taken=0, revision=1)
    event.sector_rows = []
    apply_event_fields(db, event, fields)
    db.add(event)
    db.flush()
    refresh_duplicates(db, [event.id])
    return event


def update_event(db: Session, event: Event, fields: dict[str, Any]) -> set[str]:
    """Apply a partial update; raise the revision when a calendar must see the change."""
    changed = apply_event_fields(db, event, fields)
    if changed & CALENDAR_FIELDS:
        event.revision += 1
    if changed:
        event.updated_at = utcnow()
    db.flush()
    if changed:
        refresh_duplicates(db, [event.id])
    return changed
