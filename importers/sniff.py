"""Guess the format of a feed document from its first bytes (pure: no I/O)."""

from __future__ import annotations

import csv
import re

_ICALENDAR = re.compile(rb"^BEGIN:V(CALENDAR|EVENT)\s*$", re.IGNORECASE | re.MULTILINE)


def guess_format(head: bytes) -> str | None:
    """ "ics", "ft-json" or "csv" for the start of a document; None when it is none of them."""
    data = head.removeprefix(b"\xef\xbb\xbf")
    if _ICALENDAR.search(data):
        return "ics"
    if data.lstrip()[:1] in (b"{", b"["):
        return "ft-json"
    text = data.decode("utf-8", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()][:20]
    if len(lines) < 2:
        return None
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=";,\t")
    except csv.Error:
        return None
    header = next(csv.reader(lines[:1], dialect), [])
    return "csv" if len(header) > 1 else None
