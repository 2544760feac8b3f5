"""Check-in codes (SPEC §12) and their QR codes.

A code is drawn when a seat is confirmed (events_app.registrations) and checked at the door
(events_app.checkins). Its QR code is inline SVG drawn by segno (a maintained QR encoder with
no dependencies), for the manage page and the confirmation mail.
"""

from __future__ import annotations

import secrets
from html import escape

import segno
from markupsafe import Markup

# Check-in codes (SPEC §12): what the QR code of a confirmed seat carries and what staff may
# type instead. 12 characters of an alphabet without look-alikes (no 0/O, 1/I/L): about 59
# bits, drawn by `secrets`, so a code cannot be guessed, and typed on a phone without doubt.
CHECKIN_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CHECKIN_LENGTH = 12


def new_checkin_code() -> str:
    return "".join(secrets.choice(CHECKIN_ALPHABET) for _ in range(CHECKIN_LENGTH))


def normalise_checkin_code(raw: str) -> str | None:
    """A typed or scanned code as stored (spaces and hyphens dropped, upper case), or None
    when it cannot be one."""
    code = "".join(raw.split()).replace("-", "").upper()
    if len(code) != CHECKIN_LENGTH or any(c not in CHECKIN_ALPHABET for c in code):
        return None
    return code


def format_checkin_code(code: str) -> str:
    """In groups of four, as people read it aloud: « 7KQ2-M9XD-4TPA »."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def checkin_qr_svg(code: str, scale: int = 6) -> Markup:
    """The QR code of a check-in code: an <svg role="img"> whose name says what it holds, on a
    white background with its quiet zone (phones in a dim hall read it better)."""
    svg = segno.make(code, error="m", micro=False).svg_inline(
        scale=scale, border=4, dark="#000", light="#fff", svgclass="qr-code", lineclass=None
    )
    label = escape(f"QR code du code d’entrée {format_checkin_code(code)}")
    # segno writes "<svg width=… class=…>": the role and name make it one image for screen
    # readers, instead of an unnamed drawing.
    return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1))  # noqa: S704
