"""Guessing a feed document's format from its first bytes (for `import --format` mistakes)."""

from __future__ import annotations

import pytest

from importers.sniff import guess_format


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n", "ics"),
        (b"\xef\xbb\xbfBEGIN:VCALENDAR\r\n", "ics"),
        (b"X-WR-CALNAME:x\nBEGIN:VEVENT\nSUMMARY:y\n", "ics"),
        (b'  {"totalElements": 0, "content": []}', "ft-json"),
        (b"[]", "ft-json"),
        (b"titre;date;ville\nJob dating;2030-01-02;Lille\n", "csv"),
        (b"titre,date,ville\nForum,2030-01-02,Lyon\n", "csv"),
        (b"just one line of prose", None),
        (b"", None),
    ],
)
def test_guess_format(head: bytes, expected: str | None) -> None:
    assert guess_format(head) == expected
