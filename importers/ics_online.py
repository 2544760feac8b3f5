"""Online meetings in a VEVENT: their link, and LOCATION texts that name no place."""

from __future__ import annotations

import re
from typing import Any, Final

from importers.base import clean_text, http_url, normalise

_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_CONFERENCE_PROPERTIES: Final = (
    "X-GOOGLE-CONFERENCE",
    "X-MICROSOFT-SKYPETEAMSMEETINGURL",
    "X-MICROSOFT-ONLINEMEETINGCONFLINK",
)
# Hosts of online meeting services: a link to one of them is the event's online link.
_MEETING_HOSTS = re.compile(
    r"https?://(?:[\w-]+\.)*(?:teams\.microsoft\.com|teams\.live\.com|zoom\.us|zoom\.com|"
    r"meet\.google\.com|webex\.com|gotomeeting\.com|meet\.goto\.com|whereby\.com|"
    r"meet\.jit\.si|bigbluebutton\.\w+|livestorm\.co|skype\.com)[^\s<>\"']*",
    re.IGNORECASE,
)
# LOCATION texts that name a way of meeting online, not a place (compared normalised).
_ONLINE_PLACES: Final = frozenset(
    {
        "en ligne",
        "online",
        "a distance",
        "distanciel",
        "en distanciel",
        "visio",
        "visioconference",
        "en visio",
        "en visioconference",
        "webinaire",
        "webinar",
        "microsoft teams",
        "microsoft teams meeting",
        "reunion microsoft teams",
        "teams",
        "zoom",
        "zoom meeting",
        "google meet",
        "meet",
        "webex",
        "skype",
    }
)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _description(component: Any) -> str:
    value = component.get("DESCRIPTION")
    value = value[0] if isinstance(value, list) and value else value
    if value is None:
        return ""
    return clean_text(str(value), multiline=True) or ""


def find_online_url(component: Any, location: str | None) -> str | None:
    candidates: list[str] = []
    try:
        candidates.extend(str(conference.uri) for conference in component.conferences)
    except Exception:  # a malformed CONFERENCE is no reason to refuse the event
        candidates.extend(str(v) for v in _as_list(component.get("CONFERENCE")))
    for name in _CONFERENCE_PROPERTIES:
        candidates.extend(str(v) for v in _as_list(component.get(name)))
    if location:
        candidates.extend(_URL_IN_TEXT.findall(location))
    description = _description(component)
    candidates.extend(_MEETING_HOSTS.findall(description))
    return next((url for url in map(http_url, candidates) if url), None)


def online_place(location: str | None) -> bool:
    """LOCATION names an online meeting ("En ligne", "Microsoft Teams"…), not a place."""
    if not location:
        return False
    text = _URL_IN_TEXT.sub(" ", location)
    return not normalise(text) or normalise(text) in _ONLINE_PLACES
